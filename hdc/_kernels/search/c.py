"""C kernels of the search family (csrc/search/, distances from csrc/hamming/): cdist, topk."""
from .._c import I32, I64, U64, check_array, check_shape, ffi, i32, i64, lib, u64


def cdist(a, b, out):
    check_array(a, "a", U64, 2), check_array(b, "b", U64, 2), check_array(out, "out", I32, 2, True)
    if b.shape[1] != a.shape[1]:
        raise ValueError(f"b must have {a.shape[1]} words per row, got {b.shape[1]}")
    check_shape(out, "out", (a.shape[0], b.shape[0]))
    lib.hdc_cdist(u64(a), a.shape[0], u64(b), b.shape[0], a.shape[1], i32(out))


def topk(q, m, k, n_visible, out_dist, out_idx):
    check_array(q, "q", U64, 2), check_array(m, "m", U64, 2)
    if m.shape[1] != q.shape[1]:
        raise ValueError(f"m must have {q.shape[1]} words per row, got {m.shape[1]}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    check_array(out_dist, "out_dist", I32, 2, True), check_array(out_idx, "out_idx", I64, 2, True)
    check_shape(out_dist, "out_dist", (q.shape[0], k))
    check_shape(out_idx, "out_idx", (q.shape[0], k))
    vis = ffi.NULL
    if n_visible is not None:
        check_array(n_visible, "n_visible", I64, 1)
        check_shape(n_visible, "n_visible", (q.shape[0],))
        vis = i64(n_visible)
    if lib.hdc_topk(u64(q), q.shape[0], u64(m), m.shape[0], q.shape[1], k, vis,
                    i32(out_dist), i64(out_idx)) != 0:
        raise MemoryError(f"hdc_topk could not allocate its work buffers (n_q={q.shape[0]}, k={k})")
