/* hamming/avx512vpopcnt.c: distances with AVX-512 VPOPCNTDQ. Tails use masked loads, so no load ever
 * touches a word past the end of a row. dist_multi register-blocks 8 queries: each memory
 * vector is loaded once and serves all 8, and the 8 sums are reduced together by a transpose. */
#include "../internal.h"
#ifdef HDC_X86
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vpopcntdq,popcnt")
#include <immintrin.h>

#define QB 8
#ifndef HDC_ROW_AT_A_TIME
#define HDC_ROW_AT_A_TIME 64
#endif

static inline __m512i pxor(__m512i a, __m512i b) { return _mm512_popcnt_epi64(_mm512_xor_si512(a, b)); }

/* the distances of q to the 8 keys of a transposed block, one per lane */
static inline __attribute__((always_inline)) __m512i block_dist(const uint64_t *q,
                                                                const uint64_t *block, size_t w)
{
    __m512i acc = _mm512_setzero_si512();
    for (size_t c = 0; c < w; ++c)
        acc = _mm512_add_epi64(acc, pxor(_mm512_loadu_si512(block + c * 8),
                                         _mm512_set1_epi64((long long)q[c])));
    return acc;
}

#include "avx512_common.inc"

/* rows of 4 words (dim 129..256): two memory rows per vector, queries duplicated in both halves */
static void dist_multi_w4(const uint64_t *q, const uint64_t *m, size_t n_rows, uint32_t *out)
{
    __m512i qv[8];
    for (int j = 0; j < 8; ++j)
        qv[j] = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(q + 4 * j)));
    size_t r = 0;
    for (; r + 2 <= n_rows; r += 2) {
        __m512i mv = _mm512_loadu_si512(m + 4 * r);
        __m512i p0 = pxor(mv, qv[0]), p1 = pxor(mv, qv[1]), p2 = pxor(mv, qv[2]), p3 = pxor(mv, qv[3]);
        __m512i p4 = pxor(mv, qv[4]), p5 = pxor(mv, qv[5]), p6 = pxor(mv, qv[6]), p7 = pxor(mv, qv[7]);
        __m512i t01 = _mm512_add_epi64(_mm512_unpacklo_epi64(p0, p1), _mm512_unpackhi_epi64(p0, p1));
        __m512i t23 = _mm512_add_epi64(_mm512_unpacklo_epi64(p2, p3), _mm512_unpackhi_epi64(p2, p3));
        __m512i t45 = _mm512_add_epi64(_mm512_unpacklo_epi64(p4, p5), _mm512_unpackhi_epi64(p4, p5));
        __m512i t67 = _mm512_add_epi64(_mm512_unpacklo_epi64(p6, p7), _mm512_unpackhi_epi64(p6, p7));
        /* 128-bit lane k of tij: (query i, query j) partial sums of words 2k, 2k+1 (k < 2: row r) */
        __m512i r0 = _mm512_add_epi64(_mm512_shuffle_i64x2(t01, t23, _MM_SHUFFLE(2, 0, 2, 0)),
                                      _mm512_shuffle_i64x2(t01, t23, _MM_SHUFFLE(3, 1, 3, 1)));
        __m512i r1 = _mm512_add_epi64(_mm512_shuffle_i64x2(t45, t67, _MM_SHUFFLE(2, 0, 2, 0)),
                                      _mm512_shuffle_i64x2(t45, t67, _MM_SHUFFLE(3, 1, 3, 1)));
        /* r0 lanes: (q0,q1) row r, (q0,q1) row r+1, (q2,q3) row r, (q2,q3) row r+1 */
        __m512i a = _mm512_shuffle_i64x2(r0, r1, _MM_SHUFFLE(2, 0, 2, 0));
        __m512i b = _mm512_shuffle_i64x2(r0, r1, _MM_SHUFFLE(3, 1, 3, 1));
        store8(out, r, _mm512_cvtepi64_epi32(a));
        store8(out, r + 1, _mm512_cvtepi64_epi32(b));
    }
    if (r < n_rows) {
        __m512i mv = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(m + 4 * r)));
        __m512i lo = _mm512_maskz_mov_epi64(0x0F, _mm512_set1_epi64(-1));
        __m512i p[8];
        for (int j = 0; j < 8; ++j)
            p[j] = _mm512_and_si512(pxor(mv, qv[j]), lo);
        store8(out, r, reduce8(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]));
    }
}

static void dist_multi(const uint64_t *q, const uint64_t *m, size_t n_rows, size_t w,
                       uint32_t *out)
{
    if (w == 4) {
        dist_multi_w4(q, m, n_rows, out);
        return;
    }
    size_t full = w / 8 * 8;
    __mmask8 tail = (__mmask8)((1u << (w % 8)) - 1);
    const uint64_t *q0 = q, *q1 = q + w, *q2 = q + 2 * w, *q3 = q + 3 * w;
    const uint64_t *q4 = q + 4 * w, *q5 = q + 5 * w, *q6 = q + 6 * w, *q7 = q + 7 * w;
    for (size_t r = 0; r < n_rows; ++r) {
        const uint64_t *mr = m + r * w;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
                a7 = a0;
        size_t c = 0;
        for (; c < full; c += 8) {
            __m512i mv = _mm512_loadu_si512(mr + c);
            a0 = _mm512_add_epi64(a0, pxor(mv, _mm512_loadu_si512(q0 + c)));
            a1 = _mm512_add_epi64(a1, pxor(mv, _mm512_loadu_si512(q1 + c)));
            a2 = _mm512_add_epi64(a2, pxor(mv, _mm512_loadu_si512(q2 + c)));
            a3 = _mm512_add_epi64(a3, pxor(mv, _mm512_loadu_si512(q3 + c)));
            a4 = _mm512_add_epi64(a4, pxor(mv, _mm512_loadu_si512(q4 + c)));
            a5 = _mm512_add_epi64(a5, pxor(mv, _mm512_loadu_si512(q5 + c)));
            a6 = _mm512_add_epi64(a6, pxor(mv, _mm512_loadu_si512(q6 + c)));
            a7 = _mm512_add_epi64(a7, pxor(mv, _mm512_loadu_si512(q7 + c)));
        }
        if (tail) {
            __m512i mv = _mm512_maskz_loadu_epi64(tail, mr + c);
            a0 = _mm512_add_epi64(a0, pxor(mv, _mm512_maskz_loadu_epi64(tail, q0 + c)));
            a1 = _mm512_add_epi64(a1, pxor(mv, _mm512_maskz_loadu_epi64(tail, q1 + c)));
            a2 = _mm512_add_epi64(a2, pxor(mv, _mm512_maskz_loadu_epi64(tail, q2 + c)));
            a3 = _mm512_add_epi64(a3, pxor(mv, _mm512_maskz_loadu_epi64(tail, q3 + c)));
            a4 = _mm512_add_epi64(a4, pxor(mv, _mm512_maskz_loadu_epi64(tail, q4 + c)));
            a5 = _mm512_add_epi64(a5, pxor(mv, _mm512_maskz_loadu_epi64(tail, q5 + c)));
            a6 = _mm512_add_epi64(a6, pxor(mv, _mm512_maskz_loadu_epi64(tail, q6 + c)));
            a7 = _mm512_add_epi64(a7, pxor(mv, _mm512_maskz_loadu_epi64(tail, q7 + c)));
        }
        store8(out, r, reduce8(a0, a1, a2, a3, a4, a5, a6, a7));
    }
}

static inline uint32_t dist_row(const uint64_t *a, const uint64_t *b, size_t w)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
    size_t c = 0;
    for (; c + 16 <= w; c += 16) {
        s0 = _mm512_add_epi64(s0, pxor(_mm512_loadu_si512(a + c), _mm512_loadu_si512(b + c)));
        s1 = _mm512_add_epi64(s1, pxor(_mm512_loadu_si512(a + c + 8), _mm512_loadu_si512(b + c + 8)));
    }
    if (c + 8 <= w) {
        s0 = _mm512_add_epi64(s0, pxor(_mm512_loadu_si512(a + c), _mm512_loadu_si512(b + c)));
        c += 8;
    }
    if (c < w) {
        __mmask8 k = (__mmask8)((1u << (w - c)) - 1);
        s1 = _mm512_add_epi64(s1, pxor(_mm512_maskz_loadu_epi64(k, a + c),
                                       _mm512_maskz_loadu_epi64(k, b + c)));
    }
    return (uint32_t)_mm512_reduce_add_epi64(_mm512_add_epi64(s0, s1));
}

/* 8 rows of 4 words: two rows per vector, the four vectors reduced together */
static void dist_one_w4(const uint64_t *q, const uint64_t *m, size_t n_rows, uint32_t *out)
{
    __m512i qv = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)q));
    /* after the reduction the lanes hold rows 0 2 1 3 4 6 5 7 */
    const __m512i order = _mm512_setr_epi64(0, 2, 1, 3, 4, 6, 5, 7);
    size_t r = 0;
    for (; r + 8 <= n_rows; r += 8) {
        const uint64_t *mr = m + 4 * r;
        __m512i p0 = pxor(_mm512_loadu_si512(mr), qv), p1 = pxor(_mm512_loadu_si512(mr + 8), qv);
        __m512i p2 = pxor(_mm512_loadu_si512(mr + 16), qv), p3 = pxor(_mm512_loadu_si512(mr + 24), qv);
        __m512i t01 = _mm512_add_epi64(_mm512_unpacklo_epi64(p0, p1), _mm512_unpackhi_epi64(p0, p1));
        __m512i t23 = _mm512_add_epi64(_mm512_unpacklo_epi64(p2, p3), _mm512_unpackhi_epi64(p2, p3));
        __m512i s = _mm512_add_epi64(_mm512_shuffle_i64x2(t01, t23, _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_i64x2(t01, t23, _MM_SHUFFLE(3, 1, 3, 1)));
        s = _mm512_permutexvar_epi64(order, s);
        _mm256_storeu_si256((__m256i *)(out + r), _mm512_cvtepi64_epi32(s));
    }
    for (; r < n_rows; ++r)
        out[r] = (uint32_t)_mm512_reduce_add_epi64(
            pxor(_mm512_maskz_mov_epi64(0x0F, qv), _mm512_maskz_loadu_epi64(0x0F, m + 4 * r)));
}

static void dist_one(const uint64_t *q, const uint64_t *m, size_t n_rows, size_t w, uint32_t *out)
{
    if (w == 4) {
        dist_one_w4(q, m, n_rows, out);
        return;
    }
    if (w >= HDC_ROW_AT_A_TIME) {
        /* long rows: one sequential stream is what the prefetchers like best */
        for (size_t r = 0; r < n_rows; ++r)
            out[r] = dist_row(q, m + r * w, w);
        return;
    }
    size_t full = w / 8 * 8;
    __mmask8 tail = (__mmask8)((1u << (w % 8)) - 1);
    size_t r = 0;
    /* 8 rows at a time: each query vector is loaded once for 8 rows, the 8 sums reduced together */
    for (; r + 8 <= n_rows; r += 8) {
        const uint64_t *m0 = m + r * w;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
                a7 = a0;
        size_t c = 0;
        for (; c < full; c += 8) {
            __m512i qv = _mm512_loadu_si512(q + c);
            a0 = _mm512_add_epi64(a0, pxor(qv, _mm512_loadu_si512(m0 + c)));
            a1 = _mm512_add_epi64(a1, pxor(qv, _mm512_loadu_si512(m0 + w + c)));
            a2 = _mm512_add_epi64(a2, pxor(qv, _mm512_loadu_si512(m0 + 2 * w + c)));
            a3 = _mm512_add_epi64(a3, pxor(qv, _mm512_loadu_si512(m0 + 3 * w + c)));
            a4 = _mm512_add_epi64(a4, pxor(qv, _mm512_loadu_si512(m0 + 4 * w + c)));
            a5 = _mm512_add_epi64(a5, pxor(qv, _mm512_loadu_si512(m0 + 5 * w + c)));
            a6 = _mm512_add_epi64(a6, pxor(qv, _mm512_loadu_si512(m0 + 6 * w + c)));
            a7 = _mm512_add_epi64(a7, pxor(qv, _mm512_loadu_si512(m0 + 7 * w + c)));
        }
        if (tail) {
            __m512i qv = _mm512_maskz_loadu_epi64(tail, q + c);
            a0 = _mm512_add_epi64(a0, pxor(qv, _mm512_maskz_loadu_epi64(tail, m0 + c)));
            a1 = _mm512_add_epi64(a1, pxor(qv, _mm512_maskz_loadu_epi64(tail, m0 + w + c)));
            a2 = _mm512_add_epi64(a2, pxor(qv, _mm512_maskz_loadu_epi64(tail, m0 + 2 * w + c)));
            a3 = _mm512_add_epi64(a3, pxor(qv, _mm512_maskz_loadu_epi64(tail, m0 + 3 * w + c)));
            a4 = _mm512_add_epi64(a4, pxor(qv, _mm512_maskz_loadu_epi64(tail, m0 + 4 * w + c)));
            a5 = _mm512_add_epi64(a5, pxor(qv, _mm512_maskz_loadu_epi64(tail, m0 + 5 * w + c)));
            a6 = _mm512_add_epi64(a6, pxor(qv, _mm512_maskz_loadu_epi64(tail, m0 + 6 * w + c)));
            a7 = _mm512_add_epi64(a7, pxor(qv, _mm512_maskz_loadu_epi64(tail, m0 + 7 * w + c)));
        }
        _mm256_storeu_si256((__m256i *)(out + r), reduce8(a0, a1, a2, a3, a4, a5, a6, a7));
    }
    for (; r < n_rows; ++r)
        out[r] = dist_row(q, m + r * w, w);
}

static void hamming_rows(const uint64_t *a, const uint64_t *b, uint32_t *out, size_t n_rows,
                         size_t w)
{
    for (size_t r = 0; r < n_rows; ++r)
        out[r] = dist_row(a + r * w, b + r * w, w);
}

static void popcount_rows(const uint64_t *x, uint32_t *out, size_t n_rows, size_t w)
{
    size_t full = w / 8 * 8;
    __mmask8 tail = (__mmask8)((1u << (w % 8)) - 1);
    for (size_t r = 0; r < n_rows; ++r) {
        const uint64_t *xr = x + r * w;
        __m512i s = _mm512_setzero_si512();
        size_t c = 0;
        for (; c < full; c += 8)
            s = _mm512_add_epi64(s, _mm512_popcnt_epi64(_mm512_loadu_si512(xr + c)));
        if (tail)
            s = _mm512_add_epi64(s, _mm512_popcnt_epi64(_mm512_maskz_loadu_epi64(tail, xr + c)));
        out[r] = (uint32_t)_mm512_reduce_add_epi64(s);
    }
}

const hdc_ham_ops hdc_ham_avx512vpopcnt = {
    "avx512vpopcnt", QB, dist_multi, dist_one, hamming_rows, popcount_rows,
    find_hit, xor_words, stream_copy, store_fence, kwta_scan};
#endif
