"""C backend facade: every kernel family's ``c.py`` (the cffi binding of csrc/) in one module.

Threads come from a small pthread pool in C (csrc/pool.c); SIMD paths are chosen at run time.
Same functions as every backend (see :mod:`hdc._kernels`), plus the instruction-set controls
``get_isa()``, ``set_isa(name)`` and ``available_isas()``. cffi releases the GIL during calls,
so searches from several Python threads run in parallel.

>>> from hdc._kernels import c_kernels as ck     # doctest: +SKIP
>>> ck.get_isa() in ck.available_isas()          # doctest: +SKIP
True
"""
import platform

import numpy as np

from . import collect
from ._c import lib


# ---- threads and instruction sets -------------------------------------------------------------

def set_num_threads(n):
    """Threads the C kernels use (results do not depend on it)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    lib.hdc_set_num_threads(int(n))


def get_num_threads():
    return int(lib.hdc_get_num_threads())


def set_thread_limit(n):
    """Cap the threads of C kernels called from the calling thread at ``n`` (0: no cap); other
    threads keep theirs (csrc/dispatch.c, a thread-local cap)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    lib.hdc_set_thread_limit(int(n))


def get_thread_limit():
    """The calling thread's cap (:func:`set_thread_limit`), 0 for none."""
    return int(lib.hdc_get_thread_limit())


# path names by id (csrc/hdc.h), lowest first; "avx512", the first release's name for the
# VPOPCNTDQ path, is still accepted for it (get_isa() never returns it)
ISA_NAMES = ("scalar", "avx2", "avx512bw", "avx512vpopcnt", "neon")
ISA_ALIASES = {"avx512": "avx512vpopcnt"}
_ISA_ID = {name: i for i, name in enumerate(ISA_NAMES)}
# CPU features as /proc/cpuinfo spells them (the OS-state bits come from XGETBV)
_FEATURES = {
    lib.HDC_CPU_POPCNT: "popcnt", lib.HDC_CPU_AVX2: "avx2",
    lib.HDC_CPU_OS_YMM: "OS support for AVX state (XCR0)", lib.HDC_CPU_AVX512F: "avx512f",
    lib.HDC_CPU_AVX512BW: "avx512bw", lib.HDC_CPU_AVX512VL: "avx512vl",
    lib.HDC_CPU_AVX512VPOPCNTDQ: "avx512_vpopcntdq",
    lib.HDC_CPU_OS_ZMM: "OS support for AVX-512 state (XCR0)", lib.HDC_CPU_ASIMD: "asimd",
}


def available_isas():
    """The SIMD paths this build and CPU can run, lowest first.

    For example ``('scalar', 'avx2', 'avx512bw', 'avx512vpopcnt')`` on an AMD Zen 4 or Intel Ice
    Lake, ``('scalar', 'avx2', 'avx512bw')`` on a Skylake-SP Xeon, ``('scalar', 'neon')`` on
    aarch64.
    """
    mask = lib.hdc_isa_supported()
    return tuple(name for i, name in enumerate(ISA_NAMES) if mask & (1 << i))


def get_isa():
    """The active SIMD path, one of :data:`ISA_NAMES`."""
    return ISA_NAMES[lib.hdc_get_isa()]


def missing_features(name):
    """The CPU features path ``name`` needs that this CPU (and OS) lacks.

    >>> missing_features("avx512vpopcnt")        # doctest: +SKIP
    ['avx512_vpopcntdq']
    """
    isa = _ISA_ID[ISA_ALIASES.get(name, name)]
    lacking = lib.hdc_isa_needs(isa) & ~lib.hdc_cpu_features()
    return [label for bit, label in _FEATURES.items() if lacking & bit]


def set_isa(name):
    """Force a SIMD path (one of :data:`ISA_NAMES`) or pick the best one (``'auto'``).

    Raises ValueError naming the missing CPU feature (or the missing build) and the paths that
    are available.
    """
    if name == "auto":
        name = available_isas()[-1]
    canonical = ISA_ALIASES.get(name, name) if isinstance(name, str) else name
    if canonical not in _ISA_ID:
        raise ValueError(f"isa must be one of {ISA_NAMES + ('auto',)}, got {name!r}; "
                         f"available here: {available_isas()}")
    if lib.hdc_set_isa(_ISA_ID[canonical]) != 0:
        if not lib.hdc_isa_compiled() & (1 << _ISA_ID[canonical]):
            why = f"this build does not include it (compiled for {_machine()})"
        else:
            why = f"this CPU lacks {', '.join(missing_features(canonical))}"
        raise ValueError(f"isa {name!r} is not available: {why}; available: {available_isas()}")


def _machine():
    return platform.machine() or "an unknown CPU"


collect(globals(), "c")
