"""C kernels of the sparse family (csrc/sparse/): overlap, all-pairs overlap and top-k by byte /
word compares (AVX-512BW masks or AVX2 movemasks, popcounted; query blocking on transposed tiles),
and the inverted index (sparse/index.c). Counting (``sparse_block_counts``, ``sparse_bundle``,
``sparse_record_bundle``, ``sparse_ngram_bundle``) runs the Numba kernels, or the NumPy reference where Numba is not
installed, chosen on first call so loading the C backend does not import Numba.
"""
import importlib

import numpy as np

from .._c import I32 as _I32, I64, check_array, check_shape, ffi, i64, lib, ptr

_U16 = np.dtype(np.uint16)

_INDEX_TYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32))
_impl = None


def _counting():
    global _impl
    if _impl is None:
        try:
            _impl = importlib.import_module(".numba", __package__)
        except ImportError:
            _impl = importlib.import_module(".numpy_ref", __package__)
    return _impl


def _indices(x, name, like=None):
    dtype = x.dtype if like is None else like.dtype
    if dtype not in _INDEX_TYPES:
        raise ValueError(f"{name} must have dtype uint8, uint16 or uint32, got {dtype}")
    check_array(x, name, dtype, 2)
    if like is not None and x.shape[1] != like.shape[1]:
        raise ValueError(f"{name} must have {like.shape[1]} blocks per row, got {x.shape[1]}")
    return ffi.from_buffer(x) if x.size else ffi.NULL


def sparse_overlap(a, b, out):
    pa, pb = _indices(a, "a"), _indices(b, "b", a)
    check_shape(b, "b", a.shape)
    check_array(out, "out", _I32, 1, True), check_shape(out, "out", (a.shape[0],))
    lib.hdc_sparse_overlap(pa, pb, a.shape[0], a.shape[1], a.itemsize, ptr(out, "int32_t *"))


def sparse_cdist(a, b, out):
    pa, pb = _indices(a, "a"), _indices(b, "b", a)
    check_array(out, "out", _I32, 2, True), check_shape(out, "out", (a.shape[0], b.shape[0]))
    lib.hdc_sparse_cdist(pa, a.shape[0], pb, b.shape[0], a.shape[1], a.itemsize, ptr(out, "int32_t *"))


def sparse_topk(q, m, k, out_overlap, out_idx):
    pq, pm = _indices(q, "q"), _indices(m, "m", q)
    k = int(k)
    if not 1 <= k <= m.shape[0]:
        raise ValueError(f"k must be in [1, {m.shape[0]}], got {k}")
    check_array(out_overlap, "out_overlap", _I32, 2, True), check_array(out_idx, "out_idx", I64, 2, True)
    check_shape(out_overlap, "out_overlap", (q.shape[0], k)), check_shape(out_idx, "out_idx", (q.shape[0], k))
    rc = lib.hdc_sparse_topk(pq, q.shape[0], pm, m.shape[0], q.shape[1], q.itemsize, k,
                             ptr(out_overlap, "int32_t *"), i64(out_idx))
    if rc == -2:
        raise MemoryError(f"hdc_sparse_topk could not allocate its work buffers (n_m={m.shape[0]})")
    if rc != 0:
        raise ValueError(f"hdc_sparse_topk rejected its arguments (blocks={q.shape[1]}, k={k})")


def sparse_block_counts(x, block_size, weights, counts):
    _counting().sparse_block_counts(x, block_size, weights, counts)


def sparse_bundle(x, block_size, weights, tie, out):
    _counting().sparse_bundle(x, block_size, weights, tie, out)


def sparse_record_bundle(idx, ids, levels, block_size, tie, out):
    _counting().sparse_record_bundle(idx, ids, levels, block_size, tie, out)


def sparse_ngram_bundle(cols, offsets, table, sizes, block_size, tie, out):
    _counting().sparse_ngram_bundle(cols, offsets, table, sizes, block_size, tie, out)


def _index_arrays(n, blocks, block_size, segment, offsets, postings, writable):
    if not 1 <= segment <= 1 << 16:
        raise ValueError(f"segment must be in [1, 65536], got {segment}")
    n_seg = -(-n // segment)
    check_array(offsets, "offsets", I64, 1, writable), check_shape(offsets, "offsets", (n_seg * blocks * block_size + 1,))
    check_array(postings, "postings", _U16, 1, writable), check_shape(postings, "postings", (n * blocks,))
    return ptr(offsets, "int64_t *"), ptr(postings, "uint16_t *")


def sparse_index_build(x, block_size, segment, offsets, postings):
    px = _indices(x, "x")
    po, pp = _index_arrays(x.shape[0], x.shape[1], block_size, segment, offsets, postings, True)
    rc = lib.hdc_sparse_index_build(px, x.shape[0], x.shape[1], x.itemsize, block_size, segment, po, pp)
    if rc == -2:
        raise MemoryError(f"hdc_sparse_index_build could not allocate its counters ({x.shape[1] * block_size} keys)")
    if rc != 0:
        raise ValueError(f"x has an index >= block_size={block_size}")


def sparse_index_topk(q, block_size, segment, offsets, postings, n_rows, k, out_overlap, out_idx):
    pq = _indices(q, "q")
    po, pp = _index_arrays(n_rows, q.shape[1], block_size, segment, offsets, postings, False)
    k = int(k)
    if not 1 <= k <= n_rows:
        raise ValueError(f"k must be in [1, {n_rows}], got {k}")
    check_array(out_overlap, "out_overlap", _I32, 2, True), check_array(out_idx, "out_idx", I64, 2, True)
    check_shape(out_overlap, "out_overlap", (q.shape[0], k)), check_shape(out_idx, "out_idx", (q.shape[0], k))
    rc = lib.hdc_sparse_index_topk(pq, q.shape[0], q.shape[1], q.itemsize, block_size, segment, po, pp,
                                   n_rows, k, ptr(out_overlap, "int32_t *"), i64(out_idx))
    if rc == -2:
        raise MemoryError(f"hdc_sparse_index_topk could not allocate its work buffers (k={k})")
    if rc != 0:
        raise ValueError("hdc_sparse_index_topk: a query index >= block_size, or a damaged index")
