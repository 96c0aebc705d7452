"""The benchmark suite behind ``hdc bench``: hdc's backends against NumPy float32, torchhd BSC/MAP,
faiss ``IndexBinaryFlat`` and torch dense attention, with medians, IQRs and same-run ratios.

Modules: :mod:`~hdc.bench.timing` (interleaved timing), :mod:`~hdc.bench.impls` (what is compared),
:mod:`~hdc.bench.suite` (cases, modes, targets, runner), :mod:`~hdc.bench.accuracy` (accuracy at
equal task), :mod:`~hdc.bench.report` (results.json, report.md), :mod:`~hdc.bench.plots` (PNGs).

>>> import hdc.bench, tempfile
>>> res = hdc.bench.run("smoke", tempfile.mkdtemp(), ops=["bundle"], backends=["numpy"],
...                     baselines=False, accuracy=False, plots=False, progress=False)
>>> sorted(res["files"])
['readme_section.md', 'report.md', 'results.json']
"""
import os

from .report import write_json, write_report
from .suite import MODES, run_suite

__all__ = ["MODES", "rerender", "run", "run_suite", "write_report"]


def run(mode, out_dir, plots=True, **kwargs):
    """Run the suite (``run_suite`` arguments), write results.json, report.md and the PNG plots
    into ``out_dir``; returns the results dict with ``files`` (names written in ``out_dir``)."""
    res = run_suite(mode, **kwargs)
    files = []
    if plots:
        from .plots import write_plots
        files, reason = write_plots(res, out_dir)
        if reason:
            res["plots_status"] = reason
    write_report(res, out_dir, files)
    res["files"] = ["results.json", "report.md", "readme_section.md", *files]
    res["out_dir"] = os.path.abspath(out_dir)
    return res


def rerender(out_dir, plots=True):
    """Rewrite report.md (and the plots) of ``out_dir`` from its results.json; returns the dict."""
    import json
    path = os.path.join(out_dir, "results.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no results.json in {out_dir!r}; run `hdc bench --out {out_dir}` first")
    with open(path, encoding="utf-8") as fh:
        res = json.load(fh)
    from .suite import evaluate_targets
    if res.get("config", {}).get("targets"):
        res["targets"] = evaluate_targets(res["cases"])
    write_json(res, path)
    files = res.get("plots", [])
    if plots:
        from .plots import write_plots
        files, _ = write_plots(res, out_dir)
    write_report(res, out_dir, files)
    res["files"] = ["results.json", "report.md", "readme_section.md", *files]
    res["out_dir"] = os.path.abspath(out_dir)
    return res
