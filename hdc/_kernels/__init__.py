"""The kernel layer: one module per backend, all with the same functions.

Every backend module (``numpy_ref``, ``numba_kernels``, ``c_kernels``) exposes these functions.
They take already-validated, C-contiguous arrays, write into caller-allocated outputs and
return None (``topk`` too). They mirror ``csrc/hdc.h`` one for one:

=====================================================  ===========================================
``bind(a, b, out)``                                    uint64 (n,) each, ``out = a ^ b``
``permute(x, dim, shift, out)``                        uint64 (rows, w), ``0 <= shift < dim``
``popcount(x, out)``                                   x (rows, w), out uint32 (rows,)
``hamming(a, b, out)``                                 a, b (rows, w), out uint32 (rows,)
``cdist(a, b, out)``                                   a (na, w), b (nb, w), out uint32 (na, nb)
``topk(q, m, k, n_visible, out_dist, out_idx)``        q (nq, w), m (nm, w), n_visible None or
                                                       int64 (nq,); out uint32 / int64 (nq, k);
                                                       nearest first, ties by smaller index,
                                                       invisible slots: 0xFFFFFFFF / -1
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

``set_num_threads(n)`` / ``get_num_threads()`` control the threads a backend uses.
The dispatcher that picks a backend lives in :mod:`hdc.backend`.
"""
