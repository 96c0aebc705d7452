"""`hdc info`, `hdc demo`, `hdc bench` (tiny configurations) and the suite's building blocks."""
import json
import struct

import numpy as np
import pytest

import hdc
from hdc.bench import impls as I
from hdc.bench import suite
from hdc.bench.report import fmt_time, render_markdown
from hdc.bench.timing import summarize, time_interleaved
from hdc.cli.main import main


def _png_size(path):
    """(width, height) of a PNG file, checking its signature and IHDR chunk."""
    with open(path, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


# ---- hdc info --------------------------------------------------------------------------------------

def test_info_text_names_backends_and_versions(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"version: {hdc.__version__}" in out
    assert "active_backend: " + hdc.get_backend() in out
    for name in hdc.backends():
        assert name in out
    assert "numpy: " + np.__version__ in out


def test_info_json_matches_show_config(capsys):
    assert main(["info", "--json"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert set(cfg) == {"hdc", "python", "dependencies", "cpu", "environment"}
    assert cfg["hdc"]["backends"] == list(hdc.backends())
    assert cfg["hdc"]["num_threads"] == hdc.get_num_threads()
    if "c" in hdc.backends():
        assert cfg["hdc"]["c_backend"]["isa"] == hdc.get_isa()
        assert hdc.get_isa() in cfg["hdc"]["c_backend"]["available_isas"]
    else:
        assert cfg["hdc"]["c_backend"]["reason"]


@pytest.mark.parametrize("vendor,family,model,want", [
    ("GenuineIntel", 6, 0x55, "Skylake-SP / Cascade Lake"), ("GenuineIntel", 6, 0xCF, "Emerald Rapids"),
    ("AuthenticAMD", 0x19, 0x11, "Zen 4"), ("AuthenticAMD", 0x19, 0x01, "Zen 3"),
    ("GenuineIntel", 6, 0x01, None), ("AuthenticAMD", 0x10, 0x02, None), ("CentaurHauls", 6, 0x55, None)])
def test_cpu_generation_from_cpuid_numbers(vendor, family, model, want):
    from hdc.info import microarchitecture
    assert microarchitecture(vendor, family, model) == want


def test_show_config_rejects_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        hdc.show_config(mode="yaml")


def test_show_config_probe_leaves_isa_unchanged():
    if "c" not in hdc.backends():
        assert hdc.show_config(mode="dicts")["hdc"]["c_backend"]["available"] is False
        return
    before = hdc.get_isa()
    hdc.show_config(mode="dicts")
    assert hdc.get_isa() == before


# ---- hdc demo --------------------------------------------------------------------------------------

def test_demo_prints_accuracy_rates_sizes_and_speedups(capsys):
    assert main(["demo", "--dim", "1024", "--repeats", "1", "--search-n", "512"]) == 0
    out = capsys.readouterr().out
    assert "vectors/s" in out and "queries/s" in out
    assert "128 bytes per vector" in out            # 1024 bits
    accs = [float(a) for a in __import__("re").findall(r"accuracy (\d+\.\d)%", out)]
    assert len(accs) == 3 and min(accs) > 50.0      # digits are easy; chance is 10%
    assert out.count("x faster") == 4


def test_demo_without_sklearn_says_how_to_install(monkeypatch, capsys):
    import hdc.bench.accuracy as acc

    def no_sklearn(*args, **kwargs):
        raise ImportError("No module named 'sklearn'", name="sklearn")
    monkeypatch.setattr(acc, "load_digits_split", no_sklearn)
    assert main(["demo", "--dim", "1024"]) == 2
    assert "pip install 'hdc[learn]'" in capsys.readouterr().err


def test_demo_rejects_bad_dim(capsys):
    assert main(["demo", "--dim", "8"]) == 2
    assert "--dim" in capsys.readouterr().err


# ---- hdc bench -------------------------------------------------------------------------------------

def test_bench_smoke_writes_json_report_and_pngs(tmp_path, capsys):
    out = tmp_path / "bench"
    code = main(["bench", "--smoke", "--out", str(out), "--ops", "bind,topk", "--backends", "numpy,c",
                 "--no-progress", "--no-accuracy", "--threads", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "wrote results.json, report.md" in printed
    res = json.loads((out / "results.json").read_text())
    for key in ("schema", "command", "mode", "machine", "threads", "config", "implementations", "cases",
                "targets", "plots", "duration_s"):
        assert key in res
    assert res["mode"] == "smoke" and res["threads"]["hdc"] == 1
    assert res["command"].startswith("hdc bench --smoke")
    assert {c["op"] for c in res["cases"]} == {"bind", "topk"}
    for case in res["cases"]:
        r = case["results"]["hdc[numpy]"]
        assert r["status"] == "ok"
        assert r["q1_s"] <= r["median_s"] <= r["q3_s"] and r["n"] == len(r["samples_s"])
        assert r["bytes_per_vector"] == 8 * ((case["dim"] + 63) // 64)
        assert r["throughput"] == pytest.approx(case["work"] / r["median_s"])
        # every baseline that applies to the op is listed, with figures or a reason
        names = set(case["results"])
        assert {"numpy f32 dot", "torchhd BSC", "torchhd MAP"} <= names
        if case["op"] == "topk":
            assert {"numpy f32 cosine", "faiss IndexBinaryFlat"} <= names
        ref = case["reference"]
        for name, ratio in case["time_vs_reference"].items():
            assert ratio == pytest.approx(case["results"][name]["median_s"] / case["results"][ref]["median_s"])
    md = (out / "report.md").read_text()
    assert "## Machine" in md and "### bind" in md and "### topk, 1 query" in md
    assert "| dim | size | hdc[c] | hdc[numpy] | numpy f32 dot" in md
    assert "## Bytes per vector" in md
    assert "| hdc[numpy] | 16 | 128 |" in md           # dims 128 and 1,024 in smoke mode
    assert res["plots"] == ["bind.png", "topk.png"]
    for name in res["plots"]:
        w, h = _png_size(out / name)
        assert w > 600 and h > 300
        assert f"![{name[:-4]}]({name})" in md


def test_bench_rejects_bad_arguments(tmp_path, capsys):
    assert main(["bench", "--smoke", "--out", str(tmp_path), "--ops", "bind,fly"]) == 2
    assert "--ops" in capsys.readouterr().err
    assert main(["bench", "--smoke", "--out", str(tmp_path), "--backends", "cuda"]) == 2
    assert "--backends" in capsys.readouterr().err
    assert main(["bench", "--smoke", "--out", str(tmp_path), "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err


def test_missing_baseline_is_reported_not_dropped(monkeypatch):
    real = I._optional
    monkeypatch.setattr(I, "_optional", lambda m, p: None if m in ("torch", "faiss") else real(m, p))
    res = suite.run_suite("smoke", ops=["topk"], backends=["numpy"], accuracy=False, progress=False)
    for case in res["cases"]:
        assert case["results"]["torchhd BSC"]["status"] == "missing: torch not installed"
        assert case["results"]["torchhd MAP"]["status"] == "missing: torch not installed"
        assert case["results"]["faiss IndexBinaryFlat"]["status"] == "missing: faiss not installed"
        assert case["results"]["numpy f32 dot"]["status"] == "ok"
    md = render_markdown(res)
    assert "missing [" in md and "faiss IndexBinaryFlat: missing: faiss not installed" in md
    assert res["implementations"]["torchhd BSC"]["status"] == "missing: torch not installed"


def test_torchhd_request_beyond_memory_is_reported_as_oom():
    case = I.Case("cdist", 10_000, 50_000, nq=16)
    need = I.TorchhdImpl("BSC").need_bytes(case)
    assert need > 16 * 50_000 * 10_000 * 9 - 1            # bools plus their int64 sum: ~72 GB
    limits = {"mem": 2 ** 30, "available": 4 * 2 ** 30}
    out = suite.run_case(case, [I.TorchhdImpl("BSC")], dict(suite.MODES["smoke"]), limits, {})
    assert out["results"]["torchhd BSC"]["status"].startswith("fails: out of memory (needs ")


def test_slow_implementation_is_skipped_by_extrapolation():
    cfg = dict(suite.MODES["smoke"], max_call_s=0.5)
    case = I.Case("bind", 128, 1_000)
    history = {("hdc[numpy]", ("bind", 1)): (case.cost / 100, 0.01)}   # 100x smaller took 10 ms
    out = suite.run_case(case, [I.HdcImpl("numpy")], cfg, {"mem": 2 ** 30, "available": None}, history)
    assert out["results"]["hdc[numpy]"]["status"].startswith("skipped: estimated 1.0 s per call")


def test_targets_evaluate_from_same_run_medians():
    def case(op, n, nq, results):
        return {"op": op, "dim": 10_000, "n": n, "nq": nq, "results": results}
    ok = lambda t: {"status": "ok", "median_s": t}  # noqa: E731
    cases = [case("bundle", 1_001, 1, {"hdc[c]": ok(15e-6)}),
             case("bind", 100_000, 1, {"hdc[c]": dict(ok(0.01), gb_per_s=37.7)}),
             case("topk", 50_000, 1, {"hdc[c]": ok(1e-4), "numpy f32 dot": ok(1.5e-3)}),
             case("cdist", 50_000, 16, {"hdc[c]": ok(1e-3), "torchhd BSC": {"status": "fails: out of memory"}})]
    rows = {(r["target"].split()[0], r["implementation"], r["target"].split(",")[-1][:9]): r
            for r in suite.evaluate_targets(cases)}
    bundle = next(r for k, r in rows.items() if k[0] == "bundle")
    assert bundle["value"] == pytest.approx(15.0) and bundle["met"] is True
    bind = next(r for k, r in rows.items() if k[0] == "bind")
    assert bind["met"] is True
    topk = next(r for k, r in rows.items() if k[0] == "topk")
    assert topk["value"] == pytest.approx(15.0) and topk["met"] is False      # 15x < 20x
    oom = [r for r in rows.values() if r["target"].startswith("cdist 16 x 50,000")]
    assert len(oom) == 1 and "torchhd BSC: fails: out of memory" in oom[0]["target"]
    assert oom[0]["met"] is True and oom[0]["value"] == pytest.approx(1000.0)      # hdc runs it: 1 ms


# ---- building blocks ---------------------------------------------------------------------------

def test_summarize_median_and_iqr():
    s = summarize([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (s["median_s"], s["q1_s"], s["q3_s"], s["iqr_s"], s["n"]) == (3.0, 2.0, 4.0, 2.0, 5)


def test_time_interleaved_settles_before_each_sample():
    import time
    calls = []
    fns = {"a": lambda: calls.append(("a", time.perf_counter())),
           "b": lambda: calls.append(("b", time.perf_counter()))}
    stats = time_interleaved(fns, repeats=3, min_sample_s=1e-9, settle_s=0.02)
    assert set(stats) == {"a", "b"} and stats["a"]["n"] == 3
    timed = calls[4:]  # after the two calibration calls of each callable: a b a b a b
    assert [c[0] for c in timed] == ["a", "b"] * 3
    gaps = [t1[1] - t0[1] for t0, t1 in zip(timed, timed[1:])]
    assert min(gaps) >= 0.02


def test_time_interleaved_reports_errors_and_keeps_others():
    def boom():
        raise MemoryError("no room")
    st = time_interleaved({"ok": lambda: sum(range(100)), "boom": boom}, repeats=3, min_sample_s=1e-4)
    assert isinstance(st["boom"]["error"], MemoryError)
    assert st["ok"]["n"] == 3 and st["ok"]["median_s"] > 0


def test_baselines_compute_the_same_answers():
    """The baselines time real work: their results agree with hdc's on the same data."""
    case = I.Case("topk", 1_024, 300, nq=4)
    data = I.CaseData(case)
    dist, idx = hdc.topk(data.b, data.a, I.K_TOPK)
    d_np = I.NumpyF32("dot").make(I.Case("cdist", 1_024, 300, nq=4), data)()
    np.testing.assert_array_equal((1_024 - d_np) / 2, hdc.cdist(data.b, data.a))
    got = I.NumpyF32("dot").make(case, data)()
    np.testing.assert_array_equal(np.sort(hdc.cdist(data.b, data.a)[np.arange(4)[:, None], got], 1), dist)
    d_faiss, i_faiss = I.FaissBinaryFlat().make(case, data)()
    np.testing.assert_array_equal(d_faiss, dist)
    bind_case = I.Case("bind", 200, 5)
    bd = I.CaseData(bind_case)
    xor = I.TorchhdImpl("BSC").make(bind_case, bd)().numpy()
    np.testing.assert_array_equal(xor, hdc.bind(bd.a, bd.b).to_bool())
    prod = I.NumpyF32("dot").make(bind_case, bd)()
    np.testing.assert_array_equal(prod < 0, hdc.bind(bd.a, bd.b).to_bool())


def test_fmt_time_units():
    assert [fmt_time(x) for x in (2.0, 0.0123, 4.5e-6, 7e-9)] == ["2 s", "12.3 ms", "4.5 us", "7 ns"]
