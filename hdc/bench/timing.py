"""Timing: interleaved repeated runs, medians and interquartile ranges.

Implementations compared in one case are timed round-robin (A, B, C, A, B, C, ...), so a burst
of load from other processes hits all of them alike, and ratios come from same-run medians.

>>> from hdc.bench.timing import time_interleaved
>>> stats = time_interleaved({"sum": lambda: sum(range(1000))}, repeats=3, min_sample_s=0.001)
>>> stats["sum"]["n"], stats["sum"]["median_s"] > 0
(3, True)
"""
import gc
import time

import numpy as np


def summarize(per_call):
    """Median, quartiles and IQR (seconds per call) of a list of per-call times."""
    t = np.asarray(per_call, dtype=np.float64)
    q1, med, q3 = np.percentile(t, [25, 50, 75])
    return {"median_s": float(med), "q1_s": float(q1), "q3_s": float(q3), "iqr_s": float(q3 - q1),
            "min_s": float(t.min()), "n": int(t.size), "samples_s": [float(x) for x in t]}


def _timed(fn, inner):
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) / inner


def time_interleaved(fns, repeats=5, min_sample_s=0.02, budget_s=None, min_repeats=3, first_times=None,
                     settle_s=0.0):
    """Time each zero-argument callable in ``fns`` (name -> fn), interleaved over ``repeats`` rounds.

    Each sample loops a callable ``inner`` times so that one sample lasts about ``min_sample_s``
    (calibrated from the warm-up call, which also absorbs JIT compilation and first-touch page
    faults). A callable whose ``repeats`` samples would exceed ``budget_s`` seconds gets fewer
    rounds, never fewer than ``min_repeats``. Returns name -> :func:`summarize` dict plus
    ``inner``; a callable that raises gets ``{"error": exc}`` and is dropped from later rounds.
    ``first_times`` (name -> seconds), when given, is filled with the calibration call times.
    ``settle_s``: idle seconds before each sample: the thread teams of OpenBLAS, OpenMP and hdc
    spin-wait after a call (OpenBLAS about 0.1 s) and would take the cores from the next callable.
    """
    inner, limit, out, live = {}, {}, {}, dict(fns)
    for name, fn in fns.items():
        try:
            t = _timed(fn, 1)
            if t < 0.25:  # the first call may compile or fault pages in: calibrate on a second one
                t = _timed(fn, 1)
        except Exception as exc:  # noqa: BLE001 - reported per implementation by the caller
            out[name] = {"error": exc}
            live.pop(name)
            continue
        if first_times is not None:
            first_times[name] = t
        inner[name] = max(1, min(10_000, int(min_sample_s / max(t, 1e-9))))
        sample_s = max(t * inner[name], 1e-9)
        limit[name] = repeats if budget_s is None else max(min(repeats, min_repeats),
                                                           min(repeats, int(budget_s / sample_s)))
    samples = {name: [] for name in live}
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            for name, fn in list(live.items()):
                if len(samples[name]) >= limit[name]:
                    continue
                if settle_s > 0:
                    time.sleep(settle_s)
                try:
                    samples[name].append(_timed(fn, inner[name]))
                except Exception as exc:  # noqa: BLE001
                    out[name] = {"error": exc}
                    live.pop(name)
    finally:
        if gc_was_enabled:
            gc.enable()
    for name in live:
        out[name] = {**summarize(samples[name]), "inner": inner[name]}
    return out
