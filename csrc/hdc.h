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

#endif
