"""Shared helpers of the experiments: argument checks, seeding, summaries over seeds, progress
bars, running independent jobs in worker processes and output (``NAME.json``, ``NAME.md`` and
PNG plots in one folder)."""
import concurrent.futures
import contextlib
import json
import math
import multiprocessing
import os
import pathlib
import platform
import resource
import sys
import time

import numpy as np

from .._validate import check_int

__all__ = ["check_seeds", "check_fractions", "check_workers", "run_jobs", "prepare_out", "summarize", "fmt",
           "progress_bar", "write_outputs", "figure", "Timer", "use_one_torch_thread", "environment", "md_table",
           "md_header"]


def check_seeds(seeds):
    """``seeds`` as an int >= 1 (the number of seeds, 0 .. seeds-1)."""
    return check_int(seeds, "seeds", low=1)


def check_workers(workers):
    """``workers`` as an int >= 1; None is the number of cores this process may run on."""
    if workers is None:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return check_int(workers, "workers", low=1)


def run_jobs(fn, jobs, workers=1, bar=None, describe=str):
    """``[fn(*job) for job in jobs]``, in that order, over ``workers`` processes.

    Every job must be seeded on its own (each experiment's jobs reseed torch and NumPy), so the
    results do not depend on ``workers``. With ``workers > 1`` the jobs run in spawned processes
    (one torch thread each; ``fn`` must be a module-level function), started in the order given,
    so list the longest jobs first. ``bar`` (a :func:`progress_bar`) advances as each job ends,
    its postfix ``describe(job)``.

    >>> run_jobs(pow, [(2, 3), (3, 2)])
    [8, 9]
    """
    jobs = [tuple(job) for job in jobs]
    results = [None] * len(jobs)

    def done(i, value):
        results[i] = value
        if bar is not None:
            bar.set_postfix_str(describe(jobs[i]))
            bar.update(1)

    if workers <= 1 or len(jobs) <= 1:
        for i, job in enumerate(jobs):
            done(i, fn(*job))
        return results
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context,
                                                initializer=use_one_torch_thread) as pool:
        futures = {pool.submit(fn, *job): i for i, job in enumerate(jobs)}
        for future in concurrent.futures.as_completed(futures):
            done(futures[future], future.result())
    return results


def check_fractions(fractions, name="fractions"):
    """A sorted tuple of distinct floats in [0, 1]."""
    try:
        values = [float(f) for f in fractions]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers in [0, 1], got {fractions!r}") from None
    if not values:
        raise ValueError(f"{name} must not be empty")
    bad = [v for v in values if not (math.isfinite(v) and 0.0 <= v <= 1.0)]
    if bad:
        raise ValueError(f"{name} must lie in [0, 1], got {bad}")
    return tuple(sorted(set(values)))


def prepare_out(out, force=False):
    """``out`` as a Path (None stays None); error if it exists, is not empty and ``force`` is off."""
    if out is None:
        return None
    path = pathlib.Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"out must be a directory, but {str(path)!r} is a file")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise ValueError(f"out directory {str(path)!r} exists and is not empty; "
                         "choose another one or pass force=True (--force) to overwrite")
    return path


def summarize(values):
    """``{"mean", "std", "min", "max", "n"}`` over seeds (sample std, 0 for one seed)."""
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "n": int(len(v))}


def fmt(summary, digits=3):
    """``mean ± std`` of a :func:`summarize` dict (just the mean for one seed)."""
    if summary is None:
        return "pending"
    if summary["n"] == 1:
        return f"{summary['mean']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} ± {summary['std']:.{digits}f}"


def progress_bar(total, desc, enabled=True):
    """A tqdm bar on stderr (a no-op object when ``enabled`` is off)."""
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, disable=not enabled, dynamic_ncols=True, file=sys.stderr)


def use_one_torch_thread():
    """Run torch on one thread: these models are small, and on a busy machine a second thread that
    waits for a core made training 40x slower (measured: 0.9 s vs 43 s for the same MLP)."""
    import torch
    torch.set_num_threads(1)


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` (wall) and ``t.cpu_seconds`` (this process, all
    threads, plus the worker processes of :func:`run_jobs` that ended inside the block)."""

    def __enter__(self):
        self.start, self.cpu_start = time.perf_counter(), self._cpu()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = self._cpu() - self.cpu_start

    @staticmethod
    def _cpu():
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime


def environment():
    """Where a result came from: versions, CPU and the hdc backend / SIMD path."""
    import hdc
    env = {"python": platform.python_version(), "numpy": np.__version__, "hdc": hdc.__version__,
           "machine": platform.machine(), "processor": platform.processor() or None,
           "backend": hdc.get_backend()}
    with contextlib.suppress(Exception):
        env["isa"] = hdc.get_isa()
    if "torch" in sys.modules:
        env["torch"] = sys.modules["torch"].__version__
        env["torch_threads"] = sys.modules["torch"].get_num_threads()
    return env


@contextlib.contextmanager
def figure(path, ncols=1, nrows=1, size=(5.0, 3.6)):
    """A matplotlib (Agg) figure with ``nrows x ncols`` axes, saved to ``path`` (PNG) on exit."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    try:
        yield fig, axes.ravel()
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


def write_outputs(result, out, markdown, plot):
    """Write ``NAME.json``, ``NAME.md`` (``markdown(result)``) and the PNGs of ``plot(result, out)``.

    Returns the written paths; ``out=None`` writes nothing.
    """
    if out is None:
        return []
    out.mkdir(parents=True, exist_ok=True)
    name = result["experiment"]
    paths = [out / f"{name}.json", out / f"{name}.md"]
    paths[0].write_text(json.dumps(result, indent=1, default=_json_default) + "\n")
    pngs = plot(result, out)
    result_md = markdown(result)
    images = "".join(f"\n![{p.stem}]({p.name})\n" for p in pngs)
    paths[1].write_text(result_md + images)
    return paths + list(pngs)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def md_table(header, rows):
    """A Markdown table from a header list and row lists (cells already strings)."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def md_header(result):
    """Title, command line and run facts shared by every experiment's Markdown."""
    env = result["environment"]
    return (f"# hdc experiment {result['experiment']}{' (quick)' if result['quick'] else ''}\n\n"
            f"Reproduce: `{result['command']}`\n\n"
            f"Seeds: {result['seeds']} (mean ± sample std over seeds); run time "
            f"{result['seconds']:.0f} s wall, {result['cpu_seconds']:.0f} s CPU; hdc backend {env['backend']}"
            f"{' / ' + str(env.get('isa')) if env.get('isa') else ''}, torch threads "
            f"{env.get('torch_threads', '-')}, {result.get('workers', 1)} worker process(es).\n")


def resolve_sizes(table, quick, sizes):
    """``table[quick]`` with the overrides in ``sizes`` (a dict with keys of that table, or None)."""
    base = dict(table[bool(quick)])
    if sizes is None:
        return base
    if not isinstance(sizes, dict):
        raise TypeError(f"sizes must be a dict of overrides, got {type(sizes).__name__}")
    unknown = sorted(set(sizes) - set(base))
    if unknown:
        raise ValueError(f"sizes has unknown keys {unknown}; expected some of {sorted(base)}")
    return {**base, **sizes}
