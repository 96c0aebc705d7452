/* sparse/neon.c: equal-index counts with aarch64 Advanced SIMD: vceqq on 16 bytes gives all-ones
 * lanes where the indices match, subtracted from per-lane counters (adding 1), which are summed
 * across lanes (vaddlvq / vaddvq) before they could wrap. Tails are scalar, so no load reaches
 * past the end of a row. Transposed tiles (query blocking): 32 stored rows at a time, each tile row
 * loaded once and compared with the broadcast index of G queries; the all-ones lanes are
 * subtracted from per-lane counters (one lane per stored row; nb <= 255 cannot wrap them). */
#include "../internal.h"
#ifdef HDC_NEON
#include <arm_neon.h>

/* type: index type; V: its vector; LD / CEQ / SUB / SUM: load, compare, subtract, lane sum;
 * FLUSH: vectors per counter before it could wrap */
#define DEFINE_EQ_ROWS(name, type, V, LD, CEQ, SUB, SUM, DUP, FLUSH)                               \
    static void name(const void *q, const void *m, size_t n_rows, size_t blocks, int32_t *out)   \
    {                                                                                              \
        const type *a = (const type *)q;                                                           \
        const size_t lanes = 16 / sizeof(type);                                                    \
        const size_t body = blocks - blocks % lanes;                                               \
        for (size_t r = 0; r < n_rows; ++r) {                                                      \
            const type *b = (const type *)m + r * blocks;                                          \
            int32_t s = 0;                                                                         \
            for (size_t j = 0; j < body;) {                                                        \
                size_t most = (size_t)(FLUSH) * lanes;                                             \
                size_t stop = body - j > most ? j + most : body;                                   \
                V acc = DUP(0);                                                                    \
                for (; j < stop; j += lanes)                                                       \
                    acc = SUB(acc, CEQ(LD(a + j), LD(b + j)));                                     \
                s += (int32_t)SUM(acc);                                                            \
            }                                                                                      \
            for (size_t j = body; j < blocks; ++j)                                                 \
                s += a[j] == b[j];                                                                 \
            out[r] = s;                                                                            \
        }                                                                                          \
    }

DEFINE_EQ_ROWS(eq_rows_u8, uint8_t, uint8x16_t, vld1q_u8, vceqq_u8, vsubq_u8, vaddlvq_u8,
               vdupq_n_u8, 255)
DEFINE_EQ_ROWS(eq_rows_u16, uint16_t, uint16x8_t, vld1q_u16, vceqq_u16, vsubq_u16, vaddlvq_u16,
               vdupq_n_u16, 65535)
DEFINE_EQ_ROWS(eq_rows_u32, uint32_t, uint32x4_t, vld1q_u32, vceqq_u32, vsubq_u32, vaddvq_u32,
               vdupq_n_u32, 65535)

/* G queries (G <= GMAX, a constant after inlining) against 32 columns [c0, c0 + 32) of a tile */
#define DEFINE_EQ_TILE(name, type, V, GMAX, LD, CEQ, SUB, DUP, ST)                                 \
    static inline __attribute__((always_inline)) void name##_group(                               \
        const type *q, size_t q_stride, const type *t, size_t c0, size_t nb, uint32_t *dist,      \
        const int G)                                                                               \
    {                                                                                              \
        enum { LANES = 16 / sizeof(type), NV = 32 / LANES };                                       \
        V acc[GMAX][NV];                                                                           \
        for (int g = 0; g < G; ++g)                                                                \
            for (int v = 0; v < NV; ++v)                                                           \
                acc[g][v] = DUP(0);                                                                \
        for (size_t b = 0; b < nb; ++b) {                                                          \
            V row[NV];                                                                             \
            for (int v = 0; v < NV; ++v)                                                           \
                row[v] = LD(t + b * HDC_SPARSE_TILE + c0 + v * LANES);                             \
            for (int g = 0; g < G; ++g) {                                                          \
                const V x = DUP(q[g * q_stride + b]);                                              \
                for (int v = 0; v < NV; ++v)                                                       \
                    acc[g][v] = SUB(acc[g][v], CEQ(row[v], x));                                    \
            }                                                                                      \
        }                                                                                          \
        for (int g = 0; g < G; ++g) {                                                              \
            type counts[32];                                                                       \
            for (int v = 0; v < NV; ++v)                                                           \
                ST(counts + v * LANES, acc[g][v]);                                                 \
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

DEFINE_EQ_TILE(eq_tile_u8, uint8_t, uint8x16_t, 4, vld1q_u8, vceqq_u8, vsubq_u8, vdupq_n_u8, vst1q_u8)
DEFINE_EQ_TILE(eq_tile_u16, uint16_t, uint16x8_t, 4, vld1q_u16, vceqq_u16, vsubq_u16, vdupq_n_u16,
               vst1q_u16)
DEFINE_EQ_TILE(eq_tile_u32, uint32_t, uint32x4_t, 2, vld1q_u32, vceqq_u32, vsubq_u32, vdupq_n_u32,
               vst1q_u32)

const hdc_sparse_ops hdc_sparse_neon = {"neon", {eq_rows_u8, eq_rows_u16, eq_rows_u32},
                                        {eq_tile_u8, eq_tile_u16, eq_tile_u32}};
#endif
