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
/* ISA ids, lowest first: 0 = scalar, 1 = avx2 (AVX2 + POPCNT), 2 = avx512bw (AVX-512 F/BW/VL),
 * 3 = avx512vpopcnt (avx512bw + VPOPCNTDQ), 4 = neon (aarch64 Advanced SIMD). */
enum { HDC_N_ISAS = 5 };
/* CPU features behind the paths, as seen by hdc_cpu_features() (CPUID + XGETBV, or the aarch64
 * hwcaps): OS_YMM / OS_ZMM mean the OS saves the AVX / AVX-512 register state. */
enum {
    HDC_CPU_POPCNT = 1, HDC_CPU_AVX2 = 2, HDC_CPU_OS_YMM = 4, HDC_CPU_AVX512F = 8,
    HDC_CPU_AVX512BW = 16, HDC_CPU_AVX512VL = 32, HDC_CPU_AVX512VPOPCNTDQ = 64,
    HDC_CPU_OS_ZMM = 128, HDC_CPU_ASIMD = 256
};
int hdc_cpu_features(void);   /* bitmask of HDC_CPU_* this CPU and OS provide */
int hdc_isa_needs(int isa);   /* the HDC_CPU_* bits path `isa` needs (-1 for an unknown id) */
int hdc_isa_compiled(void);   /* bitmask (1 << id) of the paths compiled into this build */
int hdc_isa_supported(void);  /* bitmask of the paths this CPU and OS can run */
int hdc_get_isa(void);        /* the active path (at load: the best supported one) */
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

/* ---- machine limits (hdc bench) -------------------------------------------------------- */
/* out[c] = XOR of x[r * n_words + c] over r < n_rows, on all threads: reading x at the least cost
 * (the limit bundling is measured against). Returns 0, or -1 when scratch memory ran out. */
int hdc_xor_reduce(const uint64_t *x, size_t n_rows, size_t n_words, uint64_t *out);

#endif
