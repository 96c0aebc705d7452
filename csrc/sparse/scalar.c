/* sparse/scalar.c: equal-index counts of sparse block codes in portable C (no SIMD intrinsics):
 * per row pair, and per transposed tile of HDC_SPARSE_TILE rows (internal.h) for query blocking. */
#include "../internal.h"

#define DEFINE_EQ_ROWS(name, type)                                                                 \
    static void name(const void *q, const void *m, size_t n_rows, size_t blocks, int32_t *out)   \
    {                                                                                              \
        const type *a = (const type *)q;                                                           \
        for (size_t r = 0; r < n_rows; ++r) {                                                      \
            const type *b = (const type *)m + r * blocks;                                          \
            int32_t s = 0;                                                                         \
            for (size_t j = 0; j < blocks; ++j)                                                    \
                s += a[j] == b[j];                                                                 \
            out[r] = s;                                                                            \
        }                                                                                          \
    }

DEFINE_EQ_ROWS(eq_rows_u8, uint8_t)
DEFINE_EQ_ROWS(eq_rows_u16, uint16_t)
DEFINE_EQ_ROWS(eq_rows_u32, uint32_t)

#define DEFINE_EQ_TILE(name, type)                                                                 \
    static void name(const void *qv, size_t q_stride, size_t nq, const void *tv, size_t nb,       \
                     uint32_t *dist)                                                               \
    {                                                                                              \
        const type *t = (const type *)tv;                                                          \
        for (size_t i = 0; i < nq; ++i) {                                                          \
            const type *q = (const type *)qv + i * q_stride;                                       \
            uint32_t *d = dist + i * HDC_SPARSE_TILE;                                              \
            for (size_t b = 0; b < nb; ++b) {                                                      \
                const type v = q[b], *row = t + b * HDC_SPARSE_TILE;                               \
                for (size_t j = 0; j < HDC_SPARSE_TILE; ++j)                                       \
                    d[j] -= row[j] == v;                                                           \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_EQ_TILE(eq_tile_u8, uint8_t)
DEFINE_EQ_TILE(eq_tile_u16, uint16_t)
DEFINE_EQ_TILE(eq_tile_u32, uint32_t)

const hdc_sparse_ops hdc_sparse_scalar = {"scalar", {eq_rows_u8, eq_rows_u16, eq_rows_u32},
                                          {eq_tile_u8, eq_tile_u16, eq_tile_u32}};
