"""Threads of the Numba kernels, shared by every family's ``numba.py``.

``set_num_threads`` / ``get_num_threads`` (the numba backend's thread count), ``set_thread_limit``
/ ``get_thread_limit`` (a cap for the calling thread only), ``parallel(work)``
(is a parallel launch worth it for this much work?), ``ParallelCall`` (the context every parallel
kernel call runs in) and ``chunk_bounds`` (contiguous per-thread ranges).

>>> from hdc._kernels._numba_threads import chunk_bounds
>>> chunk_bounds(10, 3).tolist()
[0, 3, 6, 10]
"""
import threading
import time

import numba
import numpy as np

from ..primitives import jit

_MAX_THREADS = max(1, int(numba.config.NUMBA_NUM_THREADS))
_threads = _MAX_THREADS
_local = threading.local()  # .limit: this thread's cap (set_thread_limit), 0 or absent: none
# The 'workqueue' threading layer aborts on concurrent parallel calls; serialise them there.
_workqueue_lock = threading.Lock()
_layer = None

# Parallel kernels run when their work (in words touched) exceeds this; None: calibrate on first
# use from the measured cost of starting a parallel region (about 10 us with the 'workqueue'
# layer, but milliseconds with 'omp' on some virtual machines).
_par_work = None
_MIN_PAR_WORK = 1 << 17
# Roughly the serial cost of one word of work (XOR + popcount + add, vectorised), in seconds.
_SECONDS_PER_WORD = 0.3e-9


def set_num_threads(n):
    """Threads for the parallel kernels, clamped to ``numba.config.NUMBA_NUM_THREADS``.

    Also calls ``numba.set_num_threads`` (numba keeps that per calling thread; kernels called
    from other threads set it again on entry).
    """
    global _threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    _threads = min(int(n), _MAX_THREADS)
    numba.set_num_threads(_threads)


def get_num_threads():
    """Threads the parallel kernels called from this thread use: the count, capped by this
    thread's :func:`set_thread_limit` (at most ``numba.config.NUMBA_NUM_THREADS``)."""
    limit = getattr(_local, "limit", 0)
    return min(_threads, limit) if limit else _threads


def set_thread_limit(n):
    """Cap the threads of kernels called from the calling thread at ``n`` (0: no cap); other
    threads keep theirs."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    _local.limit = int(n)


def get_thread_limit():
    """The calling thread's cap (:func:`set_thread_limit`), 0 for none."""
    return getattr(_local, "limit", 0)


@jit(parallel=True)
def _noop_parallel(flags):
    for c in numba.prange(flags.shape[0]):
        flags[c] += 1


def _calibrate():
    """Work above which a parallel launch pays: 4x its measured start-up cost, in words."""
    flags = np.zeros(_threads, np.int64)
    with ParallelCall():
        _noop_parallel(flags)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            _noop_parallel(flags)
            times.append(time.perf_counter() - start)
    return max(_MIN_PAR_WORK, int(4 * sorted(times)[2] / _SECONDS_PER_WORD))


def parallel(work):
    """True when ``work`` words of work are worth a parallel launch on more than one thread."""
    global _par_work
    if get_num_threads() == 1 or work <= 0 or work < _MIN_PAR_WORK:
        return False
    if _par_work is None:
        _par_work = _calibrate()
    return work >= _par_work


class ParallelCall:
    """Context for calling a parallel kernel: sets numba's thread count (it is per calling
    thread) and, under the 'workqueue' threading layer (or before the layer is known), holds a
    lock, because that layer aborts the process on concurrent parallel calls."""

    def __enter__(self):
        n = get_num_threads()
        if numba.get_num_threads() != n:
            numba.set_num_threads(n)
        self._locked = _layer in (None, "workqueue")
        if self._locked:
            _workqueue_lock.acquire()
        return self

    def __exit__(self, *exc):
        global _layer
        try:
            if _layer is None:
                _layer = numba.threading_layer()
        except ValueError:      # no parallel region ran yet
            pass
        finally:
            if self._locked:
                _workqueue_lock.release()
        return False


def chunk_bounds(n, chunks):
    """Split ``range(n)`` into ``chunks`` contiguous near-equal ranges: (start, stop) of chunk c is
    ``bounds[c], bounds[c + 1]``."""
    chunks = max(1, chunks)
    return (np.arange(chunks + 1, dtype=np.int64) * n) // chunks
