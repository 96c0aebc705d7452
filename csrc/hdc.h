/* hdc.h: the C API of the hdc kernels (also the cffi cdef: no macros below the guard).
 *
 * Conventions shared by every function:
 * - A hypervector is a row of n_words uint64 words; element i is bit (i % 64) of word (i / 64).
 * - Distances and popcounts are int32 (as faiss): a row holds at most 2^31 - 1 elements
 *   (n_words <= 2^25 with zero padding bits, checked by the Python layer), so every count fits.
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
/* A cap on the threads of the calls made from the calling thread only (0: no cap, the default;
 * at most hdc_get_num_threads() are used either way): S threads that each run kernels at once
 * set cores / S, so they do not contend for the one shared pool (csrc/pool.c). */
int hdc_get_thread_limit(void);
void hdc_set_thread_limit(int n); /* n >= 0 */
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
void hdc_popcount(const uint64_t *x, int32_t *out, size_t n_rows, size_t n_words);
/* out[r] = popcount(a[r] ^ b[r]) for r < n_rows. */
void hdc_hamming(const uint64_t *a, const uint64_t *b, int32_t *out, size_t n_rows,
                 size_t n_words);

/* ---- all pairs and search ------------------------------------------------------------------ */
/* out[i * n_b + j] = popcount(a[i] ^ b[j]). */
void hdc_cdist(const uint64_t *a, size_t n_a, const uint64_t *b, size_t n_b, size_t n_words,
               int32_t *out);
/* For each query i, the k stored rows nearest in Hamming distance, nearest first, equal
 * distances ordered by smaller index: out_dist[i * k + r], out_idx[i * k + r].
 * n_visible: NULL (every row of m is a candidate) or n_q counts, query i sees rows
 * [0, min(n_visible[i], n_m)) only; slots beyond the visible count get dist INT32_MAX, idx -1.
 * Extra memory O(n_q * k * threads). Returns 0, or -1 if k == 0 or an allocation failed. */
int hdc_topk(const uint64_t *q, size_t n_q, const uint64_t *m, size_t n_m, size_t n_words,
             size_t k, const int64_t *n_visible, int32_t *out_dist, int64_t *out_idx);

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
 * beyond the visible count get dist INT32_MAX and idx -1. Extra memory: a transposed copy of the
 * keys plus O(k + dv) per thread. Each returns 0, or -1 if k == 0, n_k >= 2^32 or an allocation
 * failed. */
int hdc_kwta_select(const uint64_t *q, const uint64_t *keys, size_t n_heads, size_t n_q,
                    size_t n_k, size_t n_words, size_t k, const int64_t *n_visible,
                    int32_t *out_dist, int64_t *out_idx);
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

/* ---- sparse ---- */
/* Sparse block codes: rows of `blocks` indices, each `itemsize` bytes (1, 2 or 4: uint8, uint16,
 * uint32), rows contiguous. Indices are only compared, so any values are safe. Each returns 0,
 * -1 for a bad itemsize (or k), -2 if an allocation failed. */
/* out[r] = number of equal indices of rows a[r] and b[r], r < rows */
int hdc_sparse_overlap(const void *a, const void *b, size_t rows, size_t blocks, int itemsize,
                       int32_t *out);
/* out[i * nb + j] = number of equal indices of a[i] and b[j] */
int hdc_sparse_cdist(const void *a, size_t na, const void *b, size_t nb, size_t blocks,
                     int itemsize, int32_t *out);
/* per query i, the k (1 <= k <= nm) stored rows of highest overlap, highest first, equal
 * overlaps by smaller index: out_overlap / out_idx[i * k + r]; blocks < 2^30 */
int hdc_sparse_topk(const void *q, size_t nq, const void *m, size_t nm, size_t blocks,
                    int itemsize, size_t k, int32_t *out_overlap, int64_t *out_idx);
/* Inverted index (sparse/index.c): rows cut into segments of `segment` (1..65536) rows;
 * postings (n * blocks) hold, key after key (key = block * block_size + index), the rows with that
 * index in that block, ascending, as segment-local numbers; offsets (n_seg * blocks * block_size
 * + 1, n_seg = ceil(n / segment)): offsets[key * n_seg + s] is where key's part of segment s
 * starts, the last entry n * blocks. -1 when an index is >= block_size or an argument is out of
 * range, -2 if an allocation failed. */
int hdc_sparse_index_build(const void *x, size_t n, size_t blocks, int itemsize, uint64_t block_size,
                           size_t segment, int64_t *offsets, uint16_t *postings);
/* hdc_sparse_topk of the nq queries against the n indexed rows, through the index; -1 also for a
 * damaged index (a list outside the postings, a row number past its segment), -2 if an
 * allocation failed */
int hdc_sparse_index_topk(const void *q, size_t nq, size_t blocks, int itemsize,
                          uint64_t block_size, size_t segment, const int64_t *offsets,
                          const uint16_t *postings, size_t n, size_t k, int32_t *out_overlap,
                          int64_t *out_idx);

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

/* ---- machine limits (hdc bench) -------------------------------------------------------- */
/* out[c] = XOR of x[r * n_words + c] over r < n_rows, on all threads: reading x at the least cost
 * (the limit bundling is measured against). Returns 0, or -1 when scratch memory ran out. */
int hdc_xor_reduce(const uint64_t *x, size_t n_rows, size_t n_words, uint64_t *out);

#endif
