"""NumPy reference of the ``kwta_sparse`` family: brute-force overlap of every visible pair.

The readable definition the event-driven kernels are tested against; O(Lq x Lk x B) work.
"""
import math

import numpy as np

from ..bundle.numpy_ref import pack_bits as _pack, unpack_bits as _bits

_QUERY_ROWS = 256   # queries scored at a time, so memory stays O(256 x Lk x B)


def kwta_sparse_select(q, keys, block_size, k, n_visible, out_score, out_idx):
    n_h, n_q, _ = q.shape
    n_k = keys.shape[1]
    touched = 0
    cols = np.arange(n_k)
    for h in range(n_h):
        for start in range(0, n_q, _QUERY_ROWS):
            rows = slice(start, min(start + _QUERY_ROWS, n_q))
            score = (q[h, rows, None, :] == keys[h, None, :, :]).sum(-1, dtype=np.int64)
            if n_visible is not None:
                score[cols[None, :] >= n_visible[rows, None]] = 0
            touched += int((score > 0).sum())
            # highest overlap first, ties by smaller index: sort by (-score, index)
            order = np.argsort(-score, axis=1, kind="stable")[:, :k]
            best = np.take_along_axis(score, order, 1)
            live = best > 0
            pad = k - order.shape[1]
            out_score[h, rows] = np.pad(np.where(live, best, -1), ((0, 0), (0, pad)),
                                        constant_values=-1)
            out_idx[h, rows] = np.pad(np.where(live, order, -1), ((0, 0), (0, pad)),
                                      constant_values=-1)
    return touched


def kwta_sparse_softmax(q, keys, block_size, k, n_visible, v, inv_temp, out, out_idx):
    n_h, n_q, n_b = q.shape
    score = np.empty((n_h, n_q, k), np.int32)
    touched = kwta_sparse_select(q, keys, block_size, k, n_visible, score, out_idx)
    valid = out_idx >= 0
    # weight of winner r: exp((s_r - s_0) / T) from a table of integer gaps (math.exp, the C
    # library's, as the C and Numba kernels use); summed in float64 in winner order
    table = np.array([math.exp(-(gap * inv_temp)) for gap in range(n_b + 1)])
    weight = table[np.where(valid, score[..., :1] - score, 0)]
    heads = np.arange(n_h)[:, None]
    acc = np.zeros(out.shape, np.float64)
    total = np.zeros(out.shape[:2], np.float64)
    for r in range(k):
        live = valid[..., r]
        rows = v[heads, np.where(live, out_idx[..., r], 0)]
        acc = np.where(live[..., None], acc + weight[..., r, None] * rows.astype(np.float64), acc)
        total = np.where(live, total + weight[..., r], total)
    seen = valid[..., 0]
    scale = 1.0 / np.where(seen, total, 1.0)
    out[...] = np.where(seen[..., None], acc * scale[..., None], 0.0)
    return touched


def kwta_sparse_majority(q, keys, block_size, k, n_visible, v, out, out_idx):
    n_h, n_q, _ = q.shape
    score = np.empty((n_h, n_q, k), np.int32)
    touched = kwta_sparse_select(q, keys, block_size, k, n_visible, score, out_idx)
    valid = out_idx >= 0
    count = valid.sum(-1)
    rows = v[np.arange(n_h)[:, None, None], np.where(valid, out_idx, 0)]   # (H, Lq, k, VW)
    ones = (_bits(rows) & valid[..., None]).sum(-2, dtype=np.int64)
    best = _bits(rows[:, :, 0])
    twice, n = 2 * ones, count[..., None]
    bits = ((twice > n) | ((twice == n) & best)) & (n > 0)
    out[...] = _pack(bits)
    return touched
