"""C kernels of the element-wise family (csrc/elementwise/): bind, permute, popcount, hamming."""
import numpy as np

from .._c import I32, U64, check_array, check_shape, i32, lib, u64


def bind(a, b, out):
    check_array(a, "a", U64, 1), check_array(b, "b", U64, 1), check_array(out, "out", U64, 1, True)
    check_shape(b, "b", a.shape), check_shape(out, "out", a.shape)
    lib.hdc_bind(u64(a), u64(b), u64(out), a.size)


def permute(x, dim, shift, out):
    check_array(x, "x", U64, 2), check_array(out, "out", U64, 2, True)
    check_shape(out, "out", x.shape)
    dim, shift = int(dim), int(shift)
    if dim < 1 or x.shape[1] != (dim + 63) // 64:
        raise ValueError(f"dim must be >= 1 with {x.shape[1]} words per row, got {dim}")
    if not 0 <= shift < dim:
        raise ValueError(f"shift must be in [0, {dim}), got {shift}")
    if np.shares_memory(x, out):
        raise ValueError("out must not overlap x")
    lib.hdc_permute(u64(x), u64(out), x.shape[0], x.shape[1], dim, shift)


def popcount(x, out):
    check_array(x, "x", U64, 2), check_array(out, "out", I32, 1, True)
    check_shape(out, "out", (x.shape[0],))
    lib.hdc_popcount(u64(x), i32(out), x.shape[0], x.shape[1])


def hamming(a, b, out):
    check_array(a, "a", U64, 2), check_array(b, "b", U64, 2), check_array(out, "out", I32, 1, True)
    check_shape(b, "b", a.shape), check_shape(out, "out", (a.shape[0],))
    lib.hdc_hamming(u64(a), u64(b), i32(out), a.shape[0], a.shape[1])
