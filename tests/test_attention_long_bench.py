"""benchmarks/attention_vs_sdpa.py --long: both sparse-code shapes timed, touched fractions, exponents, replot."""
import importlib.util
import json
import pathlib

import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

_PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "attention_vs_sdpa.py"
_spec = importlib.util.spec_from_file_location("attention_vs_sdpa", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

FIXED, GROWS = bench.sparse_name(8, 1024), bench.sparse_name(8, ratio=32)


def test_long_times_the_fixed_and_the_growing_sparse_code(tmp_path):
    out, png = tmp_path / "long.json", tmp_path / "long.png"
    assert bench.main(["--long", "--L", "256", "512", "--rounds", "1", "--settle", "0", "--threads", "1",
                       "--json", str(out), "--plot", str(png)]) == 0
    results = json.loads(out.read_text())
    assert [r["L"] for r in results] == [256, 512]
    for r in results:
        assert set(r["median_ms"]) == {FIXED, GROWS, "kwta dense codes (c)", "torch sdpa float32"}
        assert r["sparse_block_size"] == {FIXED: 1024, GROWS: r["L"] // 32}
        for name, size in r["sparse_block_size"].items():   # random codes: 1 - (1 - 1/size)^8, sampled
            assert r["pairs_touched_fraction"][name] == pytest.approx(1 - (1 - 1 / size) ** 8, rel=0.25)
        assert r["sparse_key_cache_bytes_per_token"] == {FIXED: 4 * 8 * 2, GROWS: 4 * 8}
    assert png.stat().st_size > 10_000


def test_slopes_and_replot_merge_runs(tmp_path, capsys):
    ls = [1024, 2048, 4096, 8192]
    run_a = [{"L": L, "median_ms": {"quad": 1e-6 * L ** 2}, "median_cpu_ms": {"quad": 2e-6 * L ** 2}} for L in ls]
    run_b = [{"L": L, "median_ms": {"lin": 1e-3 * L}, "median_cpu_ms": {"lin": 1e-3 * L}} for L in ls[1:]]
    merged = bench.merge([run_a, run_b])
    assert [r["L"] for r in merged] == ls and "lin" not in merged[0]["median_ms"]
    fit = bench.slopes(merged)
    assert fit["quad"] == pytest.approx(2.0) and fit["lin"] == pytest.approx(1.0)
    assert bench.slopes(merged, "median_cpu_ms")["quad"] == pytest.approx(2.0)
    paths = []
    for i, run in enumerate((run_a, run_b)):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps(run))
    png = tmp_path / "re.png"
    assert bench.main(["--replot", *map(str, paths), "--plot", str(png)]) == 0
    assert png.stat().st_size > 10_000
    assert "quad 2.00" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.main(["--replot", str(paths[0])])               # needs --plot
    with pytest.raises(SystemExit):
        bench.main(["--long", "--block-size", "0", "--block-size-ratio", "0"])
