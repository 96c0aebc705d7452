"""Exact Hamming top-k: hdc.topk against faiss IndexBinaryFlat and torchhd's cleanup.

Both hdc and faiss search the same bits: the faiss codes are hdc's ``.words`` viewed as bytes
(``dim`` rounded up to whole words; the padding bits are zero on both sides, so distances are
equal). Every configuration checks that hdc's distances equal faiss's.

Run (the full grid of issue 3, about 10 minutes on 2 cores, 3 GB of RAM)::

    PYTHONPATH=. python benchmarks/search_vs_faiss.py --json search_vs_faiss.json

Quick look::

    PYTHONPATH=. python benchmarks/search_vs_faiss.py --dims 1024 --sizes 10000 --queries 1 16

Prints a Markdown table of medians (ms) and ratios (faiss time / hdc time: > 1 means hdc is
faster), then the mmap check: open a saved 1,000,000-vector memory with ``mmap=True`` and search
it without copying (``--mmap-check``).
"""
import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time

# faiss runs its threads with OpenMP. With the default (spinning) wait policy, on a shared busy
# 2-core machine its idle threads steal the cores from whatever runs next: measured here, 64-query
# faiss searches had a median of 132 ms (best 2.1 ms) against 3.9 ms with passive waiting. This
# helps faiss (hdc's C kernels use their own thread pool); pass OMP_WAIT_POLICY to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

import hdc  # noqa: E402

# torchhd materialises one byte per element and an (n, dim) comparison per query: only run it
# where one query's comparison stays below this many elements and the batch below the time cap.
TORCHHD_MAX_ELEMENTS = 1_100_000_000
TORCHHD_MAX_SECONDS = 10.0


def build_memory(n, dim, seed, chunk=65536):
    """``n`` random hypervectors, generated in chunks (no (n, dim) temporary)."""
    words = np.empty((n, (dim + 63) // 64), np.uint64)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        words[start:stop] = hdc.random(stop - start, dim, seed=seed * 1_000_003 + start // chunk).words
    return hdc.BinaryHV._wrap(words, dim)


def make_queries(memory, nq, seed):
    """Half noisy copies of stored vectors (10% of bits flipped), half fresh random vectors."""
    rng = np.random.default_rng(seed)
    dim = memory.dim
    picks = rng.integers(0, len(memory), size=nq)
    bits = memory[picks].to_bool()
    flips = rng.random(bits.shape) < 0.1
    bits ^= flips
    near = hdc.BinaryHV.from_bool(bits)
    far = hdc.random(nq, dim, seed=seed + 1)
    words = np.where((np.arange(nq) % 2 == 0)[:, None], near.words, far.words)
    return hdc.BinaryHV._wrap(np.ascontiguousarray(words), dim)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def compare(fns, min_reps=3, max_reps=25, budget=1.0):
    """Median seconds of each function over blocks of runs in A B B A order.

    Runs are grouped per function, not alternated call by call: worker threads spin for a while
    after a parallel region, so alternating single calls makes each library wait for the other's
    spinning threads (measured here while hdc still used OpenMP: 20 ms instead of 0.07 ms for 16
    queries at 10,000 x 256 bits).
    """
    names = list(fns)
    times = {name: [] for name in names}
    for order in (names, names[::-1]):
        for name in order:
            fns[name]()  # warm-up (JIT compilation, page faults, thread pools)
            spent = 0.0
            block = []
            while len(block) < max_reps // 2 and (len(block) < (min_reps + 1) // 2 or spent < budget / 2):
                dt, _ = timed(fns[name])
                block.append(dt)
                spent += dt
            times[name] += block
            time.sleep(0.01)  # let the other runtime's threads go back to sleep
    return {name: statistics.median(ts) for name, ts in times.items()}, min(len(t) for t in times.values())


def torchhd_too_big(n, dim):
    gb = n * dim / 1e9
    what = "out of memory" if 2 * gb > 8 else f"over the {TORCHHD_MAX_ELEMENTS / 1e9:.1f} GB cap"
    return f"skipped, {what}: {gb:.0f} GB as bools plus {gb:.0f} GB per query"


_torchhd_rate = [None]  # seconds per stored element of one torchhd cleanup, from the last run


def torchhd_cleanup_time(memory, queries, n_queries):
    """Median seconds of torchhd.cleanup over ``n_queries`` queries (one call per query).

    Returns ``(seconds, first result)`` or ``(None, reason)`` when skipped: a run whose estimate
    (from the last measured rate) exceeds TORCHHD_MAX_SECONDS is not started.
    """
    import torch
    import torchhd

    n, dim = len(memory), memory.dim
    if _torchhd_rate[0] is not None:
        estimate = _torchhd_rate[0] * n * dim * n_queries
        if estimate > TORCHHD_MAX_SECONDS:
            return None, f"skipped: ~{estimate:.0f} s (extrapolated from smaller runs)"
    tm = torch.empty((n, dim), dtype=torch.bool)
    for start in range(0, n, 65536):
        tm[start:start + 65536] = torch.from_numpy(memory[start:start + 65536].to_bool())
    tm = torchhd.BSCTensor(tm)
    tq = queries.to_torchhd()
    single, _ = timed(lambda: torchhd.cleanup(tq[0], tm))
    _torchhd_rate[0] = single / (n * dim)
    estimate = single * n_queries
    if estimate > TORCHHD_MAX_SECONDS:
        return None, f"skipped: ~{estimate:.0f} s ({single:.2f} s per query)"
    reps = 3 if estimate < 2 else 1
    runs = []
    for _ in range(reps):
        dt, out = timed(lambda: [torchhd.cleanup(tq[i], tm) for i in range(n_queries)])
        runs.append(dt)
    _torchhd_rate[0] = statistics.median(runs) / (n * dim * n_queries)
    first = hdc.BinaryHV.from_torchhd(out[0])[0]
    return statistics.median(runs), first


# The targets of issue 3 (k = 10, 2 threads): (dim, stored, queries) -> faiss time / hdc time
TARGETS = {(10_000, 200_000, 1): 1.0, (10_000, 200_000, 256): 2.5,
           (256, 1_000_000, 1): 1.0, (256, 1_000_000, 256): 1.0,
           (1024, 1_000_000, 1): 1.0, (1024, 1_000_000, 256): 1.0}


def run_grid(args):
    import faiss

    rows = []
    configs = [] if args.targets_only else [(dim, n, args.queries) for dim in args.dims for n in args.sizes]
    if args.targets_only:
        configs = [(dim, n, [nq]) for dim, n, nq in TARGETS]
    elif args.targets:
        for dim, n, nq in TARGETS:
            if not (dim in args.dims and n in args.sizes and nq in args.queries):
                configs.append((dim, n, [nq]))
    merged = {}
    for dim, n, qs in configs:
        merged.setdefault((dim, n), []).extend(q for q in qs if q not in merged.get((dim, n), []))
    for (dim, n), queries_list in sorted(merged.items()):
        gc.collect()
        t_build, memory = timed(lambda: build_memory(n, dim, seed=dim))
        index = faiss.IndexBinaryFlat(memory.n_words * 64)
        index.add(memory.words.view(np.uint8))
        for nq in sorted(queries_list):
            queries = make_queries(memory, nq, seed=nq + dim)
            q_codes = queries.words.view(np.uint8)
            k = min(args.k, n)
            medians, reps = compare({
                "hdc": lambda: hdc.topk(queries, memory, k),
                "faiss": lambda: index.search(q_codes, k),
            }, budget=args.budget)
            d_hdc, _ = hdc.topk(queries, memory, k)
            d_faiss, _ = index.search(q_codes, k)
            equal = bool(np.array_equal(d_hdc.astype(np.int64), d_faiss.astype(np.int64)))
            row = {"dim": dim, "n": n, "queries": nq, "k": k, "reps": reps,
                   "hdc_ms": medians["hdc"] * 1e3, "faiss_ms": medians["faiss"] * 1e3,
                   "speedup_vs_faiss": medians["faiss"] / medians["hdc"], "distances_equal": equal}
            if (dim, n, nq) in TARGETS:
                row["target"] = TARGETS[dim, n, nq]
                row["target_met"] = row["speedup_vs_faiss"] >= row["target"]
            if args.torchhd:
                cleanup, _ = compare({"hdc": lambda: hdc.topk(queries, memory, 1)}, budget=args.budget)
                row["hdc_cleanup_ms"] = cleanup["hdc"] * 1e3
                if n * dim > TORCHHD_MAX_ELEMENTS:
                    row["torchhd"] = torchhd_too_big(n, dim)
                else:
                    t_torch, info = torchhd_cleanup_time(memory, queries, nq)
                    if t_torch is None:
                        row["torchhd"] = info
                    else:
                        _, idx = hdc.topk(queries[0], memory, 1)
                        row["torchhd_cleanup_ms"] = t_torch * 1e3
                        row["speedup_vs_torchhd"] = t_torch / cleanup["hdc"]
                        row["torchhd_agrees"] = bool(info == memory[int(idx[0])])
            rows.append(row)
            print(format_row(row), flush=True)
        del index, memory
    return rows


def format_row(r):
    target = ""
    if "target" in r:
        target = f" ({'meets' if r['target_met'] else 'MISSES'} target {r['target']:.1f}x)"
    torch_part = ""
    if "torchhd_cleanup_ms" in r:
        torch_part = f"{r['hdc_cleanup_ms']:.2f} | {r['torchhd_cleanup_ms']:.1f} | {r['speedup_vs_torchhd']:.0f}x"
    elif "torchhd" in r:
        cleanup = f"{r['hdc_cleanup_ms']:.2f}" if "hdc_cleanup_ms" in r else "-"
        torch_part = f"{cleanup} | {r['torchhd']} | -"
    else:
        torch_part = "- | - | -"
    return (f"| {r['dim']:,} | {r['n']:,} | {r['queries']} | {r['hdc_ms']:.2f} | {r['faiss_ms']:.2f} | "
            f"{r['speedup_vs_faiss']:.2f}x{target} | {'yes' if r['distances_equal'] else 'NO'} | {torch_part} |")


HEADER = ("| dim | stored | queries | hdc topk k=10 (ms) | faiss (ms) | faiss / hdc | distances equal "
          "| hdc k=1 (ms) | torchhd cleanup (ms) | torchhd / hdc |\n"
          "|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|")


def threads_check(n=100_000, dim=1024, batches=8, nq=32, k=10):
    """Searches from several Python threads: the kernels release the GIL, so 2 Python threads
    (hdc.set_num_threads(1) each) should take about half the time of one thread doing all."""
    from concurrent.futures import ThreadPoolExecutor

    memory = build_memory(n, dim, seed=7)
    batches = [make_queries(memory, nq, seed=100 + b) for b in range(batches)]
    previous = hdc.get_num_threads()
    hdc.set_num_threads(1)
    try:
        backend = hdc.get_backend()

        def one(q):
            with hdc.use_backend(backend):
                return hdc.topk(q, memory, k)

        want = [one(q) for q in batches]
        serial = statistics.median(timed(lambda: [one(q) for q in batches])[0] for _ in range(3))
        with ThreadPoolExecutor(2) as pool:
            got = list(pool.map(one, batches))
            parallel = statistics.median(timed(lambda: list(pool.map(one, batches)))[0] for _ in range(3))
    finally:
        hdc.set_num_threads(previous)
    same = all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(want, got))
    return {"n": n, "dim": dim, "batches": len(batches), "queries_per_batch": nq,
            "one_thread_s": serial, "two_python_threads_s": parallel, "speedup": serial / parallel,
            "same_results": same}


def _rss_anon_gb():
    """Anonymous (not file-backed) resident memory of this process, GB; None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return None


def mmap_check(n, dim, k):
    """Save an n x dim memory, reopen it with mmap=True, search it; times and RSS growth."""
    memory = build_memory(n, dim, seed=99)
    mem = hdc.AssociativeMemory(dim)
    mem.add(memory)
    del memory
    queries = make_queries(mem.vectors, 16, seed=5)
    want = mem.search(queries, k=k)
    out = {"n": n, "dim": dim, "payload_gb": len(mem) * mem.vectors.n_words * 8 / 1e9}
    with tempfile.TemporaryDirectory(dir=os.environ.get("HDC_BENCH_TMP")) as tmp:
        path = os.path.join(tmp, "memory.hdcm")
        out["save_s"], _ = timed(lambda: mem.save(path))
        del mem
        gc.collect()
        anon0 = _rss_anon_gb()
        out["open_mmap_s"], mapped = timed(lambda: hdc.AssociativeMemory.load(path, mmap=True))
        out["first_search_incl_verify_s"], got = timed(lambda: mapped.search(queries, k=k))
        out["second_search_s"], got2 = timed(lambda: mapped.search(queries, k=k))
        out["same_results"] = all(np.array_equal(a, b) for a, b in zip(want + want, got + got2))
        out["words_are_the_mapping"] = bool(np.shares_memory(mapped.vectors.words,
                                                             np.frombuffer(mapped._source, np.uint8)))
        if anon0 is not None:  # private memory: stays flat when the search reads the mapping in place
            out["private_memory_growth_gb_after_mmap_searches"] = round(_rss_anon_gb() - anon0, 3)
        out["open_unverified_s"], _ = timed(lambda: hdc.AssociativeMemory.load(path, mmap=True, verify=False))
        del mapped, got, got2
        gc.collect()
        out["load_into_ram_s"], _ = timed(lambda: hdc.AssociativeMemory.load(path))
    return out


def report(result):
    """The Markdown table and mmap summary of a saved JSON result."""
    meta = result["meta"]
    lines = [f"hdc backend {meta['backend']}, {meta['threads']} threads for hdc, faiss {meta['faiss']} and "
             f"torch, k = {meta['k']}, OMP_WAIT_POLICY={meta.get('omp_wait_policy', 'unset')}", "", HEADER]
    lines += [format_row(r) for r in result["rows"]]
    if "load_average_at_start" in meta:
        lines += ["", f"Load average (1 min) during the run: {meta['load_average_at_start']:.1f} at the start, "
                      f"{meta['load_average_at_end']:.1f} at the end, on 2 cores (other jobs were running)."]
    check = result.get("mmap_check")
    if check:
        lines += ["", f"mmap check, {check['n']:,} x {check['dim']:,} bits ({check['payload_gb']:.2f} GB payload): "
                      f"save {check['save_s']:.2f} s; open with mmap=True {check['open_mmap_s'] * 1e3:.1f} ms; "
                      f"first search of 16 queries (k = {meta['k']}, includes the payload checksum pass) "
                      f"{check['first_search_incl_verify_s']:.2f} s, second {check['second_search_s']:.2f} s; "
                      f"results equal to the in-RAM memory's: {check['same_results']}; searched in place "
                      f"(no copy): {check['words_are_the_mapping']}"
                      + (f", private memory growth {check['private_memory_growth_gb_after_mmap_searches']:.3f} GB"
                         if "private_memory_growth_gb_after_mmap_searches" in check else "")
                      + f"; load into RAM instead {check['load_into_ram_s']:.2f} s."]
    check = result.get("threads_check")
    if check:
        lines += ["", f"Searches from Python threads ({check['batches']} batches of {check['queries_per_batch']} "
                      f"queries, {check['n']:,} x {check['dim']:,} bits, hdc.set_num_threads(1)): one thread "
                      f"{check['one_thread_s'] * 1e3:.0f} ms, two Python threads "
                      f"{check['two_python_threads_s'] * 1e3:.0f} ms "
                      f"({check['speedup']:.2f}x); same results: {check['same_results']}."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[256, 1024, 10_000])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, nargs="+", default=[1, 16, 256])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--backend", default=None, help="hdc backend (default: the fastest available)")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per configuration (min 3 runs)")
    parser.add_argument("--no-torchhd", dest="torchhd", action="store_false")
    parser.add_argument("--no-targets", dest="targets", action="store_false",
                        help="do not add the issue's target configurations (200,000 x 10,000 bits, ...)")
    parser.add_argument("--targets-only", action="store_true", help="run only the target configurations")
    parser.add_argument("--mmap-check", type=int, default=1_000_000, metavar="N",
                        help="vectors in the mmap check at dim 10,000 (0 to skip)")
    parser.add_argument("--no-threads-check", dest="threads_check", action="store_false",
                        help="skip timing searches from 2 Python threads against 1")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    parser.add_argument("--report", default=None, metavar="JSON",
                        help="only print the Markdown report of a saved result and exit")
    args = parser.parse_args(argv)
    if args.report:
        with open(args.report) as f:
            print(report(json.load(f)))
        return 0

    import faiss

    if args.backend:
        hdc.set_backend(args.backend)
    hdc.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        args.torchhd = False
    isa = ""
    if hdc.get_backend() == "c":
        isa = f", ISA {hdc.get_isa()}"
    meta = {"load_average_at_start": os.getloadavg()[0], "backend": hdc.get_backend() + isa,
            "threads": args.threads, "faiss": faiss.__version__,
            "cpu": platform.processor() or platform.machine(), "python": sys.version.split()[0],
            "numpy": np.__version__, "k": args.k}
    meta["omp_wait_policy"] = os.environ["OMP_WAIT_POLICY"]
    print(f"hdc backend {meta['backend']}, {args.threads} threads (hdc, faiss, torch), faiss "
          f"{faiss.__version__}, k = {args.k}, OMP_WAIT_POLICY={meta['omp_wait_policy']}; "
          "medians of runs in A B B A blocks")
    print(HEADER, flush=True)
    rows = run_grid(args)
    meta["load_average_at_end"] = os.getloadavg()[0]
    print(f"\nload average (1 min) at start {meta['load_average_at_start']:.1f}, at end "
          f"{meta['load_average_at_end']:.1f}, on {os.cpu_count()} cores")
    result = {"meta": meta, "rows": rows}
    if args.mmap_check:
        result["mmap_check"] = check = mmap_check(args.mmap_check, 10_000, args.k)
        print("\nmmap check:", json.dumps(check, indent=1))
    if args.threads_check:
        result["threads_check"] = check = threads_check()
        print("\nthreads check:", json.dumps(check, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    missed = [r for r in rows if r.get("target_met") is False]
    if missed:
        print(f"targets missed in {len(missed)} of {sum('target' in r for r in rows)} configurations")
    bad = [r for r in rows if not r["distances_equal"]]
    if bad:
        print(f"DISTANCE MISMATCH with faiss in {len(bad)} configurations", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
