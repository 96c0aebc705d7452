/* limits.c: hdc_xor_reduce, the least work that reads a whole matrix, for hdc bench to measure
 * each kernel against this machine's own limits (the bundle's input read once; large inputs give
 * the read bandwidth of all threads together).
 *
 * Rows are split between threads in a few contiguous ranges per thread (a late thread then costs
 * little); each thread XORs its rows into its own partial row, with the active path's widest
 * vectors (count ops' xor_rows), and the partials are combined at the end.
 */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

typedef struct {
    const hdc_count_ops *ops;
    const uint64_t *x;
    size_t n_rows, w, units;
    int streaming; /* read row by row (a matrix past the caches) */
    uint64_t *partial; /* one row per slot */
} xor_job;

/* xor_rows walks its rows once per strip of columns: right for a matrix in the caches, but a
 * large one then comes from memory in strided passes. Past 8 MiB it is read one row at a time
 * instead (the accumulator row stays in L1): one sequential stream, about 3x the strip walk's
 * bandwidth on a 63 MB matrix; the 1.3 MB bundle input keeps the strip walk (2x faster there). */
static void xor_blocks(const hdc_count_ops *ops, const uint64_t *x, size_t n_rows, size_t w,
                       uint64_t *acc, int streaming)
{
    if (!streaming) {
        ops->xor_rows(x, n_rows, w, acc);
        return;
    }
    for (size_t r = 0; r < n_rows; ++r)
        ops->xor_rows(x + r * w, 1, w, acc);
}

static void xor_unit(void *ctx, size_t u, int slot)
{
    const xor_job *j = ctx;
    size_t r0 = j->n_rows * u / j->units, r1 = j->n_rows * (u + 1) / j->units;
    xor_blocks(j->ops, j->x + r0 * j->w, r1 - r0, j->w, j->partial + (size_t)slot * j->w,
               j->streaming);
}

int hdc_xor_reduce(const uint64_t *x, size_t n_rows, size_t n_words, uint64_t *out)
{
    memset(out, 0, n_words * sizeof *out);
    if (n_rows == 0 || n_words == 0)
        return 0;
    int streaming = (double)n_rows * (double)n_words > (double)(1u << 20);
    int nt = hdc__threads_for((double)n_rows * (double)n_words);
    size_t units = nt > 1 ? (size_t)nt * 4 : 1;
    if (units > n_rows)
        units = n_rows;
    if (nt == 1 || units == 1) {
        xor_blocks(hdc__count(), x, n_rows, n_words, out, streaming);
        return 0;
    }
    if (n_words > SIZE_MAX / sizeof(uint64_t) / (size_t)nt)
        return -1;
    uint64_t *partial = calloc((size_t)nt * n_words, sizeof *partial);
    if (!partial)
        return -1;
    xor_job j = {hdc__count(), x, n_rows, n_words, units, streaming, partial};
    hdc__parallel(units, nt, xor_unit, &j);
    for (int s = 0; s < nt; ++s)
        hdc__count()->xor_rows(partial + (size_t)s * n_words, 1, n_words, out);
    free(partial);
    return 0;
}
