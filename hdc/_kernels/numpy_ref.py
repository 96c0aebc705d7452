"""NumPy reference backend: the readable definition of every kernel (see ``hdc._kernels``).

Vectorised over rows with ``np.bitwise_count``; no compilation, always available.
"""
import math

import numpy as np

_ONE = np.uint64(1)
_BIT_INDEX = np.arange(64, dtype=np.uint64)
# Distances are computed for this many stored rows at a time, so memory stays bounded.
_BLOCK_ROWS = 4096
# Words in the XOR temporary of one cdist block (8 MiB).
_TEMP_WORDS = 1 << 20


def set_num_threads(n):
    """The NumPy backend is single-threaded; accepted for a uniform interface."""


def get_num_threads():
    return 1


def bind(a, b, out):
    np.bitwise_xor(a, b, out=out)


def _rotation_plan(dim, shift):
    """For each output word, where its bits come from.

    Output bit i takes input bit ``(i - shift) % dim``. Output word j covers bits
    ``[64 j, 64 j + 64)``; they come from at most two contiguous runs of the input:
    ``src`` (length ``n1``) and, when the run wraps past ``dim``, a second run starting at 0.
    Returns (start1, len1, len2) as int64 arrays of length n_words.
    """
    n_words = (dim + 63) // 64
    first = np.arange(n_words, dtype=np.int64) * 64
    width = np.minimum(64, dim - first)
    start1 = (first - shift) % dim
    len1 = np.minimum(width, dim - start1)
    len2 = width - len1
    return start1, len1, len2


def _read_bits(x, start, length):
    """Read ``length`` (0..64) bits of every row of x starting at bit ``start`` (arrays over words)."""
    n_words = x.shape[-1]
    word = start // 64
    off = (start % 64).astype(np.uint64)
    lo = x[:, word] >> off
    nxt = np.minimum(word + 1, n_words - 1)
    hi_shift = (64 - off) % 64
    hi = np.where(off > 0, x[:, nxt] << hi_shift, np.uint64(0))
    hi = np.where(word + 1 < n_words, hi, np.uint64(0))
    value = lo | hi
    mask = np.where(length >= 64, ~np.uint64(0), (_ONE << (length.astype(np.uint64) % 64)) - _ONE)
    return value & mask


def permute(x, dim, shift, out):
    start1, len1, len2 = _rotation_plan(dim, shift)
    part1 = _read_bits(x, start1, len1)
    part2 = _read_bits(x, np.zeros_like(start1), len2)
    out[...] = part1 | (part2 << (len1 % 64).astype(np.uint64))


def popcount(x, out):
    np.sum(np.bitwise_count(x), axis=-1, dtype=np.uint32, out=out)


def hamming(a, b, out):
    np.sum(np.bitwise_count(a ^ b), axis=-1, dtype=np.uint32, out=out)


def cdist(a, b, out):
    # block over both sides so the (rows_a, _BLOCK_ROWS, w) temporary stays near _TEMP_WORDS
    rows_a = max(1, _TEMP_WORDS // (_BLOCK_ROWS * max(1, a.shape[1])))
    for i in range(0, a.shape[0], rows_a):
        qa = a[i:i + rows_a, None, :]
        for j in range(0, b.shape[0], _BLOCK_ROWS):
            out[i:i + rows_a, j:j + _BLOCK_ROWS] = np.sum(
                np.bitwise_count(qa ^ b[None, j:j + _BLOCK_ROWS, :]), axis=-1, dtype=np.uint32)


def topk(q, m, k, n_visible, out_dist, out_idx):
    n_q, n_m = q.shape[0], m.shape[0]
    visible = np.full(n_q, n_m, np.int64) if n_visible is None else np.minimum(n_visible, n_m)
    best_d = np.full((n_q, k), np.iinfo(np.uint32).max, np.uint32)
    best_i = np.full((n_q, k), -1, np.int64)
    block = np.empty((n_q, min(_BLOCK_ROWS, max(n_m, 1))), np.uint32)
    for j in range(0, n_m, _BLOCK_ROWS):
        stop = min(n_m, j + _BLOCK_ROWS)
        d = block[:, :stop - j]
        cdist(q, m[j:stop], d)
        idx = np.broadcast_to(np.arange(j, stop, dtype=np.int64), d.shape)
        d = np.where(idx < visible[:, None], d, np.iinfo(np.uint32).max)
        idx = np.where(idx < visible[:, None], idx, -1)
        cand_d = np.concatenate([best_d, d], axis=1)
        cand_i = np.concatenate([best_i, idx], axis=1)
        # order by (distance, index) with invisible (-1) last among equals
        key_i = np.where(cand_i < 0, np.iinfo(np.int64).max, cand_i)
        order = np.lexsort((key_i, cand_d), axis=-1)[:, :k]
        best_d = np.take_along_axis(cand_d, order, -1)
        best_i = np.take_along_axis(cand_i, order, -1)
    out_dist[...] = best_d
    out_idx[...] = best_i


def _bits(x):
    """Unpack (..., W) words into (..., W * 64) uint8 bits, bit b of word w at column 64 w + b."""
    return ((x[..., None] >> _BIT_INDEX) & _ONE).astype(np.uint8).reshape(x.shape[:-1] + (-1,))


def _pack(bits):
    """Inverse of ``_bits``: (..., W * 64) 0/1 values into (..., W) words."""
    grouped = bits.reshape(bits.shape[:-1] + (-1, 64)).astype(np.uint64)
    return (grouped << _BIT_INDEX).sum(axis=-1, dtype=np.uint64)


def bundle(x, tie, out):
    n = x.shape[0]
    counts = np.zeros(x.shape[1] * 64, np.int64)
    column_counts(x, None, counts)
    tie_bits = _bits(tie[None])[0]
    bits = np.where(2 * counts > n, 1, np.where(2 * counts == n, tie_bits, 0))
    out[...] = _pack(bits)


def column_counts(x, weights, counts):
    for start in range(0, x.shape[0], 256):
        bits = _bits(x[start:start + 256]).astype(np.int64)
        if weights is None:
            counts += bits.sum(axis=0)
        else:
            counts += weights[start:start + 256] @ bits


# ---- k-winner-take-all attention ------------------------------------------------------------

def kwta_select(q, keys, k, n_visible, out_dist, out_idx):
    for h in range(q.shape[0]):
        topk(q[h], keys[h], k, n_visible, out_dist[h], out_idx[h])


def kwta_softmax(q, keys, k, n_visible, v, inv_temp, out, out_idx):
    n_h, n_q = q.shape[:2]
    dist = np.empty((n_h, n_q, k), np.uint32)
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
    dist = np.empty((n_h, n_q, k), np.uint32)
    kwta_select(q, keys, k, n_visible, dist, out_idx)
    valid = out_idx >= 0
    count = valid.sum(-1)                                         # (H, Lq)
    rows = v[np.arange(n_h)[:, None, None], np.where(valid, out_idx, 0)]   # (H, Lq, k, VW)
    ones = (_bits(rows) & valid[..., None]).sum(-2, dtype=np.int64)       # (H, Lq, VW * 64)
    best = _bits(rows[:, :, 0])
    twice, n = 2 * ones, count[..., None]
    # more than half the winners; an even count ties to the best winner's bit; no winner: 0
    bits = ((twice > n) | ((twice == n) & best)) & (n > 0)
    out[...] = _pack(bits)
