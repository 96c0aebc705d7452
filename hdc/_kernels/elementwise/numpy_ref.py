"""NumPy reference of the element-wise family: bind, permute, popcount, hamming (rows)."""
import numpy as np

_ONE = np.uint64(1)


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
    np.sum(np.bitwise_count(x), axis=-1, dtype=np.int32, out=out)


def hamming(a, b, out):
    np.sum(np.bitwise_count(a ^ b), axis=-1, dtype=np.int32, out=out)
