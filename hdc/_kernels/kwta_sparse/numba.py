"""Numba kernels of the ``kwta_sparse`` family: event-driven, as the C kernel.

Per head an inverted index lists, for every block ``b``, the keys sorted by their index in that
block (stable, so the keys of one ``(b, index)`` bucket ascend). A query looks up its bucket in
each block with a binary search and walks it until the first key it may not see (the buckets
ascend, so the index a causal query sees is the prefix of every bucket built from the keys
before it), counting overlaps per key; only the keys it touched are ranked. Work per query is
O(B log Lk + overlaps), memory O(H x B x Lk) plus O(Lk) per thread.
"""
import numba
import numpy as np

from ...primitives import jit
from .._numba_threads import ParallelCall
from ..kwta.numba import majority_of_rows

_N_CHUNKS = 64  # queries dealt to chunks round-robin, so causal rows balance across threads


@jit(parallel=True)
def _index(keys):
    """(order, vals) (H, B, Lk): per head and block, key numbers sorted by index (stable)."""
    n_h, n_k, n_b = keys.shape
    order = np.empty((n_h, n_b, n_k), np.int64)
    vals = np.empty((n_h, n_b, n_k), np.uint32)
    for t in numba.prange(n_h * n_b):
        h, b = t // n_b, t % n_b
        col = keys[h, :, b].copy()
        perm = np.argsort(col, kind="mergesort")
        for p in range(n_k):
            order[h, b, p] = perm[p]
            vals[h, b, p] = col[perm[p]]
    return order, vals


@jit
def _query(qrow, order_h, vals_h, nvis, k, counts, touched, win_s, win_i):
    """Winners of one query into win_s/win_i[:n]; returns (n, pairs touched)."""
    n_t = 0
    for b in range(qrow.shape[0]):
        x = qrow[b]
        p = np.searchsorted(vals_h[b], x, side="left")
        end = np.searchsorted(vals_h[b], x, side="right")
        while p < end:
            j = order_h[b, p]
            if j >= nvis:
                break
            if counts[j] == 0:
                touched[n_t] = j
                n_t += 1
            counts[j] += 1
            p += 1
    n = 0
    for t in range(n_t):
        j = touched[t]
        c = counts[j]
        counts[j] = 0
        if n == k:
            if c < win_s[k - 1] or (c == win_s[k - 1] and j > win_i[k - 1]):
                continue
            p = k - 1
        else:
            p = n
            n += 1
        while p > 0 and (win_s[p - 1] < c or (win_s[p - 1] == c and win_i[p - 1] > j)):
            win_s[p] = win_s[p - 1]
            win_i[p] = win_i[p - 1]
            p -= 1
        win_s[p] = c
        win_i[p] = j
    return n, n_t


@jit(parallel=True)
def _run(q, order, vals, k, nvis_arr, mode, vf, vw, inv_temp, out_score, out_f, out_w, out_idx):
    """mode 0: select, 1: softmax (vf, out_f), 2: majority (vw, out_w)."""
    n_h, n_q, n_b = q.shape
    n_k = order.shape[2]
    total = n_h * n_q
    table = np.empty(n_b + 1, np.float64)
    for gap in range(n_b + 1):
        table[gap] = np.exp(-(gap * inv_temp))
    pairs = np.zeros(_N_CHUNKS, np.int64)
    for c in numba.prange(_N_CHUNKS):
        counts = np.zeros(n_k, np.int32)
        touched = np.empty(n_k, np.int64)
        win_s = np.empty(k, np.int64)
        win_i = np.empty(k, np.int64)
        acc = np.empty(vf.shape[2], np.float64)
        bit_counts = np.empty(64, np.int64)
        for t in range(c, total, _N_CHUNKS):
            h, i = t // n_q, t % n_q
            n, n_t = _query(q[h, i], order[h], vals[h], nvis_arr[i], k, counts, touched,
                            win_s, win_i)
            pairs[c] += n_t
            for r in range(k):
                out_idx[h, i, r] = win_i[r] if r < n else -1
            if mode == 0:
                for r in range(k):
                    out_score[h, i, r] = win_s[r] if r < n else -1
            elif mode == 1:
                if n == 0:
                    out_f[h, i, :] = 0.0
                    continue
                acc[:] = 0.0
                total_w = 0.0
                for r in range(n):
                    wgt = table[win_s[0] - win_s[r]]
                    total_w += wgt
                    vj = vf[h, win_i[r]]
                    for e in range(vj.shape[0]):
                        acc[e] += wgt * vj[e]
                scale = 1.0 / total_w
                for e in range(acc.shape[0]):
                    out_f[h, i, e] = acc[e] * scale
            else:
                if n == 0:
                    out_w[h, i, :] = 0
                    continue
                majority_of_rows(vw[h], win_i, n, bit_counts, out_w[h, i])
    return pairs.sum()


_NO_F = np.empty((1, 1, 1), np.float64)
_NO_W = np.empty((1, 1, 1), np.uint64)
_NO_S = np.empty((1, 1, 1), np.int32)


def _call(q, keys, k, n_visible, mode, vf, vw, inv_temp, out_score, out_f, out_w, out_idx):
    n_h, n_q, _ = q.shape
    n_k = keys.shape[1]
    if n_h == 0 or n_q == 0:
        return 0
    nvis = np.full(n_q, n_k, np.int64) if n_visible is None else np.clip(n_visible, 0, n_k)
    with ParallelCall():
        order, vals = _index(keys)
        return int(_run(q, order, vals, k, nvis, mode, vf, vw, float(inv_temp), out_score, out_f,
                        out_w, out_idx))


def kwta_sparse_select(q, keys, block_size, k, n_visible, out_score, out_idx):
    return _call(q, keys, k, n_visible, 0, _NO_F, _NO_W, 0.0, out_score, _NO_F, _NO_W, out_idx)


def kwta_sparse_softmax(q, keys, block_size, k, n_visible, v, inv_temp, out, out_idx):
    return _call(q, keys, k, n_visible, 1, v, _NO_W, inv_temp, _NO_S, out, _NO_W, out_idx)


def kwta_sparse_majority(q, keys, block_size, k, n_visible, v, out, out_idx):
    return _call(q, keys, k, n_visible, 2, _NO_F, v, 0.0, _NO_S, _NO_F, out, out_idx)
