"""hdc bench's machine limits: the C XOR-reduce on every SIMD path, the per-path table and its
targets, and the report section."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hdc._kernels import c_kernels as ck
from hdc.bench import limits
from hdc.bench.report import limits_section

ISAS = ck.available_isas()


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 70), w=st.integers(1, 80), seed=st.integers(0, 2 ** 32 - 1))
def test_xor_reduce_matches_numpy_on_every_path(n, w, seed):
    x = np.random.default_rng(seed).integers(0, 2 ** 64, size=(n, w), dtype=np.uint64)
    want = np.bitwise_xor.reduce(x, axis=0) if n else np.zeros(w, np.uint64)
    old_isa, old_nt = ck.get_isa(), ck.get_num_threads()
    old_thr = ck.lib.hdc_set_parallel_threshold(0)  # threaded code on small inputs too
    try:
        for isa in ISAS:
            for nt in (1, 2):
                ck.set_isa(isa)
                ck.set_num_threads(nt)
                assert np.array_equal(limits.xor_reduce(x), want), (isa, nt)
    finally:
        ck.set_isa(old_isa)
        ck.set_num_threads(old_nt)
        ck.lib.hdc_set_parallel_threshold(old_thr)


def test_xor_reduce_rejects_bad_arrays():
    with pytest.raises(ValueError, match="x must have dtype uint64"):
        limits.xor_reduce(np.zeros((3, 2), np.int64))
    with pytest.raises(TypeError, match="x must be a numpy.ndarray"):
        limits.xor_reduce([1, 2])
    with pytest.raises(ValueError, match="x must be 2-D"):
        limits.xor_reduce(np.zeros(3, np.uint64))
    with pytest.raises(ValueError, match="C-contiguous"):
        limits.xor_reduce(np.zeros((4, 4), np.uint64)[:, ::2])
    with pytest.raises(ValueError, match=r"out must have shape \(2,\)"):
        limits.xor_reduce(np.zeros((3, 2), np.uint64), out=np.zeros(3, np.uint64))


def test_next_lower_path():
    x86 = ("scalar", "avx2", "avx512bw", "avx512vpopcnt")
    assert [limits._next_lower(x86, i) for i in x86] == [None, "scalar", "avx2", "avx512bw"]
    assert limits._next_lower(("scalar", "avx2", "avx512vpopcnt"), "avx512vpopcnt") == "avx2"
    assert limits._next_lower(("scalar", "neon"), "neon") == "scalar"


def test_measure_covers_every_path_and_renders():
    res = limits.measure("smoke", timing={"repeats": 1, "min_sample_s": 1e-4, "budget_s": 0.01})
    lim = res["limits"]
    assert lim["read_gb_per_s"] > 0 and lim["copy_gb_per_s"] > 0 and lim["bundle_read_s"] > 0
    assert ck.get_isa() == ISAS[-1]  # restored
    cases = {r["case"] for r in res["isa_paths"]}
    assert len(cases) == 4
    for case in cases:
        rows = {r["isa"]: r for r in res["isa_paths"] if r["case"] == case}
        assert tuple(rows) == ISAS
        for isa, r in rows.items():
            assert r["median_s"] > 0
            lower = r["next_lower"]
            if lower is None:
                assert r["speedup_vs_next_lower"] is None
            else:
                assert r["speedup_vs_next_lower"] == pytest.approx(rows[lower]["median_s"] / r["median_s"])
            if r["limit"] is not None:
                assert r["fraction_of_limit"] == pytest.approx(r["limit_s"] / r["median_s"])
            if r["limit"] is not None and lower is not None:   # the ratio a kernel at the limit has
                assert r["speedup_bound_vs_next_lower"] == pytest.approx(
                    rows[lower]["median_s"] / r["limit_s"])
            else:
                assert r["speedup_bound_vs_next_lower"] is None
            if r["op"] == "bundle":   # one figure for the bundle input's read: the warm one
                assert r["limit_s"] == lim["bundle_read_s"]
    targets = limits.targets(res)
    assert any("read bandwidth" in t["target"] for t in targets)
    assert all(t["met"] == (t["value"] <= t["threshold"] if t["unit"] == "x slower"
                            else t["value"] >= t["threshold"]) for t in targets)
    for t in targets:
        if t["target"].endswith("avx512bw >= 2.5x avx2"):
            assert t["bound"] == pytest.approx(next(
                r["speedup_bound_vs_next_lower"] for r in res["isa_paths"]
                if r["op"] == "bundle" and r["isa"] == "avx512bw"))
            assert f"at most {t['bound']:.2f}x" in t["note"]
    md = "\n".join(limits_section(res))
    assert "## Machine limits and SIMD paths" in md
    assert "(at most " in md
    for isa in ISAS:
        assert f"| {isa} |" in md
