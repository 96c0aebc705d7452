"""Backend selection: which kernel module runs the ops, and with how many threads.

>>> import hdc
>>> hdc.backends()                       # doctest: +SKIP
('c', 'numba', 'numpy')
>>> with hdc.use_backend("numpy"):
...     hdc.get_backend()
'numpy'
"""
import contextlib
import importlib
import os
import threading

from ._validate import check_int

_MODULES = {"c": "hdc._kernels.c_kernels", "numba": "hdc._kernels.numba_kernels",
            "numpy": "hdc._kernels.numpy_ref"}
_PREFERENCE = ("c", "numba", "numpy")
_FIX = {
    "c": "reinstall with a C compiler present (e.g. `apt-get install gcc` then "
         "`pip install --force-reinstall --no-deps .`), or use the 'numba' backend",
    "numba": "`pip install numba`",
    "numpy": "upgrade NumPy to 2.0 or newer (np.bitwise_count is needed)",
}

_loaded = {}
_errors = {}
_state = threading.local()
_default = None


# More threads than this is a typo, and the C pool takes the count as a C int.
MAX_THREADS = 1024


def _threads_from_env():
    """``HDC_NUM_THREADS`` as a thread count for every backend, or None when unset."""
    value = os.environ.get("HDC_NUM_THREADS")
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_THREADS:
        raise ValueError(f"HDC_NUM_THREADS must be an integer in [1, {MAX_THREADS}], got {value!r}")
    return int(value)


_num_threads = _threads_from_env()


def _load(name):
    """Import a backend module once; remember why it failed if it did."""
    if name in _loaded:
        return _loaded[name]
    if name in _errors:
        return None
    try:
        module = importlib.import_module(_MODULES[name])
    except Exception as exc:  # noqa: BLE001 - any import failure makes the backend unavailable
        _errors[name] = f"{type(exc).__name__}: {exc}"
        return None
    if _num_threads is not None:
        module.set_num_threads(_num_threads)
    _loaded[name] = module
    return module


def _check_name(name):
    if not isinstance(name, str) or name not in _MODULES:
        raise ValueError(f"backend must be one of {sorted(_MODULES)}, got {name!r}")


def backends():
    """Names of the backends that load on this machine, fastest first."""
    return tuple(name for name in _PREFERENCE if _load(name) is not None)


def unavailable():
    """``{name: reason}`` for every backend that failed to load."""
    backends()
    return dict(_errors)


def _require(name):
    _check_name(name)
    module = _load(name)
    if module is None:
        raise ValueError(f"backend {name!r} is not available ({_errors[name]}); to fix: {_FIX[name]}")
    return module


def _initial_default():
    global _default
    if _default is None:
        env = os.environ.get("HDC_BACKEND")
        if env:
            try:
                _require(env)
            except ValueError as exc:
                raise ValueError(f"HDC_BACKEND={env!r}: {exc}") from None
            _default = env
        else:
            # the first that loads, without importing the slower-to-load ones behind it
            _default = next(name for name in _PREFERENCE if _load(name) is not None)
    return _default


def get_backend():
    """The name of the backend used by this thread."""
    return getattr(_state, "name", None) or _initial_default()


def set_backend(name):
    """Use backend ``name`` ('c', 'numba' or 'numpy') from now on, in every thread."""
    global _default
    _require(name)
    _default = name
    _state.name = None


@contextlib.contextmanager
def use_backend(name):
    """Context manager: run the enclosed ops on backend ``name`` (this thread only)."""
    _require(name)
    previous = getattr(_state, "name", None)
    _state.name = name
    try:
        yield name
    finally:
        _state.name = previous


def kernels():
    """The kernel module of the active backend."""
    return _require(get_backend())


def set_num_threads(n):
    """Threads used by the C and Numba kernels (default: ``HDC_NUM_THREADS``, else all cores)."""
    global _num_threads
    n = check_int(n, "n", low=1, high=MAX_THREADS)
    _num_threads = n
    for module in _loaded.values():
        module.set_num_threads(n)


def get_num_threads():
    """Threads the kernels use."""
    if _num_threads is not None:
        return _num_threads
    return os.cpu_count() or 1


def get_isa():
    """The SIMD path of the C backend: 'scalar', 'avx2' or 'avx512'."""
    return _require("c").get_isa()


def available_isas():
    """The SIMD paths of the C backend that this CPU and build can run, slowest first."""
    return tuple(_require("c").available_isas())


def set_isa(name):
    """Force the C backend's SIMD path ('scalar', 'avx2', 'avx512' or 'auto' for the best).

    The environment variable ``HDC_ISA`` sets the same at import. Raises ValueError when this
    CPU cannot run the path or the build lacks it.
    """
    _require("c").set_isa(name)


@contextlib.contextmanager
def use_isa(name):
    """Context manager form of :func:`set_isa` (process-wide while it is open)."""
    previous = get_isa()
    set_isa(name)
    try:
        yield name
    finally:
        set_isa(previous)
