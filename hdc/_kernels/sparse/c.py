"""The sparse family on the C backend: runs the Numba kernels (``sparse/numba.py``), or the NumPy
reference where Numba is not installed, until its C kernels land.

Chosen on first call, so loading the C backend does not import Numba.
"""
import importlib

_impl = None


def _kernels():
    global _impl
    if _impl is None:
        try:
            _impl = importlib.import_module(".numba", __package__)
        except ImportError:
            _impl = importlib.import_module(".numpy_ref", __package__)
    return _impl


def sparse_overlap(a, b, out):
    _kernels().sparse_overlap(a, b, out)


def sparse_cdist(a, b, out):
    _kernels().sparse_cdist(a, b, out)


def sparse_topk(q, m, k, out_overlap, out_idx):
    _kernels().sparse_topk(q, m, k, out_overlap, out_idx)


def sparse_block_counts(x, block_size, weights, counts):
    _kernels().sparse_block_counts(x, block_size, weights, counts)


def sparse_bundle(x, block_size, weights, tie, out):
    _kernels().sparse_bundle(x, block_size, weights, tie, out)


def sparse_record_bundle(idx, ids, levels, block_size, tie, out):
    _kernels().sparse_record_bundle(idx, ids, levels, block_size, tie, out)
