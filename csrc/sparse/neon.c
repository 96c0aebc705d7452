/* sparse/neon.c: equal-index counts with aarch64 Advanced SIMD: vceqq on 16 bytes gives all-ones
 * lanes where the indices match, subtracted from per-lane counters (adding 1), which are summed
 * across lanes (vaddlvq / vaddvq) before they could wrap. Tails are scalar, so no load reaches
 * past the end of a row. */
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

const hdc_sparse_ops hdc_sparse_neon = {"neon", {eq_rows_u8, eq_rows_u16, eq_rows_u32}};
#endif
