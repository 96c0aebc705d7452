"""Numba kernels of the search family: cdist and topk.

- cdist / topk: memory rows in cache-sized tiles; eight queries share each row load. Short rows
  (dim <= 1024) against several queries go word-major instead: one vector lane per stored row.
- topk: a bounded max-heap of ``k`` per query and thread (threshold test, then sift); per-thread
  heaps cover contiguous row ranges and are merged by (distance, index).
"""
import numba
import numpy as np

from ...primitives import _ctpop64, hamming_row, jit
from .. import EMPTY_DISTANCE
from .._numba_threads import ParallelCall, chunk_bounds, get_num_threads, parallel

# Queries processed together against each memory row load.
_QB = 8
# Empty heap slot: larger than any int32 distance.
_EMPTY = np.int64(1) << np.int64(32)


def _tile_rows(n_words):
    """Memory rows per tile: about 128 KiB, so a tile stays in L2 while queries stream past it."""
    return max(16, min(1024, (128 * 1024) // (8 * max(1, n_words))))


# Rows of at most this many words are compared word-major (vectorised across stored rows).
_SHORT_WORDS = 16


def _layout(n_words, n_queries):
    """(transposed, tile rows) for comparing ``n_queries`` queries with stored rows.

    Short rows (dim <= 1024) against several queries go word-major: a tile of stored rows is
    transposed once (16 KiB, stays in L1) and every query sweeps it with one vector lane per row.
    Long rows go row-major, eight queries sharing each row load.
    """
    if n_words <= _SHORT_WORDS and n_queries >= 8:
        return True, max(64, min(1024, 2048 // n_words))
    return False, _tile_rows(n_words)


# ---- all pairs --------------------------------------------------------------------------------

@jit
def _dist_block(q, q0, q1, m, j0, j1, out, row0, col0):
    """``out[i - row0, j - col0] = hamming(q[i], m[j])`` for i in [q0, q1), j in [j0, j1).

    Eight (then four) queries at a time share each load of a memory row.
    """
    n_words = q.shape[1]
    i = q0
    while i + 8 <= q1:
        a0, a1, a2, a3 = q[i], q[i + 1], q[i + 2], q[i + 3]
        a4, a5, a6, a7 = q[i + 4], q[i + 5], q[i + 6], q[i + 7]
        r = i - row0
        for j in range(j0, j1):
            row = m[j]
            s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0
            for w in range(n_words):
                v = row[w]
                s0 += _ctpop64(a0[w] ^ v)
                s1 += _ctpop64(a1[w] ^ v)
                s2 += _ctpop64(a2[w] ^ v)
                s3 += _ctpop64(a3[w] ^ v)
                s4 += _ctpop64(a4[w] ^ v)
                s5 += _ctpop64(a5[w] ^ v)
                s6 += _ctpop64(a6[w] ^ v)
                s7 += _ctpop64(a7[w] ^ v)
            c = j - col0
            out[r, c] = s0
            out[r + 1, c] = s1
            out[r + 2, c] = s2
            out[r + 3, c] = s3
            out[r + 4, c] = s4
            out[r + 5, c] = s5
            out[r + 6, c] = s6
            out[r + 7, c] = s7
        i += 8
    if i + 4 <= q1:
        a0, a1, a2, a3 = q[i], q[i + 1], q[i + 2], q[i + 3]
        r = i - row0
        for j in range(j0, j1):
            row = m[j]
            s0 = s1 = s2 = s3 = 0
            for w in range(n_words):
                v = row[w]
                s0 += _ctpop64(a0[w] ^ v)
                s1 += _ctpop64(a1[w] ^ v)
                s2 += _ctpop64(a2[w] ^ v)
                s3 += _ctpop64(a3[w] ^ v)
            c = j - col0
            out[r, c] = s0
            out[r + 1, c] = s1
            out[r + 2, c] = s2
            out[r + 3, c] = s3
        i += 4
    while i < q1:
        a0 = q[i]
        for j in range(j0, j1):
            out[i - row0, j - col0] = hamming_row(a0, m[j])
        i += 1


@jit
def _transpose_tile(m, j0, j1, mt):
    """``mt[w, j - j0] = m[j, w]``: a tile of stored rows, word-major."""
    for jj in range(j1 - j0):
        row = m[j0 + jj]
        for w in range(m.shape[1]):
            mt[w, jj] = row[w]


@jit
def _dist_rows_t(qi, mt, nj, out):
    """``out[j] = hamming(qi, stored row j)`` for j < nj of a word-major tile: vectorised across
    rows, so short rows need no horizontal sums."""
    for jj in range(nj):
        out[jj] = 0
    for w in range(mt.shape[0]):
        qw = qi[w]
        mw = mt[w]
        for jj in range(nj):
            out[jj] += _ctpop64(mw[jj] ^ qw)


@jit
def _dist_block_t(q, q0, q1, mt, nj, out, row0, col0):
    """``out[i - row0, col0 + j] = hamming(q[i], tile row j)`` for i in [q0, q1), j < nj."""
    for i in range(q0, q1):
        _dist_rows_t(q[i], mt, nj, out[i - row0, col0:col0 + nj])


@jit
def _cdist_range(a, b, out, q_lo, q_hi, j_lo, j_hi, tile, transposed):
    """cdist for queries [q_lo, q_hi) against rows [j_lo, j_hi), one memory tile at a time."""
    mt = np.empty((b.shape[1], tile if transposed else 0), np.uint64)
    for j0 in range(j_lo, j_hi, tile):
        j1 = min(j_hi, j0 + tile)
        if transposed:
            _transpose_tile(b, j0, j1, mt)
            _dist_block_t(a, q_lo, q_hi, mt, j1 - j0, out, 0, j0)
        else:
            _dist_block(a, q_lo, q_hi, b, j0, j1, out, 0, 0)


@jit(parallel=True)
def _cdist_parallel(a, b, out, bounds, split_rows, tile, transposed):
    for c in numba.prange(bounds.shape[0] - 1):
        if split_rows:
            _cdist_range(a, b, out, 0, a.shape[0], bounds[c], bounds[c + 1], tile, transposed)
        else:
            _cdist_range(a, b, out, bounds[c], bounds[c + 1], 0, b.shape[0], tile, transposed)


def cdist(a, b, out):
    n_a, n_b = a.shape[0], b.shape[0]
    transposed, tile = _layout(a.shape[1], n_a)
    if parallel(n_a * n_b * a.shape[1]):
        # split the stored rows when there are enough of them, else the queries
        split_rows = n_b >= 16 * get_num_threads() or n_b >= n_a
        n = n_b if split_rows else n_a
        with ParallelCall():
            bounds = chunk_bounds(n, min(get_num_threads(), n))
            _cdist_parallel(a, b, out, bounds, split_rows, tile, transposed)
    else:
        _cdist_range(a, b, out, 0, n_a, 0, n_b, tile, transposed)


# ---- top-k ------------------------------------------------------------------------------------

@jit
def _sift_down(hd, hi, start, end):
    """Restore the max-heap (ordered by (distance, index)) of hd/hi[:end] below ``start``."""
    pos = start
    d = hd[pos]
    ix = hi[pos]
    while True:
        child = 2 * pos + 1
        if child >= end:
            break
        right = child + 1
        if right < end and (hd[right] > hd[child] or (hd[right] == hd[child] and hi[right] > hi[child])):
            child = right
        if hd[child] > d or (hd[child] == d and hi[child] > ix):
            hd[pos] = hd[child]
            hi[pos] = hi[child]
            pos = child
        else:
            break
    hd[pos] = d
    hi[pos] = ix


@jit
def _topk_range(q, m, q_lo, q_hi, j_lo, j_hi, vis, hd, hi, tile, transposed):
    """Push rows [j_lo, j_hi) into the heaps hd/hi (n_q, k) of queries [q_lo, q_hi).

    Rows arrive in increasing index order, so a row enters a full heap only when its distance is
    strictly below the worst kept one (its index is larger than every index already seen).
    """
    buf = np.empty((_QB, tile), np.int32)
    mt = np.empty((m.shape[1], tile if transposed else 0), np.uint64)
    k = hd.shape[1]
    for j0 in range(j_lo, j_hi, tile):
        j1 = min(j_hi, j0 + tile)
        if transposed:
            _transpose_tile(m, j0, j1, mt)
        for i0 in range(q_lo, q_hi, _QB):
            i1 = min(q_hi, i0 + _QB)
            # rows no query of this block can see are not compared at all
            stop = j0
            for i in range(i0, i1):
                stop = max(stop, min(j1, vis[i]))
            if stop <= j0:
                continue
            if transposed:
                _dist_block_t(q, i0, i1, mt, stop - j0, buf, i0, 0)
            else:
                _dist_block(q, i0, i1, m, j0, stop, buf, i0, j0)
            for i in range(i0, i1):
                bd = hd[i]
                bi = hi[i]
                worst = bd[0]
                n = min(stop, vis[i]) - j0
                brow = buf[i - i0]
                # a vectorised minimum first: once the heap is full most tiles have no candidate
                lowest = worst
                for jj in range(n):
                    lowest = min(lowest, np.int64(brow[jj]))
                if lowest >= worst:
                    continue
                for jj in range(n):
                    d = np.int64(brow[jj])
                    if d < worst:
                        bd[0] = d
                        bi[0] = j0 + jj
                        _sift_down(bd, bi, 0, k)
                        worst = bd[0]


@jit
def _heap_sort(hd, hi):
    """Sort every row of the max-heaps hd/hi ascending by (distance, index), in place."""
    k = hd.shape[1]
    for i in range(hd.shape[0]):
        bd = hd[i]
        bi = hi[i]
        for end in range(k - 1, 0, -1):
            d, ix = bd[0], bi[0]
            bd[0], bi[0] = bd[end], bi[end]
            bd[end], bi[end] = d, ix
            _sift_down(bd, bi, 0, end)


@jit
def _write_result(hd, hi, out_dist, out_idx):
    for i in range(hd.shape[0]):
        for r in range(hd.shape[1]):
            if hd[i, r] >= _EMPTY:
                out_dist[i, r] = EMPTY_DISTANCE
                out_idx[i, r] = -1
            else:
                out_dist[i, r] = hd[i, r]
                out_idx[i, r] = hi[i, r]


@jit
def _topk_serial(q, m, vis, hd, hi, out_dist, out_idx, tile, transposed):
    _topk_range(q, m, 0, q.shape[0], 0, m.shape[0], vis, hd, hi, tile, transposed)
    _heap_sort(hd, hi)
    _write_result(hd, hi, out_dist, out_idx)


@jit(parallel=True)
def _topk_split_queries(q, m, vis, hd, hi, bounds, tile, transposed):
    for c in numba.prange(bounds.shape[0] - 1):
        _topk_range(q, m, bounds[c], bounds[c + 1], 0, m.shape[0], vis, hd, hi, tile, transposed)


@jit(parallel=True)
def _topk_split_rows(q, m, vis, part_d, part_i, bounds, tile, transposed):
    for c in numba.prange(bounds.shape[0] - 1):
        _topk_range(q, m, 0, q.shape[0], bounds[c], bounds[c + 1], vis, part_d[c], part_i[c], tile,
                    transposed)
        _heap_sort(part_d[c], part_i[c])


@jit
def _merge_parts(part_d, part_i, hd, hi):
    """Merge the per-chunk sorted top-k lists into hd/hi, ordered by (distance, index)."""
    n_parts, n_q, k = part_d.shape
    tmp_d = np.empty(k, np.int64)
    tmp_i = np.empty(k, np.int64)
    for i in range(n_q):
        hd[i, :] = part_d[0, i]
        hi[i, :] = part_i[0, i]
        for p in range(1, n_parts):
            a = 0
            b = 0
            for r in range(k):
                da, ia = hd[i, a], hi[i, a]
                db, ib = part_d[p, i, b], part_i[p, i, b]
                if da < db or (da == db and ia <= ib):
                    tmp_d[r], tmp_i[r] = da, ia
                    a += 1
                else:
                    tmp_d[r], tmp_i[r] = db, ib
                    b += 1
            hd[i, :] = tmp_d
            hi[i, :] = tmp_i


def topk(q, m, k, n_visible, out_dist, out_idx):
    n_q, n_m = q.shape[0], m.shape[0]
    vis = np.full(n_q, n_m, np.int64) if n_visible is None else np.minimum(
        np.asarray(n_visible, np.int64), n_m)
    transposed, tile = _layout(q.shape[1], n_q)
    hd = np.full((n_q, k), _EMPTY, np.int64)
    hi = np.full((n_q, k), -1, np.int64)
    if not parallel(n_q * n_m * q.shape[1]):
        _topk_serial(q, m, vis, hd, hi, out_dist, out_idx, tile, transposed)
        return
    with ParallelCall():
        if n_m >= 64 * get_num_threads() or n_q < 4 * get_num_threads():
            chunks = min(get_num_threads(), n_m)
            part_d = np.full((chunks, n_q, k), _EMPTY, np.int64)
            part_i = np.full((chunks, n_q, k), -1, np.int64)
            _topk_split_rows(q, m, vis, part_d, part_i, chunk_bounds(n_m, chunks), tile, transposed)
            _merge_parts(part_d, part_i, hd, hi)
        else:
            bounds = chunk_bounds(n_q, get_num_threads())
            _topk_split_queries(q, m, vis, hd, hi, bounds, tile, transposed)
            _heap_sort(hd, hi)
    _write_result(hd, hi, out_dist, out_idx)
