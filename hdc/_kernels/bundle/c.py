"""C kernels of the bundle family (csrc/bundle/): bundle (majority) and column_counts."""
from .._c import I64, U64, check_array, check_shape, ffi, i64, lib, u64


def bundle(x, tie, out):
    check_array(x, "x", U64, 2), check_array(tie, "tie", U64, 1)
    check_array(out, "out", U64, 1, True)
    if x.shape[0] < 1:
        raise ValueError("x must have at least one row to bundle")
    check_shape(tie, "tie", (x.shape[1],)), check_shape(out, "out", (x.shape[1],))
    lib.hdc_bundle(u64(x), x.shape[0], x.shape[1], u64(tie), u64(out))


def column_counts(x, weights, counts):
    check_array(x, "x", U64, 2), check_array(counts, "counts", I64, 1, True)
    check_shape(counts, "counts", (x.shape[1] * 64,))
    w = ffi.NULL
    if weights is not None:
        check_array(weights, "weights", I64, 1)
        check_shape(weights, "weights", (x.shape[0],))
        w = i64(weights)
    lib.hdc_column_counts(u64(x), x.shape[0], x.shape[1], w, i64(counts))
