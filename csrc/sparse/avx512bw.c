/* sparse/avx512bw.c: equal-index counts with AVX-512BW: compare 64 uint8 / 32 uint16 / 16 uint32
 * lanes into a mask register, popcount the mask. Tails use masked loads, so no load reaches
 * past the end of a row. */
#include "../internal.h"
#ifdef HDC_X86
#pragma GCC target("avx512f,avx512bw,popcnt")
#include <immintrin.h>

#define DEFINE_EQ_ROWS(name, type, mask_t, load, cmpeq, all)                                       \
    static void name(const void *q, const void *m, size_t n_rows, size_t blocks, int32_t *out)   \
    {                                                                                              \
        const type *a = (const type *)q;                                                           \
        const size_t lanes = 64 / sizeof(type);                                                    \
        const size_t body = blocks - blocks % lanes;                                               \
        const mask_t tail = (mask_t)(((uint64_t)1 << (blocks % lanes)) - 1);                       \
        for (size_t r = 0; r < n_rows; ++r) {                                                      \
            const type *b = (const type *)m + r * blocks;                                          \
            int32_t s = 0;                                                                         \
            for (size_t j = 0; j < body; j += lanes) {                                             \
                __m512i va = load(all, a + j);                                                     \
                __m512i vb = load(all, b + j);                                                     \
                s += (int32_t)_mm_popcnt_u64((uint64_t)cmpeq(va, vb));                             \
            }                                                                                      \
            if (tail) {                                                                            \
                __m512i va = load(tail, a + body);                                                 \
                __m512i vb = load(tail, b + body);                                                 \
                s += (int32_t)_mm_popcnt_u64((uint64_t)(cmpeq(va, vb) & tail));                    \
            }                                                                                      \
            out[r] = s;                                                                            \
        }                                                                                          \
    }

DEFINE_EQ_ROWS(eq_rows_u8, uint8_t, __mmask64, _mm512_maskz_loadu_epi8, _mm512_cmpeq_epi8_mask,
               (__mmask64)~(uint64_t)0)
DEFINE_EQ_ROWS(eq_rows_u16, uint16_t, __mmask32, _mm512_maskz_loadu_epi16, _mm512_cmpeq_epi16_mask,
               (__mmask32)0xFFFFFFFFu)
DEFINE_EQ_ROWS(eq_rows_u32, uint32_t, __mmask16, _mm512_maskz_loadu_epi32, _mm512_cmpeq_epi32_mask,
               (__mmask16)0xFFFFu)

const hdc_sparse_ops hdc_sparse_avx512bw = {"avx512bw", {eq_rows_u8, eq_rows_u16, eq_rows_u32}};
#endif
