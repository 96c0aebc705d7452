/* hamming/avx512bw.c: distances with AVX-512 F/BW/VL but no VPOPCNTDQ (Skylake-SP, Cascade
 * Lake). Bits are counted per byte with the nibble lookup (vpshufb) and summed per 64-bit lane
 * with vpsadbw; long rows first go through a Harley-Seal tree of carry-save adders (vpternlogq),
 * so only one vector in eight is counted that way; short rows are register-blocked 8 at a time.
 * Tails use masked loads: no load passes the end of a row. */
#include "../internal.h"
#ifdef HDC_X86
#pragma GCC target("avx512f,avx512bw,avx512vl,popcnt")
#include <immintrin.h>

#define QB 8

/* per-byte popcounts of v (each 0..8) */
static inline __m512i popcnt_bytes(__m512i v)
{
    const __m512i lut = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
    const __m512i low = _mm512_set1_epi8(0x0f);
    __m512i lo = _mm512_and_si512(v, low);
    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
    return _mm512_add_epi8(_mm512_shuffle_epi8(lut, lo), _mm512_shuffle_epi8(lut, hi));
}

/* per-lane popcounts of v */
static inline __m512i popcnt64(__m512i v)
{
    return _mm512_sad_epu8(popcnt_bytes(v), _mm512_setzero_si512());
}

/* the distances of q to the 8 keys of a transposed block, one per lane: byte counts (at most 31
 * words of 8 before a lane sum, so no byte overflows) */
static inline __attribute__((always_inline)) __m512i block_dist(const uint64_t *q,
                                                                const uint64_t *block, size_t w)
{
    __m512i acc = _mm512_setzero_si512();
    for (size_t c = 0; c < w;) {
        size_t stop = c + 31 < w ? c + 31 : w;
        __m512i bytes = _mm512_setzero_si512();
        for (; c < stop; ++c)
            bytes = _mm512_add_epi8(bytes, popcnt_bytes(_mm512_xor_si512(
                _mm512_loadu_si512(block + c * 8), _mm512_set1_epi64((long long)q[c]))));
        acc = _mm512_add_epi64(acc, _mm512_sad_epu8(bytes, _mm512_setzero_si512()));
    }
    return acc;
}

#include "avx512_common.inc"
#include "nibble_scan.inc"

/* ---- k-WTA scan over nibble-transposed keys (internal.h: kwta_scan_nib) --------------------
 * Per query and nibble position a 16-entry table of popcount(query nibble XOR x) turns XOR and
 * popcount into one vpshufb for 64 keys at once, and each key vector (a nibble of 64 keys, one
 * per byte) serves every query of the call. Per-key byte counters add with unsigned saturation
 * (at most 16 w * 4 = 256 for w = 4: only a key at distance >= 255 saturates, and it is recounted
 * exactly). */
static void kwta_tables(const uint64_t *q, int nq, size_t w, uint8_t *tab)
{
    for (int i = 0; i < nq; ++i)
        for (size_t t = 0; t < 16 * w; ++t)
            _mm512_storeu_si512(tab + ((size_t)i * 16 * w + t) * 64,
                                _mm512_broadcast_i32x4(_mm_load_si128(
                                    (const __m128i *)POP16[nib_of(q + (size_t)i * w, t)])));
}

static inline __attribute__((always_inline)) void
nib_scan(const uint64_t *q, const uint8_t *tab, int nq, const uint8_t *nt, size_t w, int nb,
         size_t j0, const size_t *j1, const uint32_t *below, uint64_t *const *cand, size_t *n)
{
    const __m512i full = _mm512_set1_epi8((char)0xff);
    const size_t stride = 64 * 16 * w; /* bytes per block of 64 keys */
    const uint8_t *blk = nt + j0 / 64 * stride;
    __m512i acc[HDC_NIB_QUERIES][HDC_NIB_CHUNK / 64];
    for (int i = 0; i < nq; ++i)
        for (int b = 0; b < nb; ++b)
            acc[i][b] = _mm512_setzero_si512();
#pragma GCC unroll 2 /* else GCC rotates the sums through register moves */
    for (size_t t = 0; t < 16 * w; ++t) {
        __m512i tb[HDC_NIB_QUERIES];
        for (int i = 0; i < nq; ++i)
            tb[i] = _mm512_loadu_si512(tab + ((size_t)i * 16 * w + t) * 64);
        for (int b = 0; b < nb; ++b) {
            __m512i v = _mm512_loadu_si512(blk + b * stride + 64 * t);
            for (int i = 0; i < nq; ++i)
                acc[i][b] = _mm512_adds_epu8(acc[i][b], _mm512_shuffle_epi8(tb[i], v));
        }
    }
    for (int i = 0; i < nq; ++i) {
        const __m512i thr = _mm512_set1_epi8((char)(below[i] < 255 ? below[i] : 255));
        for (int b = 0; b < nb; ++b) {
            size_t jb = j0 + 64 * (size_t)b;
            if (jb >= j1[i])
                break;
            uint64_t live = j1[i] - jb >= 64 ? ~0ull : (1ull << (j1[i] - jb)) - 1;
            uint64_t hit = _mm512_cmplt_epu8_mask(acc[i][b], thr) & live;
            uint64_t sat = below[i] > 255 ? _mm512_cmpeq_epi8_mask(acc[i][b], full) & live : 0;
            if (hit | sat) {
                uint8_t d[64];
                _mm512_storeu_si512(d, acc[i][b]);
                n[i] = nib_emit(d, hit, sat, jb, q + (size_t)i * w, blk + b * stride, w, below[i],
                                cand[i], n[i]);
            }
        }
    }
}

/* one instance per (queries, blocks); w = 4 (256-bit codes, the usual head) inlined */
#define NIB_CASE(NQ, NB)                                                                           \
    case (NQ - 1) * 4 + NB - 1:                                                                    \
        if (w == 4)                                                                                \
            nib_scan(q, tab, NQ, nt, 4, NB, j0, j1, below, cand, n);                               \
        else                                                                                       \
            nib_scan(q, tab, NQ, nt, w, NB, j0, j1, below, cand, n);                               \
        return;
#define NIB_CASES(NQ) NIB_CASE(NQ, 1) NIB_CASE(NQ, 2) NIB_CASE(NQ, 3) NIB_CASE(NQ, 4)

static void kwta_scan_nib(const uint64_t *q, const uint8_t *tab, int nq, const uint8_t *nt,
                          size_t w, size_t j0, const size_t *j1, const uint32_t *below,
                          uint64_t *const *cand, size_t *n)
{
    size_t far = j1[0];
    for (int i = 1; i < nq; ++i)
        far = j1[i] > far ? j1[i] : far;
    int nb = (int)((far - j0 + 63) / 64);
    switch ((nq - 1) * 4 + nb - 1) {
        NIB_CASES(1) NIB_CASES(2) NIB_CASES(3) NIB_CASES(4)
    }
}

#define XOR3(a, b, c) _mm512_ternarylogic_epi64((a), (b), (c), 0x96)
#define MAJ3(a, b, c) _mm512_ternarylogic_epi64((a), (b), (c), 0xE8)
/* carry-save adder: (h, l) = (carry, sum) of a + b + c, bitwise */
#define CSA(h, l, a, b, c)                    \
    do {                                      \
        __m512i a_ = (a), b_ = (b), c_ = (c); \
        (h) = MAJ3(a_, b_, c_);               \
        (l) = XOR3(a_, b_, c_);               \
    } while (0)

/* words c..c+7 of a ^ b, or of a alone when !has_b (a constant wherever this is inlined) */
static inline __attribute__((always_inline)) __m512i ld(const uint64_t *a, const uint64_t *b,
                                                        int has_b, size_t c)
{
    __m512i v = _mm512_loadu_si512(a + c);
    return has_b ? _mm512_xor_si512(v, _mm512_loadu_si512(b + c)) : v;
}

/* popcount(a ^ b) over w words (popcount(a) when !has_b): Harley-Seal over 8 vectors at a
 * time (ones, twos, fours in registers, each eights counted), then the rest one by one */
static inline __attribute__((always_inline)) uint32_t
row_count(const uint64_t *a, const uint64_t *b, int has_b, size_t w)
{
    __m512i total = _mm512_setzero_si512();
    size_t c = 0;
    if (w >= 64) {
        __m512i ones = total, twos = total, fours = total, eights = total;
        for (; c + 64 <= w; c += 64) {
            __m512i twosA, twosB, foursA, foursB;
            CSA(twosA, ones, ones, ld(a, b, has_b, c), ld(a, b, has_b, c + 8));
            CSA(twosB, ones, ones, ld(a, b, has_b, c + 16), ld(a, b, has_b, c + 24));
            CSA(foursA, twos, twos, twosA, twosB);
            CSA(twosA, ones, ones, ld(a, b, has_b, c + 32), ld(a, b, has_b, c + 40));
            CSA(twosB, ones, ones, ld(a, b, has_b, c + 48), ld(a, b, has_b, c + 56));
            CSA(foursB, twos, twos, twosA, twosB);
            CSA(eights, fours, fours, foursA, foursB);
            total = _mm512_add_epi64(total, popcnt64(eights));
        }
        total = _mm512_slli_epi64(total, 3);
        total = _mm512_add_epi64(total, _mm512_slli_epi64(popcnt64(fours), 2));
        total = _mm512_add_epi64(total, _mm512_slli_epi64(popcnt64(twos), 1));
        total = _mm512_add_epi64(total, popcnt64(ones));
    }
    /* at most 7 full vectors: byte counts (<= 7 * 8 + 8 per byte) then one lane sum */
    __m512i bytes = _mm512_setzero_si512();
    for (; c + 8 <= w; c += 8)
        bytes = _mm512_add_epi8(bytes, popcnt_bytes(ld(a, b, has_b, c)));
    if (c < w) {
        __mmask8 k = (__mmask8)((1u << (w - c)) - 1);
        __m512i v = _mm512_maskz_loadu_epi64(k, a + c);
        if (has_b)
            v = _mm512_xor_si512(v, _mm512_maskz_loadu_epi64(k, b + c));
        bytes = _mm512_add_epi8(bytes, popcnt_bytes(v));
    }
    total = _mm512_add_epi64(total, _mm512_sad_epu8(bytes, _mm512_setzero_si512()));
    return (uint32_t)_mm512_reduce_add_epi64(total);
}

static uint32_t dist_row(const uint64_t *a, const uint64_t *b, size_t w)
{
    return row_count(a, b, 1, w);
}

/* short rows (under 64 words): 8 rows or queries at a time against one shared operand, byte
 * counts (at most 8 vectors of <= 8 per byte) summed per lane once and reduced together */
#define SHORT_ROW 64

/* out[0..7] = popcount(s ^ o[i]) for the 8 rows o[i] = base + i * step, w < SHORT_ROW */
static inline __attribute__((always_inline)) __m256i dist8_short(const uint64_t *s,
                                                                 const uint64_t *base,
                                                                 size_t step, size_t w)
{
    __m512i b[8];
    for (int i = 0; i < 8; ++i)
        b[i] = _mm512_setzero_si512();
    size_t c = 0;
    for (; c + 8 <= w; c += 8) {
        __m512i sv = _mm512_loadu_si512(s + c);
        for (int i = 0; i < 8; ++i)
            b[i] = _mm512_add_epi8(b[i], popcnt_bytes(_mm512_xor_si512(
                                             sv, _mm512_loadu_si512(base + i * step + c))));
    }
    if (c < w) {
        __mmask8 k = (__mmask8)((1u << (w - c)) - 1);
        __m512i sv = _mm512_maskz_loadu_epi64(k, s + c);
        for (int i = 0; i < 8; ++i) {
            __m512i o = _mm512_maskz_loadu_epi64(k, base + i * step + c);
            b[i] = _mm512_add_epi8(b[i], popcnt_bytes(_mm512_xor_si512(sv, o)));
        }
    }
    const __m512i z = _mm512_setzero_si512();
    return reduce8(_mm512_sad_epu8(b[0], z), _mm512_sad_epu8(b[1], z), _mm512_sad_epu8(b[2], z),
                   _mm512_sad_epu8(b[3], z), _mm512_sad_epu8(b[4], z), _mm512_sad_epu8(b[5], z),
                   _mm512_sad_epu8(b[6], z), _mm512_sad_epu8(b[7], z));
}

/* 8 queries against each row: short rows register-blocked, long ones (in L1 after the first
 * query) through Harley-Seal per query */
static void dist_multi(const uint64_t *q, const uint64_t *m, size_t n_rows, size_t w,
                       uint32_t *out)
{
    if (w < SHORT_ROW) {
        for (size_t r = 0; r < n_rows; ++r)
            _mm256_storeu_si256((__m256i *)(out + r * QB), dist8_short(m + r * w, q, w, w));
        return;
    }
    for (size_t r = 0; r < n_rows; ++r)
        for (size_t j = 0; j < QB; ++j)
            out[r * QB + j] = dist_row(q + j * w, m + r * w, w);
}

static void dist_one(const uint64_t *q, const uint64_t *m, size_t n_rows, size_t w, uint32_t *out)
{
    size_t r = 0;
    if (w < SHORT_ROW)
        for (; r + 8 <= n_rows; r += 8)
            _mm256_storeu_si256((__m256i *)(out + r), dist8_short(q, m + r * w, w, w));
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
    for (size_t r = 0; r < n_rows; ++r)
        out[r] = row_count(x + r * w, NULL, 0, w);
}

const hdc_ham_ops hdc_ham_avx512bw = {
    "avx512bw", QB, dist_multi, dist_one, hamming_rows, popcount_rows,
    find_hit, xor_words, stream_copy, store_fence, kwta_scan, kwta_scan_nib,
    kwta_tables};
#endif
