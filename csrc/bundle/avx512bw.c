/* bundle/avx512bw.c: bit-sliced counting on 512-bit vectors (the CSA pairs compile to vpternlogq);
 * counts are expanded with masked adds, 8 columns per instruction. Both AVX-512 paths (avx512bw,
 * avx512vpopcnt) use this table: counting needs no VPOPCNTDQ. */
#include "../internal.h"
#ifdef HDC_X86
#pragma GCC target("avx512f,avx512bw")
#include <immintrin.h>
#define VW 8
#define COUNT_TABLE hdc_count_avx512bw
#define HDC_EXPAND_DEFINED 1

static void expand(const uint64_t *sl, int n_slices, size_t ncols, uint64_t scale,
                   int64_t *counts)
{
    __m512i add[64];
    for (int s = 0; s < n_slices; ++s)
        add[s] = _mm512_set1_epi64((long long)(scale << s));
    for (size_t c = 0; c < ncols; ++c) {
        for (int B = 0; B < 8; ++B) {
            int64_t *p = counts + 64 * c + 8 * B;
            __m512i acc = _mm512_loadu_si512(p);
            for (int s = 0; s < n_slices; ++s) {
                __mmask8 k = (__mmask8)(sl[s * ncols + c] >> (8 * B));
                acc = _mm512_mask_add_epi64(acc, k, acc, add[s]);
            }
            _mm512_storeu_si512(p, acc);
        }
    }
}
#define HDC_COUNT_ADD_DEFINED 1

#define XOR3(a, b, c) _mm512_ternarylogic_epi64((a), (b), (c), 0x96)
#define MAJ3(a, b, c) _mm512_ternarylogic_epi64((a), (b), (c), 0xE8)
#define CSA512(h, l, a, b, c)             \
    do {                                  \
        __m512i a_ = (a), b_ = (b), c_ = (c); \
        (h) = MAJ3(a_, b_, c_);           \
        (l) = XOR3(a_, b_, c_);           \
    } while (0)

/* add one vector into a 4-slice counter (ripple); returns the carry out */
static inline __m512i ripple4(__m512i *c0, __m512i *c1, __m512i *c2, __m512i *c3, __m512i v)
{
    __m512i t;
    t = _mm512_and_si512(*c0, v); *c0 = _mm512_xor_si512(*c0, v); v = t;
    t = _mm512_and_si512(*c1, v); *c1 = _mm512_xor_si512(*c1, v); v = t;
    t = _mm512_and_si512(*c2, v); *c2 = _mm512_xor_si512(*c2, v); v = t;
    t = _mm512_and_si512(*c3, v); *c3 = _mm512_xor_si512(*c3, v); v = t;
    return v;
}

/* Column-outer: for each 8-word column vector, all rows stream through a Harley-Seal tree
 * (ones..eights, in registers), its sixteens through a second 4-slice register counter, and
 * only the carries of 256 reach memory. sl must be zero on entry; masked loads cover a last
 * partial vector, so no load passes the end of a row. */
static void count_add(const uint64_t *x, size_t stride, const size_t *idx, size_t n, size_t c0,
                      size_t ncols, uint64_t *sl, int n_slices)
{
    for (size_t c = 0; c < ncols; c += 8) {
        __mmask8 k = c + 8 <= ncols ? (__mmask8)0xFF : (__mmask8)((1u << (ncols - c)) - 1);
        const uint64_t *base = x + c0 + c;
        __m512i ones = _mm512_setzero_si512(), twos = ones, fours = ones, eights = ones;
        __m512i u16 = ones, u32 = ones, u64 = ones, u128 = ones;
        size_t i = 0;
#define ROW(j) _mm512_maskz_loadu_epi64(k, base + (idx ? idx[i + (j)] : i + (j)) * stride)
        for (; i + 16 <= n; i += 16) {
            __m512i twosA, twosB, foursA, foursB, eightsA, eightsB, sixteens;
            CSA512(twosA, ones, ones, ROW(0), ROW(1));
            CSA512(twosB, ones, ones, ROW(2), ROW(3));
            CSA512(foursA, twos, twos, twosA, twosB);
            CSA512(twosA, ones, ones, ROW(4), ROW(5));
            CSA512(twosB, ones, ones, ROW(6), ROW(7));
            CSA512(foursB, twos, twos, twosA, twosB);
            CSA512(eightsA, fours, fours, foursA, foursB);
            CSA512(twosA, ones, ones, ROW(8), ROW(9));
            CSA512(twosB, ones, ones, ROW(10), ROW(11));
            CSA512(foursA, twos, twos, twosA, twosB);
            CSA512(twosA, ones, ones, ROW(12), ROW(13));
            CSA512(twosB, ones, ones, ROW(14), ROW(15));
            CSA512(foursB, twos, twos, twosA, twosB);
            CSA512(eightsB, fours, fours, foursA, foursB);
            CSA512(sixteens, eights, eights, eightsA, eightsB);
            __m512i carry = ripple4(&u16, &u32, &u64, &u128, sixteens);
            if (_mm512_test_epi64_mask(carry, carry)) {
                for (int s = 8; s < n_slices; ++s) {
                    __m512i v = _mm512_maskz_loadu_epi64(k, sl + s * ncols + c);
                    _mm512_mask_storeu_epi64(sl + s * ncols + c, k, _mm512_xor_si512(v, carry));
                    carry = _mm512_and_si512(carry, v);
                }
            }
        }
        for (; i < n; ++i) {
            __m512i carry = ripple4(&ones, &twos, &fours, &eights, ROW(0));
            carry = ripple4(&u16, &u32, &u64, &u128, carry);
            if (_mm512_test_epi64_mask(carry, carry)) {
                for (int s = 8; s < n_slices; ++s) {
                    __m512i v = _mm512_maskz_loadu_epi64(k, sl + s * ncols + c);
                    _mm512_mask_storeu_epi64(sl + s * ncols + c, k, _mm512_xor_si512(v, carry));
                    carry = _mm512_and_si512(carry, v);
                }
            }
        }
#undef ROW
        __m512i low[8] = {ones, twos, fours, eights, u16, u32, u64, u128};
        for (int s = 0; s < 8 && s < n_slices; ++s)
            _mm512_mask_storeu_epi64(sl + s * ncols + c, k, low[s]);
    }
}

/* four vectors of columns in registers over all rows; masked loads and stores for the last
 * partial vectors (a mask of 0 touches no memory) */
static void xor_rows(const uint64_t *x, size_t n, size_t w, uint64_t *acc)
{
    for (size_t c = 0; c < w; c += 32) {
        __mmask8 k[4];
        for (int v = 0; v < 4; ++v) {
            size_t at = c + 8 * (size_t)v, left = at < w ? w - at : 0;
            k[v] = left >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << left) - 1);
        }
        __m512i a0 = _mm512_maskz_loadu_epi64(k[0], acc + c);
        __m512i a1 = _mm512_maskz_loadu_epi64(k[1], acc + c + 8);
        __m512i a2 = _mm512_maskz_loadu_epi64(k[2], acc + c + 16);
        __m512i a3 = _mm512_maskz_loadu_epi64(k[3], acc + c + 24);
        for (size_t r = 0; r < n; ++r) {
            const uint64_t *p = x + r * w + c;
            a0 = _mm512_xor_si512(a0, _mm512_maskz_loadu_epi64(k[0], p));
            a1 = _mm512_xor_si512(a1, _mm512_maskz_loadu_epi64(k[1], p + 8));
            a2 = _mm512_xor_si512(a2, _mm512_maskz_loadu_epi64(k[2], p + 16));
            a3 = _mm512_xor_si512(a3, _mm512_maskz_loadu_epi64(k[3], p + 24));
        }
        _mm512_mask_storeu_epi64(acc + c, k[0], a0);
        _mm512_mask_storeu_epi64(acc + c + 8, k[1], a1);
        _mm512_mask_storeu_epi64(acc + c + 16, k[2], a2);
        _mm512_mask_storeu_epi64(acc + c + 24, k[3], a3);
    }
}
#define HDC_XOR_ROWS_DEFINED 1

#include "bundle.inc"
#endif
