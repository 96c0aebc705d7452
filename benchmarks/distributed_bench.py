"""Benchmarks of hdc.distributed (issue 15's targets). Each prints medians and same-run ratios.

    python benchmarks/distributed_bench.py overhead   [--n 20000 --dim 10000 --shards 2 --repeat 30]
                                                      [--block-size 1024: sparse block codes]
    python benchmarks/distributed_bench.py throughput [--n 2000000 --dim 10000 --batch 256 --repeat 3]
    python benchmarks/distributed_bench.py beyond     [--gb 3 --workers 4 --limit 1GB --dim 10000]
    python benchmarks/distributed_bench.py ooc        [--gb 5 --dim 10000 --chunk 20000]
    python benchmarks/distributed_bench.py threads    [--n 2000 --dim 10000 --batch 1024 --repeat 8]

overhead:   ShardedMemory.search minus AssociativeMemory.search of the same items, per batch of
            1, 256 and 1,024 queries, on a threaded local cluster and on local worker processes:
            the median of per-round differences, the two timed interleaved (hdc.bench.distributed,
            also run by `hdc bench --distributed`). Target: <= 2 ms (threads), <= 5 ms (processes). With --block-size L: sparse block codes
            of dim // L blocks (both memories built with block_size=L).
throughput: queries/s of 2 worker processes x 1 thread vs one in-process memory on 2 threads.
            Target: ratio >= 0.8.
beyond:     a memory larger than any worker's memory_limit, shards memory-mapped: exact answers,
            peak worker RSS; and loading it into RAM is refused.
ooc:        encode (RecordEncoder over a dask.array of features) and fit a CentroidClassifier on
            >= 5 GB of hypervectors' worth of input; peak RSS of this process, and the model equals
            an in-process fit on a sample of the same partitions (counts add up exactly).
threads:    2 worker processes of 1 thread, searches of --batch queries with the workers' kernels
            on 1 thread (what they run) vs 2 (what they ran before each shard applied
            HDC_NUM_THREADS), alternated blocks of 10 calls: wall and CPU (client + workers) per call.
"""
import argparse
import os
import resource
import shutil
import tempfile
import time

import numpy as np

import hdc
from hdc.bench.distributed import fill_memory


def _median_ms(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def overhead(args):
    """hdc.bench.distributed.overhead (what ``hdc bench --distributed`` runs), at these sizes."""
    from hdc.bench.distributed import K, TARGET_MS
    from hdc.bench.distributed import overhead as measure

    size = args.block_size
    what = "bits" if size is None else f"(sparse, block_size {size})"
    print(f"{args.n} x {args.dim} {what}, {args.shards} shards, k={K}, median over {args.repeat} interleaved "
          f"rounds; hdc isa {hdc.get_isa()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    for kind in ("threads", "processes"):
        for r in measure(args.n, args.dim, (1, 256, 1024), args.repeat, shards=args.shards,
                         processes=kind == "processes", block_size=size):
            assert r["identical"]
            print(f"  {kind:9s} {r['queries']:5d} queries: in-process {r['in_process_s'] * 1e3:8.2f} ms, sharded "
                  f"{r['sharded_s'] * 1e3:8.2f} ms, overhead {r['overhead_s'] * 1e3:7.2f} ms "
                  f"(IQR {r['overhead_iqr_s'] * 1e3:.2f}; target <= {TARGET_MS[kind]:g} ms); CPU per call "
                  f"{r['in_process_cpu_s'] * 1e3:.2f} / {r['sharded_cpu_s'] * 1e3:.2f} ms "
                  f"({r['cpu_overhead_s'] * 1e3:+.2f})")
    print(f"  load after: {os.getloadavg()[0]:.2f}")


def throughput(args):
    """Both set up at once and timed alternately, batch for batch: load on the shared machine hits both."""
    from hdc.distributed import ShardedMemory

    q = hdc.random(args.batch, args.dim, seed=1)
    hdc.set_num_threads(2)
    ref = hdc.AssociativeMemory(args.dim)
    fill_memory(ref, args.n, args.dim, None)
    with ShardedMemory(args.dim, 2, processes=True, n_workers=2, threads_per_worker=1,
                       memory_limit=0) as mem:
        fill_memory(mem, args.n, args.dim, None)
        got, want = mem.search(q, 10), ref.search(q, 10)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        t_ref, t_mem = [], []
        for _ in range(args.repeat):
            t_ref.append(_median_ms(lambda: ref.search(q, 10), 1))
            t_mem.append(_median_ms(lambda: mem.search(q, 10), 1))
    t_ref, t_mem = float(np.median(t_ref)), float(np.median(t_mem))
    print(f"{args.n} x {args.dim} bits ({args.n * args.dim / 8e9:.2f} GB), batches of {args.batch}, k=10, "
          f"median of {args.repeat} alternating pairs, isa {hdc.get_isa()}")
    print(f"  in-process, 2 threads:          {t_ref:9.1f} ms/batch  {1e3 * args.batch / t_ref:9.1f} queries/s")
    print(f"  2 worker processes x 1 thread:  {t_mem:9.1f} ms/batch  {1e3 * args.batch / t_mem:9.1f} queries/s")
    print(f"  ratio (sharded / in-process throughput): {t_ref / t_mem:.2f}")


def beyond(args):
    import distributed

    from hdc.distributed import ShardedMemory

    n = int(args.gb * 8e9 / args.dim)
    folder = tempfile.mkdtemp(prefix="hdc-beyond-", dir=args.dir)
    try:
        t = time.perf_counter()
        with ShardedMemory(args.dim, args.workers, processes=True, n_workers=2, threads_per_worker=1,
                           memory_limit=0) as mem:
            fill_memory(mem, n, args.dim, None)
            mem.save(folder)
        print(f"built and saved {n} x {args.dim} bits ({n * args.dim / 8e9:.2f} GB) in "
              f"{time.perf_counter() - t:.0f} s")
        q = hdc.random(64, args.dim, seed=7)
        with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                      memory_limit=args.limit, dashboard_address=":0") as cluster, \
                distributed.Client(cluster, set_as_default=False, direct_to_workers=True) as client:
            try:
                ShardedMemory.load(folder, client=client)
                print("  ERROR: loading into RAM was not refused")
            except ValueError as exc:
                print(f"  in RAM: refused: {exc}")
            with ShardedMemory.load(folder, client=client, mmap=True) as mem:
                t = time.perf_counter()
                d, lab = mem.search(q, 10)
                print(f"  memory-mapped on {args.workers} workers limited to {args.limit}: search of 64 queries "
                      f"{time.perf_counter() - t:.1f} s")
                rss = client.run(lambda: __import__("psutil").Process().memory_info().rss)
                print("  worker RSS after the search (MiB):", sorted(round(v / 2**20) for v in rss.values()))
        # the exact answer, one shard file at a time (never the whole memory in this process)
        import json
        manifest = json.load(open(os.path.join(folder, "manifest.json")))
        best_d = best_p = None
        for e in manifest["shards"]:
            part = hdc.AssociativeMemory.load(os.path.join(folder, e["file"]), mmap=True)
            pos = np.fromfile(os.path.join(folder, e["positions_file"]), "<i8")
            dd, ii = hdc.topk(q, part.vectors, 10)
            pp = pos[ii]
            if best_d is not None:
                dd, pp = np.concatenate([best_d, dd], 1), np.concatenate([best_p, pp], 1)
            order = np.lexsort((pp, dd), axis=1)[:, :10]
            best_d, best_p = np.take_along_axis(dd, order, 1), np.take_along_axis(pp, order, 1)
        exact = np.array_equal(best_d, d) and np.array_equal(best_p, lab)
        print(f"  answers equal the exact single-memory answer: {exact}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def ooc(args):
    import dask
    import dask.array as da

    n = int(args.gb * 8e9 / args.dim)
    features = 16
    X = da.random.default_rng(0).random((n, features), chunks=(args.chunk, features))
    y = (X[:, 0] * 4).astype(np.int64)
    enc = hdc.RecordEncoder(args.dim, n_features=features, levels=16, seed=0)
    clf = hdc.CentroidClassifier(args.dim, epochs=0)
    t = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=2):
        clf.fit(enc.encode(X), y)
    took = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"encoded and fitted {n} rows at dim {args.dim} ({n * args.dim / 8e9:.2f} GB of hypervectors) in "
          f"{took:.0f} s ({n / took:.0f} rows/s); peak RSS {peak:.0f} MiB")
    # the same model in process: partial_fit block by block (counts are sums, so equal to fit)
    t = time.perf_counter()
    ref = hdc.CentroidClassifier(args.dim)
    for b in X.to_delayed().ravel():
        xb = b.compute()
        ref.partial_fit(enc.encode(xb), (xb[:, 0] * 4).astype(np.int64))
    same = (clf.classes_.tolist() == ref.classes_.tolist() and np.array_equal(clf.counts_[0], ref.counts_[0])
            and np.array_equal(clf.prototypes_.words, ref.prototypes_.words))
    print(f"  in-process model (block by block, {time.perf_counter() - t:.0f} s) identical: {same}")


def _set_threads(n):
    hdc.set_num_threads(n)


def threads(args):
    import psutil

    from hdc.distributed import ShardedMemory

    q = hdc.random(args.batch, args.dim, seed=1)
    with ShardedMemory(args.dim, 2, processes=True, n_workers=2, threads_per_worker=1) as mem:
        fill_memory(mem, args.n, args.dim, None)
        procs = [psutil.Process()] + [psutil.Process(p) for p in mem.client.run(os.getpid).values()]
        wall, cpu = {1: [], 2: []}, {1: [], 2: []}
        for _ in range(args.repeat):
            for n in (1, 2):
                mem.client.run(_set_threads, n)
                mem.search(q, 10)
                c, t = sum(sum(p.cpu_times()[:2]) for p in procs), time.perf_counter()
                for _ in range(10):
                    mem.search(q, 10)
                wall[n].append((time.perf_counter() - t) * 100)
                cpu[n].append((sum(sum(p.cpu_times()[:2]) for p in procs) - c) * 100)
    print(f"{args.n} x {args.dim} bits in 2 worker processes of 1 thread, {args.batch} queries, k=10, median of "
          f"{args.repeat} alternated blocks of 10 calls; isa {hdc.get_isa()}, load {os.getloadavg()[0]:.2f}")
    for n in (1, 2):
        print(f"  worker kernels on {n} thread(s): {np.median(wall[n]):7.2f} ms wall, {np.median(cpu[n]):7.2f} ms CPU "
              "(client + workers) per call")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["overhead", "throughput", "beyond", "ooc", "threads"])
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--dim", type=int, default=10_000)
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeat", type=int, default=None)
    p.add_argument("--gb", type=float, default=None)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--limit", default="1GB")
    p.add_argument("--chunk", type=int, default=20_000)
    p.add_argument("--block-size", type=int, default=None, help="overhead: sparse block codes of this block size")
    p.add_argument("--dir", default=None, help="where 'beyond' writes its shard files (default: the temp dir)")
    args = p.parse_args()
    defaults = {"overhead": dict(n=2_000, repeat=50), "throughput": dict(n=2_000_000, repeat=3),
                "beyond": dict(gb=3.0), "ooc": dict(gb=5.0), "threads": dict(n=2_000, repeat=8)}[args.what]
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    globals()[args.what](args)


if __name__ == "__main__":
    main()
