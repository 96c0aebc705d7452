/* sparse/scalar.c: equal-index counts of sparse block codes, one element at a time. */
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

const hdc_sparse_ops hdc_sparse_scalar = {"scalar", {eq_rows_u8, eq_rows_u16, eq_rows_u32}};
