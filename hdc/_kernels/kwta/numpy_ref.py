"""NumPy reference of the k-winner-take-all attention family: kwta_select, kwta_softmax,
kwta_majority (per head, ``topk`` of each query, then the winners mixed)."""
import math

import numpy as np

from ..bundle.numpy_ref import pack_bits, unpack_bits
from ..search.numpy_ref import topk


def kwta_select(q, keys, k, n_visible, out_dist, out_idx):
    for h in range(q.shape[0]):
        topk(q[h], keys[h], k, n_visible, out_dist[h], out_idx[h])


def kwta_softmax(q, keys, k, n_visible, v, inv_temp, out, out_idx):
    n_h, n_q = q.shape[:2]
    dist = np.empty((n_h, n_q, k), np.int32)
    kwta_select(q, keys, k, n_visible, dist, out_idx)
    valid = out_idx >= 0
    # weight of winner r: exp(-(d_r - d_0) / T) from a table of integer gaps; summed in float64
    # in winner order, exactly as the C and Numba kernels do
    # (math.exp, the C library's, as the C and Numba kernels use; NumPy's SIMD exp may differ
    # in the last bit)
    table = np.array([math.exp(-(delta * inv_temp)) for delta in range(q.shape[2] * 64 + 1)])
    gap = np.where(valid, dist.astype(np.int64) - dist[..., :1].astype(np.int64), 0)
    weight = table[gap]
    heads = np.arange(n_h)[:, None]
    acc = np.zeros(out.shape, np.float64)
    total = np.zeros(out.shape[:2], np.float64)
    for r in range(k):
        live = valid[..., r]
        rows = v[heads, np.where(live, out_idx[..., r], 0)]        # (H, Lq, dv)
        acc = np.where(live[..., None], acc + weight[..., r, None] * rows.astype(np.float64), acc)
        total = np.where(live, total + weight[..., r], total)
    seen = valid[..., 0]
    scale = 1.0 / np.where(seen, total, 1.0)
    out[...] = np.where(seen[..., None], acc * scale[..., None], 0.0)


def kwta_majority(q, keys, k, n_visible, v, out, out_idx):
    n_h, n_q = q.shape[:2]
    dist = np.empty((n_h, n_q, k), np.int32)
    kwta_select(q, keys, k, n_visible, dist, out_idx)
    valid = out_idx >= 0
    count = valid.sum(-1)                                         # (H, Lq)
    rows = v[np.arange(n_h)[:, None, None], np.where(valid, out_idx, 0)]   # (H, Lq, k, VW)
    ones = (unpack_bits(rows) & valid[..., None]).sum(-2, dtype=np.int64)       # (H, Lq, VW * 64)
    best = unpack_bits(rows[:, :, 0])
    twice, n = 2 * ones, count[..., None]
    # more than half the winners; an even count ties to the best winner's bit; no winner: 0
    bits = ((twice > n) | ((twice == n) & best)) & (n > 0)
    out[...] = pack_bits(bits)
