/* sparse/avx2.c: equal-index counts with AVX2. Row pairs: vpcmpeq{b,w,d} on 32 bytes, vpmovmskb,
 * popcount of the mask (two mask bits per uint16 lane, four per uint32 lane); tails are scalar,
 * so no load reaches past the end of a row. Transposed tiles (query blocking): 32 stored rows at
 * a time, each tile row loaded once and compared with the broadcast index of G queries; the
 * all-ones lanes of the compare are subtracted from per-lane counters (one lane per stored row). */
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

/* G queries (G <= GMAX, a constant after inlining) against 32 columns [c0, c0 + 32) of a tile:
 * V = 32 / LANES vectors per tile row, counters in the index's own lane width (nb <= 255) */
#define DEFINE_EQ_TILE(name, type, GMAX, SET1, CMPEQ, SUB)                                         \
    static inline __attribute__((always_inline)) void name##_group(                               \
        const type *q, size_t q_stride, const type *t, size_t c0, size_t nb, uint32_t *dist,      \
        const int G)                                                                               \
    {                                                                                              \
        enum { LANES = 32 / sizeof(type), V = 32 / LANES };                                        \
        __m256i acc[GMAX][V];                                                                      \
        for (int g = 0; g < G; ++g)                                                                \
            for (int v = 0; v < V; ++v)                                                            \
                acc[g][v] = _mm256_setzero_si256();                                                \
        for (size_t b = 0; b < nb; ++b) {                                                          \
            __m256i row[V];                                                                        \
            for (int v = 0; v < V; ++v)                                                            \
                row[v] = _mm256_loadu_si256(                                                       \
                    (const __m256i *)(t + b * HDC_SPARSE_TILE + c0 + v * LANES));                  \
            for (int g = 0; g < G; ++g) {                                                          \
                const __m256i x = SET1(q[g * q_stride + b]);                                       \
                for (int v = 0; v < V; ++v)                                                        \
                    acc[g][v] = SUB(acc[g][v], CMPEQ(row[v], x));                                  \
            }                                                                                      \
        }                                                                                          \
        for (int g = 0; g < G; ++g) {                                                              \
            type counts[32];                                                                       \
            for (int v = 0; v < V; ++v)                                                            \
                _mm256_storeu_si256((__m256i *)(counts + v * LANES), acc[g][v]);                   \
            uint32_t *d = dist + (size_t)g * HDC_SPARSE_TILE + c0;                                 \
            for (int j = 0; j < 32; ++j)                                                           \
                d[j] -= counts[j];                                                                 \
        }                                                                                          \
    }                                                                                              \
    static void name(const void *qv, size_t q_stride, size_t nq, const void *tv, size_t nb,       \
                     uint32_t *dist)                                                               \
    {                                                                                              \
        const type *q = (const type *)qv, *t = (const type *)tv;                                   \
        for (size_t c0 = 0; c0 < HDC_SPARSE_TILE; c0 += 32) {                                      \
            size_t i = 0;                                                                          \
            for (; i + GMAX <= nq; i += GMAX)                                                      \
                name##_group(q + i * q_stride, q_stride, t, c0, nb, dist + i * HDC_SPARSE_TILE,    \
                             GMAX);                                                                \
            for (; i < nq; ++i)                                                                    \
                name##_group(q + i * q_stride, q_stride, t, c0, nb, dist + i * HDC_SPARSE_TILE, 1); \
        }                                                                                          \
    }

#define SET1_8(x) _mm256_set1_epi8((char)(x))
#define SET1_16(x) _mm256_set1_epi16((short)(x))
#define SET1_32(x) _mm256_set1_epi32((int)(x))
DEFINE_EQ_TILE(eq_tile_u8, uint8_t, 4, SET1_8, _mm256_cmpeq_epi8, _mm256_sub_epi8)
DEFINE_EQ_TILE(eq_tile_u16, uint16_t, 4, SET1_16, _mm256_cmpeq_epi16, _mm256_sub_epi16)
DEFINE_EQ_TILE(eq_tile_u32, uint32_t, 2, SET1_32, _mm256_cmpeq_epi32, _mm256_sub_epi32)

const hdc_sparse_ops hdc_sparse_avx2 = {"avx2", {eq_rows_u8, eq_rows_u16, eq_rows_u32},
                                        {eq_tile_u8, eq_tile_u16, eq_tile_u32}};
#endif
