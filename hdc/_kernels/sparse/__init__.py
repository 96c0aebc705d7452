"""Sparse block code kernels: one module per backend, all with the same functions.

They take validated, C-contiguous arrays of block indices (uint8 / uint16 / uint32, one dtype per
call, every index ``< block_size``), write into caller-allocated outputs and return None.

===========================================  ===================================================
``sparse_overlap(a, b, out)``                a, b (rows, K); out int32 (rows,): equal blocks
``sparse_cdist(a, b, out)``                  a (na, K), b (nb, K); out int32 (na, nb) overlaps
``sparse_topk(q, m, k, out_overlap,          q (nq, K), m (nm, K), ``1 <= k <= nm``; out int32
out_idx)``                                   / int64 (nq, k): highest overlap first, equal
                                             overlaps by smaller index
``sparse_block_counts(x, L, weights,         x (n, C), weights None or int64 (n,); counts int64
counts)``                                    (C, L), accumulated: ``counts[c, x[i, c]] += w[i]``
``sparse_bundle(x, L, weights, tie, out)``   x (n, C) with n >= 1, weights None or int64 (n,),
                                             tie, out (C,): per column the weighted most
                                             frequent index; tied maxima: the first at or after
                                             ``tie[c]`` counting up modulo ``L``
``sparse_record_bundle(idx, ids, levels,     idx int32 (n, F) level numbers, ids (F, K), levels
L, tie, out)``                               (n_levels, K), tie (K,), out (n, K): per record the
                                             ``bundle`` of ``(ids[f] + levels[idx[f]]) % L``
``sparse_ngram_bundle(cols, offsets,        per text t (its table columns ``cols[offsets[t]:
table, sizes, L, tie, out)``                 offsets[t + 1]]``, int32) the ``bundle`` of its
                                             n-grams for each n in sizes (int64), n-gram at p:
                                             ``sum_j table[n - 1 - j, c[p + j]] % L``; table
                                             (n_max, symbols, K), tie (K,), out (texts, K)
``sparse_index_build(x, L, S, offsets,      x (n, K); S: rows per segment, 1..65536; offsets
postings)``                                  int64 (ceil(n / S) K L + 1,), postings uint16
                                             (n K,): inverted index, key after key (b L + l)
                                             the rows with index l in block b, ascending, as
                                             segment-local numbers; segment s's part at
                                             ``offsets[key n_seg + s]`` up to the next entry
``sparse_index_topk(q, L, S, offsets,        ``sparse_topk`` of q (nq, K) against the n indexed
postings, n, k, out_overlap, out_idx)``      rows, from their lists (ValueError for a query
                                             index >= L or a damaged index)
===========================================  ===================================================
"""
