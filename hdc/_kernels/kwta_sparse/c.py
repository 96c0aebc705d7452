"""C binding of the ``kwta_sparse`` family: csrc/kwta_sparse/kwta_sparse.c (event-driven).

Checks dtypes, shapes and contiguity first, so the C code never reads or writes outside the
arrays it is given; the C kernel itself rejects indices >= block_size before reading a bucket.
"""
import numpy as np

from .._c import I32 as _I32, I64 as _I64, U32 as _U32, U64 as _U64, check_array as _arr, check_shape as _shape
from .._c import ffi, lib, ptr as _p


def _call(q, keys, block_size, k, n_visible, mode, v, width, inv_temp, out_score, out, out_idx):
    _arr(q, "q", _U32, 3), _arr(keys, "keys", _U32, 3)
    n_h, n_q, n_b = q.shape
    if keys.shape[0] != n_h or keys.shape[2] != n_b:
        raise ValueError(f"keys must have shape ({n_h}, Lk, {n_b}), got {keys.shape}")
    n_k = keys.shape[1]
    if n_k >= 2 ** 32 - 1:
        raise ValueError(f"keys: at most 2**32 - 2 keys per head, got {n_k}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    block_size = int(block_size)
    if not 1 <= block_size <= 2 ** 32:
        raise ValueError(f"block_size must be in [1, 2**32], got {block_size}")
    _arr(out_idx, "out_idx", _I64, 3, True), _shape(out_idx, "out_idx", (n_h, n_q, k))
    vis = ffi.NULL
    if n_visible is not None:
        _arr(n_visible, "n_visible", _I64, 1), _shape(n_visible, "n_visible", (n_q,))
        vis = _p(n_visible, "int64_t *")
    touched = ffi.new("uint64_t *")
    rc = lib.hdc_kwta_sparse(_p(q, "uint32_t *"), _p(keys, "uint32_t *"), n_h, n_q, n_k, n_b,
                             block_size, k, vis, mode, v, width, float(inv_temp), out_score, out,
                             _p(out_idx, "int64_t *"), touched)
    if rc == -2:
        raise ValueError(f"q and keys must hold block indices < block_size ({block_size})")
    if rc != 0:
        raise MemoryError(f"hdc_kwta_sparse could not allocate its index and work buffers "
                          f"(H={n_h}, Lk={n_k}, blocks={n_b}, k={k})")
    return int(touched[0])


def kwta_sparse_select(q, keys, block_size, k, n_visible, out_score, out_idx):
    _arr(out_score, "out_score", _I32, 3, True), _shape(out_score, "out_score", out_idx.shape)
    return _call(q, keys, block_size, k, n_visible, 0, ffi.NULL, 0, 0.0,
                 _p(out_score, "int32_t *"), ffi.NULL, out_idx)


def kwta_sparse_softmax(q, keys, block_size, k, n_visible, v, inv_temp, out, out_idx):
    if v.dtype not in (np.float32, np.float64):
        raise ValueError(f"v must be float32 or float64, got {v.dtype}")
    _arr(v, "v", v.dtype, 3), _arr(out, "out", v.dtype, 3, True)
    _shape(v, "v", (q.shape[0], keys.shape[1], v.shape[2]))
    _shape(out, "out", (q.shape[0], q.shape[1], v.shape[2]))
    mode = 1 if v.dtype == np.float32 else 2
    return _call(q, keys, block_size, k, n_visible, mode, _p(v, "void *"), v.shape[2], inv_temp,
                 ffi.NULL, _p(out, "void *"), out_idx)


def kwta_sparse_majority(q, keys, block_size, k, n_visible, v, out, out_idx):
    _arr(v, "v", _U64, 3), _arr(out, "out", _U64, 3, True)
    _shape(v, "v", (q.shape[0], keys.shape[1], v.shape[2]))
    _shape(out, "out", (q.shape[0], q.shape[1], v.shape[2]))
    return _call(q, keys, block_size, k, n_visible, 3, _p(v, "void *"), v.shape[2], 0.0,
                 ffi.NULL, _p(out, "void *"), out_idx)
