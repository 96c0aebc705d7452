"""The kernel layer, op family x backend.

One package per op family (``elementwise``, ``search``, ``bundle``, ``kwta``, ``encode``), one
module per backend in each: ``numpy_ref.py`` (the readable definition), ``numba.py``, ``c.py``
(the cffi binding of ``csrc/<family>/``). A thin facade per backend (``numpy_ref``,
``numba_kernels``, ``c_kernels``) collects every family's functions, with the backend's thread
controls; :func:`hdc.backend.kernels` returns the active one, so every op, encoder and learner
reaches its kernels through the dispatcher. :data:`FAMILIES` registers the families.

Every kernel takes already-validated, C-contiguous arrays, writes into caller-allocated outputs
and returns None (``topk`` too). The first four families mirror ``csrc/hdc.h`` one for one:

=====================================================  ===========================================
``bind(a, b, out)``                                    uint64 (n,) each, ``out = a ^ b``
``permute(x, dim, shift, out)``                        uint64 (rows, w), ``0 <= shift < dim``
``popcount(x, out)``                                   x (rows, w), out int32 (rows,)
``hamming(a, b, out)``                                 a, b (rows, w), out int32 (rows,)
``cdist(a, b, out)``                                   a (na, w), b (nb, w), out int32 (na, nb)
``topk(q, m, k, n_visible, out_dist, out_idx)``        q (nq, w), m (nm, w), n_visible None or
                                                       int64 (nq,); out int32 / int64 (nq, k);
                                                       nearest first, ties by smaller index,
                                                       invisible slots: INT32_MAX / -1
``bundle(x, tie, out)``                                x (n, W) with n >= 1, tie (W,), out (W,)
``column_counts(x, weights, counts)``                  x (n, W), weights None or int64 (n,),
                                                       counts int64 (W * 64,), accumulated
``kwta_select(q, keys, k, n_visible, out_dist,         q (H, Lq, W), keys (H, Lk, W); per head,
out_idx)``                                             ``topk`` of each query (out (H, Lq, k))
``kwta_softmax(q, keys, k, n_visible, v, inv_temp,     v float32/64 (H, Lk, dv), out (H, Lq, dv):
out, out_idx)``                                        winners mixed by exp(-(d - d_best) *
                                                       inv_temp), float64 sums in winner order
``kwta_majority(q, keys, k, n_visible, v, out,         v uint64 (H, Lk, VW), out (H, Lq, VW):
out_idx)``                                             majority of the winners' rows, even
                                                       counts tie to the best winner's bit
=====================================================  ===========================================

The encode family (encoders', classifier's and SDM's kernels; see ``encode/numba.py``):

=====================================================  ===========================================
``ngram_majority(tokens, offsets, table, sizes, tie,   majority of each text's n-grams, out
out)``                                                 (texts, W)
``record_majority(levels, ids, codebook, tie, out)``   majority over f of ``ids[f] ^
                                                       codebook[levels[i, f]]``, out (samples, W)
``retrain_epoch(x, y, order, counts, totals, protos,   one perceptron epoch of CentroidClassifier
tie, lr, dim, margin, moves)``
``sdm_write(counters, active_ptr, active_idx, data,    SDM counters += +-1 per bit at the active
dim)``                                                 locations (CSR)
``sdm_read(counters, active_ptr, active_idx,           summed counters of the active locations
out_sums)``
=====================================================  ===========================================

The sparse family (sparse block codes, index arrays; the table is in ``sparse/__init__.py``):
``sparse_overlap``, ``sparse_cdist``, ``sparse_topk``, ``sparse_block_counts``, ``sparse_bundle``,
``sparse_record_bundle``, ``sparse_ngram_bundle``, ``sparse_index_build``, ``sparse_index_topk``.
The kwta_sparse family (k-WTA attention on sparse block codes, ``csrc/kwta_sparse/``; each kernel
returns the number of query-key pairs it touched): ``kwta_sparse_select``, ``kwta_sparse_softmax``,
``kwta_sparse_majority``, documented in ``kwta_sparse/__init__.py``.

``set_num_threads(n)`` / ``get_num_threads()`` control the threads a backend uses;
``set_thread_limit(n)`` / ``get_thread_limit()`` cap them for the calling thread only (0: no cap),
so several threads running kernels at once can split the cores (``hdc.backend.thread_limit``).
The dispatcher that picks a backend lives in :mod:`hdc.backend`.
"""
import importlib

#: The distance in the slots of a top-k / k-WTA result that no visible row fills (index -1).
EMPTY_DISTANCE = 2 ** 31 - 1

#: family -> the kernels every backend module of that family defines
FAMILIES = {
    "elementwise": ("bind", "permute", "popcount", "hamming"),
    "search": ("cdist", "topk"),
    "bundle": ("bundle", "column_counts"),
    "kwta": ("kwta_select", "kwta_softmax", "kwta_majority"),
    "encode": ("ngram_majority", "record_majority", "retrain_epoch", "sdm_write", "sdm_read"),
    "sparse": ("sparse_overlap", "sparse_cdist", "sparse_topk", "sparse_block_counts", "sparse_bundle",
               "sparse_record_bundle", "sparse_ngram_bundle", "sparse_index_build", "sparse_index_topk"),
    "kwta_sparse": ("kwta_sparse_select", "kwta_sparse_softmax", "kwta_sparse_majority"),
}


def collect(namespace, backend):
    """Put every family's kernels for ``backend`` ('c', 'numba' or 'numpy_ref') into ``namespace``.

    Called by each facade module on its ``globals()``; fails at import when a family's module
    lacks one of its kernels, so a half-added family cannot load.
    """
    for family, names in FAMILIES.items():
        module = importlib.import_module(f"{__name__}.{family}.{backend}")
        for name in names:
            if not callable(getattr(module, name, None)):
                raise ImportError(f"{module.__name__} does not define the kernel {name}()")
            namespace[name] = getattr(module, name)

