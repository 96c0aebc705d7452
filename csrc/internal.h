/* internal.h: what the per-ISA kernel files provide to the ISA-independent drivers.
 *
 * Each kernel family (hamming/, bundle/) has one file per instruction set (bundle/avx512bw.c
 * serves both AVX-512 paths: counting needs no VPOPCNTDQ). Those files fill a
 * table of function pointers; csrc/dispatch.c picks the table once (CPUID + XGETBV) and the
 * drivers (search/search.c, bundle/count.c, elementwise/elementwise.c, kwta/kwta.c) call
 * through it. Nothing here is public API.
 */
#ifndef HDC_INTERNAL_H
#define HDC_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "hdc.h"

#if defined(__x86_64__) || defined(__i386__)
#define HDC_X86 1
#endif
#if defined(__aarch64__)
#define HDC_NEON 1
#endif

/* path ids (hdc.h lists them); a higher id on the same architecture is a faster path */
enum {
    HDC_ISA_SCALAR = 0,
    HDC_ISA_AVX2 = 1,
    HDC_ISA_AVX512BW = 2,
    HDC_ISA_AVX512VPOPCNT = 3,
    HDC_ISA_NEON = 4,
    HDC_N_ISA = HDC_N_ISAS
};
#define HDC_ISA_IS_AVX512(isa) ((isa) == HDC_ISA_AVX512BW || (isa) == HDC_ISA_AVX512VPOPCNT)

/* Distance kernels. w = words per row; rows are contiguous with stride w. */
typedef struct {
    const char *name;
    /* rows of a query group processed together by dist_multi */
    int qb;
    /* out[r * qb + j] = popcount(q_row[j] ^ m[r]) for j < qb, r < n_rows */
    void (*dist_multi)(const uint64_t *q, const uint64_t *m, size_t n_rows, size_t w,
                       uint32_t *out);
    /* out[r] = popcount(q ^ m[r]) for r < n_rows */
    void (*dist_one)(const uint64_t *q, const uint64_t *m, size_t n_rows, size_t w,
                     uint32_t *out);
    /* out[r] = popcount(a[r] ^ b[r]) */
    void (*hamming_rows)(const uint64_t *a, const uint64_t *b, uint32_t *out, size_t n_rows,
                         size_t w);
    /* out[r] = popcount(x[r]) */
    void (*popcount_rows)(const uint64_t *x, uint32_t *out, size_t n_rows, size_t w);
    /* the first i in [start, n) with buf[i] < thr[i % 16], else n (qb divides 16, and thr
     * repeats with period qb) */
    size_t (*find_hit)(const uint32_t *buf, size_t start, size_t n, const uint32_t *thr);
    /* out[i] = a[i] ^ b[i] (out may alias a or b); stream != 0: non-temporal stores, for
     * outputs much larger than the caches (no read-for-ownership of out) */
    void (*xor_words)(const uint64_t *a, const uint64_t *b, uint64_t *out, size_t n, int stream);
    /* dst[i] = src[i] with non-temporal stores (no overlap); store_fence() after the last */
    void (*stream_copy)(uint64_t *dst, const uint64_t *src, size_t n);
    void (*store_fence)(void);
    /* keys stored in blocks of 8, transposed within a block (word c of key j at
     * kt[(j / 8) * 8 * w + c * 8 + j % 8], zero keys padding the last block): appends
     * (d << 32 | j) to cand for each j in [j0, j1) whose distance d to q is < below, in
     * increasing j; returns how many. j0 is a multiple of 8; cand needs room for j1 - j0 + 8
     * entries. */
    size_t (*kwta_scan)(const uint64_t *q, const uint64_t *kt, size_t w, size_t j0, size_t j1,
                        uint32_t below, uint64_t *cand);
    /* The same scan for nq <= HDC_NIB_QUERIES queries at once over nibble-transposed keys (codes
     * of w <= HDC_NIB_MAX_WORDS words; NULL on paths without it): keys in blocks of 64, nibble t
     * (t < 16 w: nibble t % 2 of byte t / 2, low first) of key j in the low bits of byte
     * nt[(j / 64) * 64 * 16 w + 64 t + j % 64], zero keys padding the last block. Query i's words
     * are q + i * w, its lookup tables tab + i * 16 w * 64 (kwta_tables). Appends
     * (d << 32 | j) to cand[i] + n[i] (adding to n[i]) for each j in [j0, j1[i]) with
     * d < below[i], in increasing j. j0 is a multiple of 64, j1[i] <= j0 + HDC_NIB_CHUNK (a
     * query with j1[i] <= j0 gets nothing), j0 < max j1[i]; each cand[i] needs room for
     * j1[i] - j0 entries. */
    void (*kwta_scan_nib)(const uint64_t *q, const uint8_t *tab, int nq, const uint8_t *nt,
                          size_t w, size_t j0, const size_t *j1, const uint32_t *below,
                          uint64_t *const *cand, size_t *n);
    /* the lookup tables of nq queries q + i * w for kwta_scan_nib: table t of query i, 64 bytes
     * at tab + (i * 16 w + t) * 64, byte x = popcount(nibble t of the query XOR x % 16) */
    void (*kwta_tables)(const uint64_t *q, int nq, size_t w, uint8_t *tab);
} hdc_ham_ops;

#define HDC_NIB_QUERIES 4    /* queries per kwta_scan_nib call, at most */
#define HDC_NIB_MAX_WORDS 4  /* codes of up to 256 bits: byte counters saturate only at 255 */
#define HDC_NIB_CHUNK 256    /* keys per kwta_scan_nib call, at most: 4 blocks of 64 */

/* Bit-sliced counters: slice s of column word c (c0 <= c < c0 + ncols) is sl[s * ncols + c - c0];
 * a column's count is sum over s of bit * 2^s. */
typedef struct {
    /* count rows (x + idx[i] * stride, or x + i * stride when idx is NULL; i < n), words
     * [c0, c0 + ncols) of each, into the n_slices counters sl, zero on entry (counts < 2^n_slices) */
    void (*count_add)(const uint64_t *x, size_t stride, const size_t *idx, size_t n, size_t c0,
                      size_t ncols, uint64_t *sl, int n_slices);
    /* out[c] = (count > half) | (count == half & tie[c]) (tie ignored when tie_on == 0) */
    void (*majority)(const uint64_t *sl, int n_slices, size_t ncols, uint64_t half, int tie_on,
                     const uint64_t *tie, uint64_t *out);
    /* counts[64 * (c - c0) + b] += scale * count of bit b of column word c (mod 2^64) */
    void (*expand)(const uint64_t *sl, int n_slices, size_t ncols, uint64_t scale,
                   int64_t *counts);
    /* acc[c] ^= x[r * w + c] for r < n, c < w: reading rows at the least cost, the limit that
     * hdc bench measures count_add against (limits.c) */
    void (*xor_rows)(const uint64_t *x, size_t n, size_t w, uint64_t *acc);
} hdc_count_ops;

/* Sparse block codes (sparse/): eq_rows[t] for indices of 1, 2, 4 bytes (t = 0, 1, 2):
 * out[r] = number of j < blocks with q[j] == m[r * blocks + j], for r < n_rows */
typedef void (*hdc_sparse_eq_fn)(const void *q, const void *m, size_t n_rows, size_t blocks,
                                 int32_t *out);
/* Query blocking: a tile of HDC_SPARSE_TILE stored rows transposed, tile[b * HDC_SPARSE_TILE + j]
 * = index of block b of row j (b < nb <= HDC_SPARSE_TILE_BLOCKS, so 8-bit lane counters cannot
 * wrap); for each query i < nq (its indices at q + i * q_stride):
 * dist[i * HDC_SPARSE_TILE + j] -= number of b < nb with q[i * q_stride + b] == tile[b * TILE + j].
 * The tile is read once per group of queries held in registers, and no horizontal sum is needed. */
#define HDC_SPARSE_TILE 64
#define HDC_SPARSE_TILE_BLOCKS 255
typedef void (*hdc_sparse_tile_fn)(const void *q, size_t q_stride, size_t nq, const void *tile,
                                   size_t nb, uint32_t *dist);
typedef struct {
    const char *name;
    hdc_sparse_eq_fn eq_rows[3];
    hdc_sparse_tile_fn eq_tile[3];
} hdc_sparse_ops;

extern const hdc_ham_ops hdc_ham_scalar, hdc_ham_scalar_popcnt;
extern const hdc_count_ops hdc_count_scalar;
extern const hdc_sparse_ops hdc_sparse_scalar;
#ifdef HDC_X86
extern const hdc_sparse_ops hdc_sparse_avx2, hdc_sparse_avx512bw;
extern const hdc_ham_ops hdc_ham_avx2, hdc_ham_avx512bw, hdc_ham_avx512vpopcnt;
extern const hdc_count_ops hdc_count_avx2, hdc_count_avx512bw;
#endif
#ifdef HDC_NEON
extern const hdc_ham_ops hdc_ham_neon;
extern const hdc_count_ops hdc_count_neon;
extern const hdc_sparse_ops hdc_sparse_neon;
#endif

/* the tables of the active path (dispatch.c) */
const hdc_ham_ops *hdc__ham(void);
const hdc_count_ops *hdc__count(void);
const hdc_sparse_ops *hdc__sparse(void);
/* threads to use for `work` units (about one word touched each): 1 below a threshold */
int hdc__threads_for(double work);

/* attention.c: the softmax mix of one query's winners win[0..kk) (entries (d << 32 | key), d
 * ascending): out = sum_r table[d_r - d_0] * v[key_r] / sum_r table[d_r - d_0], summed in double
 * in winner order (wgt: kk doubles of scratch); v, out: float (f64 == 0) or double rows of dv.
 * The same arithmetic on every ISA path. */
typedef void (*hdc_kwta_mix_fn)(const double *table, const uint64_t *win, size_t kk, const void *v,
                                size_t dv, double *wgt, void *out);
hdc_kwta_mix_fn hdc__kwta_mix(int f64, int isa);
/* kwta.c: out (v_words words) = majority of the value rows v + key_r * v_words of the winners
 * win[0..kk) (kk >= 1), an even count tying to win[0]'s bit; scratch idx: kk, sl: 64 * v_words */
void hdc__kwta_majority(const hdc_count_ops *count, const uint64_t *v, size_t v_words,
                        const uint64_t *win, size_t kk, size_t *idx, uint64_t *sl, uint64_t *out);

/* pool.c: run fn(ctx, unit, slot) for every unit < units on up to n_threads threads (the
 * caller included); slot < n_threads identifies the thread, each slot's units ascend */
typedef void (*hdc_task_fn)(void *ctx, size_t unit, int slot);
void hdc__parallel(size_t units, int n_threads, hdc_task_fn fn, void *ctx);
int hdc__default_threads(void);

#endif
