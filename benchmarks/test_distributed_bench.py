"""pytest-benchmark cases of hdc.distributed: search fan-out overhead on a threaded local cluster.

    python -m pytest benchmarks/test_distributed_bench.py --benchmark-group-by=param:nq

Each group holds the in-process AssociativeMemory and a 2-shard ShardedMemory with the same
items (answers checked equal first); their difference is the fan-out overhead (target <= 2 ms per
batch of up to 1,024 queries on threads). The heavier targets (worker processes, 2.5 GB
throughput, memory-mapped memories beyond a worker's limit, 5 GB out of core) are in
benchmarks/distributed_bench.py.
"""
import distributed
import numpy as np
import pytest

import hdc
from hdc.distributed import ShardedMemory

N, DIM, K = 2_000, 10_000, 10


@pytest.fixture(scope="module")
def memories():
    items = hdc.random(N, DIM, seed=0)
    ref = hdc.AssociativeMemory(DIM)
    ref.add(items)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as client, \
            ShardedMemory(DIM, 2, client=client) as mem:
        mem.add(items)
        yield ref, mem


@pytest.mark.parametrize("nq", [1, 256, 1024])
@pytest.mark.parametrize("where", ["in-process", "sharded-threads"])
def test_search_fanout(benchmark, memories, nq, where):
    ref, mem = memories
    q = hdc.random(nq, DIM, seed=nq)
    want, got = ref.search(q, K), mem.search(q, K)
    assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])
    benchmark.group = f"search k={K}, {N} x {DIM} bits, {nq} queries"
    benchmark((ref if where == "in-process" else mem).search, q, K)
