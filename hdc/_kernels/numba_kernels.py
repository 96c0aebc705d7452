"""Numba backend: the kernel API of :mod:`hdc._kernels`, bit-identical to ``numpy_ref``.

Nothing compiles at import; each kernel compiles on first use and is cached on disk
(``cache=True``, see :func:`hdc.primitives.jit`). Each op has a serial kernel and, above a size
threshold, a parallel driver that ``prange``-s over one contiguous chunk per thread; chunks write
disjoint outputs (cdist, bundle, column counts) or per-thread partial results that are combined
after (topk), so results never depend on the thread count.

- popcount: LLVM ``ctpop`` (vectorises to ``vpopcntq`` where the CPU has it).
- cdist / topk: memory rows in cache-sized tiles; eight queries share each row load. Short rows
  (dim <= 1024) against several queries go word-major instead: one vector lane per stored row.
- topk: a bounded max-heap of ``k`` per query and thread (threshold test, then sift); per-thread
  heaps cover contiguous row ranges and are merged by (distance, index).
- bundle / column_counts: bit-sliced carry-save counters (a Harley-Seal adder tree over groups of
  16 rows feeding ripple-carry counter planes), over tiles of word columns.
- permute: a word-level funnel shift (:func:`hdc.primitives.rotate_row`).
- kwta_*: fused distance / selection / mixing kernels (:mod:`hdc._kernels.kwta_numba`).
"""
import threading
import time

import numba
import numpy as np

from ..primitives import _ctpop64, hamming_row, jit, popcount_row, rotate_row, xor_row
from .kwta_numba import kwta_majority, kwta_select, kwta_softmax  # noqa: F401 - backend API

# ---- threads ----------------------------------------------------------------------------------

_MAX_THREADS = max(1, int(numba.config.NUMBA_NUM_THREADS))
_threads = _MAX_THREADS
# The 'workqueue' threading layer aborts on concurrent parallel calls; serialise them there.
_workqueue_lock = threading.Lock()
_layer = None

# Parallel kernels run when their work (in words touched) exceeds this; None: calibrate on first
# use from the measured cost of starting a parallel region (about 10 us with the 'workqueue'
# layer, but milliseconds with 'omp' on some virtual machines).
_par_work = None
_MIN_PAR_WORK = 1 << 17
# Roughly the serial cost of one word of work (XOR + popcount + add, vectorised), in seconds.
_SECONDS_PER_WORD = 0.3e-9
# Queries processed together against each memory row load.
_QB = 8
# Empty heap slot: larger than any uint32 distance.
_EMPTY = np.int64(1) << np.int64(32)


def set_num_threads(n):
    """Threads for the parallel kernels, clamped to ``numba.config.NUMBA_NUM_THREADS``.

    Also calls ``numba.set_num_threads`` (numba keeps that per calling thread; kernels called
    from other threads set it again on entry).
    """
    global _threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    _threads = min(int(n), _MAX_THREADS)
    numba.set_num_threads(_threads)


def get_num_threads():
    """Threads the parallel kernels use (at most ``numba.config.NUMBA_NUM_THREADS``)."""
    return _threads


@jit(parallel=True)
def _noop_parallel(flags):
    for c in numba.prange(flags.shape[0]):
        flags[c] += 1


def _calibrate():
    """Work above which a parallel launch pays: 4x its measured start-up cost, in words."""
    flags = np.zeros(_threads, np.int64)
    with _ParallelCall():
        _noop_parallel(flags)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            _noop_parallel(flags)
            times.append(time.perf_counter() - start)
    return max(_MIN_PAR_WORK, int(4 * sorted(times)[2] / _SECONDS_PER_WORD))


def _parallel(work):
    """True when ``work`` words of work are worth a parallel launch on more than one thread."""
    global _par_work
    if _threads == 1 or work <= 0 or work < _MIN_PAR_WORK:
        return False
    if _par_work is None:
        _par_work = _calibrate()
    return work >= _par_work


class _ParallelCall:
    """Context for calling a parallel kernel: sets numba's thread count (it is per calling
    thread) and, under the 'workqueue' threading layer (or before the layer is known), holds a
    lock, because that layer aborts the process on concurrent parallel calls."""

    def __enter__(self):
        if numba.get_num_threads() != _threads:
            numba.set_num_threads(_threads)
        self._locked = _layer in (None, "workqueue")
        if self._locked:
            _workqueue_lock.acquire()
        return self

    def __exit__(self, *exc):
        global _layer
        try:
            if _layer is None:
                _layer = numba.threading_layer()
        except ValueError:      # no parallel region ran yet
            pass
        finally:
            if self._locked:
                _workqueue_lock.release()
        return False


def _chunk_bounds(n, chunks):
    """Split ``range(n)`` into ``chunks`` contiguous near-equal ranges: (start, stop) of chunk c is
    ``bounds[c], bounds[c + 1]``."""
    chunks = max(1, chunks)
    return (np.arange(chunks + 1, dtype=np.int64) * n) // chunks


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


# ---- element-wise -----------------------------------------------------------------------------

@jit(parallel=True)
def _bind_parallel(a, b, out, bounds):
    for c in numba.prange(bounds.shape[0] - 1):
        lo, hi = bounds[c], bounds[c + 1]
        xor_row(a[lo:hi], b[lo:hi], out[lo:hi])


def bind(a, b, out):
    if _parallel(out.shape[0] // 4):
        with _ParallelCall():
            _bind_parallel(a, b, out, _chunk_bounds(out.shape[0], _threads))
    else:
        xor_row(a, b, out)


@jit
def _permute_rows(x, dim, shift, out, lo, hi):
    for r in range(lo, hi):
        rotate_row(x[r], dim, shift, out[r])


@jit(parallel=True)
def _permute_parallel(x, dim, shift, out, bounds):
    for c in numba.prange(bounds.shape[0] - 1):
        _permute_rows(x, dim, shift, out, bounds[c], bounds[c + 1])


def permute(x, dim, shift, out):
    rows = x.shape[0]
    if _parallel(x.size) and rows > 1:
        with _ParallelCall():
            _permute_parallel(x, dim, shift, out, _chunk_bounds(rows, min(_threads, rows)))
    else:
        _permute_rows(x, dim, shift, out, 0, rows)


@jit
def _popcount_rows(x, out, lo, hi):
    for r in range(lo, hi):
        out[r] = popcount_row(x[r])


@jit(parallel=True)
def _popcount_parallel(x, out, bounds):
    for c in numba.prange(bounds.shape[0] - 1):
        _popcount_rows(x, out, bounds[c], bounds[c + 1])


def popcount(x, out):
    rows = x.shape[0]
    if _parallel(x.size) and rows > 1:
        with _ParallelCall():
            _popcount_parallel(x, out, _chunk_bounds(rows, min(_threads, rows)))
    else:
        _popcount_rows(x, out, 0, rows)


@jit
def _hamming_rows(a, b, out, lo, hi):
    for r in range(lo, hi):
        out[r] = hamming_row(a[r], b[r])


@jit(parallel=True)
def _hamming_parallel(a, b, out, bounds):
    for c in numba.prange(bounds.shape[0] - 1):
        _hamming_rows(a, b, out, bounds[c], bounds[c + 1])


def hamming(a, b, out):
    rows = a.shape[0]
    if _parallel(a.size) and rows > 1:
        with _ParallelCall():
            _hamming_parallel(a, b, out, _chunk_bounds(rows, min(_threads, rows)))
    else:
        _hamming_rows(a, b, out, 0, rows)


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
    if _parallel(n_a * n_b * a.shape[1]):
        # split the stored rows when there are enough of them, else the queries
        split_rows = n_b >= 16 * _threads or n_b >= n_a
        n = n_b if split_rows else n_a
        with _ParallelCall():
            _cdist_parallel(a, b, out, _chunk_bounds(n, min(_threads, n)), split_rows, tile, transposed)
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
    buf = np.empty((_QB, tile), np.uint32)
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
                out_dist[i, r] = np.uint32(0xFFFFFFFF)
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
    if not _parallel(n_q * n_m * q.shape[1]):
        _topk_serial(q, m, vis, hd, hi, out_dist, out_idx, tile, transposed)
        return
    with _ParallelCall():
        if n_m >= 64 * _threads or n_q < 4 * _threads:
            chunks = min(_threads, n_m)
            part_d = np.full((chunks, n_q, k), _EMPTY, np.int64)
            part_i = np.full((chunks, n_q, k), -1, np.int64)
            _topk_split_rows(q, m, vis, part_d, part_i, _chunk_bounds(n_m, chunks), tile, transposed)
            _merge_parts(part_d, part_i, hd, hi)
        else:
            _topk_split_queries(q, m, vis, hd, hi, _chunk_bounds(n_q, _threads), tile, transposed)
            _heap_sort(hd, hi)
    _write_result(hd, hi, out_dist, out_idx)


# ---- counting ---------------------------------------------------------------------------------

@jit
def _ripple(planes, start, top, carry, tw):
    """Add the bit-sliced values ``carry << start`` into the counter ``planes[:, :tw]``.

    Planes at and above ``top`` are known to stay 0 (the count fits below them).
    """
    for b in range(start, top):
        for w in range(tw):
            p = planes[b, w]
            c = carry[w]
            planes[b, w] = p ^ c
            carry[w] = p & c


@jit
def _bit_length(n):
    bits = 0
    while n > 0:
        bits += 1
        n >>= 1
    return bits


@jit
def _csa(a, b, c):
    """Carry-save adder of three bit-sliced words: (carries, sums) = a + b + c per bit."""
    u = a ^ b
    return (a & b) | (u & c), u ^ c


@jit
def _count_tile(x, rows, w0, w1, planes, ones, twos, fours, eights, carry):
    """Bit-sliced column counts of ``x[rows, w0:w1]`` into ``planes[:, :w1 - w0]`` (zeroed first).

    Plane b holds bit b of each column's count. Groups of 16 rows go through a Harley-Seal tree of
    carry-save adders (ones, twos, fours, eights pending; sixteens rippled into plane 4 and up).
    """
    tw = w1 - w0
    n_planes = planes.shape[0]
    for b in range(n_planes):
        for w in range(tw):
            planes[b, w] = 0
    for w in range(tw):
        ones[w] = 0
        twos[w] = 0
        fours[w] = 0
        eights[w] = 0
    n = rows.shape[0]
    g = 0
    while g + 16 <= n:
        x0, x1, x2, x3 = x[rows[g], w0:w1], x[rows[g + 1], w0:w1], x[rows[g + 2], w0:w1], x[rows[g + 3], w0:w1]
        x4, x5, x6, x7 = x[rows[g + 4], w0:w1], x[rows[g + 5], w0:w1], x[rows[g + 6], w0:w1], x[rows[g + 7], w0:w1]
        x8, x9, x10, x11 = x[rows[g + 8], w0:w1], x[rows[g + 9], w0:w1], x[rows[g + 10], w0:w1], x[rows[g + 11], w0:w1]
        x12, x13, x14, x15 = x[rows[g + 12], w0:w1], x[rows[g + 13], w0:w1], x[rows[g + 14], w0:w1], x[rows[g + 15], w0:w1]
        for w in range(tw):
            o = ones[w]
            t = twos[w]
            f = fours[w]
            e = eights[w]
            twos_a, o = _csa(o, x0[w], x1[w])
            twos_b, o = _csa(o, x2[w], x3[w])
            fours_a, t = _csa(t, twos_a, twos_b)
            twos_a, o = _csa(o, x4[w], x5[w])
            twos_b, o = _csa(o, x6[w], x7[w])
            fours_b, t = _csa(t, twos_a, twos_b)
            eights_a, f = _csa(f, fours_a, fours_b)
            twos_a, o = _csa(o, x8[w], x9[w])
            twos_b, o = _csa(o, x10[w], x11[w])
            fours_a, t = _csa(t, twos_a, twos_b)
            twos_a, o = _csa(o, x12[w], x13[w])
            twos_b, o = _csa(o, x14[w], x15[w])
            fours_b, t = _csa(t, twos_a, twos_b)
            eights_b, f = _csa(f, fours_a, fours_b)
            carry[w], e = _csa(e, eights_a, eights_b)
            ones[w] = o
            twos[w] = t
            fours[w] = f
            eights[w] = e
        g += 16
        # the sixteens: after g rows a count is at most g, so planes >= bit_length(g) stay 0
        _ripple(planes, 4, min(n_planes, _bit_length(g)), carry, tw)
    while g < n:
        xr = x[rows[g], w0:w1]
        for w in range(tw):
            carry[w] = xr[w]
        g += 1
        _ripple(planes, 0, min(n_planes, _bit_length(g)), carry, tw)
    _ripple(planes, 3, n_planes, eights, tw)
    _ripple(planes, 2, n_planes, fours, tw)
    _ripple(planes, 1, n_planes, twos, tw)
    _ripple(planes, 0, n_planes, ones, tw)


@jit
def _bundle_tiles(x, rows, tie, out, t_lo, t_hi, tw):
    """Majority of ``x[rows]`` for word tiles [t_lo, t_hi) of width ``tw``: bit-sliced compare of
    each count with n / 2 (gt: count > n // 2; eq: count == n // 2, a tie only when n is even)."""
    n = rows.shape[0]
    n_words = x.shape[1]
    n_planes = _bit_length(n)
    half = n >> 1
    even = n % 2 == 0
    planes = np.empty((n_planes, tw), np.uint64)
    ones = np.empty(tw, np.uint64)
    twos = np.empty(tw, np.uint64)
    fours = np.empty(tw, np.uint64)
    eights = np.empty(tw, np.uint64)
    carry = np.empty(tw, np.uint64)
    all_ones = ~np.uint64(0)
    for t in range(t_lo, t_hi):
        w0 = t * tw
        w1 = min(n_words, w0 + tw)
        width = w1 - w0
        _count_tile(x, rows, w0, w1, planes, ones, twos, fours, eights, carry)
        gt = ones
        eq = twos
        for w in range(width):
            gt[w] = 0
            eq[w] = all_ones
        for b in range(n_planes - 1, -1, -1):
            if (half >> b) & 1:
                for w in range(width):
                    eq[w] &= planes[b, w]
            else:
                for w in range(width):
                    gt[w] |= eq[w] & planes[b, w]
                    eq[w] &= ~planes[b, w]
        out_t = out[w0:w1]
        if even:
            tie_t = tie[w0:w1]
            for w in range(width):
                out_t[w] = gt[w] | (eq[w] & tie_t[w])
        else:
            for w in range(width):
                out_t[w] = gt[w]


@jit(parallel=True)
def _bundle_parallel(x, rows, tie, out, bounds, tw):
    for c in numba.prange(bounds.shape[0] - 1):
        _bundle_tiles(x, rows, tie, out, bounds[c], bounds[c + 1], tw)


def _tile_words(n_words):
    """Word columns per counting tile: one tile per thread, at most 256 words (the counter planes
    of a tile then stay in L1), a multiple of 8 (one AVX-512 register)."""
    per = -(-n_words // _threads)
    return int(min(256, max(8, -(-per // 8) * 8)))


def bundle(x, tie, out):
    n, n_words = x.shape
    rows = np.arange(n, dtype=np.int64)
    tw = _tile_words(n_words)
    n_tiles = -(-n_words // tw)
    if _parallel(n * n_words) and n_tiles > 1:
        with _ParallelCall():
            _bundle_parallel(x, rows, tie, out, _chunk_bounds(n_tiles, min(_threads, n_tiles)), tw)
    else:
        _bundle_tiles(x, rows, tie, out, 0, n_tiles, tw)


@jit
def _counts_tiles(x, rows, weight, counts, t_lo, t_hi, tw):
    """``counts[64 w + bit] += weight * (number of rows r in ``rows`` with that bit set)`` for
    the word tiles [t_lo, t_hi), counting bit-sliced then unpacking the planes once."""
    n_words = x.shape[1]
    n_planes = max(1, _bit_length(rows.shape[0]))
    planes = np.empty((n_planes, tw), np.uint64)
    ones = np.empty(tw, np.uint64)
    twos = np.empty(tw, np.uint64)
    fours = np.empty(tw, np.uint64)
    eights = np.empty(tw, np.uint64)
    carry = np.empty(tw, np.uint64)
    acc = np.empty(64, np.int64)
    for t in range(t_lo, t_hi):
        w0 = t * tw
        w1 = min(n_words, w0 + tw)
        _count_tile(x, rows, w0, w1, planes, ones, twos, fours, eights, carry)
        for w in range(w1 - w0):
            acc[:] = 0
            for b in range(n_planes):
                p = planes[b, w]
                if p:
                    for bit in range(64):
                        acc[bit] += np.int64((p >> np.uint64(bit)) & np.uint64(1)) << b
            cnt = counts[64 * (w0 + w):64 * (w0 + w + 1)]
            for bit in range(64):
                cnt[bit] += weight * acc[bit]


@jit
def _counts_weighted_tiles(x, weights, counts, t_lo, t_hi, tw):
    """``counts[64 w + bit] += sum_r weights[r] * bit`` row by row (for mostly distinct weights)."""
    n_words = x.shape[1]
    for t in range(t_lo, t_hi):
        w0 = t * tw
        w1 = min(n_words, w0 + tw)
        for r in range(x.shape[0]):
            wt = weights[r]
            if wt == 0:
                continue
            for w in range(w0, w1):
                v = x[r, w]
                if v:
                    cnt = counts[64 * w:64 * (w + 1)]
                    for bit in range(64):
                        cnt[bit] += wt * np.int64((v >> np.uint64(bit)) & np.uint64(1))


@jit
def _counts_groups(x, order, starts, values, counts, t_lo, t_hi, tw):
    """Equal weights counted together: group g is rows ``order[starts[g]:starts[g + 1]]``."""
    for g in range(values.shape[0]):
        if values[g] != 0:
            _counts_tiles(x, order[starts[g]:starts[g + 1]], values[g], counts, t_lo, t_hi, tw)


@jit(parallel=True)
def _counts_groups_parallel(x, order, starts, values, counts, bounds, tw):
    for c in numba.prange(bounds.shape[0] - 1):
        _counts_groups(x, order, starts, values, counts, bounds[c], bounds[c + 1], tw)


@jit(parallel=True)
def _counts_weighted_parallel(x, weights, counts, bounds, tw):
    for c in numba.prange(bounds.shape[0] - 1):
        _counts_weighted_tiles(x, weights, counts, bounds[c], bounds[c + 1], tw)


def _group_plans(weights):
    """Two ways to write ``sum_r weights[r] * bits[r]`` as ``sum_g value[g] * count(rows of g)``.

    By value: one group per distinct weight. By bits (as the C backend): for each sign and bit p of
    ``|w|``, the rows whose magnitude has bit p, with value +-2^p; int64 arithmetic wraps exactly
    like the reference's. Each plan is (order, starts, values) and its estimated cost per word.
    """
    n = weights.shape[0]
    values, inverse = np.unique(weights, return_inverse=True)
    order = np.argsort(inverse, kind="stable").astype(np.int64)
    starts = np.searchsorted(inverse[order], np.arange(values.shape[0] + 1)).astype(np.int64)
    by_value = (order, starts, values.astype(np.int64))
    raw = weights.view(np.uint64)
    neg = weights < 0
    mag = np.where(neg, np.uint64(0) - raw, raw)
    has = ((mag[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).astype(bool)
    groups, vals = [], []
    for sign_rows in (~neg, neg):
        for bit in np.flatnonzero((has & sign_rows[:, None]).any(axis=0)):
            groups.append(np.flatnonzero(has[:, bit] & sign_rows))
            unit = np.array([1], np.uint64) << np.uint64(bit)
            vals.append((np.uint64(0) - unit if sign_rows is neg else unit).view(np.int64)[0])
    sizes = np.array([g.shape[0] for g in groups], np.int64)
    by_bits = (np.concatenate(groups).astype(np.int64), np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
               np.array(vals, np.int64))
    # word operations per column word: counting ~0.5 a row, unpacking ~16 per counter plane
    def cost(plan_starts):
        sizes = np.diff(plan_starts)
        return 0.5 * sizes.sum() + 16.0 * (np.log2(sizes + 1) + 2).sum()
    return (by_value, cost(starts)), (by_bits, cost(by_bits[1])), 24.0 * n


def column_counts(x, weights, counts):
    n, n_words = x.shape
    if n == 0:
        return
    tw = _tile_words(n_words)
    n_tiles = -(-n_words // tw)
    par = _parallel(n * n_words) and n_tiles > 1
    bounds = _chunk_bounds(n_tiles, min(_threads, n_tiles)) if par else None
    if weights is None or weights.min() == weights.max():
        # one weight for all rows (Accumulator.add / remove): a single bit-sliced count
        value = 1 if weights is None else int(weights[0])
        plan = (np.arange(n, dtype=np.int64), np.array([0, n], np.int64), np.full(1, value, np.int64))
    else:
        weights = np.ascontiguousarray(weights, np.int64)
        (by_value, value_cost), (by_bits, bits_cost), direct_cost = _group_plans(weights)
        plan = None if direct_cost < min(value_cost, bits_cost) else (
            by_value if value_cost <= bits_cost else by_bits)
    if plan is None:
        # few rows with many distinct large weights: add them row by row
        if par:
            with _ParallelCall():
                _counts_weighted_parallel(x, weights, counts, bounds, tw)
        else:
            _counts_weighted_tiles(x, weights, counts, 0, n_tiles, tw)
    elif par:
        with _ParallelCall():
            _counts_groups_parallel(x, *plan, counts, bounds, tw)
    else:
        _counts_groups(x, *plan, counts, 0, n_tiles, tw)
