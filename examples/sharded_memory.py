"""Scale-out with hdc.distributed: a sharded memory on a local cluster, save/load, out-of-core training.

    python examples/sharded_memory.py                 # 200,000 items at dim 2,048, 4 shards (~1 min)
    python examples/sharded_memory.py --n 10000000 --dim 256 --processes
    python examples/sharded_memory.py --scheduler tcp://host:8786 --dir /data/hdc-memory

With ``--scheduler`` it runs on an existing cluster; ``--dir`` must then be a path every worker
can write (each worker saves its own shards there, on its own disk; the manifest goes to the
same path on this machine).
"""
import argparse
import os
import tempfile
import time

import numpy as np

import hdc
from hdc.distributed import ShardedMemory


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200_000, help="items to store")
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--processes", action="store_true", help="local worker processes instead of threads")
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler (tcp://...)")
    p.add_argument("--dir", default=None, help="where to save the memory (default: a temporary folder)")
    args = p.parse_args()

    client = None
    if args.scheduler:
        from distributed import Client
        client = Client(args.scheduler)
    folder = args.dir or tempfile.mkdtemp(prefix="hdc-sharded-")

    # 1. a sharded memory: add in batches (each batch is cut into runs that fill the smallest shards)
    t = time.perf_counter()
    with ShardedMemory(args.dim, args.shards, client=client, processes=args.processes) as mem:
        step = 100_000
        for start in range(0, args.n, step):
            mem.add(hdc.random(min(step, args.n - start), args.dim, seed=start))
        print(f"stored {len(mem):,} x {args.dim} bits ({len(mem) * args.dim / 8e9:.2f} GB) in "
              f"{time.perf_counter() - t:.1f} s; shard sizes {mem.shard_sizes}")

        # 2. search: every shard answers its own top k, the coordinator merges on (distance, position)
        probe = np.array([0, args.n // 2, args.n - 1])
        items = hdc.BinaryHV.stack([hdc.random(min(step, args.n - s), args.dim, seed=s)[i - s]
                                    for i in probe.tolist() for s in [i // step * step]])
        queries = hdc.random(256, args.dim, seed=99)
        t = time.perf_counter()
        dist, labels = mem.search(queries, k=10)
        took = time.perf_counter() - t
        print(f"256 queries, k=10: {took * 1e3:.0f} ms ({256 / took:,.0f} queries/s)")
        d, lab = mem.search(items, k=1)
        print(f"stored items find themselves: labels {lab[:, 0].tolist()} (expected {probe.tolist()}), "
              f"distances {d[:, 0].tolist()}")

        # 3. persistence: one .hdcm file per shard and a manifest, written atomically
        mem.save(folder)
        print(f"saved to {folder}: {sorted(os.listdir(folder))[:3]} ...")

    # 4. load it back, memory-mapped from the workers' disks; the answers are the same
    with ShardedMemory.load(folder, client=client, mmap=True, processes=args.processes) as mem:
        d2, l2 = mem.search(queries, k=10)
        print(f"reloaded (mmap): same answers: {np.array_equal(d2, dist) and np.array_equal(l2, labels)}")

    # 5. out-of-core training: encode a dask.array of features per partition, fit by tree reduction
    import dask.array as da

    X = da.random.default_rng(0).random((100_000, 8), chunks=(10_000, 8))
    y = (X[:, 0] * 3).astype(int)
    enc = hdc.RecordEncoder(args.dim, n_features=8, levels=16, seed=0)
    clf = hdc.CentroidClassifier(args.dim, epochs=0).fit(enc.encode(X), y)   # majority prototypes: no retraining
    acc = float((clf.predict(enc.encode(X[:5000])) == y[:5000]).mean().compute())
    print(f"out-of-core fit on 100,000 rows in 10 partitions: classes {clf.classes_.tolist()}, "
          f"training accuracy on 5,000 rows {acc:.3f}")
    if client is not None:
        client.close()


if __name__ == "__main__":
    main()
