/* sparse/avx2.c: equal-index counts with AVX2: vpcmpeq{b,w,d} on 32 bytes, vpmovmskb, popcount
 * of the mask (two mask bits per uint16 lane, four per uint32 lane). Tails are scalar, so no
 * load reaches past the end of a row. */
#include "../internal.h"
#ifdef HDC_X86
#pragma GCC target("avx2,popcnt")
#include <immintrin.h>

#define DEFINE_EQ_ROWS(name, type, cmpeq, shift)                                                   \
    static void name(const void *q, const void *m, size_t n_rows, size_t blocks, int32_t *out)   \
    {                                                                                              \
        const type *a = (const type *)q;                                                           \
        const size_t lanes = 32 / sizeof(type);                                                    \
        const size_t body = blocks - blocks % lanes;                                               \
        for (size_t r = 0; r < n_rows; ++r) {                                                      \
            const type *b = (const type *)m + r * blocks;                                          \
            int32_t s = 0;                                                                         \
            for (size_t j = 0; j < body; j += lanes) {                                             \
                __m256i va = _mm256_loadu_si256((const __m256i *)(a + j));                         \
                __m256i vb = _mm256_loadu_si256((const __m256i *)(b + j));                         \
                unsigned mask = (unsigned)_mm256_movemask_epi8(cmpeq(va, vb));                     \
                s += (int32_t)(_mm_popcnt_u32(mask) >> shift);                                     \
            }                                                                                      \
            for (size_t j = body; j < blocks; ++j)                                                 \
                s += a[j] == b[j];                                                                 \
            out[r] = s;                                                                            \
        }                                                                                          \
    }

DEFINE_EQ_ROWS(eq_rows_u8, uint8_t, _mm256_cmpeq_epi8, 0)
DEFINE_EQ_ROWS(eq_rows_u16, uint16_t, _mm256_cmpeq_epi16, 1)
DEFINE_EQ_ROWS(eq_rows_u32, uint32_t, _mm256_cmpeq_epi32, 2)

const hdc_sparse_ops hdc_sparse_avx2 = {"avx2", {eq_rows_u8, eq_rows_u16, eq_rows_u32}};
#endif
