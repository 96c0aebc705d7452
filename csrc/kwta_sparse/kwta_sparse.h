/* kwta_sparse.h: k-winner-take-all attention on sparse block codes (also part of the cffi cdef).
 *
 * Codes are rows of n_blocks uint32 block indices, each < block_size; score = overlap (number
 * of equal blocks). Query i of head h sees keys [0, min(n_visible[i], n_k)) (every key when
 * n_visible is NULL) and keeps its k best keys with overlap >= 1: highest overlap first, equal
 * overlaps by smaller key index; empty slots get index -1 (and score -1).
 * mode 0: winners only (out_score int32 (H, n_q, k)); 1: softmax mix of float values v
 * (H, n_k, width) into float out (H, n_q, width); 2: the same with double v / out; 3: majority of
 * the winners' value rows, v uint64 (H, n_k, width) into out (H, n_q, width), even counts tie to
 * the best winner's bit. Softmax weights exp(-(s_0 - s_r) * inv_temp) are summed in double in
 * winner order; a query with no winner gets zeros.
 * *touched = the number of (query, visible key) pairs with overlap >= 1.
 * Returns 0; -1 if an allocation failed or k == 0 or n_k >= 2^32 or block_size == 0 or
 * block_size > 2^32; -2 if an index in q or keys is >= block_size (nothing written then). */
int hdc_kwta_sparse(const uint32_t *q, const uint32_t *keys, size_t n_heads, size_t n_q,
                    size_t n_k, size_t n_blocks, uint64_t block_size, size_t k,
                    const int64_t *n_visible, int mode, const void *v, size_t width,
                    double inv_temp, int32_t *out_score, void *out, int64_t *out_idx,
                    uint64_t *touched);
