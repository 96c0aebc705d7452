"""The library in multiprocessing pools (fork, forkserver, spawn) after the parent used every backend.

Numba's default OpenMP threading layer kills a child forked after a parallel region ran; hdc
depends on TBB (a fork-safe layer) and the C pool starts a forked child with an empty pool.
A hang fails the test through the timeout instead of hanging CI.
"""
import multiprocessing as mp
import pickle

import numpy as np
import pytest

import hdc
from proc_worker import every_backend

TIMEOUT = 120


@pytest.fixture(scope="module")
def parent_results():
    hdc.set_num_threads(2)  # parallel C and Numba kernels really run in the parent
    return every_backend(7)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_pool_after_parent_used_every_backend(parent_results, method):
    assert set(parent_results) == set(hdc.backends())
    with mp.get_context(method).Pool(2) as pool:
        got = pool.map_async(every_backend, [7, 7]).get(timeout=TIMEOUT)
    for result in got:
        assert result == parent_results


def test_numba_threading_layer_survives_fork(parent_results):
    import numba

    assert numba.threading_layer() in ("tbb", "workqueue")


def test_memory_pickles_through_a_pool(tmp_path):
    mem = hdc.AssociativeMemory(300)
    mem.add(hdc.random(20, 300, seed=0), labels=[f"item{i}" for i in range(20)])
    clone = pickle.loads(pickle.dumps(mem))
    assert clone.labels.tolist() == mem.labels.tolist() and bool((clone.vectors == mem.vectors).all())
    mem.save(tmp_path / "m.hdc")
    mapped = hdc.AssociativeMemory.load(tmp_path / "m.hdc", mmap=True)
    again = pickle.loads(pickle.dumps(mapped))
    np.testing.assert_array_equal(again.search(mem.vectors[3], k=1)[1], ["item3"])
