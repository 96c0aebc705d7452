"""The loaded C extension (``ffi``, ``lib``) and the checks every family's ``c.py`` runs first.

Arrays reach C through ``ffi.from_buffer`` (no copies); each wrapper first checks dtypes, shapes,
contiguity and alignment, so the C code never reads or writes outside the arrays it is given.

>>> import numpy as np                                   # doctest: +SKIP
>>> from hdc._kernels._c import check_array
>>> check_array(np.zeros(3, np.uint64), "x", np.uint64, 1).shape   # doctest: +SKIP
(3,)
"""
import numpy as np

try:
    from ._hdc_c import ffi, lib
except ImportError as exc:  # pragma: no cover - exercised only on builds without a compiler
    raise ImportError(
        f"the hdc C extension (hdc._kernels._hdc_c) is not built ({exc}); to fix: install a C "
        "compiler and reinstall (`pip install --force-reinstall --no-deps .`, or "
        "`python setup.py build_ext --inplace` in a checkout), or use the 'numba' backend"
    ) from exc


U64, U32, I32, I64 = np.dtype(np.uint64), np.dtype(np.uint32), np.dtype(np.int32), np.dtype(np.int64)


def check_array(x, name, dtype, ndim, writable=False):
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


def check_shape(x, name, shape):
    if x.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {x.shape}")


def ptr(x, ctype):
    return ffi.cast(ctype, ffi.from_buffer(x)) if x.size else ffi.NULL


def u64(x):
    return ptr(x, "uint64_t *")


def i32(x):
    return ptr(x, "int32_t *")


def i64(x):
    return ptr(x, "int64_t *")
