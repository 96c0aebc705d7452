"""Core-op benchmarks (pytest-benchmark): hdc's backends side by side with torchhd BSC/MAP, NumPy
float32 on +-1 vectors and faiss, one group per case (same op, dim and sizes).

    pytest benchmarks/ --benchmark-only
    pytest benchmarks/ --benchmark-only --benchmark-columns=median,iqr,ops -k "topk"

Default cases (dim 10,000), with issue 2's targets: bundle of 1,001 vectors (<= 20 us); cdist
1 x 50,000 (>= 300x torchhd) and 16 x 50,000 (torchhd asks ~64 GB: reported as 'fails: out of
memory', never run); bind and permute over 100,000 vectors (>= 20 GB/s, see extra_info gb_per_s);
topk k=10, 1 and 256 queries vs 50,000 (>= 20x / 8x NumPy float32). Plus record encoding and
k-WTA attention. Implementations that cannot run a case are skipped with the reason
("missing: torch not installed", "fails: out of memory (...)") in pytest's summary.
"""
import pytest

from hdc.bench import impls as I
from hdc.bench.suite import MODES, SWEEP_DIM, TARGET_CASES, available_memory, build_cases, moved_bytes

_MEM_SHARE = 0.5   # leave the rest of the machine's memory to other processes
_EXTRA = (I.Case("encode", SWEEP_DIM, 1_000), I.Case("attention", 1_024, 1_024))


def _cases(which):
    if which == "targets":
        return [I.Case(op, SWEEP_DIM, n, nq) for op, n, nq, _, _ in TARGET_CASES] + list(_EXTRA)
    return build_cases(MODES[which])


def pytest_generate_tests(metafunc):
    if "case" not in metafunc.fixturenames:
        return
    backends = [b.strip() for b in metafunc.config.getoption("--hdc-backends").split(",") if b.strip()]
    params, ids = [], []
    for case in _cases(metafunc.config.getoption("--hdc-cases")):
        for impl in I.implementations(backends):
            if case.op in impl.ops:
                params.append((case, impl))
                ids.append(f"{case.label.replace(' ', '_')}-{impl.name.replace(' ', '_')}")
    metafunc.parametrize(("case", "impl"), params, ids=ids)


def test_core(benchmark, case, impl, case_data):
    benchmark.group = case.label
    benchmark.extra_info.update(op=case.op, dim=case.dim, n=case.n, nq=case.nq, unit=I.UNITS[case.op],
                                work_per_call=case.work, bytes_per_vector=impl.bytes_per_vector(case.dim))
    reason = impl.missing()
    need, avail = impl.need_bytes(case), available_memory()
    if reason is None and avail is not None and need > avail:
        reason = f"fails: out of memory (needs {need / 2**30:.1f} GB; {avail / 2**30:.1f} GB available)"
    elif reason is None and avail is not None and need > _MEM_SHARE * avail:
        reason = (f"skipped: needs {need / 2**30:.1f} GB, over {_MEM_SHARE:.0%} of the "
                  f"{avail / 2**30:.1f} GB available")
    if reason is not None:
        benchmark.extra_info["status"] = reason
        pytest.skip(f"{impl.name} on {case.label}: {reason}")
    try:
        fn = impl.make(case, case_data.get(case))
    except I.Unsupported as exc:
        pytest.skip(f"{impl.name} on {case.label}: {exc}")
    fn()  # warm-up: JIT compilation and first-touch page faults stay out of the timings
    benchmark(fn)
    median = benchmark.stats.stats.median
    benchmark.extra_info["throughput"] = case.work / median
    moved = moved_bytes(case, impl.bytes_per_vector(case.dim))
    if moved is not None:
        benchmark.extra_info["gb_per_s"] = moved / median / 1e9
