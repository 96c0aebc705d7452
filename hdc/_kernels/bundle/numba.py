"""Numba kernels of the bundle family: bundle (majority) and column_counts.

Bit-sliced carry-save counters (a Harley-Seal adder tree over groups of 16 rows feeding
ripple-carry counter planes), over tiles of word columns, one run of tiles per thread.
"""
import numba
import numpy as np

from ...primitives import jit
from .._numba_threads import ParallelCall, chunk_bounds, get_num_threads, parallel


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
    per = -(-n_words // get_num_threads())
    return int(min(256, max(8, -(-per // 8) * 8)))


def bundle(x, tie, out):
    n, n_words = x.shape
    rows = np.arange(n, dtype=np.int64)
    tw = _tile_words(n_words)
    n_tiles = -(-n_words // tw)
    if parallel(n * n_words) and n_tiles > 1:
        with ParallelCall():
            bounds = chunk_bounds(n_tiles, min(get_num_threads(), n_tiles))
            _bundle_parallel(x, rows, tie, out, bounds, tw)
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
    par = parallel(n * n_words) and n_tiles > 1
    bounds = chunk_bounds(n_tiles, min(get_num_threads(), n_tiles)) if par else None
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
            with ParallelCall():
                _counts_weighted_parallel(x, weights, counts, bounds, tw)
        else:
            _counts_weighted_tiles(x, weights, counts, 0, n_tiles, tw)
    elif par:
        with ParallelCall():
            _counts_groups_parallel(x, *plan, counts, bounds, tw)
    else:
        _counts_groups(x, *plan, counts, 0, n_tiles, tw)
