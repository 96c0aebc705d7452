/* kwta/kwta.c: Hamming k-winner-take-all attention (hdc_kwta_*), the driver of kwta_scan.
 *
 * Keys are rearranged once per call into blocks of 8 transposed keys (word c of key j at
 * kt[(j / 8) * 8 w + 8 c + j % 8]) so the scan computes 8 (AVX-512) or 4 (AVX2) distances per
 * vector with no horizontal sums and reads each block contiguously whatever the code width.
 * A query streams over its visible keys in chunks; only keys nearer than a running bound enter
 * a small candidate buffer
 * as (distance << 32 | index), so comparing two entries compares (distance, index), the
 * winner order. When the buffer fills, it is cut to the k smallest and the bound drops to the
 * k-th distance (a later key only wins if strictly nearer: its index is larger). The bound starts
 * at the previous query's k-th distance plus a slack; if fewer than k keys pass it, the query is
 * scanned again with no bound, so the result never depends on the guess. Memory: the transposed
 * keys plus O(k) per thread, never O(L^2).
 *
 * Paths with a nibble-table scan (kwta_scan_nib: AVX2, AVX-512BW) lay codes of up to 256 bits
 * out nibble-transposed in blocks of 64 keys instead (a nibble per byte) and scan up to
 * HDC_NIB_QUERIES consecutive queries per pass over a chunk of keys (each with its own bound and
 * candidates), so a key vector is loaded once for all of them.
 *
 * Units are blocks of queries of one head, claimed dynamically (causal rows cost more as they
 * go). Each query's output depends only on its own winners, accumulated in a fixed order, so
 * results are the same for every thread count and ISA path.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../internal.h"

#define CHUNK 256   /* keys scanned between checks of the candidate buffer */
#define QBLOCK 32   /* queries per work unit */
#define SLACK 3     /* first bound: previous query's k-th distance + SLACK */

enum { KWTA_SELECT, KWTA_SOFTMAX_F32, KWTA_SOFTMAX_F64, KWTA_MAJORITY };

typedef hdc_kwta_mix_fn mix_fn;

typedef struct {
    const hdc_ham_ops *ham;
    mix_fn mix;             /* softmax modes */
    const hdc_count_ops *count;
    const uint64_t *q, *kt;
    const uint8_t *nt;      /* nibble-transposed keys when nib, else kt: blocks of 8 transposed */
    int nib;                /* scan with kwta_scan_nib */
    size_t n_heads, n_q, n_k, k_padded, w, k, reduce_at, cand_cap, blocks; /* k_padded: n_k to
                                                                             * 8s (kt) or 64s (nt) */
    const int64_t *n_visible;
    int mode, n_slices, group; /* group: queries per scan pass (1 without kwta_scan_nib) */
    const void *v;          /* softmax: values (n_heads, n_k, dv); majority: words (.., v_words) */
    size_t dv, v_words;
    const double *table;    /* softmax weights exp(-delta * inv_temp), delta = 0 .. 64 w */
    void *out;
    int32_t *out_dist;      /* NULL except for hdc_kwta_select */
    int64_t *out_idx;
    char *scratch;          /* per thread slot: scratch_bytes each */
    size_t scratch_bytes;
    uint32_t *guesses;      /* per thread slot: the bound guessed from its last query, kept
                             * across units (a unit's first query had none: scanned alone) */
} kwta_job;

static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

static void insertion_sort(uint64_t *a, size_t n)
{
    for (size_t i = 1; i < n; ++i) {
        uint64_t x = a[i];
        size_t p = i;
        for (; p > 0 && a[p - 1] > x; --p)
            a[p] = a[p - 1];
        a[p] = x;
    }
}

/* reorder the distinct entries a[0..n) so that a[0..k) hold the k smallest, sorted (k <= n) */
static void quick_smallest(uint64_t *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n; /* a[0..lo) < a[lo..hi) < a[hi..n); position k - 1 lies in [lo, hi) */
    while (hi - lo > 24) {
        uint64_t x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi - 1];
        /* median of three distinct entries: the minimum of them is below it, so both sides of
         * the partition are non-empty and the range shrinks */
        uint64_t p = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        size_t s = lo;
        for (size_t i = lo; i < hi; ++i)
            if (a[i] < p) {
                uint64_t t = a[i];
                a[i] = a[s];
                a[s++] = t;
            }
        if (k <= s)
            hi = s;
        else
            lo = s;
    }
    insertion_sort(a + lo, hi - lo);
    insertion_sort(a, lo < k ? lo : k);
}

/* the k smallest of the candidates a[0..n) (k <= n), sorted, into a[0..k).
 * Candidates come as a sorted run followed by entries in increasing index, so a counting sort by
 * distance that keeps that order within a distance (stable) sorts by (distance, index). The
 * distances of one query span a few dozen values; a wider spread falls back to quickselect.
 * tmp: room for n entries; counts: room for SPAN + 1 counters. */
#define SPAN 512
static void sort_smallest(uint64_t *a, size_t n, size_t k, uint64_t *tmp, uint32_t *counts)
{
    uint32_t lo = UINT32_MAX, hi = 0;
    for (size_t i = 0; i < n; ++i) {
        uint32_t d = (uint32_t)(a[i] >> 32);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    if (hi - lo >= SPAN) {
        quick_smallest(a, n, k);
        return;
    }
    uint32_t span = hi - lo + 1;
    for (uint32_t b = 0; b <= span; ++b)
        counts[b] = 0;
    for (size_t i = 0; i < n; ++i)
        ++counts[(uint32_t)(a[i] >> 32) - lo + 1];
    for (uint32_t b = 1; b <= span; ++b)   /* counts[b]: entries nearer than distance lo + b */
        counts[b] += counts[b - 1];
    for (size_t i = 0; i < n; ++i) /* every entry placed (no branch), the first k kept */
        tmp[counts[(uint32_t)(a[i] >> 32) - lo]++] = a[i];
    for (size_t i = 0; i < k; ++i)
        a[i] = tmp[i];
}

/* the kk = min(k, nvis) winners of query q among keys [0, nvis) of kt, sorted, into cand[0..kk) */
static size_t select_query(const kwta_job *j, const uint64_t *q, const uint64_t *kt, size_t nvis,
                           uint32_t *guess, uint64_t *cand, uint64_t *tmp, uint32_t *counts)
{
    size_t k = j->k, kk = min_size(k, nvis);
    if (kk == 0)
        return 0;
    uint32_t below = *guess;
    for (;;) {
        size_t n = 0;
        uint32_t bound = below;
        for (size_t j0 = 0; j0 < nvis; j0 += CHUNK) {
            n += j->ham->kwta_scan(q, kt, j->w, j0, min_size(j0 + CHUNK, nvis), bound, cand + n);
            if (n >= j->reduce_at) {
                sort_smallest(cand, n, k, tmp, counts);
                n = k;
                bound = (uint32_t)(cand[k - 1] >> 32);
            }
        }
        /* at least kk keys nearer than the bound: the kk nearest are among them */
        if (n >= kk) {
            sort_smallest(cand, n, kk, tmp, counts);
            break;
        }
        below = UINT32_MAX; /* the guessed bound was too tight */
    }
    uint32_t d = (uint32_t)(cand[kk - 1] >> 32);
    *guess = d < UINT32_MAX - SLACK ? d + SLACK : UINT32_MAX;
    return kk;
}

/* The winners of nq consecutive queries q[i * w] (nvis[i] >= 1 visible keys each) among the
 * nibble-transposed keys nt of their head through kwta_scan_nib, each starting from its
 * bound[i]: query i's kk[i] = min(k, nvis[i]) winners, sorted, in cand[i][0..kk[i]), or
 * kk[i] = 0 where fewer than that many keys were nearer than the bound (the caller rescans it
 * with no bound). A histogram of each query's candidate distances lowers its bound after every
 * chunk to the k-th distance so far, so later chunks emit fewer candidates; the candidates stay
 * in key order (those at or past the lowered bound are left in place and sorted out at the end). */
static void select_group(const kwta_job *j, const uint8_t *nt, const uint64_t *q, int nq,
                         const size_t *nvis, const uint32_t *bound_in, uint8_t *tab,
                         uint64_t *const *cand, uint64_t *tmp, uint32_t *counts, size_t *kk)
{
    size_t w = j->w, k = j->k, far = 0, n[HDC_NIB_QUERIES] = {0};
    uint32_t top = (uint32_t)(64 * w + 1); /* above every distance */
    uint32_t bound[HDC_NIB_QUERIES], hist[HDC_NIB_QUERIES][64 * HDC_NIB_MAX_WORDS + 2];
    size_t valid[HDC_NIB_QUERIES] = {0}; /* candidates nearer than bound */
    j->ham->kwta_tables(q, nq, w, tab);
    for (int i = 0; i < nq; ++i) {
        bound[i] = bound_in[i] < top ? bound_in[i] : top;
        far = nvis[i] > far ? nvis[i] : far;
        memset(hist[i], 0, (top + 1) * sizeof hist[i][0]);
    }
    for (size_t j0 = 0; j0 < far; j0 += CHUNK) {
        size_t j1[HDC_NIB_QUERIES], before[HDC_NIB_QUERIES];
        for (int i = 0; i < nq; ++i) { /* a query past its keys gets nothing from this pass */
            j1[i] = min_size(j0 + CHUNK, nvis[i]);
            before[i] = n[i];
        }
        j->ham->kwta_scan_nib(q, tab, nq, nt, w, j0, j1, bound, cand, n);
        for (int i = 0; i < nq; ++i) {
            if (n[i] >= j->reduce_at) { /* full: cut to the k nearest */
                sort_smallest(cand[i], n[i], k, tmp, counts);
                memset(hist[i], 0, (top + 1) * sizeof hist[i][0]); /* recounted from them */
                valid[i] = before[i] = 0;
                bound[i] = top;
                n[i] = k;
            }
            for (size_t e = before[i]; e < n[i]; ++e)
                ++hist[i][cand[i][e] >> 32];
            valid[i] += n[i] - before[i];
            /* lower the bound while k candidates stay at or below it: a later key at the bound
             * comes after them */
            while (valid[i] >= k) {
                --bound[i];
                valid[i] -= hist[i][bound[i]];
            }
        }
    }
    for (int i = 0; i < nq; ++i) {
        kk[i] = min_size(k, nvis[i]);
        if (n[i] >= kk[i])
            sort_smallest(cand[i], n[i], kk[i], tmp, counts);
        else
            kk[i] = 0;
    }
}

/* ---- mixing the winners' values ------------------------------------------------------------- */

/* out = sum_r table[d_r - d_0] * v[idx_r] / sum_r table[d_r - d_0], in double, winner order.
 * Every path does the same double operations per column (the build passes -ffp-contract=off: no
 * FMA), so outputs are identical; they differ in how many columns they carry at once. */
static inline __attribute__((always_inline)) double mix_weights(const double *table,
                                                                const uint64_t *win, size_t kk,
                                                                double *wgt)
{
    uint32_t d0 = (uint32_t)(win[0] >> 32);
    double total = 0.0;
    for (size_t r = 0; r < kk; ++r) {
        wgt[r] = table[(uint32_t)(win[r] >> 32) - d0];
        total += wgt[r];
    }
    return 1.0 / total;
}

/* columns [e0, dv) one at a time */
#define MIX_COLUMNS_TAIL(T)                                                                        \
    for (; e0 < dv; ++e0) {                                                                        \
        double acc = 0.0;                                                                          \
        for (size_t r = 0; r < kk; ++r)                                                            \
            acc += wgt[r] * (double)v[(size_t)(uint32_t)win[r] * dv + e0];                         \
        out[e0] = (T)(acc * scale);                                                                \
    }

#define MIX_COLS 16 /* the plain path: columns whose sums stay in registers across the winners */

#define DEFINE_MIX_PLAIN(NAME, T)                                                                  \
    static void NAME##_plain(const double *table, const uint64_t *win, size_t kk, const void *vv, \
                             size_t dv, double *wgt, void *oo)                                     \
    {                                                                                              \
        const T *v = vv;                                                                           \
        T *out = oo;                                                                               \
        double scale = mix_weights(table, win, kk, wgt);                                           \
        size_t e0 = 0;                                                                             \
        for (; e0 + MIX_COLS <= dv; e0 += MIX_COLS) {                                              \
            double acc[MIX_COLS] = {0};                                                            \
            for (size_t r = 0; r < kk; ++r) {                                                      \
                const T *vr = v + (size_t)(uint32_t)win[r] * dv + e0;                              \
                for (int e = 0; e < MIX_COLS; ++e)                                                 \
                    acc[e] += wgt[r] * (double)vr[e];                                              \
            }                                                                                      \
            for (int e = 0; e < MIX_COLS; ++e)                                                     \
                out[e0 + e] = (T)(acc[e] * scale);                                                 \
        }                                                                                          \
        MIX_COLUMNS_TAIL(T)                                                                        \
    }
DEFINE_MIX_PLAIN(mix_f32, float)
DEFINE_MIX_PLAIN(mix_f64, double)

#ifdef HDC_X86
#include <immintrin.h>
/* Vector paths: eight independent accumulators (8 x VW columns) per pass over the winners, so
 * the adds' latency overlaps and each winner's row is read in one go; then one accumulator at a
 * time, then single columns. VW doubles per vector; LOAD widens VW values of T to double. */
#define DEFINE_MIX_SIMD(NAME, T, TARGET, VEC, VW, LOAD, STORE, SET1, ZERO, ADD, MUL)              \
    __attribute__((target(TARGET))) static void NAME(const double *table, const uint64_t *win,    \
                                                     size_t kk, const void *vv, size_t dv,         \
                                                     double *wgt, void *oo)                        \
    {                                                                                              \
        const T *v = vv;                                                                           \
        T *out = oo;                                                                               \
        double scale = mix_weights(table, win, kk, wgt);                                           \
        VEC sc = SET1(scale);                                                                      \
        size_t e0 = 0;                                                                             \
        for (; e0 + 8 * VW <= dv; e0 += 8 * VW) {                                                  \
            VEC a0 = ZERO(), a1 = ZERO(), a2 = ZERO(), a3 = ZERO();                                \
            VEC a4 = ZERO(), a5 = ZERO(), a6 = ZERO(), a7 = ZERO();                                \
            for (size_t r = 0; r < kk; ++r) {                                                      \
                const T *vr = v + (size_t)(uint32_t)win[r] * dv + e0;                              \
                VEC wr = SET1(wgt[r]);                                                             \
                a0 = ADD(a0, MUL(wr, LOAD(vr)));                                                   \
                a1 = ADD(a1, MUL(wr, LOAD(vr + VW)));                                              \
                a2 = ADD(a2, MUL(wr, LOAD(vr + 2 * VW)));                                          \
                a3 = ADD(a3, MUL(wr, LOAD(vr + 3 * VW)));                                          \
                a4 = ADD(a4, MUL(wr, LOAD(vr + 4 * VW)));                                          \
                a5 = ADD(a5, MUL(wr, LOAD(vr + 5 * VW)));                                          \
                a6 = ADD(a6, MUL(wr, LOAD(vr + 6 * VW)));                                          \
                a7 = ADD(a7, MUL(wr, LOAD(vr + 7 * VW)));                                          \
            }                                                                                      \
            STORE(out + e0, MUL(a0, sc));                                                          \
            STORE(out + e0 + VW, MUL(a1, sc));                                                     \
            STORE(out + e0 + 2 * VW, MUL(a2, sc));                                                 \
            STORE(out + e0 + 3 * VW, MUL(a3, sc));                                                 \
            STORE(out + e0 + 4 * VW, MUL(a4, sc));                                                 \
            STORE(out + e0 + 5 * VW, MUL(a5, sc));                                                 \
            STORE(out + e0 + 6 * VW, MUL(a6, sc));                                                 \
            STORE(out + e0 + 7 * VW, MUL(a7, sc));                                                 \
        }                                                                                          \
        for (; e0 + VW <= dv; e0 += VW) {                                                          \
            VEC a = ZERO();                                                                        \
            for (size_t r = 0; r < kk; ++r)                                                        \
                a = ADD(a, MUL(SET1(wgt[r]), LOAD(v + (size_t)(uint32_t)win[r] * dv + e0)));       \
            STORE(out + e0, MUL(a, sc));                                                           \
        }                                                                                          \
        MIX_COLUMNS_TAIL(T)                                                                        \
    }

#define LD4_F32(p) _mm256_cvtps_pd(_mm_loadu_ps(p))
#define ST4_F32(p, x) _mm_storeu_ps((p), _mm256_cvtpd_ps(x))
#define LD8_F32(p) _mm512_cvtps_pd(_mm256_loadu_ps(p))
#define ST8_F32(p, x) _mm256_storeu_ps((p), _mm512_cvtpd_ps(x))
DEFINE_MIX_SIMD(mix_f32_avx2, float, "avx2", __m256d, 4, LD4_F32, ST4_F32, _mm256_set1_pd,
                _mm256_setzero_pd, _mm256_add_pd, _mm256_mul_pd)
DEFINE_MIX_SIMD(mix_f64_avx2, double, "avx2", __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd,
                _mm256_set1_pd, _mm256_setzero_pd, _mm256_add_pd, _mm256_mul_pd)
DEFINE_MIX_SIMD(mix_f32_avx512, float, "avx512f", __m512d, 8, LD8_F32, ST8_F32, _mm512_set1_pd,
                _mm512_setzero_pd, _mm512_add_pd, _mm512_mul_pd)
DEFINE_MIX_SIMD(mix_f64_avx512, double, "avx512f", __m512d, 8, _mm512_loadu_pd,
                _mm512_storeu_pd, _mm512_set1_pd, _mm512_setzero_pd, _mm512_add_pd,
                _mm512_mul_pd)
#endif

/* the mix for the value type of `mode` on ISA path `isa` */
static mix_fn pick_mix(int mode, int isa)
{
    int f64 = mode == KWTA_SOFTMAX_F64;
#ifdef HDC_X86
    if (HDC_ISA_IS_AVX512(isa))
        return f64 ? mix_f64_avx512 : mix_f32_avx512;
    if (isa == HDC_ISA_AVX2)
        return f64 ? mix_f64_avx2 : mix_f32_avx2;
#endif
    return f64 ? mix_f64_plain : mix_f32_plain;
}

hdc_kwta_mix_fn hdc__kwta_mix(int f64, int isa)
{
    return pick_mix(f64 ? KWTA_SOFTMAX_F64 : KWTA_SOFTMAX_F32, isa);
}

/* majority of the winners' value rows; an even count ties to the best winner's bit */
void hdc__kwta_majority(const hdc_count_ops *count, const uint64_t *v, size_t v_words,
                        const uint64_t *win, size_t kk, size_t *idx, uint64_t *sl, uint64_t *out)
{
    for (size_t r = 0; r < kk; ++r)
        idx[r] = (size_t)(uint32_t)win[r];
    int n_slices = kk ? 64 - __builtin_clzll(kk) : 1;
    for (size_t i = 0; i < (size_t)n_slices * v_words; ++i)
        sl[i] = 0;
    count->count_add(v, v_words, idx, kk, 0, v_words, sl, n_slices);
    count->majority(sl, n_slices, v_words, kk / 2, kk % 2 == 0, v + idx[0] * v_words, out);
}

static void mix_majority(const kwta_job *j, const uint64_t *win, size_t kk, size_t h, size_t row,
                         size_t *idx, uint64_t *sl)
{
    hdc__kwta_majority(j->count, (const uint64_t *)j->v + h * j->n_k * j->v_words, j->v_words,
                       win, kk, idx, sl, (uint64_t *)j->out + row * j->v_words);
}

/* ---- the driver ---------------------------------------------------------------------------- */

typedef struct {
    uint64_t *cand[HDC_NIB_QUERIES]; /* candidates of each query of a group */
    uint64_t *tmp, *pending;         /* sort buffer, winners waiting to be mixed */
    uint8_t *tab;                    /* a group's nibble lookup tables (kwta_scan_nib) */
    uint32_t *counts;
    double *wgt;                     /* softmax: k weights */
    uint64_t *sl;                    /* majority: n_slices * v_words counter words */
    size_t *idx;                     /* majority: k row indices */
} kwta_scratch;

/* a group's lookup tables: 16 w tables of 64 bytes per query */
static size_t tab_bytes(const kwta_job *j)
{
    return j->nib ? (size_t)j->group * 16 * j->w * 64 : 0;
}

static kwta_scratch scratch_of(const kwta_job *j, int slot)
{
    kwta_scratch s;
    uint64_t *at = (uint64_t *)(j->scratch + (size_t)slot * j->scratch_bytes);
    for (int i = 0; i < HDC_NIB_QUERIES; ++i)
        s.cand[i] = at + (size_t)(i < j->group ? i : 0) * j->cand_cap;
    s.tmp = at + (size_t)j->group * j->cand_cap;
    s.pending = s.tmp + j->cand_cap;
    s.tab = (uint8_t *)(s.pending + j->k);
    s.counts = (uint32_t *)(s.tab + tab_bytes(j));
    void *rest = s.counts + (SPAN + 2);
    s.wgt = rest;
    s.sl = rest;
    s.idx = (size_t *)(s.sl + (size_t)j->n_slices * j->v_words);
    return s;
}

static size_t scratch_bytes(const kwta_job *j)
{
    size_t extra = 0;
    if (j->mode == KWTA_SOFTMAX_F32 || j->mode == KWTA_SOFTMAX_F64)
        extra = j->k * sizeof(double);
    else if (j->mode == KWTA_MAJORITY)
        extra = (size_t)j->n_slices * j->v_words * sizeof(uint64_t) + j->k * sizeof(size_t);
    size_t bytes = ((j->group + 1) * j->cand_cap + j->k) * sizeof(uint64_t) + tab_bytes(j)
                   + (SPAN + 2) * sizeof(uint32_t) + extra;
    return (bytes + 63) / 64 * 64;
}

static size_t value_row_bytes(const kwta_job *j)
{
    if (j->mode == KWTA_MAJORITY)
        return j->v_words * sizeof(uint64_t);
    return j->dv * (j->mode == KWTA_SOFTMAX_F32 ? sizeof(float) : sizeof(double));
}

/* output row `row` of head h from its kk winners */
static void mix_query(const kwta_job *j, const uint64_t *win, size_t kk, size_t h, size_t row,
                      const kwta_scratch *s)
{
    if (kk == 0) {
        size_t width = value_row_bytes(j);
        char *o = (char *)j->out + row * width;
        for (size_t b = 0; b < width; ++b)
            o[b] = 0;
    } else if (j->mode == KWTA_MAJORITY) {
        mix_majority(j, win, kk, h, row, s->idx, s->sl);
    } else {
        size_t width = value_row_bytes(j);
        j->mix(j->table, win, kk, (const char *)j->v + h * j->n_k * width, j->dv, s->wgt,
               (char *)j->out + row * width);
    }
}

/* the keys query i sees */
static size_t visible(const kwta_job *j, size_t i)
{
    if (!j->n_visible)
        return j->n_k;
    int64_t v = j->n_visible[i];
    return v <= 0 ? 0 : min_size((size_t)v, j->n_k);
}

/* The winners of the next queries of head h from query i (< i1): a group of up to j->group
 * through kwta_scan_nib (consecutive queries whose visible keys differ by less than a chunk),
 * else one through kwta_scan. Query i + g's kk[g] winners go to s->cand[g]; returns the count
 * of queries done. A query with too few keys nearer than the guessed bound is scanned again with
 * no bound, so the result never depends on the guess. */
static int select_next(const kwta_job *j, size_t h, size_t i, size_t i1, uint32_t *guess,
                       const kwta_scratch *s, size_t *kk)
{
    const uint64_t *q = j->q + (h * j->n_q + i) * j->w;
    size_t nvis[HDC_NIB_QUERIES];
    nvis[0] = visible(j, i);
    if (!j->nib || nvis[0] == 0) {
        kk[0] = select_query(j, q, j->kt + h * j->w * j->k_padded, nvis[0], guess, s->cand[0],
                             s->tmp, s->counts);
        return 1;
    }
    int nq = 1; /* alone while there is no guess: a bound from its scan serves the next group */
    for (; *guess != UINT32_MAX && nq < j->group && i + (size_t)nq < i1; ++nq) {
        size_t v = visible(j, i + (size_t)nq);
        if (v == 0 || v + CHUNK <= nvis[0] || nvis[0] + CHUNK <= v)
            break;
        nvis[nq] = v;
    }
    const uint8_t *nt = j->nt + h * j->k_padded * 16 * j->w;
    uint32_t bound[HDC_NIB_QUERIES];
    for (int g = 0; g < nq; ++g)
        bound[g] = *guess;
    select_group(j, nt, q, nq, nvis, bound, s->tab, s->cand, s->tmp, s->counts, kk);
    const uint32_t none = UINT32_MAX;
    for (int g = 0; g < nq; ++g)
        if (kk[g] == 0) /* the guessed bound was too tight */
            select_group(j, nt, q + (size_t)g * j->w, 1, &nvis[g], &none, s->tab, &s->cand[g],
                         s->tmp, s->counts, &kk[g]);
    uint32_t d = (uint32_t)(s->cand[nq - 1][kk[nq - 1] - 1] >> 32);
    *guess = d < UINT32_MAX - SLACK ? d + SLACK : UINT32_MAX;
    return nq;
}

/* The winners' value rows are scattered over the values: a query's rows are prefetched as soon
 * as it is selected, and the last query of a group is mixed after the next group's scan, which
 * hides the memory latency. */
static void kwta_unit(void *ctx, size_t u, int slot)
{
    const kwta_job *j = ctx;
    size_t h = u / j->blocks, i0 = u % j->blocks * QBLOCK, i1 = min_size(i0 + QBLOCK, j->n_q);
    kwta_scratch s = scratch_of(j, slot);
    const char *values = j->v ? (const char *)j->v + h * j->n_k * value_row_bytes(j) : NULL;
    uint32_t guess = j->guesses[slot];
    size_t pending_kk = 0, pending_row = SIZE_MAX;
    for (size_t i = i0; i < i1;) {
        size_t kk[HDC_NIB_QUERIES];
        int nq = select_next(j, h, i, i1, &guess, &s, kk);
        for (int g = 0; g < nq; ++g) {
            size_t row = h * j->n_q + i + (size_t)g;
            int64_t *oi = j->out_idx + row * j->k;
            for (size_t r = 0; r < j->k; ++r)
                oi[r] = r < kk[g] ? (int64_t)(uint32_t)s.cand[g][r] : -1;
            if (j->mode == KWTA_SELECT) {
                int32_t *od = j->out_dist + row * j->k;
                for (size_t r = 0; r < j->k; ++r)
                    od[r] = r < kk[g] ? (int32_t)(s.cand[g][r] >> 32) : INT32_MAX;
            }
        }
        if (j->mode != KWTA_SELECT) {
            size_t row_bytes = value_row_bytes(j);
            for (int g = 0; g < nq; ++g)
                for (size_t r = 0; r < kk[g]; ++r)
                    for (size_t b = 0; b < row_bytes; b += 64)
                        __builtin_prefetch(values + (size_t)(uint32_t)s.cand[g][r] * row_bytes + b);
            if (pending_row != SIZE_MAX)
                mix_query(j, s.pending, pending_kk, h, pending_row, &s);
            for (int g = 0; g + 1 < nq; ++g)
                mix_query(j, s.cand[g], kk[g], h, h * j->n_q + i + (size_t)g, &s);
            for (size_t r = 0; r < kk[nq - 1]; ++r)
                s.pending[r] = s.cand[nq - 1][r];
            pending_kk = kk[nq - 1];
            pending_row = h * j->n_q + i + (size_t)nq - 1;
        }
        i += (size_t)nq;
    }
    if (pending_row != SIZE_MAX)
        mix_query(j, s.pending, pending_kk, h, pending_row, &s);
    j->guesses[slot] = guess;
}

static int kwta_run(kwta_job *j, const uint64_t *keys, double inv_temp)
{
    if (j->k == 0 || j->n_k > UINT32_MAX)
        return -1;
    if (j->n_heads == 0 || j->n_q == 0)
        return 0;
    size_t w = j->w, n_k = j->n_k;
    j->ham = hdc__ham();
    j->count = hdc__count();
    j->mix = pick_mix(j->mode, hdc_get_isa());
    j->nib = j->ham->kwta_scan_nib != NULL && w <= HDC_NIB_MAX_WORDS;
    j->group = j->nib ? HDC_NIB_QUERIES : 1;
    j->reduce_at = j->k > 64 ? 2 * j->k : 128;
    j->cand_cap = j->reduce_at + CHUNK + 8;
    j->blocks = (j->n_q + QBLOCK - 1) / QBLOCK;
    j->n_slices = j->mode == KWTA_MAJORITY ? 64 - __builtin_clzll(j->k) : 0;
    j->scratch_bytes = scratch_bytes(j);

    /* work: every query against (on average) its visible keys */
    double work = (double)j->n_heads * (double)j->n_q * (double)n_k * (double)w / 4;
    int nt = hdc__threads_for(work);
    j->k_padded = j->nib ? (n_k + 63) / 64 * 64 : (n_k + 7) / 8 * 8;
    /* 64-byte aligned, so every block load is one cache line; padding keys are 0 */
    size_t kt_bytes = (j->n_heads * w * j->k_padded * (j->nib ? 2 : 1) + 8) * sizeof(uint64_t);
    uint64_t *kt = NULL;
    if (posix_memalign((void **)&kt, 64, kt_bytes) != 0)
        kt = NULL;
    else
        memset(kt, 0, kt_bytes);
    char *scratch = malloc((size_t)nt * j->scratch_bytes);
    uint32_t *guesses = malloc((size_t)nt * sizeof *guesses);
    double *table = NULL;
    int softmax = j->mode == KWTA_SOFTMAX_F32 || j->mode == KWTA_SOFTMAX_F64;
    if (softmax)
        table = malloc((w * 64 + 1) * sizeof *table);
    if (!kt || !scratch || !guesses || (softmax && !table)) {
        free(kt);
        free(scratch);
        free(guesses);
        free(table);
        return -1;
    }
    for (int t = 0; t < nt; ++t)
        guesses[t] = UINT32_MAX;
    for (size_t h = 0; h < j->n_heads; ++h) {
        uint64_t *head = kt + h * w * j->k_padded;
        /* nib: nibble t of key r at byte [r / 64 * 64 * 16 w + 64 t + r % 64] */
        uint8_t *nibs = (uint8_t *)kt + h * j->k_padded * 16 * w;
        for (size_t r = 0; r < n_k; ++r)
            for (size_t c = 0; c < w; ++c) {
                uint64_t word = keys[(h * n_k + r) * w + c];
                if (!j->nib)
                    head[r / 8 * 8 * w + c * 8 + r % 8] = word;
                else
                    for (size_t t = 0; t < 16; ++t)
                        nibs[r / 64 * 64 * 16 * w + 64 * (16 * c + t) + r % 64] = (uint8_t)(word >> (4 * t) & 15);
            }
    }
    if (table)
        for (size_t delta = 0; delta <= w * 64; ++delta)
            table[delta] = exp(-((double)delta * inv_temp));
    j->kt = kt;
    j->nt = (const uint8_t *)kt;
    j->scratch = scratch;
    j->guesses = guesses;
    j->table = table;
    hdc__parallel(j->n_heads * j->blocks, nt, kwta_unit, j);
    free(kt);
    free(scratch);
    free(guesses);
    free(table);
    return 0;
}

int hdc_kwta_select(const uint64_t *q, const uint64_t *keys, size_t n_heads, size_t n_q,
                    size_t n_k, size_t n_words, size_t k, const int64_t *n_visible,
                    int32_t *out_dist, int64_t *out_idx)
{
    kwta_job j = {.q = q, .n_heads = n_heads, .n_q = n_q, .n_k = n_k, .w = n_words, .k = k,
                  .n_visible = n_visible, .mode = KWTA_SELECT, .out_dist = out_dist,
                  .out_idx = out_idx};
    return kwta_run(&j, keys, 0.0);
}

int hdc_kwta_softmax_f32(const uint64_t *q, const uint64_t *keys, size_t n_heads, size_t n_q,
                         size_t n_k, size_t n_words, size_t k, const int64_t *n_visible,
                         const float *v, size_t dv, double inv_temp, float *out, int64_t *out_idx)
{
    kwta_job j = {.q = q, .n_heads = n_heads, .n_q = n_q, .n_k = n_k, .w = n_words, .k = k,
                  .n_visible = n_visible, .mode = KWTA_SOFTMAX_F32, .v = v, .dv = dv, .out = out,
                  .out_idx = out_idx};
    return kwta_run(&j, keys, inv_temp);
}

int hdc_kwta_softmax_f64(const uint64_t *q, const uint64_t *keys, size_t n_heads, size_t n_q,
                         size_t n_k, size_t n_words, size_t k, const int64_t *n_visible,
                         const double *v, size_t dv, double inv_temp, double *out,
                         int64_t *out_idx)
{
    kwta_job j = {.q = q, .n_heads = n_heads, .n_q = n_q, .n_k = n_k, .w = n_words, .k = k,
                  .n_visible = n_visible, .mode = KWTA_SOFTMAX_F64, .v = v, .dv = dv, .out = out,
                  .out_idx = out_idx};
    return kwta_run(&j, keys, inv_temp);
}

int hdc_kwta_majority(const uint64_t *q, const uint64_t *keys, size_t n_heads, size_t n_q,
                      size_t n_k, size_t n_words, size_t k, const int64_t *n_visible,
                      const uint64_t *v, size_t v_words, uint64_t *out, int64_t *out_idx)
{
    kwta_job j = {.q = q, .n_heads = n_heads, .n_q = n_q, .n_k = n_k, .w = n_words, .k = k,
                  .n_visible = n_visible, .mode = KWTA_MAJORITY, .v = v, .v_words = v_words,
                  .out = out, .out_idx = out_idx};
    return kwta_run(&j, keys, 0.0);
}
