"""Numba backend facade: every kernel family's ``numba.py`` in one module, bit-identical to the
NumPy reference.

Nothing compiles at import; each kernel compiles on first use and is cached on disk
(``cache=True``, see :func:`hdc.primitives.jit`). Each op has a serial kernel and, above a size
threshold, a parallel driver that ``prange``-s over one contiguous chunk per thread; chunks write
disjoint outputs or per-thread partial results that are combined after, so results never depend
on the thread count (threads: :mod:`hdc._kernels._numba_threads`).
"""
from . import collect
from ._numba_threads import get_num_threads, get_thread_limit, set_num_threads, set_thread_limit  # noqa: F401 - backend API

collect(globals(), "numba")
