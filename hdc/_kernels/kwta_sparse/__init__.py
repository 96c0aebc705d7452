"""Op family ``kwta_sparse``: k-winner-take-all attention on sparse block codes.

One module per backend (``numpy_ref``, ``numba``, ``c``), each with the same three kernels. They
take validated, C-contiguous arrays, write into caller-allocated outputs and return the number
of query-key pairs touched (pairs of a query and a visible key that share at least one block):

==============================================================  ===================================
``kwta_sparse_select(q, keys, block_size, k, n_visible,         q uint32 (H, Lq, B), keys uint32
out_score, out_idx)``                                           (H, Lk, B), every index <
                                                                block_size; n_visible None or
                                                                int64 (Lq,); out int32 / int64
                                                                (H, Lq, k): overlap, highest
                                                                first, ties by smaller key index,
                                                                only keys with overlap >= 1;
                                                                empty slots -1 / -1
``kwta_sparse_softmax(q, keys, block_size, k, n_visible, v,     v float32/64 (H, Lk, dv), out
inv_temp, out, out_idx)``                                       (H, Lq, dv): winners mixed by
                                                                exp((s_r - s_0) * inv_temp),
                                                                float64 sums in winner order; no
                                                                winner: zeros
``kwta_sparse_majority(q, keys, block_size, k, n_visible, v,    v uint64 (H, Lk, VW), out (H, Lq,
out, out_idx)``                                                 VW): majority of the winners'
                                                                rows, even counts tie to the best
                                                                winner's bit
==============================================================  ===================================

The NumPy reference scores every pair; the Numba and C kernels are event-driven (an inverted
index over the keys' ``(block, index)`` pairs, so a query only visits keys sharing a block).
"""
