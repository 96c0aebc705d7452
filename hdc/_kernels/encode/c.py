"""The encode family on the C backend: no C kernels yet, so it runs the Numba kernels
(``encode/numba.py``) with the C backend's thread count, or the NumPy reference where Numba is
not installed.

Chosen on first call, so loading the C backend does not import Numba.
"""
import importlib

from .._c import lib

_impl = None
_threads = None


def _kernels():
    global _impl, _threads
    if _impl is None:
        try:
            _impl = importlib.import_module(".numba", __package__)
            _threads = importlib.import_module(".._numba_threads", __package__)
        except ImportError:
            _impl = importlib.import_module(".numpy_ref", __package__)
    if _threads is not None:
        # hdc.set_num_threads / HDC_NUM_THREADS reach the C backend; run Numba with as many
        n = int(lib.hdc_get_num_threads())
        if _threads._threads != n:
            _threads.set_num_threads(n)
        limit = int(lib.hdc_get_thread_limit())  # this thread's cap (hdc.backend.thread_limit)
        if _threads.get_thread_limit() != limit:
            _threads.set_thread_limit(limit)
    return _impl


def ngram_majority(tokens, offsets, table, sizes, tie, out):
    _kernels().ngram_majority(tokens, offsets, table, sizes, tie, out)


def record_majority(levels, ids, codebook, tie, out):
    _kernels().record_majority(levels, ids, codebook, tie, out)


def sdm_write(counters, active_ptr, active_idx, data, dim):
    _kernels().sdm_write(counters, active_ptr, active_idx, data, dim)


def sdm_read(counters, active_ptr, active_idx, out_sums):
    _kernels().sdm_read(counters, active_ptr, active_idx, out_sums)


def retrain_epoch(x, y, order, counts, totals, protos, tie, lr, dim, margin, moves):
    _kernels().retrain_epoch(x, y, order, counts, totals, protos, tie, lr, dim, margin, moves)
