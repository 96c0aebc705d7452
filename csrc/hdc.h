/* hdc.h: the C API of the hdc kernels (also the cffi cdef: no macros below the guard).
 *
 * Conventions shared by every function:
 * - A hypervector is a row of n_words uint64 words; element i is bit (i % 64) of word (i / 64).
 *   Padding bits (elements >= dim in the last word) are 0 in every input and stay 0 in every output.
 * - Arrays are row-major and C-contiguous; the caller allocates every output.
 * - Sizes are element counts, never bytes. No function reads or writes outside
 *   [ptr, ptr + size) for the sizes it is given.
 * - Results are bit-identical on every ISA path and for every thread count.
 */
#ifndef HDC_H
#define HDC_H
#include <stddef.h>
#include <stdint.h>

/* ---- ISA dispatch and threads ------------------------------------------------------------ */
/* ISA ids: 0 = scalar, 1 = avx2, 2 = avx512 (AVX-512F/BW + VPOPCNTDQ). */
int hdc_isa_compiled(void);   /* bitmask (1 << id) of the paths compiled into this build */
int hdc_isa_supported(void);  /* bitmask of the paths this CPU and OS can run (CPUID + XGETBV) */
int hdc_get_isa(void);        /* the active path */
int hdc_set_isa(int isa);     /* 0 on success, -1 if that path is not compiled or not supported */
int hdc_get_num_threads(void);
void hdc_set_num_threads(int n); /* n >= 1 */
/* Calls with less work than this (about words touched) stay on one thread; returns the previous
 * value. Tests set it to 0 to run the threaded code on small inputs. */
size_t hdc_set_parallel_threshold(size_t words);

/* ---- element-wise ------------------------------------------------------------------------- */
/* out[i] = a[i] ^ b[i] for i < n (n = total words). out may alias a or b. */
void hdc_bind(const uint64_t *a, const uint64_t *b, uint64_t *out, size_t n);
/* Cyclic rotation of each of n_rows rows of dim elements: out[(i + shift) % dim] = x[i].
 * Requires 0 <= shift < dim, n_words == ceil(dim / 64). out must not alias x. */
void hdc_permute(const uint64_t *x, uint64_t *out, size_t n_rows, size_t n_words, size_t dim,
                 size_t shift);
/* out[r] = number of set bits of row r. */
void hdc_popcount(const uint64_t *x, uint32_t *out, size_t n_rows, size_t n_words);
/* out[r] = popcount(a[r] ^ b[r]) for r < n_rows. */
void hdc_hamming(const uint64_t *a, const uint64_t *b, uint32_t *out, size_t n_rows,
                 size_t n_words);

/* ---- all pairs and search ------------------------------------------------------------------ */
/* out[i * n_b + j] = popcount(a[i] ^ b[j]). */
void hdc_cdist(const uint64_t *a, size_t n_a, const uint64_t *b, size_t n_b, size_t n_words,
               uint32_t *out);
/* For each query i, the k stored rows nearest in Hamming distance, nearest first, equal
 * distances ordered by smaller index: out_dist[i * k + r], out_idx[i * k + r].
 * n_visible: NULL (every row of m is a candidate) or n_q counts, query i sees rows
 * [0, min(n_visible[i], n_m)) only; slots beyond the visible count get dist 0xFFFFFFFF, idx -1.
 * Extra memory O(n_q * k * threads). Returns 0, or -1 if k == 0 or an allocation failed. */
int hdc_topk(const uint64_t *q, size_t n_q, const uint64_t *m, size_t n_m, size_t n_words,
             size_t k, const int64_t *n_visible, uint32_t *out_dist, int64_t *out_idx);

/* ---- counting ------------------------------------------------------------------------------ */
/* Majority over n_rows rows of row_words words (n_rows >= 1): bit b of out is 1 when more than
 * half the rows have it set, 0 when fewer, tie[b] when exactly half (possible for even n_rows). */
void hdc_bundle(const uint64_t *x, size_t n_rows, size_t row_words, const uint64_t *tie,
                uint64_t *out);
/* counts[b] += sum over rows r of weight(r) * bit b of row r, for b < row_words * 64;
 * weight(r) = weights[r], or 1 when weights is NULL. */
void hdc_column_counts(const uint64_t *x, size_t n_rows, size_t row_words,
                       const int64_t *weights, int64_t *counts);

/* ---- k-winner-take-all attention ------------------------------------------------------------ */
/* n_heads heads; head h has n_q query codes (q + (h * n_q + i) * n_words) and n_k key codes
 * (keys + (h * n_k + j) * n_words). Query i of a head sees its keys j < n_visible[i] (every key
 * when n_visible is NULL) and keeps the k visible keys nearest in Hamming distance, nearest first,
 * equal distances ordered by smaller index: slot r of row h * n_q + i of out_dist / out_idx; slots
 * beyond the visible count get dist 0xFFFFFFFF and idx -1. Extra memory: a transposed copy of the
 * keys plus O(k + dv) per thread. Each returns 0, or -1 if k == 0, n_k >= 2^32 or an allocation
 * failed. */
int hdc_kwta_select(const uint64_t *q, const uint64_t *keys, size_t n_heads, size_t n_q,
                    size_t n_k, size_t n_words, size_t k, const int64_t *n_visible,
                    uint32_t *out_dist, int64_t *out_idx);
/* The selection, then row h * n_q + i of out (dv values) = sum over its winners w of
 * exp((d_0 - d_w) * inv_temp) * v[h * n_k + w] / (sum of those weights), where d_0 is the best
 * winner's distance: a softmax of score / temperature over the winners. Accumulated in double in
 * winner order (no fused multiply-add), so every ISA path and thread count gives the same bits.
 * A query that sees no key gets zeros. */
int hdc_kwta_softmax_f32(const uint64_t *q, const uint64_t *keys, size_t n_heads, size_t n_q,
                         size_t n_k, size_t n_words, size_t k, const int64_t *n_visible,
                         const float *v, size_t dv, double inv_temp, float *out, int64_t *out_idx);
int hdc_kwta_softmax_f64(const uint64_t *q, const uint64_t *keys, size_t n_heads, size_t n_q,
                         size_t n_k, size_t n_words, size_t k, const int64_t *n_visible,
                         const double *v, size_t dv, double inv_temp, double *out,
                         int64_t *out_idx);
/* The selection, then row h * n_q + i of out (v_words words) = the elementwise majority of the
 * winners' value rows v + (h * n_k + w) * v_words; with an even number of winners a tied bit
 * takes the best winner's bit. A query that sees no key gets zeros. */
int hdc_kwta_majority(const uint64_t *q, const uint64_t *keys, size_t n_heads, size_t n_q,
                      size_t n_k, size_t n_words, size_t k, const int64_t *n_visible,
                      const uint64_t *v, size_t v_words, uint64_t *out, int64_t *out_idx);

/* ---- kwta_sparse: k-WTA attention on sparse block codes (csrc/kwta_sparse/) ------------ */
/* Codes are rows of n_blocks uint32 block indices, each < block_size; score = overlap (number
 * of equal blocks). Query i of head h sees keys [0, min(n_visible[i], n_k)) (every key when
 * n_visible is NULL) and keeps its k best keys with overlap >= 1: highest overlap first, equal
 * overlaps by smaller key index; empty slots get index -1 (and score -1).
 * mode 0: winners only (out_score int32 (H, n_q, k)); 1: softmax mix of float values v
 * (H, n_k, width) into float out (H, n_q, width); 2: the same with double v / out; 3: majority of
 * the winners' value rows, v uint64 (H, n_k, width) into out (H, n_q, width), even counts tie to
 * the best winner's bit. Softmax weights exp(-(s_0 - s_r) * inv_temp) are summed in double in
 * winner order; a query with no winner gets zeros.
 * *touched = the number of (query, visible key) pairs with overlap >= 1.
 * Returns 0; -1 if an allocation failed or k == 0 or n_k >= 2^32 - 1 or n_blocks > 65535 or
 * block_size == 0 or block_size > 2^32; -2 if an index in q or keys is >= block_size (nothing written then). */
int hdc_kwta_sparse(const uint32_t *q, const uint32_t *keys, size_t n_heads, size_t n_q,
                    size_t n_k, size_t n_blocks, uint64_t block_size, size_t k,
                    const int64_t *n_visible, int mode, const void *v, size_t width,
                    double inv_temp, int32_t *out_score, void *out, int64_t *out_idx,
                    uint64_t *touched);

#endif
