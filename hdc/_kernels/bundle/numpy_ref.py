"""NumPy reference of the bundle family: bundle (majority) and column_counts.

Also the bit (un)packing helpers the other references use (``unpack_bits``, ``pack_bits``).
"""
import numpy as np

_ONE = np.uint64(1)
_BIT_INDEX = np.arange(64, dtype=np.uint64)


def unpack_bits(x):
    """Unpack (..., W) words into (..., W * 64) uint8 bits, bit b of word w at column 64 w + b."""
    return ((x[..., None] >> _BIT_INDEX) & _ONE).astype(np.uint8).reshape(x.shape[:-1] + (-1,))


def pack_bits(bits):
    """Inverse of ``unpack_bits``: (..., W * 64) 0/1 values into (..., W) words."""
    grouped = bits.reshape(bits.shape[:-1] + (-1, 64)).astype(np.uint64)
    return (grouped << _BIT_INDEX).sum(axis=-1, dtype=np.uint64)


def bundle(x, tie, out):
    n = x.shape[0]
    counts = np.zeros(x.shape[1] * 64, np.int64)
    column_counts(x, None, counts)
    tie_bits = unpack_bits(tie[None])[0]
    bits = np.where(2 * counts > n, 1, np.where(2 * counts == n, tie_bits, 0))
    out[...] = pack_bits(bits)


def column_counts(x, weights, counts):
    for start in range(0, x.shape[0], 256):
        bits = unpack_bits(x[start:start + 256]).astype(np.int64)
        if weights is None:
            counts += bits.sum(axis=0)
        else:
            counts += weights[start:start + 256] @ bits
