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

from . import _env
from ._validate import check_int

# each backend's facade: one module with every kernel of every family (see hdc._kernels)
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


_num_threads = _env.num_threads()


def _apply_isa_from_env(module):
    """``HDC_ISA`` (a path name or 'auto') applied to the C backend when it loads; a path this
    CPU or build lacks is an error naming the missing feature and the available paths."""
    value = _env.isa()
    if value:
        try:
            module.set_isa(value)
        except ValueError as exc:
            raise ValueError(f"HDC_ISA={value!r}: {exc}") from None


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
    if name == "c":
        _apply_isa_from_env(module)
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
        env = _env.backend()
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
    """The kernel facade of the active backend: every kernel of every family (hdc._kernels)."""
    return _require(get_backend())


def set_num_threads(n):
    """Threads used by the C and Numba kernels (default: ``HDC_NUM_THREADS``, else all cores)."""
    global _num_threads
    n = check_int(n, "n", low=1, high=_env.MAX_THREADS)
    _num_threads = n
    for module in _loaded.values():
        module.set_num_threads(n)


@contextlib.contextmanager
def thread_limit(n):
    """Context manager: kernels called from this thread use at most ``n`` threads (0: no cap);
    other threads keep the count :func:`set_num_threads` gave. Results do not depend on it.

    For S threads that run kernels at once (the shards of a ShardedMemory in one process):
    each takes ``cores // S`` instead of all of them contending for the one C thread pool.
    Applies to every backend loaded so far (NumPy's is single-threaded anyway).

    >>> import hdc
    >>> from hdc.backend import thread_limit
    >>> m, q = hdc.random(100, 256, seed=0), hdc.random(3, 256, seed=1)
    >>> with thread_limit(1):
    ...     d, i = hdc.topk(q, m, 2)
    >>> d.shape
    (3, 2)
    """
    n = check_int(n, "n", low=0, high=_env.MAX_THREADS)
    modules = list(_loaded.values())
    previous = [module.get_thread_limit() for module in modules]
    for module in modules:
        module.set_thread_limit(n)
    try:
        yield n
    finally:
        for module, p in zip(modules, previous):
            module.set_thread_limit(p)


def get_num_threads():
    """Threads the kernels use."""
    if _num_threads is not None:
        return _num_threads
    return os.cpu_count() or 1


def get_isa():
    """The active SIMD path of the C backend: 'scalar', 'avx2', 'avx512bw', 'avx512vpopcnt' or
    'neon'."""
    return _require("c").get_isa()


def available_isas():
    """The SIMD paths of the C backend that this CPU and build can run, slowest first.

    >>> hdc.available_isas()                 # doctest: +SKIP
    ('scalar', 'avx2', 'avx512bw', 'avx512vpopcnt')
    """
    return tuple(_require("c").available_isas())


def set_isa(name):
    """Force the C backend's SIMD path, or ``'auto'`` for the best this CPU runs.

    Paths: 'scalar', 'avx2' (AVX2 + POPCNT), 'avx512bw' (AVX-512 F/BW/VL), 'avx512vpopcnt'
    (avx512bw + VPOPCNTDQ; 'avx512' is accepted as its old name), 'neon' (aarch64). The
    environment variable ``HDC_ISA`` sets the same when the C backend loads. Raises ValueError
    naming the CPU feature this machine lacks (or the build that lacks the path) and the
    available paths.
    """
    _require("c").set_isa(name)


@contextlib.contextmanager
def use_isa(name):
    """Context manager form of :func:`set_isa` (process-wide while it is open).

    >>> with hdc.use_isa("scalar"):          # doctest: +SKIP
    ...     hdc.get_isa()
    'scalar'
    """
    previous = get_isa()
    set_isa(name)
    try:
        yield name
    finally:
        set_isa(previous)
