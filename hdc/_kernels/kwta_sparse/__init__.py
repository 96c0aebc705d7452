"""Op family ``kwta_sparse``: k-winner-take-all attention on sparse block codes.

One module per backend (``numpy_ref``, ``numba``, ``c``), each with the same three kernels. They
take validated, C-contiguous arrays, write into caller-allocated outputs and return the number
of query-key pairs touched (pairs of a query and a visible key that share at least one block):

==========================================================  =======================================
``select(q, keys, block_size, k, n_visible,                 q uint32 (H, Lq, B), keys uint32
out_score, out_idx)``                                       (H, Lk, B), every index < block_size;
                                                            n_visible None or int64 (Lq,); out
                                                            int32 / int64 (H, Lq, k): overlap,
                                                            highest first, ties by smaller key
                                                            index, only keys with overlap >= 1;
                                                            empty slots -1 / -1
``softmax(q, keys, block_size, k, n_visible, v, inv_temp,   v float32/64 (H, Lk, dv), out (H, Lq,
out, out_idx)``                                             dv): winners mixed by exp((s_r - s_0)
                                                            * inv_temp), float64 sums in winner
                                                            order; no winner: zeros
``majority(q, keys, block_size, k, n_visible, v, out,       v uint64 (H, Lk, VW), out (H, Lq, VW):
out_idx)``                                                  majority of the winners' rows, even
                                                            counts tie to the best winner's bit
==========================================================  =======================================

The NumPy reference scores every pair; the Numba and C kernels are event-driven (an inverted
index over the keys' ``(block, index)`` pairs, so a query only visits keys sharing a block).
"""
