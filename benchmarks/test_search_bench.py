"""A quick pytest-benchmark subset of benchmarks/search_vs_faiss.py (the full grid lives there).

    python -m pytest benchmarks/test_search_bench.py --benchmark-group-by=param:case

Each case checks its answer against faiss IndexBinaryFlat (same codes: hdc's words as bytes)
before timing, so a fast wrong kernel fails instead of winning.
"""
import os

# faiss's OpenMP threads spinning on a shared busy 2-core machine stall the next call by
# milliseconds; see benchmarks/search_vs_faiss.py. Only effective if set before faiss loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import hdc  # noqa: E402


N = 20_000
K = 10
CASES = [(1024, 1), (1024, 64), (10_000, 1), (10_000, 64)]


def _data(dim, nq):
    memory = hdc.random(N, dim, seed=dim)
    queries = hdc.random(nq, dim, seed=dim + nq)
    index = faiss.IndexBinaryFlat(memory.n_words * 64)
    index.add(memory.words.view(np.uint8))
    return memory, queries, index


@pytest.mark.parametrize("case", [f"{d}x{q}" for d, q in CASES])
@pytest.mark.parametrize("library", ["hdc", "faiss"])
def test_topk(benchmark, case, library):
    dim, nq = map(int, case.split("x"))
    memory, queries, index = _data(dim, nq)
    codes = queries.words.view(np.uint8)
    d_hdc, _ = hdc.topk(queries, memory, K)
    d_faiss, _ = index.search(codes, K)
    np.testing.assert_array_equal(d_hdc, d_faiss.astype(np.int32))
    benchmark.group = f"topk k={K} {N} stored, dim x queries = {case}"
    if library == "hdc":
        benchmark(hdc.topk, queries, memory, K)
    else:
        benchmark(index.search, codes, K)


@pytest.mark.parametrize("library", ["hdc", "faiss"])
def test_within(benchmark, library):
    memory, queries, index = _data(1024, 16)
    radius = 470
    lims, dist, idx = hdc.within(queries, memory, radius, flat=True)
    f_lims, f_dist, f_idx = index.range_search(queries.words.view(np.uint8), radius + 1)  # faiss: < radius
    np.testing.assert_array_equal(lims, f_lims.astype(np.int64))
    for i in range(len(queries)):
        a, b = slice(lims[i], lims[i + 1]), slice(f_lims[i], f_lims[i + 1])
        assert sorted(zip(idx[a].tolist(), dist[a].tolist())) == sorted(zip(f_idx[b].tolist(), f_dist[b].tolist()))
    benchmark.group = "radius search, 20,000 x 1,024 bits, 16 queries"
    if library == "hdc":
        benchmark(hdc.within, queries, memory, radius, flat=True)
    else:
        benchmark(index.range_search, queries.words.view(np.uint8), radius + 1)


def test_memory_search_mmap(benchmark, tmp_path):
    mem = hdc.AssociativeMemory(10_000)
    mem.add(hdc.random(N, 10_000, seed=1))
    mem.save(tmp_path / "m.hdcm")
    mapped = hdc.AssociativeMemory.load(tmp_path / "m.hdcm", mmap=True)
    queries = hdc.random(16, 10_000, seed=2)
    mapped.verify()
    benchmark.group = "AssociativeMemory"
    benchmark(mapped.search, queries, K)


def test_memory_open_mmap(benchmark, tmp_path):
    mem = hdc.AssociativeMemory(10_000)
    mem.add(hdc.random(N, 10_000, seed=1))
    mem.save(tmp_path / "m.hdcm")
    benchmark.group = "AssociativeMemory"
    benchmark(hdc.AssociativeMemory.load, tmp_path / "m.hdcm", mmap=True)


def test_torchhd_cleanup_single_query(benchmark):
    import torchhd

    memory = hdc.random(N // 2, 1024, seed=3)
    query = hdc.random(1, 1024, seed=4)
    tm, tq = memory.to_torchhd(), query.to_torchhd()[0]
    _, idx = hdc.topk(query[0], memory, 1)
    assert bool(hdc.BinaryHV.from_torchhd(torchhd.cleanup(tq, tm))[0] == memory[int(idx[0])])
    benchmark.group = "cleanup, 10,000 x 1,024 bits, 1 query"
    benchmark(torchhd.cleanup, tq, tm)


def test_hdc_cleanup_single_query(benchmark):
    mem = hdc.AssociativeMemory(1024)
    mem.add(hdc.random(N // 2, 1024, seed=3))
    query = hdc.random(1, 1024, seed=4)[0]
    benchmark.group = "cleanup, 10,000 x 1,024 bits, 1 query"
    benchmark(mem.cleanup, query)
