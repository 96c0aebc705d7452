"""hdc.within (radius search): exact, nearest first, ties by index, on every backend and path."""
import threading

import numpy as np
import pytest

import hdc
from hdc import search


def naive_within(q_bits, m_bits, radius):
    """Per query: (distances, indices) from unpacked bools, sorted by (distance, index)."""
    d = (q_bits[:, None, :] != m_bits[None, :, :]).sum(-1)
    out = []
    for row in d:
        idx = np.flatnonzero(row <= radius)
        order = np.lexsort((idx, row[idx]))
        out.append((row[idx][order], idx[order]))
    return out


def tied_memory(rng, n, dim):
    """A memory with many exact duplicates and near-duplicates, so ties are everywhere."""
    base = rng.integers(0, 2, size=(max(1, n // 4), dim)).astype(bool)
    bits = base[rng.integers(0, len(base), size=n)]
    flip = rng.random((n, dim)) < 0.02
    bits = bits ^ (flip & (rng.random(n) < 0.5)[:, None])
    return bits


@pytest.mark.parametrize("dim", [1, 63, 65, 256, 1000])
@pytest.mark.parametrize("n", [1, 7, 130])
def test_within_matches_naive(kernel_path, rng, dim, n):
    m_bits = tied_memory(rng, n, dim)
    q_bits = np.concatenate([m_bits[: min(3, n)], rng.integers(0, 2, size=(4, dim)).astype(bool)])
    mem, queries = hdc.BinaryHV.from_bool(m_bits), hdc.BinaryHV.from_bool(q_bits)
    for radius in (0, dim // 10, dim // 2, dim):
        want = naive_within(q_bits, m_bits, radius)
        dists, idxs = hdc.within(queries, mem, radius)
        assert dists.dtype == object and len(dists) == len(q_bits) == len(idxs)
        for i, (wd, wi) in enumerate(want):
            assert dists[i].dtype == np.int32 and idxs[i].dtype == np.int64
            np.testing.assert_array_equal(dists[i], wd)
            np.testing.assert_array_equal(idxs[i], wi)
        lims, fd, fi = hdc.within(queries, mem, radius, flat=True)
        assert lims.dtype == np.int64 and lims.shape == (len(q_bits) + 1,) and lims[0] == 0
        np.testing.assert_array_equal(fd, np.concatenate([w[0] for w in want]))
        np.testing.assert_array_equal(fi, np.concatenate([w[1] for w in want]))
        np.testing.assert_array_equal(np.diff(lims), [len(w[1]) for w in want])


def test_within_radius_is_inclusive_and_agrees_with_topk(rng):
    mem = hdc.random(500, 512, seed=3)
    q = hdc.random(5, 512, seed=4)
    d, i = hdc.topk(q, mem, 20)
    for row in range(5):
        radius = int(d[row, 9])  # the 10th nearest distance: everything at it is included
        wd, wi = hdc.within(q[row], mem, radius)
        assert wd[-1] == radius and len(wd) >= 10
        np.testing.assert_array_equal(wi[:10], i[row, :10])
        np.testing.assert_array_equal(wd[:10], d[row, :10])
        assert hdc.within(q[row], mem, radius - 1)[0].max(initial=0) < radius


def test_within_blocks_and_query_chunks(monkeypatch, rng):
    """Tiny blocks and query chunks: results must not depend on how the work is split."""
    m_bits = tied_memory(rng, 300, 130)
    q_bits = rng.integers(0, 2, size=(37, 130)).astype(bool)
    mem, queries = hdc.BinaryHV.from_bool(m_bits), hdc.BinaryHV.from_bool(q_bits)
    whole = hdc.within(queries, mem, 60, flat=True)
    monkeypatch.setattr(search, "_BLOCK_BYTES", 4 * 5 * 7)
    monkeypatch.setattr(search, "_MIN_BLOCK_ROWS", 1)
    monkeypatch.setattr(search, "_QUERY_CHUNK", 5)
    assert search._block_rows(5, 300) == 7
    split = hdc.within(queries, mem, 60, flat=True)
    for a, b in zip(whole, split):
        np.testing.assert_array_equal(a, b)
    want = naive_within(q_bits, m_bits, 60)
    np.testing.assert_array_equal(split[2], np.concatenate([w[1] for w in want]))


def test_within_single_query_and_empty_inputs():
    mem = hdc.random(50, 100, seed=0)
    d, i = hdc.within(mem[7], mem, 0)
    assert d.tolist() == [0] and i.tolist() == [7]
    d, i = hdc.within(mem[:0], mem, 10)
    assert len(d) == 0 and len(i) == 0
    lims, d, i = hdc.within(mem[:2], mem[:0], 100, flat=True)
    assert lims.tolist() == [0, 0, 0] and d.size == 0 and i.size == 0
    d, i = hdc.within(mem[:2], mem[:0], 100)
    assert [x.size for x in d] == [0, 0] and [x.size for x in i] == [0, 0]


def test_within_errors():
    mem = hdc.random(10, 64, seed=0)
    with pytest.raises(ValueError, match="radius"):
        hdc.within(mem, mem, -1)
    with pytest.raises(TypeError, match="radius"):
        hdc.within(mem, mem, 2.5)
    with pytest.raises(ValueError, match="same dim"):
        hdc.within(mem, hdc.random(3, 65, seed=0), 3)
    with pytest.raises(TypeError, match="queries"):
        hdc.within(mem.words, mem, 3)
    with pytest.raises(ValueError, match="memory must be a 1-D batch"):
        hdc.within(mem, mem[0], 3)
    with pytest.raises(ValueError, match="queries must be a 1-D batch"):
        hdc.within(mem.reshape(2, 5), mem, 3)


def test_searches_from_threads_agree(kernel_path):
    """Concurrent within/topk from several Python threads give the single-threaded answers."""
    mem = hdc.random(3000, 640, seed=5)
    queries = [hdc.random(8, 640, seed=10 + t) for t in range(4)]
    want = [(hdc.within(q, mem, 290, flat=True), hdc.topk(q, mem, 5)) for q in queries]
    got = [None] * len(queries)
    errors = []

    def work(t):
        try:
            for _ in range(3):
                got[t] = (hdc.within(queries[t], mem, 290, flat=True), hdc.topk(queries[t], mem, 5))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    # use_backend is per thread: start the workers inside the same backend choice
    name = hdc.get_backend()

    def run(t):
        with hdc.use_backend(name):
            work(t)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(len(queries))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for (w_range, w_top), (g_range, g_top) in zip(want, got):
        for a, b in zip(w_range + w_top, g_range + g_top):
            np.testing.assert_array_equal(a, b)


def test_within_memory_is_bounded():
    """Beyond inputs and matches, within holds one bounded block, not (queries x memory) distances."""
    import tracemalloc

    mem = hdc.random(200_000, 256, seed=7)
    queries = mem[np.arange(0, 64 * 1000, 1000)]
    full = len(queries) * len(mem) * 4                   # what an all-pairs distance matrix takes
    tracemalloc.start()
    lims, d, i = hdc.within(queries, mem, 20, flat=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.array_equal(i[lims[:-1]], np.arange(0, 64 * 1000, 1000))
    assert peak < search._BLOCK_BYTES * 3 < full // 10, peak
