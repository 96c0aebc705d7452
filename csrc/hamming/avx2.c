/* hamming/avx2.c: distances with AVX2, popcount by the nibble lookup (vpshufb) summed with
 * vpsadbw. Tails (w % 4 words) go through scalar POPCNT, so no load passes the end of a row.
 * dist_multi register-blocks 4 queries. */
#include "../internal.h"
#ifdef HDC_X86
#pragma GCC target("avx2,popcnt")
#include <immintrin.h>

#define QB 4

/* per-byte popcounts of v (each 0..8) */
static inline __m256i popcnt_bytes(__m256i v)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2,
                                         1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_and_si256(v, low);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

/* popcount of each 64-bit lane */
static inline __m256i popcnt64(__m256i v)
{
    return _mm256_sad_epu8(popcnt_bytes(v), _mm256_setzero_si256());
}

static inline uint64_t tail_dist(const uint64_t *a, const uint64_t *b, size_t c, size_t w)
{
    uint64_t s = 0;
    for (; c < w; ++c)
        s += (uint64_t)__builtin_popcountll(a[c] ^ b[c]);
    return s;
}

static void dist_multi(const uint64_t *q, const uint64_t *m, size_t n_rows, size_t w,
                       uint32_t *out)
{
    size_t full = w / 4 * 4;
    const uint64_t *q0 = q, *q1 = q + w, *q2 = q + 2 * w, *q3 = q + 3 * w;
    for (size_t r = 0; r < n_rows; ++r) {
        const uint64_t *mr = m + r * w;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        /* byte counters: at most 31 additions of <= 8 before they are summed into lanes */
        size_t c = 0;
        while (c < full) {
            size_t stop = c + 4 * 31 < full ? c + 4 * 31 : full;
            __m256i b0 = _mm256_setzero_si256(), b1 = b0, b2 = b0, b3 = b0;
            for (; c < stop; c += 4) {
                __m256i mv = _mm256_loadu_si256((const __m256i *)(mr + c));
                b0 = _mm256_add_epi8(b0, popcnt_bytes(_mm256_xor_si256(mv, _mm256_loadu_si256((const __m256i *)(q0 + c)))));
                b1 = _mm256_add_epi8(b1, popcnt_bytes(_mm256_xor_si256(mv, _mm256_loadu_si256((const __m256i *)(q1 + c)))));
                b2 = _mm256_add_epi8(b2, popcnt_bytes(_mm256_xor_si256(mv, _mm256_loadu_si256((const __m256i *)(q2 + c)))));
                b3 = _mm256_add_epi8(b3, popcnt_bytes(_mm256_xor_si256(mv, _mm256_loadu_si256((const __m256i *)(q3 + c)))));
            }
            __m256i z = _mm256_setzero_si256();
            a0 = _mm256_add_epi64(a0, _mm256_sad_epu8(b0, z));
            a1 = _mm256_add_epi64(a1, _mm256_sad_epu8(b1, z));
            a2 = _mm256_add_epi64(a2, _mm256_sad_epu8(b2, z));
            a3 = _mm256_add_epi64(a3, _mm256_sad_epu8(b3, z));
        }
        /* transpose-reduce: lanes of s = the 4 sums */
        __m256i t01 = _mm256_add_epi64(_mm256_unpacklo_epi64(a0, a1), _mm256_unpackhi_epi64(a0, a1));
        __m256i t23 = _mm256_add_epi64(_mm256_unpacklo_epi64(a2, a3), _mm256_unpackhi_epi64(a2, a3));
        __m256i s = _mm256_add_epi64(_mm256_permute2x128_si256(t01, t23, 0x20),
                                     _mm256_permute2x128_si256(t01, t23, 0x31));
        uint64_t t[4];
        _mm256_storeu_si256((__m256i *)t, s);
        out[4 * r] = (uint32_t)(t[0] + tail_dist(mr, q0, full, w));
        out[4 * r + 1] = (uint32_t)(t[1] + tail_dist(mr, q1, full, w));
        out[4 * r + 2] = (uint32_t)(t[2] + tail_dist(mr, q2, full, w));
        out[4 * r + 3] = (uint32_t)(t[3] + tail_dist(mr, q3, full, w));
    }
}

static inline uint32_t hsum(__m256i v)
{
    __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return (uint32_t)((uint64_t)_mm_cvtsi128_si64(s) + (uint64_t)_mm_extract_epi64(s, 1));
}

static inline uint32_t dist_row(const uint64_t *a, const uint64_t *b, size_t w)
{
    size_t full = w / 4 * 4, c = 0;
    __m256i acc = _mm256_setzero_si256();
    while (c < full) {
        size_t stop = c + 4 * 31 < full ? c + 4 * 31 : full;
        __m256i bytes = _mm256_setzero_si256();
        for (; c < stop; c += 4)
            bytes = _mm256_add_epi8(bytes, popcnt_bytes(_mm256_xor_si256(
                _mm256_loadu_si256((const __m256i *)(a + c)), _mm256_loadu_si256((const __m256i *)(b + c)))));
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(bytes, _mm256_setzero_si256()));
    }
    return hsum(acc) + (uint32_t)tail_dist(a, b, full, w);
}

static void dist_one(const uint64_t *q, const uint64_t *m, size_t n_rows, size_t w, uint32_t *out)
{
    for (size_t r = 0; r < n_rows; ++r)
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
    size_t full = w / 4 * 4;
    for (size_t r = 0; r < n_rows; ++r) {
        const uint64_t *xr = x + r * w;
        __m256i acc = _mm256_setzero_si256();
        size_t c = 0;
        for (; c < full; c += 4)
            acc = _mm256_add_epi64(acc, popcnt64(_mm256_loadu_si256((const __m256i *)(xr + c))));
        uint32_t s = hsum(acc);
        for (; c < w; ++c)
            s += (uint32_t)__builtin_popcountll(xr[c]);
        out[r] = s;
    }
}

/* the first i in [start, n) with buf[i] < thr[i % 16]; 8 lanes per step, unsigned compare by
 * flipping the sign bits; a scalar loop for the last n % 8 */
static size_t find_hit(const uint32_t *buf, size_t start, size_t n, const uint32_t *thr)
{
    size_t i = start;
    for (; i < n && (i & 7); ++i)
        if (buf[i] < thr[i & 15])
            return i;
    const __m256i sign = _mm256_set1_epi32((int)0x80000000u);
    __m256i t0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)thr), sign);
    __m256i t1 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(thr + 8)), sign);
    for (; i + 8 <= n; i += 8) {
        __m256i d = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(buf + i)), sign);
        __m256i lt = _mm256_cmpgt_epi32((i & 8) ? t1 : t0, d);
        int k = _mm256_movemask_ps(_mm256_castsi256_ps(lt));
        if (k)
            return i + (size_t)__builtin_ctz((unsigned)k);
    }
    for (; i < n; ++i)
        if (buf[i] < thr[i & 15])
            return i;
    return n;
}

static void xor_words(const uint64_t *a, const uint64_t *b, uint64_t *out, size_t n, int stream)
{
    size_t i = 0;
    if (stream) {
        /* scalar head up to a 32-byte aligned output, then streaming stores */
        for (; i < n && ((uintptr_t)(out + i) & 31); ++i)
            out[i] = a[i] ^ b[i];
        for (; i + 4 <= n; i += 4)
            _mm256_stream_si256((__m256i *)(out + i),
                                _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(a + i)),
                                                 _mm256_loadu_si256((const __m256i *)(b + i))));
        _mm_sfence();
    } else {
        for (; i + 4 <= n; i += 4)
            _mm256_storeu_si256((__m256i *)(out + i),
                                _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(a + i)),
                                                 _mm256_loadu_si256((const __m256i *)(b + i))));
    }
    for (; i < n; ++i)
        out[i] = a[i] ^ b[i];
}

/* no fence here: callers issue store_fence() once after a run of copies */
static void stream_copy(uint64_t *dst, const uint64_t *src, size_t n)
{
    size_t i = 0;
    for (; i < n && ((uintptr_t)(dst + i) & 31); ++i)
        dst[i] = src[i];
    for (; i + 4 <= n; i += 4)
        _mm256_stream_si256((__m256i *)(dst + i), _mm256_loadu_si256((const __m256i *)(src + i)));
    for (; i < n; ++i)
        dst[i] = src[i];
}

static void store_fence(void) { _mm_sfence(); }

/* a block of 8 keys as two vectors of 4 (a lane per key, the block's transposed words summed
 * lane-wise); the zero keys padding the last block are never reported */
static size_t kwta_scan(const uint64_t *q, const uint64_t *kt, size_t w, size_t j0, size_t j1,
                        uint32_t below, uint64_t *cand)
{
    const __m256i thr = _mm256_set1_epi64x((long long)below); /* distances and below < 2^32 */
    size_t n = 0;
    for (size_t j = j0; j < j1; j += 8) {
        const uint64_t *block = kt + j / 8 * 8 * w;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0;
        for (size_t c = 0; c < w; ++c) {
            __m256i qc = _mm256_set1_epi64x((long long)q[c]);
            __m256i k0 = _mm256_loadu_si256((const __m256i *)(block + c * 8));
            __m256i k1 = _mm256_loadu_si256((const __m256i *)(block + c * 8 + 4));
            a0 = _mm256_add_epi64(a0, popcnt64(_mm256_xor_si256(k0, qc)));
            a1 = _mm256_add_epi64(a1, popcnt64(_mm256_xor_si256(k1, qc)));
        }
        int m = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(thr, a0))) |
                _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(thr, a1))) << 4;
        if (j1 - j < 8)
            m &= (1 << (j1 - j)) - 1;
        if (m) {
            uint64_t d[8];
            _mm256_storeu_si256((__m256i *)d, a0);
            _mm256_storeu_si256((__m256i *)(d + 4), a1);
            for (; m; m &= m - 1) {
                int b = __builtin_ctz((unsigned)m);
                cand[n++] = d[b] << 32 | (j + (size_t)b);
            }
        }
    }
    return n;
}

#include "nibble_scan.inc"

/* ---- k-WTA scan over nibble-transposed keys (internal.h: kwta_scan_nib) --------------------
 * As in hamming/avx512bw.c: per query and nibble position a 16-entry table of
 * popcount(query nibble XOR x), one vpshufb per 32 keys and nibble, each key vector serving
 * every query of the call, per-key byte counters added with unsigned saturation (a key at
 * distance >= 255 is recounted exactly). A block of 64 keys is two vectors; the tables use the
 * first 32 of their 64 bytes. */
static void kwta_tables(const uint64_t *q, int nq, size_t w, uint8_t *tab)
{
    for (int i = 0; i < nq; ++i)
        for (size_t t = 0; t < 16 * w; ++t)
            _mm256_storeu_si256((__m256i *)(tab + ((size_t)i * 16 * w + t) * 64),
                                _mm256_broadcastsi128_si256(_mm_load_si128(
                                    (const __m128i *)POP16[nib_of(q + (size_t)i * w, t)])));
}

static inline __attribute__((always_inline)) void
nib_scan(const uint64_t *q, const uint8_t *tab, int nq, const uint8_t *nt, size_t w, size_t j0,
         size_t nb, const size_t *j1, const uint32_t *below, uint64_t *const *cand, size_t *n)
{
    const __m256i full = _mm256_set1_epi8((char)0xff);
    const size_t stride = 64 * 16 * w; /* bytes per block of 64 keys */
    for (size_t b = 0; b < nb; ++b) {
        const uint8_t *blk = nt + (j0 / 64 + b) * stride;
        __m256i acc[HDC_NIB_QUERIES][2];
        for (int i = 0; i < nq; ++i)
            acc[i][0] = acc[i][1] = _mm256_setzero_si256();
#pragma GCC unroll 8 /* else GCC rotates the sums through register moves */
        for (size_t t = 0; t < 16 * w; ++t) {
            __m256i v0 = _mm256_loadu_si256((const __m256i *)(blk + 64 * t));
            __m256i v1 = _mm256_loadu_si256((const __m256i *)(blk + 64 * t + 32));
            for (int i = 0; i < nq; ++i) {
                __m256i tb = _mm256_loadu_si256((const __m256i *)(tab + ((size_t)i * 16 * w + t) * 64));
                acc[i][0] = _mm256_adds_epu8(acc[i][0], _mm256_shuffle_epi8(tb, v0));
                acc[i][1] = _mm256_adds_epu8(acc[i][1], _mm256_shuffle_epi8(tb, v1));
            }
        }
        size_t jb = j0 + 64 * b;
        for (int i = 0; i < nq; ++i) {
            if (jb >= j1[i] || below[i] == 0)
                continue;
            uint64_t live = j1[i] - jb >= 64 ? ~0ull : (1ull << (j1[i] - jb)) - 1;
            /* acc < below (<= 255) as min(acc, below - 1) == acc: AVX2 has no unsigned compare */
            const __m256i top = _mm256_set1_epi8((char)((below[i] < 255 ? below[i] : 255) - 1));
            uint64_t hit = 0, sat = 0;
            for (int h = 0; h < 2; ++h) {
                __m256i a = acc[i][h];
                hit |= (uint64_t)(uint32_t)_mm256_movemask_epi8(
                           _mm256_cmpeq_epi8(_mm256_min_epu8(a, top), a)) << (32 * h);
                sat |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, full))
                       << (32 * h);
            }
            hit &= live;
            sat = below[i] > 255 ? sat & live : 0;
            if (hit | sat) {
                uint8_t d[64];
                _mm256_storeu_si256((__m256i *)d, acc[i][0]);
                _mm256_storeu_si256((__m256i *)(d + 32), acc[i][1]);
                n[i] = nib_emit(d, hit, sat, jb, q + (size_t)i * w, blk, w, below[i], cand[i], n[i]);
            }
        }
    }
}

/* one instance per query count; w = 4 (256-bit codes, the usual head) inlined */
static void kwta_scan_nib(const uint64_t *q, const uint8_t *tab, int nq, const uint8_t *nt,
                          size_t w, size_t j0, const size_t *j1, const uint32_t *below,
                          uint64_t *const *cand, size_t *n)
{
    size_t far = j1[0];
    for (int i = 1; i < nq; ++i)
        far = j1[i] > far ? j1[i] : far;
    size_t nb = (far - j0 + 63) / 64;
#define NIB_CASE(NQ)                                                                               \
    case NQ:                                                                                       \
        if (w == 4)                                                                                \
            nib_scan(q, tab, NQ, nt, 4, j0, nb, j1, below, cand, n);                               \
        else                                                                                       \
            nib_scan(q, tab, NQ, nt, w, j0, nb, j1, below, cand, n);                               \
        return;
    switch (nq) {
        NIB_CASE(1) NIB_CASE(2) NIB_CASE(3) NIB_CASE(4)
    }
#undef NIB_CASE
}

const hdc_ham_ops hdc_ham_avx2 = {"avx2", QB, dist_multi, dist_one, hamming_rows, popcount_rows,
                                  find_hit, xor_words, stream_copy, store_fence, kwta_scan,
                                  kwta_scan_nib, kwta_tables};
#endif
