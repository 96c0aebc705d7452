"""Numba kernels of the element-wise family: bind, permute, popcount, hamming (rows).

Serial below the parallel threshold; above it one contiguous chunk of rows (or words) per thread.
"""
import numba

from ...primitives import hamming_row, jit, popcount_row, rotate_row, xor_row
from .._numba_threads import ParallelCall, chunk_bounds, get_num_threads, parallel


@jit(parallel=True)
def _bind_parallel(a, b, out, bounds):
    for c in numba.prange(bounds.shape[0] - 1):
        lo, hi = bounds[c], bounds[c + 1]
        xor_row(a[lo:hi], b[lo:hi], out[lo:hi])


def bind(a, b, out):
    if parallel(out.shape[0] // 4):
        with ParallelCall():
            _bind_parallel(a, b, out, chunk_bounds(out.shape[0], get_num_threads()))
    else:
        xor_row(a, b, out)


@jit
def _permute_rows(x, dim, shift, out, lo, hi):
    for r in range(lo, hi):
        rotate_row(x[r], dim, shift, out[r])


@jit(parallel=True)
def _permute_parallel(x, dim, shift, out, bounds):
    for c in numba.prange(bounds.shape[0] - 1):
        _permute_rows(x, dim, shift, out, bounds[c], bounds[c + 1])


def permute(x, dim, shift, out):
    rows = x.shape[0]
    if parallel(x.size) and rows > 1:
        with ParallelCall():
            _permute_parallel(x, dim, shift, out, chunk_bounds(rows, min(get_num_threads(), rows)))
    else:
        _permute_rows(x, dim, shift, out, 0, rows)


@jit
def _popcount_rows(x, out, lo, hi):
    for r in range(lo, hi):
        out[r] = popcount_row(x[r])


@jit(parallel=True)
def _popcount_parallel(x, out, bounds):
    for c in numba.prange(bounds.shape[0] - 1):
        _popcount_rows(x, out, bounds[c], bounds[c + 1])


def popcount(x, out):
    rows = x.shape[0]
    if parallel(x.size) and rows > 1:
        with ParallelCall():
            _popcount_parallel(x, out, chunk_bounds(rows, min(get_num_threads(), rows)))
    else:
        _popcount_rows(x, out, 0, rows)


@jit
def _hamming_rows(a, b, out, lo, hi):
    for r in range(lo, hi):
        out[r] = hamming_row(a[r], b[r])


@jit(parallel=True)
def _hamming_parallel(a, b, out, bounds):
    for c in numba.prange(bounds.shape[0] - 1):
        _hamming_rows(a, b, out, bounds[c], bounds[c + 1])


def hamming(a, b, out):
    rows = a.shape[0]
    if parallel(a.size) and rows > 1:
        with ParallelCall():
            _hamming_parallel(a, b, out, chunk_bounds(rows, min(get_num_threads(), rows)))
    else:
        _hamming_rows(a, b, out, 0, rows)
