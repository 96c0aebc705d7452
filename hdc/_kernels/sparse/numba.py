"""Numba sparse block code kernels, bit-identical to ``numpy_ref`` (see ``hdc._kernels.sparse``).

- overlap / cdist: byte (word) compares summed per row; cdist runs the stored rows in parallel,
  each row compared with every query while it sits in L1.
- topk: a bounded max-heap of ``k`` per query and thread, ordered by (blocks - overlap, row) and
  fed through a threshold (the search family's heap helpers). With several queries the stored
  rows are transposed 64 at a time, so each query counts equal indices with one vector lane per
  stored row (query blocking, as the C kernels); with few, row by row.
- index_build / index_topk: the segmented inverted index of ``hdc._kernels.sparse`` (uint16
  segment-local rows, key after key, one part per segment), built by a counting sort (segments
  count and place in parallel, one prefix sum between); a query counts one segment at a time in a segment-sized counter array, then reads
  the counters in row order, offering those that could enter its heap and clearing them; rows no
  list holds fill the rest.
- bundle / record_bundle: per column a histogram of the ``L`` indices (a scratch row per thread)
  when ``L`` is at most 65536, else a sort of the column; then the tie rule of ``numpy_ref.bundle``.
"""
import numba
import numpy as np

from ...primitives import jit
from .._numba_threads import ParallelCall, chunk_bounds, get_num_threads, parallel
from ..search.numba import _EMPTY, _heap_sort, _merge_parts, _sift_down

# Stored rows per transposed tile, and the fewest queries worth transposing a tile for.
_TILE = 64
_TILE_MIN_QUERIES = 4
# Queries counted together per transposed tile row loaded.
_GROUP = 4
# Columns of at most this block size are bundled by histogram, larger ones by sorting.
_HIST_MAX = 1 << 16
# n-gram bundling counts every (block, index) of a text at once while blocks * L is at most this.
_NGRAM_COUNTS_MAX = 1 << 22


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
def _offer(hd, hi, d, ix):
    """Offer (d, ix) to the full max-heap hd/hi (ordered by (distance, index); empty slots hold a
    distance above every real one)."""
    if d < hd[0] or (d == hd[0] and ix < hi[0]):
        hd[0] = d
        hi[0] = ix
        _sift_down(hd, hi, 0, hd.shape[0])


@jit
def _topk_range(q, m, q_lo, q_hi, r_lo, r_hi, hd, hi, counter):
    """Offer rows [r_lo, r_hi) to the heaps of queries [q_lo, q_hi) (distance blocks - overlap).

    Many queries: 64 stored rows at a time transposed (blocks, 64), so each query counts equal
    indices with one vector lane per stored row (counters of ``counter``'s dtype, uint16 below
    65536 blocks) and no horizontal sum; few: row by row."""
    blocks = q.shape[1]
    tile = np.zeros((blocks, _TILE), m.dtype)
    cnt = np.zeros((_GROUP, _TILE), counter.dtype)
    acc = np.empty(_TILE, np.int64)
    blocked = q_hi - q_lo >= _TILE_MIN_QUERIES
    for r0 in range(r_lo, r_hi, _TILE):
        nr = min(_TILE, r_hi - r0)
        if blocked:
            for j in range(nr):
                for b in range(blocks):
                    tile[b, j] = m[r0 + j, b]
        for i in range(q_lo, q_hi):
            if blocked:
                g = (i - q_lo) % _GROUP
                if g == 0:      # count a group of queries per tile row loaded
                    n_g = min(_GROUP, q_hi - i)
                    cnt[:] = 0
                    for b in range(blocks):
                        row = tile[b]
                        for gg in range(n_g):
                            v = q[i + gg, b]
                            c = cnt[gg]
                            for j in range(_TILE):
                                c[j] += row[j] == v
                for j in range(nr):
                    acc[j] = blocks - np.int64(cnt[g, j])
            else:
                for j in range(nr):
                    acc[j] = blocks - _overlap_row(q[i], m[r0 + j])
            bd = hd[i]
            bi = hi[i]
            lowest = bd[0]
            for j in range(nr):
                lowest = min(lowest, acc[j])
            if lowest >= bd[0]:    # rows ascend: an equal distance never displaces the root
                continue
            for j in range(nr):
                _offer(bd, bi, acc[j], r0 + j)


@jit
def _finish(hd, hi, blocks, out_overlap, out_idx):
    _heap_sort(hd, hi)
    for i in range(hd.shape[0]):
        for r in range(hd.shape[1]):
            out_overlap[i, r] = blocks - hd[i, r]
            out_idx[i, r] = hi[i, r]


@jit
def _topk_serial(q, m, hd, hi, out_overlap, out_idx, counter):
    _topk_range(q, m, 0, q.shape[0], 0, m.shape[0], hd, hi, counter)
    _finish(hd, hi, q.shape[1], out_overlap, out_idx)


@jit(parallel=True)
def _topk_split_queries(q, m, hd, hi, bounds, counter):
    for c in numba.prange(bounds.shape[0] - 1):
        _topk_range(q, m, bounds[c], bounds[c + 1], 0, m.shape[0], hd, hi, counter)


@jit(parallel=True)
def _topk_split_rows(q, m, part_d, part_i, bounds, counter):
    for c in numba.prange(bounds.shape[0] - 1):
        _topk_range(q, m, 0, q.shape[0], bounds[c], bounds[c + 1], part_d[c], part_i[c], counter)
        _heap_sort(part_d[c], part_i[c])


def _empty_heaps(shape):
    return np.full(shape, _EMPTY, np.int64), np.full(shape, -1, np.int64)


def sparse_topk(q, m, k, out_overlap, out_idx):
    n_q, n_m = q.shape[0], m.shape[0]
    hd, hi = _empty_heaps((n_q, k))
    counter = np.empty(0, np.uint16 if q.shape[1] < 1 << 16 else np.uint32)   # the counters' dtype
    if not parallel(n_q * m.size // 8):
        _topk_serial(q, m, hd, hi, out_overlap, out_idx, counter)
        return
    threads = get_num_threads()
    with ParallelCall():
        if n_q >= 2 * _TILE_MIN_QUERIES * threads:
            _topk_split_queries(q, m, hd, hi, chunk_bounds(n_q, threads), counter)
            _finish(hd, hi, q.shape[1], out_overlap, out_idx)
        else:
            chunks = min(threads, n_m)
            part_d, part_i = _empty_heaps((chunks, n_q, k))
            _topk_split_rows(q, m, part_d, part_i, chunk_bounds(n_m, chunks), counter)
            _merge_parts(part_d, part_i, hd, hi)
            out_overlap[...] = q.shape[1] - hd
            out_idx[...] = hi


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
def _ngram_text_counts(cols, lo, hi, table, sizes, block_size, tie, out_row, gram, counts):
    """One text, small blocks: n-gram codes a row at a time (vectorised over the blocks), counted
    in ``counts`` (K * L, zero, left zero); per block the first maximum from tie going up."""
    blocks = table.shape[2]
    for n in sizes:
        for p in range(lo, hi - n + 1):
            gram[:] = 0
            for j in range(n):
                row = table[n - 1 - j, cols[p + j]]
                for b in range(blocks):
                    g = gram[b] + np.int64(row[b])
                    gram[b] = g - block_size if g >= block_size else g
            for b in range(blocks):
                counts[b * block_size + gram[b]] += 1
    for b in range(blocks):
        best = np.int64(-1)
        best_v = np.int64(0)
        v = np.int64(tie[b])
        for _ in range(block_size):
            c = counts[b * block_size + v]
            if c > best:
                best, best_v = c, v
            counts[b * block_size + v] = 0
            v = v + 1 if v + 1 < block_size else 0
        out_row[b] = best_v


@jit
def _ngram_text_columns(cols, lo, hi, table, sizes, block_size, tie, out_row, values, w, hist, order_buf,
                        use_hist):
    """One text, large blocks: per block the n-gram codes of every n, then the bundle's mode."""
    blocks = table.shape[2]
    for b in range(blocks):
        m = 0
        for n in sizes:
            for p in range(lo, hi - n + 1):
                g = np.int64(0)
                for j in range(n):
                    g += np.int64(table[n - 1 - j, cols[p + j], b])
                values[m] = g % block_size
                m += 1
        out_row[b] = _mode(values[:m], w[:m], block_size, np.int64(tie[b]), hist, use_hist, order_buf[:m])


@jit
def _ngram_texts(cols, offsets, table, sizes, block_size, tie, out, t_lo, t_hi, use_counts):
    blocks = table.shape[2]
    longest = 0
    for t in range(t_lo, t_hi):
        longest = max(longest, offsets[t + 1] - offsets[t])
    grams = longest * sizes.shape[0]
    use_hist = block_size <= _HIST_MAX
    gram = np.zeros(blocks, np.int64)
    counts = np.zeros(blocks * block_size if use_counts else 0, np.int32)
    values = np.empty(0 if use_counts else grams, np.int64)
    w = np.ones(0 if use_counts else grams, np.int64)
    hist = np.zeros(block_size if use_hist and not use_counts else 1, np.int64)
    order_buf = np.empty(0 if use_counts else grams, np.int64)
    for t in range(t_lo, t_hi):
        if use_counts:
            _ngram_text_counts(cols, offsets[t], offsets[t + 1], table, sizes, block_size, tie, out[t], gram, counts)
        else:
            _ngram_text_columns(cols, offsets[t], offsets[t + 1], table, sizes, block_size, tie, out[t], values, w,
                                hist, order_buf, use_hist)


@jit(parallel=True)
def _ngram_parallel(cols, offsets, table, sizes, block_size, tie, out, bounds, use_counts):
    for c in numba.prange(bounds.shape[0] - 1):
        _ngram_texts(cols, offsets, table, sizes, block_size, tie, out, bounds[c], bounds[c + 1], use_counts)


def sparse_ngram_bundle(cols, offsets, table, sizes, block_size, tie, out):
    texts = offsets.shape[0] - 1
    # counts of every (block, index) per text while that table stays small, else per block
    use_counts = block_size <= _HIST_MAX and table.shape[2] * block_size <= _NGRAM_COUNTS_MAX
    if texts > 1 and parallel(cols.size * table.shape[2]):
        with ParallelCall():
            bounds = chunk_bounds(texts, min(texts, 4 * get_num_threads()))
            _ngram_parallel(cols, offsets, table, sizes, block_size, tie, out, bounds, use_counts)
    else:
        _ngram_texts(cols, offsets, table, sizes, block_size, tie, out, 0, texts, use_counts)


@jit
def _index_segment(x, block_size, segment, n_seg, s, offsets, postings, place):
    """Segment ``s``: count its rows per key into column ``s`` of offsets (``place`` False), or
    place them at the starts a prefix sum made of those counts (True). False: an index >= L."""
    n, blocks = x.shape
    r0 = s * segment
    r1 = min(n, r0 + segment)
    cur = np.zeros(blocks * block_size, np.int64)
    if place:
        for key in range(blocks * block_size):
            cur[key] = offsets[key * n_seg + s]
        for r in range(r0, r1):
            for b in range(blocks):
                key = b * block_size + np.int64(x[r, b])
                postings[cur[key]] = r - r0
                cur[key] += 1
        return True
    for r in range(r0, r1):
        for b in range(blocks):
            v = np.int64(x[r, b])
            if v >= block_size:
                return False
            cur[b * block_size + v] += 1
    for key in range(blocks * block_size):
        offsets[key * n_seg + s] = cur[key]
    return True


@jit(parallel=True)
def _index_build(x, block_size, segment, offsets, postings):
    n_seg = (x.shape[0] + segment - 1) // segment
    ok = np.ones(n_seg, np.bool_)
    for s in numba.prange(n_seg):
        ok[s] = _index_segment(x, block_size, segment, n_seg, s, offsets, postings, False)
    if not ok.all():
        return False
    pos = np.int64(0)
    for e in range(offsets.shape[0] - 1):
        c = offsets[e]
        offsets[e] = pos
        pos += c
    offsets[offsets.shape[0] - 1] = pos
    for s in numba.prange(n_seg):
        _index_segment(x, block_size, segment, n_seg, s, offsets, postings, True)
    return True


def sparse_index_build(x, block_size, segment, offsets, postings):
    with ParallelCall():
        ok = _index_build(x, block_size, segment, offsets, postings)
    if not ok:
        raise ValueError(f"x has an index >= block_size={block_size}")


@jit
def _index_query(q, i, block_size, segment, offsets, postings, n, s0, s1, cnt, hd, hi):
    """Query ``i`` against segments [s0, s1): count the rows on its lists, then offer the rows
    whose count could enter the heap, in row order, and clear the counters (see
    ``hdc._kernels.sparse``). False for a damaged index."""
    blocks = q.shape[1]
    n_seg = (n + segment - 1) // segment
    total = np.int64(n) * blocks
    for s in range(s0, s1):
        r0 = s * segment
        rows = min(segment, n - r0)
        for b in range(blocks):
            v = np.int64(q[i, b])
            if v >= block_size:
                return False
            e = (b * block_size + v) * n_seg + s
            p0 = offsets[e]
            p1 = offsets[e + 1]
            if p0 < 0 or p1 < p0 or p1 > total:
                return False
            for p in range(p0, p1):
                r = np.int64(postings[p])
                if r >= rows:
                    return False
                cnt[r] += 1
        least = max(1, blocks - hd[0])     # the least count that can still enter the heap
        for r in range(rows):
            c = np.int64(cnt[r])
            if c >= least:
                _offer(hd, hi, blocks - c, r0 + r)
                least = max(1, blocks - hd[0])
            cnt[r] = 0
    return True


@jit
def _fill_zero_overlaps(hd, hi, blocks):
    """Empty slots left (fewer than k rows counted): the smallest uncounted rows, overlap 0."""
    empty = 0
    for r in range(hd.shape[0]):
        empty += hd[r] == _EMPTY
    if empty == 0:
        return
    taken = np.sort(hi[hi >= 0])
    nxt = 0
    row = 0
    for r in range(hd.shape[0]):
        if hd[r] == _EMPTY:
            while nxt < taken.shape[0] and taken[nxt] == row:
                nxt += 1
                row += 1
            hd[r] = blocks
            hi[r] = row
            row += 1


@jit
def _index_queries(q, q_lo, q_hi, block_size, segment, offsets, postings, n, s0, s1, hd, hi):
    cnt = np.zeros(segment, np.uint32)
    for i in range(q_lo, q_hi):
        if not _index_query(q, i, block_size, segment, offsets, postings, n, s0, s1, cnt, hd[i], hi[i]):
            return False
    return True


@jit(parallel=True)
def _index_split_queries(q, block_size, segment, offsets, postings, n, hd, hi, bounds):
    n_seg = (n + segment - 1) // segment
    ok = np.ones(bounds.shape[0] - 1, np.bool_)
    for c in numba.prange(bounds.shape[0] - 1):
        ok[c] = _index_queries(q, bounds[c], bounds[c + 1], block_size, segment, offsets, postings, n,
                               0, n_seg, hd, hi)
    return ok.all()


@jit(parallel=True)
def _index_split_segments(q, block_size, segment, offsets, postings, n, part_d, part_i, bounds):
    ok = np.ones(bounds.shape[0] - 1, np.bool_)
    for c in numba.prange(bounds.shape[0] - 1):
        ok[c] = _index_queries(q, 0, q.shape[0], block_size, segment, offsets, postings, n,
                               bounds[c], bounds[c + 1], part_d[c], part_i[c])
        _heap_sort(part_d[c], part_i[c])
    return ok.all()


@jit
def _index_finish(hd, hi, blocks, out_overlap, out_idx):
    k = hd.shape[1]
    for i in range(hd.shape[0]):
        _fill_zero_overlaps(hd[i], hi[i], blocks)
        for start in range(k // 2 - 1, -1, -1):     # the fill (or a merge) left no heap: rebuild it
            _sift_down(hd[i], hi[i], start, k)
    _finish(hd, hi, blocks, out_overlap, out_idx)


def sparse_index_topk(q, block_size, segment, offsets, postings, n_rows, k, out_overlap, out_idx):
    n_q = q.shape[0]
    n_seg = -(-n_rows // segment)
    hd, hi = _empty_heaps((n_q, k))
    threads = get_num_threads()
    with ParallelCall():
        if n_q >= 2 * threads or n_seg < 2:
            ok = _index_split_queries(q, block_size, segment, offsets, postings, n_rows, hd, hi,
                                      chunk_bounds(n_q, min(threads, n_q)))
        else:
            chunks = min(threads, n_seg)
            part_d, part_i = _empty_heaps((chunks, n_q, k))
            ok = _index_split_segments(q, block_size, segment, offsets, postings, n_rows, part_d, part_i,
                                       chunk_bounds(n_seg, chunks))
            if ok:
                _merge_parts(part_d, part_i, hd, hi)
    if not ok:
        raise ValueError("sparse_index_topk: a query index >= block_size, or a damaged index")
    _index_finish(hd, hi, q.shape[1], out_overlap, out_idx)
