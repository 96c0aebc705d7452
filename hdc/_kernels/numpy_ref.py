"""NumPy reference backend facade: every kernel family's ``numpy_ref.py`` in one module.

The readable definition of every kernel, vectorised over rows with ``np.bitwise_count``; no
compilation, always available, single-threaded.
"""
from . import collect


def set_num_threads(n):
    """The NumPy backend is single-threaded; accepted for a uniform interface."""


def get_num_threads():
    return 1


def set_thread_limit(n):
    """The NumPy backend is single-threaded: every cap holds; accepted for a uniform interface."""


def get_thread_limit():
    return 0


collect(globals(), "numpy_ref")
