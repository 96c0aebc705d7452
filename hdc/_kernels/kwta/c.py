"""C kernels of k-winner-take-all attention (csrc/kwta/): kwta_select, kwta_softmax,
kwta_majority."""
import numpy as np

from .._c import I32, I64, U64, check_array, check_shape, ffi, i32, i64, lib, ptr, u64


def _kwta_args(q, keys, k, n_visible, out_idx):
    """Checks shared by the kwta kernels: q (H, Lq, W), keys (H, Lk, W), out_idx (H, Lq, k)."""
    check_array(q, "q", U64, 3), check_array(keys, "keys", U64, 3)
    n_h, n_q, w = q.shape
    if keys.shape[0] != n_h or keys.shape[2] != w:
        raise ValueError(f"keys must have shape ({n_h}, Lk, {w}), got {keys.shape}")
    if keys.shape[1] >= 2 ** 32:
        raise ValueError(f"keys: at most 2**32 - 1 keys per head, got {keys.shape[1]}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    check_array(out_idx, "out_idx", I64, 3, True), check_shape(out_idx, "out_idx", (n_h, n_q, k))
    vis = ffi.NULL
    if n_visible is not None:
        check_array(n_visible, "n_visible", I64, 1), check_shape(n_visible, "n_visible", (n_q,))
        vis = i64(n_visible)
    return (u64(q), u64(keys), n_h, n_q, keys.shape[1], w, k, vis)


def _kwta_check(rc, what, k):
    if rc != 0:
        raise MemoryError(f"{what} could not allocate its work buffers (k={k})")


def kwta_select(q, keys, k, n_visible, out_dist, out_idx):
    """Each query's k nearest visible keys per head: out_dist int32 / out_idx int64 (H, Lq, k)."""
    args = _kwta_args(q, keys, k, n_visible, out_idx)
    check_array(out_dist, "out_dist", I32, 3, True)
    check_shape(out_dist, "out_dist", out_idx.shape)
    _kwta_check(lib.hdc_kwta_select(*args, i32(out_dist), i64(out_idx)), "hdc_kwta_select", k)


def kwta_softmax(q, keys, k, n_visible, v, inv_temp, out, out_idx):
    """Softmax of the winners' scores mixing v (H, Lk, dv) float32/float64 into out (H, Lq, dv)."""
    args = _kwta_args(q, keys, k, n_visible, out_idx)
    if v.dtype not in (np.float32, np.float64):
        raise ValueError(f"v must be float32 or float64, got {v.dtype}")
    check_array(v, "v", v.dtype, 3), check_array(out, "out", v.dtype, 3, True)
    check_shape(v, "v", (q.shape[0], keys.shape[1], v.shape[2]))
    check_shape(out, "out", (q.shape[0], q.shape[1], v.shape[2]))
    if v.dtype == np.float32:
        rc = lib.hdc_kwta_softmax_f32(*args, ptr(v, "float *"), v.shape[2], float(inv_temp),
                                      ptr(out, "float *"), i64(out_idx))
    else:
        rc = lib.hdc_kwta_softmax_f64(*args, ptr(v, "double *"), v.shape[2], float(inv_temp),
                                      ptr(out, "double *"), i64(out_idx))
    _kwta_check(rc, "hdc_kwta_softmax", k)


def kwta_majority(q, keys, k, n_visible, v, out, out_idx):
    """Majority of the winners' value words v (H, Lk, VW) into out (H, Lq, VW)."""
    args = _kwta_args(q, keys, k, n_visible, out_idx)
    check_array(v, "v", U64, 3), check_array(out, "out", U64, 3, True)
    check_shape(v, "v", (q.shape[0], keys.shape[1], v.shape[2]))
    check_shape(out, "out", (q.shape[0], q.shape[1], v.shape[2]))
    _kwta_check(lib.hdc_kwta_majority(*args, u64(v), v.shape[2], u64(out), i64(out_idx)),
                "hdc_kwta_majority", k)
