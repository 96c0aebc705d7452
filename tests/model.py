"""The unpacked NumPy model of DESIGN.md's semantics: the oracle every backend is compared with.

Hypervectors here are bool arrays of shape ``batch + (dim,)``.
"""
import numpy as np


def bind(a, b):
    return a ^ b


def permute(x, shift):
    return np.roll(x, shift, axis=-1)


def hamming(a, b):
    return (a != b).sum(-1)


def cdist(a, b):
    return (a[:, None, :] != b[None, :, :]).sum(-1)


def topk(q, m, k):
    d = cdist(q, m)
    order = np.lexsort((np.broadcast_to(np.arange(m.shape[0]), d.shape), d), axis=-1)[:, :k]
    return np.take_along_axis(d, order, -1), order


def bundle(x, weights=None, tie_bits=None):
    w = np.ones(x.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    counts = np.tensordot(w, x.astype(np.float64), axes=(0, 0))
    total = w.sum()
    out = counts * 2 > total
    if tie_bits is not None:
        out = np.where(counts * 2 == total, tie_bits, out)
    return out
