/* sparse/avx512bw.c: equal-index counts with AVX-512BW. Row pairs: compare 64 uint8 / 32 uint16 /
 * 16 uint32 lanes into a mask register, popcount the mask; tails use masked loads, so no load
 * reaches past the end of a row. Transposed tiles (query blocking): each tile row (one block of
 * 64 stored rows) is loaded once and compared with the broadcast index of G queries; the mask
 * adds 1 to per-lane counters (one lane per stored row), so nothing is summed across lanes. */
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

/* G queries (G <= GMAX, a constant after inlining) against a tile: V = 64 / LANES vectors per
 * tile row, counters in the index's own lane width (nb <= 255 cannot wrap them) */
#define DEFINE_EQ_TILE(name, type, GMAX, SET1, CMPEQ, MASK_ADD)                                    \
    static inline __attribute__((always_inline)) void name##_group(                               \
        const type *q, size_t q_stride, const type *t, size_t nb, uint32_t *dist, const int G)    \
    {                                                                                              \
        enum { LANES = 64 / sizeof(type), V = HDC_SPARSE_TILE / LANES };                           \
        __m512i acc[GMAX][V];                                                                      \
        const __m512i one = SET1(1);                                                               \
        for (int g = 0; g < G; ++g)                                                                \
            for (int v = 0; v < V; ++v)                                                            \
                acc[g][v] = _mm512_setzero_si512();                                                \
        for (size_t b = 0; b < nb; ++b) {                                                          \
            __m512i row[V];                                                                        \
            for (int v = 0; v < V; ++v)                                                            \
                row[v] = _mm512_loadu_si512((const void *)(t + b * HDC_SPARSE_TILE + v * LANES));  \
            for (int g = 0; g < G; ++g) {                                                          \
                const __m512i x = SET1(q[g * q_stride + b]);                                       \
                for (int v = 0; v < V; ++v)                                                        \
                    acc[g][v] = MASK_ADD(acc[g][v], CMPEQ(row[v], x), acc[g][v], one);             \
            }                                                                                      \
        }                                                                                          \
        for (int g = 0; g < G; ++g) {                                                              \
            type counts[HDC_SPARSE_TILE];                                                          \
            for (int v = 0; v < V; ++v)                                                            \
                _mm512_storeu_si512((void *)(counts + v * LANES), acc[g][v]);                      \
            uint32_t *d = dist + (size_t)g * HDC_SPARSE_TILE;                                      \
            for (int j = 0; j < HDC_SPARSE_TILE; ++j)                                              \
                d[j] -= counts[j];                                                                 \
        }                                                                                          \
    }                                                                                              \
    static void name(const void *qv, size_t q_stride, size_t nq, const void *tv, size_t nb,       \
                     uint32_t *dist)                                                               \
    {                                                                                              \
        const type *q = (const type *)qv, *t = (const type *)tv;                                   \
        size_t i = 0;                                                                              \
        for (; i + GMAX <= nq; i += GMAX)                                                          \
            name##_group(q + i * q_stride, q_stride, t, nb, dist + i * HDC_SPARSE_TILE, GMAX);     \
        for (; i < nq; ++i)                                                                        \
            name##_group(q + i * q_stride, q_stride, t, nb, dist + i * HDC_SPARSE_TILE, 1);        \
    }

#define SET1_8(x) _mm512_set1_epi8((char)(x))
#define SET1_16(x) _mm512_set1_epi16((short)(x))
#define SET1_32(x) _mm512_set1_epi32((int)(x))
DEFINE_EQ_TILE(eq_tile_u8, uint8_t, 8, SET1_8, _mm512_cmpeq_epi8_mask, _mm512_mask_add_epi8)
DEFINE_EQ_TILE(eq_tile_u16, uint16_t, 4, SET1_16, _mm512_cmpeq_epi16_mask, _mm512_mask_add_epi16)
DEFINE_EQ_TILE(eq_tile_u32, uint32_t, 4, SET1_32, _mm512_cmpeq_epi32_mask, _mm512_mask_add_epi32)

const hdc_sparse_ops hdc_sparse_avx512bw = {"avx512bw", {eq_rows_u8, eq_rows_u16, eq_rows_u32},
                                            {eq_tile_u8, eq_tile_u16, eq_tile_u32}};
#endif
