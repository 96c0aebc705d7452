"""C backend: the cffi binding of csrc/ (SIMD paths chosen at run time, a thread pool).

Threads come from a small pthread pool in C (csrc/pool.c). Same functions as every backend (see :mod:`hdc._kernels`), plus the instruction-set controls
``get_isa()``, ``set_isa(name)`` and ``available_isas()``. Arrays reach C through
``ffi.from_buffer`` (no copies); each call first checks dtypes, shapes and contiguity, so the C
code never reads or writes outside the arrays it is given. cffi releases the GIL during calls,
so searches from several Python threads run in parallel.

>>> from hdc._kernels import c_kernels as ck     # doctest: +SKIP
>>> ck.get_isa() in ck.available_isas()          # doctest: +SKIP
True
"""
import platform

import numpy as np

try:
    from ._hdc_c import ffi, lib
except ImportError as exc:  # pragma: no cover - exercised only on builds without a compiler
    raise ImportError(
        f"the hdc C extension (hdc._kernels._hdc_c) is not built ({exc}); to fix: install a C "
        "compiler and reinstall (`pip install --force-reinstall --no-deps .`, or "
        "`python setup.py build_ext --inplace` in a checkout), or use the 'numba' backend"
    ) from exc

_U64, _U32, _I64 = np.dtype(np.uint64), np.dtype(np.uint32), np.dtype(np.int64)


# ---- argument checks (cheap, assert-style: callers in hdc.ops validate user input) ----------

def _arr(x, name, dtype, ndim, writable=False):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype}, got {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not x.flags.aligned:
        raise ValueError(f"{name} must be aligned to its dtype")
    if writable and not x.flags.writeable:
        raise ValueError(f"{name} must be writable")
    return x


def _shape(x, name, shape):
    if x.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {x.shape}")


def _p(x, ctype):
    return ffi.cast(ctype, ffi.from_buffer(x)) if x.size else ffi.NULL


def _u64(x):
    return _p(x, "uint64_t *")


def _u32(x):
    return _p(x, "uint32_t *")


def _i64(x):
    return _p(x, "int64_t *")


# ---- threads and instruction sets -------------------------------------------------------------

def set_num_threads(n):
    """Threads the C kernels use (results do not depend on it)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    lib.hdc_set_num_threads(int(n))


def get_num_threads():
    return int(lib.hdc_get_num_threads())


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
    """The CPU features path ``name`` needs that this CPU (and OS) lacks, e.g. ``['avx512_vpopcntdq']``."""
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


# ---- kernels ------------------------------------------------------------------------------------

def bind(a, b, out):
    _arr(a, "a", _U64, 1), _arr(b, "b", _U64, 1), _arr(out, "out", _U64, 1, True)
    _shape(b, "b", a.shape), _shape(out, "out", a.shape)
    lib.hdc_bind(_u64(a), _u64(b), _u64(out), a.size)


def permute(x, dim, shift, out):
    _arr(x, "x", _U64, 2), _arr(out, "out", _U64, 2, True)
    _shape(out, "out", x.shape)
    dim, shift = int(dim), int(shift)
    if dim < 1 or x.shape[1] != (dim + 63) // 64:
        raise ValueError(f"dim must be >= 1 with {x.shape[1]} words per row, got {dim}")
    if not 0 <= shift < dim:
        raise ValueError(f"shift must be in [0, {dim}), got {shift}")
    if np.shares_memory(x, out):
        raise ValueError("out must not overlap x")
    lib.hdc_permute(_u64(x), _u64(out), x.shape[0], x.shape[1], dim, shift)


def popcount(x, out):
    _arr(x, "x", _U64, 2), _arr(out, "out", _U32, 1, True)
    _shape(out, "out", (x.shape[0],))
    lib.hdc_popcount(_u64(x), _u32(out), x.shape[0], x.shape[1])


def hamming(a, b, out):
    _arr(a, "a", _U64, 2), _arr(b, "b", _U64, 2), _arr(out, "out", _U32, 1, True)
    _shape(b, "b", a.shape), _shape(out, "out", (a.shape[0],))
    lib.hdc_hamming(_u64(a), _u64(b), _u32(out), a.shape[0], a.shape[1])


def cdist(a, b, out):
    _arr(a, "a", _U64, 2), _arr(b, "b", _U64, 2), _arr(out, "out", _U32, 2, True)
    if b.shape[1] != a.shape[1]:
        raise ValueError(f"b must have {a.shape[1]} words per row, got {b.shape[1]}")
    _shape(out, "out", (a.shape[0], b.shape[0]))
    lib.hdc_cdist(_u64(a), a.shape[0], _u64(b), b.shape[0], a.shape[1], _u32(out))


def topk(q, m, k, n_visible, out_dist, out_idx):
    _arr(q, "q", _U64, 2), _arr(m, "m", _U64, 2)
    if m.shape[1] != q.shape[1]:
        raise ValueError(f"m must have {q.shape[1]} words per row, got {m.shape[1]}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    _arr(out_dist, "out_dist", _U32, 2, True), _arr(out_idx, "out_idx", _I64, 2, True)
    _shape(out_dist, "out_dist", (q.shape[0], k)), _shape(out_idx, "out_idx", (q.shape[0], k))
    vis = ffi.NULL
    if n_visible is not None:
        _arr(n_visible, "n_visible", _I64, 1)
        _shape(n_visible, "n_visible", (q.shape[0],))
        vis = _i64(n_visible)
    if lib.hdc_topk(_u64(q), q.shape[0], _u64(m), m.shape[0], q.shape[1], k, vis,
                    _u32(out_dist), _i64(out_idx)) != 0:
        raise MemoryError(f"hdc_topk could not allocate its work buffers (n_q={q.shape[0]}, k={k})")


def bundle(x, tie, out):
    _arr(x, "x", _U64, 2), _arr(tie, "tie", _U64, 1), _arr(out, "out", _U64, 1, True)
    if x.shape[0] < 1:
        raise ValueError("x must have at least one row to bundle")
    _shape(tie, "tie", (x.shape[1],)), _shape(out, "out", (x.shape[1],))
    lib.hdc_bundle(_u64(x), x.shape[0], x.shape[1], _u64(tie), _u64(out))


def column_counts(x, weights, counts):
    _arr(x, "x", _U64, 2), _arr(counts, "counts", _I64, 1, True)
    _shape(counts, "counts", (x.shape[1] * 64,))
    w = ffi.NULL
    if weights is not None:
        _arr(weights, "weights", _I64, 1)
        _shape(weights, "weights", (x.shape[0],))
        w = _i64(weights)
    lib.hdc_column_counts(_u64(x), x.shape[0], x.shape[1], w, _i64(counts))


# ---- k-winner-take-all attention (hdc.attention) ---------------------------------------------

def _kwta_args(q, keys, k, n_visible, out_idx):
    """Checks shared by the kwta kernels: q (H, Lq, W), keys (H, Lk, W), out_idx (H, Lq, k)."""
    _arr(q, "q", _U64, 3), _arr(keys, "keys", _U64, 3)
    n_h, n_q, w = q.shape
    if keys.shape[0] != n_h or keys.shape[2] != w:
        raise ValueError(f"keys must have shape ({n_h}, Lk, {w}), got {keys.shape}")
    if keys.shape[1] >= 2 ** 32:
        raise ValueError(f"keys: at most 2**32 - 1 keys per head, got {keys.shape[1]}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    _arr(out_idx, "out_idx", _I64, 3, True), _shape(out_idx, "out_idx", (n_h, n_q, k))
    vis = ffi.NULL
    if n_visible is not None:
        _arr(n_visible, "n_visible", _I64, 1), _shape(n_visible, "n_visible", (n_q,))
        vis = _i64(n_visible)
    return (_u64(q), _u64(keys), n_h, n_q, keys.shape[1], w, k, vis)


def _kwta_check(rc, what, k):
    if rc != 0:
        raise MemoryError(f"{what} could not allocate its work buffers (k={k})")


def kwta_select(q, keys, k, n_visible, out_dist, out_idx):
    """Each query's k nearest visible keys per head: out_dist uint32 / out_idx int64 (H, Lq, k)."""
    args = _kwta_args(q, keys, k, n_visible, out_idx)
    _arr(out_dist, "out_dist", _U32, 3, True), _shape(out_dist, "out_dist", out_idx.shape)
    _kwta_check(lib.hdc_kwta_select(*args, _u32(out_dist), _i64(out_idx)), "hdc_kwta_select", k)


def kwta_softmax(q, keys, k, n_visible, v, inv_temp, out, out_idx):
    """Softmax of the winners' scores mixing v (H, Lk, dv) float32/float64 into out (H, Lq, dv)."""
    args = _kwta_args(q, keys, k, n_visible, out_idx)
    if v.dtype not in (np.float32, np.float64):
        raise ValueError(f"v must be float32 or float64, got {v.dtype}")
    _arr(v, "v", v.dtype, 3), _arr(out, "out", v.dtype, 3, True)
    _shape(v, "v", (q.shape[0], keys.shape[1], v.shape[2]))
    _shape(out, "out", (q.shape[0], q.shape[1], v.shape[2]))
    if v.dtype == np.float32:
        rc = lib.hdc_kwta_softmax_f32(*args, _p(v, "float *"), v.shape[2], float(inv_temp),
                                      _p(out, "float *"), _i64(out_idx))
    else:
        rc = lib.hdc_kwta_softmax_f64(*args, _p(v, "double *"), v.shape[2], float(inv_temp),
                                      _p(out, "double *"), _i64(out_idx))
    _kwta_check(rc, "hdc_kwta_softmax", k)


def kwta_majority(q, keys, k, n_visible, v, out, out_idx):
    """Majority of the winners' value words v (H, Lk, VW) into out (H, Lq, VW)."""
    args = _kwta_args(q, keys, k, n_visible, out_idx)
    _arr(v, "v", _U64, 3), _arr(out, "out", _U64, 3, True)
    _shape(v, "v", (q.shape[0], keys.shape[1], v.shape[2]))
    _shape(out, "out", (q.shape[0], q.shape[1], v.shape[2]))
    _kwta_check(lib.hdc_kwta_majority(*args, _u64(v), v.shape[2], _u64(out), _i64(out_idx)),
                "hdc_kwta_majority", k)
