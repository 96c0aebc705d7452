"""C backend facade: every kernel family's ``c.py`` (the cffi binding of csrc/) in one module.

Threads come from a small pthread pool in C (csrc/pool.c); SIMD paths are chosen at run time.
Same functions as every backend (see :mod:`hdc._kernels`), plus the instruction-set controls
``get_isa()``, ``set_isa(name)`` and ``available_isas()``. cffi releases the GIL during calls,
so searches from several Python threads run in parallel.

>>> from hdc._kernels import c_kernels as ck     # doctest: +SKIP
>>> ck.get_isa() in ck.available_isas()          # doctest: +SKIP
True
"""
import warnings

import numpy as np

from .. import _env
from . import collect
from ._c import lib

ISA_NAMES = ("scalar", "avx2", "avx512")
_ISA_ID = {name: i for i, name in enumerate(ISA_NAMES)}


# ---- threads and instruction sets -------------------------------------------------------------

def set_num_threads(n):
    """Threads the C kernels use (results do not depend on it)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    lib.hdc_set_num_threads(int(n))


def get_num_threads():
    return int(lib.hdc_get_num_threads())


def available_isas():
    """The SIMD paths this build and CPU can run, lowest first, e.g. ('scalar', 'avx2', 'avx512')."""
    mask = lib.hdc_isa_supported()
    return tuple(name for i, name in enumerate(ISA_NAMES) if mask & (1 << i))


def get_isa():
    """The active SIMD path: 'scalar', 'avx2' or 'avx512'."""
    return ISA_NAMES[lib.hdc_get_isa()]


def set_isa(name):
    """Force a SIMD path ('scalar', 'avx2', 'avx512') or pick the best one ('auto')."""
    if name == "auto":
        name = available_isas()[-1]
    if name not in _ISA_ID:
        raise ValueError(f"isa must be one of {ISA_NAMES + ('auto',)}, got {name!r}")
    if lib.hdc_set_isa(_ISA_ID[name]) != 0:
        compiled = lib.hdc_isa_compiled() & (1 << _ISA_ID[name])
        why = ("this CPU/OS cannot run it (CPUID/XGETBV)" if compiled
               else "this build does not include it (non-x86 compiler target)")
        raise ValueError(f"isa {name!r} is not available: {why}; available: {available_isas()}")


def _apply_env_isa():
    env = _env.isa()
    if not env:
        return
    try:
        set_isa(env)
    except ValueError as exc:
        warnings.warn(f"HDC_ISA={env!r} ignored: {exc}; using {get_isa()!r}", RuntimeWarning,
                      stacklevel=3)


_apply_env_isa()


collect(globals(), "c")
