"""Fused Numba kernels of k-winner-take-all attention: the ``kwta_*`` functions of the numba backend.

One pass per query does distance, selection (see :func:`_winners`) and mixing, in parallel over
heads and queries. Softmax weights come from a table ``exp(-delta / T)`` of integer distance gaps
and are accumulated in float64 in winner order: the arithmetic of the C kernel and of the NumPy
reference, so the three backends give the same bits.
"""
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ...primitives import _ctpop64, jit
from .. import EMPTY_DISTANCE

_N_CHUNKS = 64  # queries are dealt to chunks round-robin, so causal rows balance across threads


@intrinsic
def _cttz(typingctx, x):
    """LLVM ``cttz`` (count trailing zeros) of a non-zero uint64 -> uint64."""
    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))
    return types.uint64(types.uint64), codegen


@jit
def _count_le(dbuf, n, t):
    c = 0
    for j in range(n):
        c += dbuf[j] <= t
    return c

@jit
def _winners(qrow, kt, nvis, kk, guess, dbuf, flags, fw, win_d, win_i):
    """win_d/win_i[:kk] = the kk nearest of keys [0, nvis), nearest first, ties by index.

    1. vectorised popcount passes (four key words each) fill the distance row ``dbuf``;
    2. the cut-off t (the k-th smallest distance: #(d < t) < kk <= #(d <= t)) is searched
       from ``guess`` (the previous query's) with vectorised counts;
    3. a vectorised pass writes the byte flags (d <= t); read 8 at a time as words, zero
       words skipped and set bytes found with tzcnt, they give the keys with d < t and the
       first kk - #(d < t) keys with d == t (ties: smaller index first);
    4. those are sorted by (distance, index) by insertion.
    Returns t, the next query's guess.
    """
    n_w = kt.shape[0]
    w = 0
    while w < n_w:                        # four key words per pass over the distance row
        if n_w - w >= 4:
            ka, kb, kc, kd = kt[w], kt[w + 1], kt[w + 2], kt[w + 3]
            qa, qb, qc, qd = qrow[w], qrow[w + 1], qrow[w + 2], qrow[w + 3]
            if w == 0:
                for j in range(nvis):
                    dbuf[j] = (_ctpop64(qa ^ ka[j]) + _ctpop64(qb ^ kb[j])
                               + _ctpop64(qc ^ kc[j]) + _ctpop64(qd ^ kd[j]))
            else:
                for j in range(nvis):
                    dbuf[j] += (_ctpop64(qa ^ ka[j]) + _ctpop64(qb ^ kb[j])
                                + _ctpop64(qc ^ kc[j]) + _ctpop64(qd ^ kd[j]))
            w += 4
        else:
            ka = kt[w]
            qa = qrow[w]
            if w == 0:
                for j in range(nvis):
                    dbuf[j] = _ctpop64(qa ^ ka[j])
            else:
                for j in range(nvis):
                    dbuf[j] += _ctpop64(qa ^ ka[j])
            w += 1
    # exact cut-off: lo has fewer than kk keys at or below it, hi at least kk
    dmax = n_w * 64
    t = min(max(guess, 0), dmax)
    if _count_le(dbuf, nvis, np.uint64(t)) >= kk:
        hi = t
        step = 1
        lo = t - step
        while lo >= 0 and _count_le(dbuf, nvis, np.uint64(lo)) >= kk:
            hi = lo
            step *= 2
            lo = hi - step
        lo = max(lo, -1)
    else:
        lo = t
        step = 1
        hi = t + step
        while hi < dmax and _count_le(dbuf, nvis, np.uint64(hi)) < kk:
            lo = hi
            step *= 2
            hi = lo + step
        hi = min(hi, dmax)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _count_le(dbuf, nvis, np.uint64(mid)) >= kk:
            hi = mid
        else:
            lo = mid
    t = np.uint64(hi)
    n_less = _count_le(dbuf, nvis, np.uint64(hi - 1)) if hi > 0 else 0
    need_eq = kk - n_less
    n = 0
    n_eq = 0
    # flags[j] = (d_j <= t), one vectorised pass; then 8 flags per word, zero words skipped
    for j in range(nvis):                 # flags is a uint8 view of the words fw
        flags[j] = dbuf[j] <= t
    n_fw = (nvis + 7) // 8
    for j in range(nvis, n_fw * 8):
        flags[j] = 0
    for wi in range(n_fw):
        x = fw[wi]
        while x:
            byte = np.int64(_cttz(x)) >> 3
            x &= ~(np.uint64(0xFF) << np.uint64(8 * byte))
            j = wi * 8 + byte
            d = dbuf[j]
            if d < t:
                p = n
                while p > 0 and win_d[p - 1] > d:
                    win_d[p] = win_d[p - 1]
                    win_i[p] = win_i[p - 1]
                    p -= 1
                win_d[p] = d
                win_i[p] = j
                n += 1
            elif n_eq < need_eq:
                # ties at the cut-off go after every nearer key, in index order
                win_d[kk - need_eq + n_eq] = d
                win_i[kk - need_eq + n_eq] = j
                n_eq += 1
        if n == n_less and n_eq == need_eq:
            break
    return np.int64(hi)


@jit
def _scratch(n_k, topk):
    """Per-thread buffers of :func:`_winners`: (dbuf, fw, flags, win_d, win_i)."""
    fw = np.empty(n_k // 8 + 1, np.uint64)
    return (np.empty(n_k, np.uint64), fw, fw.view(np.uint8), np.empty(topk, np.uint64),
            np.empty(topk, np.int64))


@jit
def _query(qrow, kt_h, nvis, topk, guess, scratch, idx_row):
    """One query's winners into ``scratch`` (win_d, win_i) and ``idx_row`` (padded with -1).

    Returns ``(kk, guess)``: the number of winners and the next query's guess."""
    dbuf, fw, flags, win_d, win_i = scratch
    kk = min(topk, nvis)
    if kk > 0:
        guess = _winners(qrow, kt_h, nvis, kk, guess, dbuf, flags, fw, win_d, win_i)
    for r in range(kk):
        idx_row[r] = win_i[r]
    for r in range(kk, topk):
        idx_row[r] = -1
    return kk, guess


@jit(parallel=True)
def _select(qw, kt, topk, nvis_arr, dim, out_dist, out_idx):
    n_h, n_q, _ = qw.shape
    total = n_h * n_q
    for c in numba.prange(_N_CHUNKS):
        scratch = _scratch(kt.shape[2], topk)
        win_d = scratch[3]
        guess = dim // 2
        for t in range(c, total, _N_CHUNKS):
            h, i = t // n_q, t % n_q
            kk, guess = _query(qw[h, i], kt[h], nvis_arr[i], topk, guess, scratch, out_idx[h, i])
            for r in range(topk):
                out_dist[h, i, r] = win_d[r] if r < kk else EMPTY_DISTANCE


@jit(parallel=True)
def _softmax(qw, kt, v, topk, nvis_arr, dim, inv_temp, out, out_idx):
    n_h, n_q, _ = qw.shape
    dv = v.shape[2]
    total = n_h * n_q
    # distances are integers: the softmax weights exp(-delta / T) come from a table
    table = np.empty(dim + 1, np.float64)
    for delta in range(dim + 1):
        table[delta] = np.exp(-(delta * inv_temp))
    for c in numba.prange(_N_CHUNKS):
        scratch = _scratch(kt.shape[2], topk)
        win_d, win_i = scratch[3], scratch[4]
        acc = np.empty(dv, np.float64)
        guess = dim // 2
        for t in range(c, total, _N_CHUNKS):
            h, i = t // n_q, t % n_q
            kk, guess = _query(qw[h, i], kt[h], nvis_arr[i], topk, guess, scratch, out_idx[h, i])
            if kk == 0:                           # sees no key: zeros
                out[h, i, :] = 0.0
                continue
            acc[:] = 0.0
            d0 = win_d[0]
            total_w = 0.0
            for r in range(kk):
                wgt = table[win_d[r] - d0]     # exp((score_j - score_0) / T), score_j - score_0 = d0 - d_j
                total_w += wgt
                vj = v[h, win_i[r]]
                for e in range(dv):
                    acc[e] += wgt * vj[e]
            scale = 1.0 / total_w
            for e in range(dv):
                out[h, i, e] = acc[e] * scale


@jit
def majority_of_rows(v, rows, n, counts, out):
    """out[w] = bit majority of ``v[rows[r], w]`` over r < n (n >= 1); even counts tie to the
    bit of ``v[rows[0]]``. v (L, W) uint64, counts int64 (64,) scratch, out (W,) uint64."""
    best = rows[0]
    for w in range(v.shape[1]):
        counts[:] = 0
        for r in range(n):
            word = v[rows[r], w]
            for b in range(64):
                counts[b] += (word >> np.uint64(b)) & np.uint64(1)
        tie_word = v[best, w]
        res = np.uint64(0)
        for b in range(64):
            twice = 2 * counts[b]
            if twice > n or (twice == n and (tie_word >> np.uint64(b)) & np.uint64(1)):
                res |= np.uint64(1) << np.uint64(b)
        out[w] = res


@jit(parallel=True)
def _majority(qw, kt, vw, topk, nvis_arr, dim, out, out_idx):
    n_h, n_q, _ = qw.shape
    total = n_h * n_q
    for c in numba.prange(_N_CHUNKS):
        scratch = _scratch(kt.shape[2], topk)
        win_i = scratch[4]
        counts = np.empty(64, np.int64)
        guess = dim // 2
        for t in range(c, total, _N_CHUNKS):
            h, i = t // n_q, t % n_q
            kk, guess = _query(qw[h, i], kt[h], nvis_arr[i], topk, guess, scratch, out_idx[h, i])
            if kk == 0:                           # sees no key: zeros
                out[h, i, :] = 0
                continue
            majority_of_rows(vw[h], win_i, kk, counts, out[h, i])


def _inputs(keys, n_visible, n_q):
    n_k = keys.shape[1]
    kt = np.ascontiguousarray(keys.transpose(0, 2, 1))    # (H, W, Lk): key words streamed per word
    nvis = np.full(n_q, n_k, np.int64) if n_visible is None else np.clip(n_visible, 0, n_k)
    return kt, nvis


def kwta_select(q, keys, k, n_visible, out_dist, out_idx):
    """See :mod:`hdc._kernels`: each query's k nearest visible keys, per head."""
    kt, nvis = _inputs(keys, n_visible, q.shape[1])
    if q.shape[1] and q.shape[0]:
        _select(q, kt, k, nvis, q.shape[2] * 64, out_dist, out_idx)


def kwta_softmax(q, keys, k, n_visible, v, inv_temp, out, out_idx):
    """See :mod:`hdc._kernels`: softmax of the winners' scores mixing v into out."""
    kt, nvis = _inputs(keys, n_visible, q.shape[1])
    if q.shape[1] and q.shape[0]:
        _softmax(q, kt, v, k, nvis, q.shape[2] * 64, float(inv_temp), out, out_idx)


def kwta_majority(q, keys, k, n_visible, v, out, out_idx):
    """See :mod:`hdc._kernels`: majority of the winners' value words."""
    kt, nvis = _inputs(keys, n_visible, q.shape[1])
    if q.shape[1] and q.shape[0]:
        _majority(q, kt, v, k, nvis, q.shape[2] * 64, out, out_idx)
