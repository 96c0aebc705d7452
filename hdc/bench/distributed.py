"""Fan-out overhead of :class:`hdc.distributed.ShardedMemory` over one in-process memory.

``hdc bench --distributed`` runs :func:`run_distributed` and writes ``distributed.json`` and
``distributed.md`` to ``--out``. It starts local Dask clusters (threads, then worker processes),
so it is opt-in and not part of the default suite.

Method: the same items go into one :class:`hdc.AssociativeMemory` (kernels on all cores) and
into a ``ShardedMemory`` of ``shards`` shards (``cores // shards`` threads per worker); every
batch is checked to give identical answers, then both searches are timed interleaved, one call
each per round (:func:`hdc.bench.timing.time_interleaved`), and the overhead is the median of the
per-round differences (sharded minus in-process), so a burst of load that hits one round hits
both sides of its difference. Beside it, the CPU time per call (this process and the worker
processes, all threads, over ``rounds`` calls in a row) and its difference: the work the fan-out
adds, which other programs' load does not inflate the way it inflates wall time (CPU time is
counted in scheduler ticks, so take it from >= 30 rounds; it includes the cluster's background
work, such as heartbeats, for as long as the calls take). Targets (issue 15): <= 2 ms per batch
of up to 1,024 queries on a threaded local cluster, <= 5 ms on local worker processes.

Thread counts compared: the in-process memory runs the kernels on all cores
(``hdc.get_num_threads()``); worker processes run theirs on ``cores // shards`` threads each
(``HDC_NUM_THREADS``, applied by each shard), the same total. On the threaded cluster the shards
share this process's cores: shards searching at once each run the kernels on ``cores // shards``
threads (a per-thread cap, :func:`hdc.backend.thread_limit`), not all contending for the one C
thread pool. Every shard scans all queries against its own rows, which costs more than one scan
of all rows (its top-k heaps take more offers while they fill: measured, two 1,000-row searches
of 1,024 queries took 8-11% more CPU than one 2,000-row search, about 5% since the first tile
bounds the heaps): that is in the overhead too.

Python: ``hdc.bench.distributed.run_distributed("quick", out_dir=None)`` returns the results dict.
"""
import json
import os

import numpy as np

# per mode: items, dim, query batches, timed rounds
SIZES = {
    "smoke": {"n": 200, "dim": 1024, "batches": (1, 64), "rounds": 5},
    "quick": {"n": 2_000, "dim": 10_000, "batches": (1, 256, 1024), "rounds": 30},
    "full": {"n": 2_000, "dim": 10_000, "batches": (1, 256, 1024), "rounds": 100},
}
TARGET_MS = {"threads": 2.0, "processes": 5.0}
K = 10


def _random(n, dim, seed, block_size):
    import hdc

    if block_size is None:
        return hdc.random(n, dim, seed=seed)
    return hdc.random_sparse(n, dim // block_size, block_size, seed=seed)


def fill_memory(mem, n, dim, block_size, step=25_000):
    """Add ``n`` random items (seeded by position) to ``mem`` in batches of ``step``."""
    for start in range(0, n, step):
        mem.add(_random(min(step, n - start), dim, start, block_size))


def overhead(n, dim, batches, rounds, shards=2, processes=False, block_size=None, k=K):
    """Per batch size: in-process and sharded medians and the median per-round overhead (seconds).

    Shapes: ``n`` stored items of ``dim`` bits (``block_size``: sparse block codes of
    ``dim // block_size`` blocks); batches of ``nq`` queries, ``k`` nearest each.

    >>> rows = overhead(100, 256, (1, 8), rounds=3)
    >>> [r["queries"] for r in rows], all(r["identical"] for r in rows)
    ([1, 8], True)
    """
    import hdc
    from hdc.distributed import ShardedMemory

    from .timing import time_interleaved

    ref = hdc.AssociativeMemory(dim, block_size=block_size)
    fill_memory(ref, n, dim, block_size)
    threads = max(1, (os.cpu_count() or 1) // shards)
    rows = []
    with ShardedMemory(dim, shards, processes=processes, n_workers=shards, threads_per_worker=threads,
                       block_size=block_size) as mem:
        fill_memory(mem, n, dim, block_size)
        for nq in batches:
            q = _random(nq, dim, 10**6 + nq, block_size)
            (d1, l1), (d2, l2) = mem.search(q, k), ref.search(q, k)
            identical = bool(np.array_equal(d1, d2) and np.array_equal(l1, l2) and d1.dtype == d2.dtype)
            stats = time_interleaved({"in_process": lambda: ref.search(q, k), "sharded": lambda: mem.search(q, k)},
                                     repeats=rounds, min_sample_s=0.0, min_repeats=rounds)
            diff = np.subtract(stats["sharded"]["samples_s"], stats["in_process"]["samples_s"])
            q1, med, q3 = np.percentile(diff, [25, 50, 75])
            cpu_ref = _cpu_per_call(lambda: ref.search(q, k), rounds, [])
            cpu_mem = _cpu_per_call(lambda: mem.search(q, k), rounds, _worker_pids(mem))
            rows.append({"queries": nq, "identical": identical, "in_process_s": stats["in_process"]["median_s"],
                         "sharded_s": stats["sharded"]["median_s"], "overhead_s": float(med),
                         "overhead_iqr_s": float(q3 - q1), "rounds": len(diff),
                         "in_process_cpu_s": cpu_ref, "sharded_cpu_s": cpu_mem, "cpu_overhead_s": cpu_mem - cpu_ref})
    return rows


def _worker_pids(mem):
    """The pids of ``mem``'s cluster's worker processes, other than this process."""
    return sorted(set(mem.client.run(os.getpid).values()) - {os.getpid()})


def _cpu_per_call(fn, calls, pids):
    """CPU seconds per call of ``fn``, summed over this process and ``pids`` (all their threads):
    the work a call costs the machine, which load from other programs does not inflate the way
    it inflates wall time."""
    import psutil

    procs = [psutil.Process()] + [psutil.Process(p) for p in pids]

    def total():
        return sum(sum(p.cpu_times()[:2]) for p in procs)

    fn()
    start = total()
    for _ in range(calls):
        fn()
    return (total() - start) / calls


def render(res):
    lines = [f"# Distributed fan-out overhead ({res['mode']})", "", res["machine"], "",
             f"{res['n']:,} x {res['dim']:,} bits in {res['shards']} shards, k={K}; overhead = median over "
             f"{res['rounds']} interleaved rounds of (sharded - in-process).", "",
             "| cluster | queries | in-process | sharded | overhead (IQR) | target | CPU per call: in-process, sharded, "
             "overhead | identical |",
             "|---|---|---|---|---|---|---|---|"]
    for kind, rows in res["clusters"].items():
        for r in rows:
            met = "met" if r["overhead_s"] * 1e3 <= TARGET_MS[kind] else "NOT met"
            lines.append(f"| {kind} | {r['queries']} | {r['in_process_s'] * 1e3:.2f} ms | {r['sharded_s'] * 1e3:.2f} ms "
                         f"| {r['overhead_s'] * 1e3:.2f} ms ({r['overhead_iqr_s'] * 1e3:.2f}) | <= {TARGET_MS[kind]:g} ms "
                         f"({met}) | {r['in_process_cpu_s'] * 1e3:.2f}, {r['sharded_cpu_s'] * 1e3:.2f}, "
                         f"{r['cpu_overhead_s'] * 1e3:+.2f} ms | {r['identical']} |")
    return "\n".join(lines) + "\n"


def run_distributed(mode="quick", out_dir="hdc-bench", log=print):
    """Measure the overhead on a threaded local cluster and on local worker processes; returns
    the results dict (and writes ``distributed.json`` / ``distributed.md`` when ``out_dir``)."""
    import hdc

    if mode not in SIZES:
        raise ValueError(f"mode must be one of {sorted(SIZES)}, got {mode!r}")
    cfg = SIZES[mode]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    res = {"mode": mode, "n": cfg["n"], "dim": cfg["dim"], "shards": 2, "rounds": cfg["rounds"],
           "machine": f"backend {hdc.get_backend()}, SIMD path {hdc.get_isa()}, {os.cpu_count()} CPUs, "
                      f"load average {load:.2f} at the start", "clusters": {}}
    for kind in ("threads", "processes"):
        res["clusters"][kind] = overhead(cfg["n"], cfg["dim"], cfg["batches"], cfg["rounds"],
                                         processes=kind == "processes")
        if log is not None:
            for r in res["clusters"][kind]:
                log(f"  {kind:9s} {r['queries']:5d} queries: in-process {r['in_process_s'] * 1e3:7.2f} ms, "
                    f"sharded {r['sharded_s'] * 1e3:7.2f} ms, overhead {r['overhead_s'] * 1e3:6.2f} ms; CPU overhead "
                    f"{r['cpu_overhead_s'] * 1e3:+.2f} ms")
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "distributed.json"), "w") as f:
            json.dump(res, f, indent=1)
        with open(os.path.join(out_dir, "distributed.md"), "w") as f:
            f.write(render(res))
        res["files"] = ["distributed.json", "distributed.md"]
    return res
