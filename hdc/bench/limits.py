"""The machine's own limits, measured in the same run as the kernels (``hdc bench``).

- read bandwidth: :func:`xor_reduce` (C, every thread, the active SIMD path's widest vectors) of
  a matrix much larger than the caches, in GB/s;
- copy bandwidth: ``np.copyto`` of the same matrix (bytes read + written per second);
- the bundle's input read once: :func:`xor_reduce` of exactly the rows ``bundle`` counts.

A kernel's *fraction of its limit* is the limit's time over the kernel's (1.0 = as fast as just
reading its input): a single-query scan is bound by the read bandwidth, bundling by the read of
its input.

>>> import numpy as np
>>> from hdc.bench import limits
>>> x = np.arange(12, dtype=np.uint64).reshape(4, 3)
>>> limits.xor_reduce(x).tolist() == np.bitwise_xor.reduce(x, axis=0).tolist()
True
"""
import numpy as np


def _lib():
    from .._kernels._hdc_c import ffi, lib
    return ffi, lib


def xor_reduce(x, out=None):
    """XOR of the rows of ``x`` (uint64, shape (n, w)) -> (w,), on every C thread.

    Shapes: ``x`` (n, w) C-contiguous uint64; returns / fills ``out`` (w,).
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.uint64 or x.ndim != 2:
        raise TypeError(f"x must be a 2-D uint64 numpy array, got {type(x).__name__} "
                        f"{getattr(x, 'dtype', '')} {getattr(x, 'shape', '')}")
    if not x.flags.c_contiguous or not x.flags.aligned:
        raise ValueError("x must be C-contiguous and aligned")
    ffi, lib = _lib()
    if out is None:
        out = np.empty(x.shape[1], np.uint64)
    elif (not isinstance(out, np.ndarray) or out.dtype != np.uint64 or out.shape != (x.shape[1],)
          or not out.flags.c_contiguous or not out.flags.writeable):
        raise ValueError(f"out must be a writable C-contiguous uint64 array of shape "
                         f"({x.shape[1]},)")
    if out.size == 0:
        return out
    src = ffi.cast("uint64_t *", ffi.from_buffer(x)) if x.size else ffi.NULL
    if lib.hdc_xor_reduce(src, x.shape[0], x.shape[1], ffi.cast("uint64_t *", ffi.from_buffer(out))):
        raise MemoryError("hdc_xor_reduce could not allocate its per-thread partial rows")
    return out
