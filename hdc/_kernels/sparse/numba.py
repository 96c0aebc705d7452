"""Numba sparse block code kernels, bit-identical to ``numpy_ref`` (see ``hdc._kernels.sparse``).

- overlap / cdist: byte (word) compares summed per row; cdist runs the stored rows in parallel,
  each row compared with every query while it sits in L1.
- index_build / index_topk: an inverted index (block, index) -> stored rows in CSR form, built by
  a counting sort; a query adds 1 to the count of every row on its ``blocks`` posting lists
  (keeping the histogram of counts as it goes); when few rows reach the k-th best count it
  collects them from the posting lists and sorts them, else it places the top k as topk does.
- topk: overlaps of a chunk of queries with every stored row, then per query an O(n) selection:
  a histogram of the ``K + 1`` possible overlaps gives the k-th best value, a counting sort places
  the rows above it and the first rows equal to it, in index order (so ties go to smaller index).
- bundle / record_bundle: per column a histogram of the ``L`` indices (a scratch row per thread)
  when ``L`` is at most 65536, else a sort of the column; then the tie rule of ``numpy_ref.bundle``.
"""
import numba
import numpy as np

from ...primitives import jit
from .._numba_threads import ParallelCall, chunk_bounds, get_num_threads, parallel

# Bytes of the (queries, stored rows) overlap block of one topk pass.
_TOPK_BLOCK_BYTES = 1 << 26
# Columns of at most this block size are bundled by histogram, larger ones by sorting.
_HIST_MAX = 1 << 16


@jit
def _overlap_row(a, b):
    s = 0
    for i in range(a.shape[0]):
        s += np.int32(a[i] == b[i])
    return s


@jit
def _overlap_serial(a, b, out):
    for i in range(a.shape[0]):
        out[i] = _overlap_row(a[i], b[i])


@jit(parallel=True)
def _overlap_parallel(a, b, out):
    for i in numba.prange(a.shape[0]):
        out[i] = _overlap_row(a[i], b[i])


def sparse_overlap(a, b, out):
    if parallel(a.size // 8):
        with ParallelCall():
            _overlap_parallel(a, b, out)
    else:
        _overlap_serial(a, b, out)


@jit
def _cdist_serial(a, b, out):
    for j in range(b.shape[0]):
        for i in range(a.shape[0]):
            out[i, j] = _overlap_row(a[i], b[j])


@jit(parallel=True)
def _cdist_parallel(a, b, out):
    for j in numba.prange(b.shape[0]):
        for i in range(a.shape[0]):
            out[i, j] = _overlap_row(a[i], b[j])


def sparse_cdist(a, b, out):
    if parallel(a.shape[0] * b.size // 8):
        with ParallelCall():
            _cdist_parallel(a, b, out)
    else:
        _cdist_serial(a, b, out)


@jit
def _place(ov, hist, blocks, k, out_overlap, out_idx):
    """Top ``k`` of one row of overlaps with histogram ``hist`` (count of each overlap value):
    highest first, equal overlaps by smaller index."""
    # t: the k-th best overlap; above: how many rows have a higher one
    t = blocks
    total = hist[t]
    while total < k:
        t -= 1
        total += hist[t]
    above = total - hist[t]
    # counting sort of the rows above t: slot of the next row with overlap v (v > t)
    slot = np.zeros(blocks + 2, np.int64)
    pos = 0
    for v in range(blocks, t, -1):
        slot[v] = pos
        pos += hist[v]
    taken = 0
    for j in range(ov.shape[0]):
        v = ov[j]
        if v > t:
            out_overlap[slot[v]] = v
            out_idx[slot[v]] = j
            slot[v] += 1
        elif v == t and taken < k - above:
            out_overlap[above + taken] = v
            out_idx[above + taken] = j
            taken += 1


@jit
def _select(ov, blocks, k, out_overlap, out_idx):
    hist = np.zeros(blocks + 2, np.int64)
    for j in range(ov.shape[0]):
        hist[ov[j]] += 1
    _place(ov, hist, blocks, k, out_overlap, out_idx)


@jit
def _select_serial(ov, blocks, k, out_overlap, out_idx):
    for i in range(ov.shape[0]):
        _select(ov[i], blocks, k, out_overlap[i], out_idx[i])


@jit(parallel=True)
def _select_parallel(ov, blocks, k, out_overlap, out_idx):
    for i in numba.prange(ov.shape[0]):
        _select(ov[i], blocks, k, out_overlap[i], out_idx[i])


def sparse_topk(q, m, k, out_overlap, out_idx):
    n_q, n_m = q.shape[0], m.shape[0]
    chunk = max(1, min(n_q, _TOPK_BLOCK_BYTES // (4 * n_m)))
    ov = np.empty((chunk, n_m), np.int32)
    for q0 in range(0, n_q, chunk):
        q1 = min(n_q, q0 + chunk)
        block = ov[:q1 - q0]
        sparse_cdist(q[q0:q1], m, block)
        if q1 - q0 > 1 and parallel(block.size):
            with ParallelCall():
                _select_parallel(block, q.shape[1], k, out_overlap[q0:q1], out_idx[q0:q1])
        else:
            _select_serial(block, q.shape[1], k, out_overlap[q0:q1], out_idx[q0:q1])


@jit(parallel=True)
def _block_counts_parallel(x, block_size, w, counts):
    for c in numba.prange(x.shape[1]):
        for i in range(x.shape[0]):
            counts[c * block_size + x[i, c]] += w[i]


@jit
def _block_counts_serial(x, block_size, w, counts):
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            counts[c * block_size + x[i, c]] += w[i]


def sparse_block_counts(x, block_size, weights, counts):
    w = np.ones(x.shape[0], np.int64) if weights is None else weights
    flat = counts.reshape(-1)
    if x.shape[1] > 1 and parallel(x.size):
        with ParallelCall():
            _block_counts_parallel(x, block_size, w, flat)
    else:
        _block_counts_serial(x, block_size, w, flat)


@jit
def _mode(values, w, block_size, t, hist, use_hist, order_buf):
    """The weighted most frequent of ``values``; tied maxima: the first at or after ``t`` mod block_size."""
    n = values.shape[0]
    best_count = np.int64(-1)
    best_step = np.int64(0)
    if use_hist:
        for i in range(n):
            hist[values[i]] += w[i]
        for i in range(n):
            v = values[i]
            cnt = hist[v]
            if cnt >= 0:
                step = (v - t) % block_size
                if cnt > best_count or (cnt == best_count and step < best_step):
                    best_count, best_step = cnt, step
                hist[v] = -1  # counted once
        for i in range(n):
            hist[values[i]] = 0
    else:
        order_buf[:] = np.argsort(values)
        i = 0
        while i < n:
            v = values[order_buf[i]]
            cnt = np.int64(0)
            while i < n and values[order_buf[i]] == v:
                cnt += w[order_buf[i]]
                i += 1
            step = (v - t) % block_size
            if cnt > best_count or (cnt == best_count and step < best_step):
                best_count, best_step = cnt, step
    return (t + best_step) % block_size


@jit
def _bundle_columns(x, block_size, w, tie, out, c_lo, c_hi, use_hist):
    n = x.shape[0]
    hist = np.zeros(block_size if use_hist else 1, np.int64)
    values = np.empty(n, np.int64)
    order_buf = np.empty(n, np.int64)
    for c in range(c_lo, c_hi):
        for i in range(n):
            values[i] = x[i, c]
        out[c] = _mode(values, w, block_size, np.int64(tie[c]), hist, use_hist, order_buf)


@jit(parallel=True)
def _bundle_parallel(x, block_size, w, tie, out, bounds, use_hist):
    for p in numba.prange(bounds.shape[0] - 1):
        _bundle_columns(x, block_size, w, tie, out, bounds[p], bounds[p + 1], use_hist)


def sparse_bundle(x, block_size, weights, tie, out):
    w = np.ones(x.shape[0], np.int64) if weights is None else weights
    use_hist = block_size <= _HIST_MAX
    columns = x.shape[1]
    if columns > 1 and parallel(x.size):
        parts = min(columns, get_num_threads())
        bounds = chunk_bounds(columns, parts)
        with ParallelCall():
            _bundle_parallel(x, block_size, w, tie, out, bounds, use_hist)
    else:
        _bundle_columns(x, block_size, w, tie, out, 0, columns, use_hist)


@jit
def _record_rows(idx, ids, levels, block_size, tie, out, r_lo, r_hi, use_hist):
    features, blocks = ids.shape
    hist = np.zeros(block_size if use_hist else 1, np.int64)
    values = np.empty(features, np.int64)
    order_buf = np.empty(features, np.int64)
    w = np.ones(features, np.int64)
    for r in range(r_lo, r_hi):
        for b in range(blocks):
            for f in range(features):
                values[f] = (np.int64(ids[f, b]) + np.int64(levels[idx[r, f], b])) % block_size
            out[r, b] = _mode(values, w, block_size, np.int64(tie[b]), hist, use_hist, order_buf)


@jit(parallel=True)
def _record_parallel(idx, ids, levels, block_size, tie, out, bounds, use_hist):
    for p in numba.prange(bounds.shape[0] - 1):
        _record_rows(idx, ids, levels, block_size, tie, out, bounds[p], bounds[p + 1], use_hist)


def sparse_record_bundle(idx, ids, levels, block_size, tie, out):
    use_hist = block_size <= _HIST_MAX
    n = idx.shape[0]
    if n > 1 and parallel(idx.size * ids.shape[1]):
        parts = min(n, get_num_threads())
        bounds = chunk_bounds(n, parts)
        with ParallelCall():
            _record_parallel(idx, ids, levels, block_size, tie, out, bounds, use_hist)
    else:
        _record_rows(idx, ids, levels, block_size, tie, out, 0, n, use_hist)


@jit
def _index_build(x, block_size, offsets, postings):
    n, blocks = x.shape
    for i in range(n):
        for b in range(blocks):
            offsets[b * block_size + x[i, b] + 1] += 1
    for key in range(1, offsets.shape[0]):
        offsets[key] += offsets[key - 1]
    pos = offsets[:-1].copy()
    for i in range(n):
        for b in range(blocks):
            key = b * block_size + x[i, b]
            postings[pos[key]] = i
            pos[key] += 1


def sparse_index_build(x, block_size, offsets, postings):
    offsets[:] = 0
    _index_build(x, block_size, offsets, postings)


@jit
def _index_topk(q, block_size, offsets, postings, counts, k, out_overlap, out_idx):
    blocks = q.shape[1]
    n_items = counts.shape[0]
    hist = np.zeros(blocks + 2, np.int64)
    for i in range(q.shape[0]):
        hist[:] = 0
        hist[0] = n_items
        for b in range(blocks):
            key = b * block_size + np.int64(q[i, b])
            for p in range(offsets[key], offsets[key + 1]):
                row = postings[p]
                c = counts[row]
                hist[c] -= 1
                hist[c + 1] += 1
                counts[row] = c + 1
        # t: the k-th best overlap; total: rows with an overlap >= t
        t = blocks
        total = hist[t]
        while total < k:
            t -= 1
            total += hist[t]
        if t == 0 or total > max(64, n_items // 16):
            # many candidates: one pass over every row's count
            _place(counts, hist, blocks, k, out_overlap[i], out_idx[i])
            for b in range(blocks):
                key = b * block_size + np.int64(q[i, b])
                for p in range(offsets[key], offsets[key + 1]):
                    counts[postings[p]] = 0
        else:
            # few: collect the rows with a count >= t from the posting lists (zeroing the counts
            # on the way, so each row is taken once), then sort them by (-count, row)
            cand = np.empty(total, np.int64)
            pos = 0
            for b in range(blocks):
                key = b * block_size + np.int64(q[i, b])
                for p in range(offsets[key], offsets[key + 1]):
                    row = postings[p]
                    c = np.int64(counts[row])
                    if c != 0:
                        if c >= t:
                            cand[pos] = (blocks - c) * n_items + row
                            pos += 1
                        counts[row] = 0
            cand.sort()
            for r in range(k):
                out_overlap[i, r] = blocks - cand[r] // n_items
                out_idx[i, r] = cand[r] % n_items


def sparse_index_topk(q, block_size, offsets, postings, counts, k, out_overlap, out_idx):
    _index_topk(q, block_size, offsets, postings, counts, k, out_overlap, out_idx)
