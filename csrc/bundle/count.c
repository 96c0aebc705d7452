/* bundle/count.c: hdc_bundle and hdc_column_counts, the ISA-independent drivers of bundle/<isa>.c.
 *
 * Columns (row words) are split between threads; each thread counts its columns over all rows
 * into bit-sliced counters on its own stack, so threads never share a write and the result does
 * not depend on the thread count. Weighted counts are decomposed by the bits of the weights:
 * sum_r w_r * bit_r = sum_p (+-2^p) * (number of rows whose |w_r| has bit p), each term a plain
 * count, so the cost grows with the bits of the weights, not with their size.
 */
#include <stdlib.h>
#include "../internal.h"

/* words of counters kept per thread on the stack (32 KiB) */
#define SLICE_WORDS 4096

static int bits_for(uint64_t n) { return n ? 64 - __builtin_clzll(n) : 1; }

/* columns [*lo, *hi) of thread t of nt; ranges are multiples of 8 words except the last */
static void split(size_t ncols, int t, int nt, size_t *lo, size_t *hi)
{
    size_t blocks = (ncols + 7) / 8;
    size_t b0 = blocks * (size_t)t / (size_t)nt, b1 = blocks * (size_t)(t + 1) / (size_t)nt;
    *lo = b0 * 8 < ncols ? b0 * 8 : ncols;
    *hi = b1 * 8 < ncols ? b1 * 8 : ncols;
}

/* how many columns fit the stack buffer with n_slices counters each (a multiple of 8) */
static size_t chunk_cols(int n_slices)
{
    size_t c = SLICE_WORDS / (size_t)n_slices / 8 * 8;
    return c ? c : 8;
}

typedef struct {
    const hdc_count_ops *ops;
    const uint64_t *x, *tie;
    uint64_t *out;
    size_t n_rows, row_words, units;
    int n_slices, tie_on;
    uint64_t half;
} bundle_job;

static void bundle_unit(void *ctx, size_t u, int slot)
{
    const bundle_job *j = ctx;
    uint64_t sl[SLICE_WORDS];
    size_t lo, hi, step = chunk_cols(j->n_slices);
    (void)slot;
    split(j->row_words, (int)u, (int)j->units, &lo, &hi);
    for (size_t c0 = lo; c0 < hi; c0 += step) {
        size_t nc = hi - c0 < step ? hi - c0 : step;
        for (size_t i = 0; i < nc * (size_t)j->n_slices; ++i)
            sl[i] = 0;
        j->ops->count_add(j->x, j->row_words, NULL, j->n_rows, c0, nc, sl, j->n_slices);
        j->ops->majority(sl, j->n_slices, nc, j->half, j->tie_on, j->tie + c0, j->out + c0);
    }
}

/* column blocks of 8 words, a few per thread so a late thread costs little */
static size_t column_units(size_t row_words, int nt)
{
    size_t blocks = (row_words + 7) / 8, units = nt > 1 ? (size_t)nt * 4 : 1;
    return units < blocks ? units : blocks;
}

void hdc_bundle(const uint64_t *x, size_t n_rows, size_t row_words, const uint64_t *tie,
                uint64_t *out)
{
    if (n_rows == 0 || row_words == 0)
        return;
    int nt = hdc__threads_for((double)n_rows * (double)row_words);
    bundle_job j = {hdc__count(), x, tie, out, n_rows, row_words, column_units(row_words, nt),
                    bits_for(n_rows), (n_rows % 2) == 0, n_rows / 2};
    hdc__parallel(j.units, nt, bundle_unit, &j);
}

/* counts of the rows idx (or all rows) over columns [lo, hi), added with `scale` */
static void count_scaled(const hdc_count_ops *ops, const uint64_t *x, size_t stride,
                         const size_t *idx, size_t n, size_t lo, size_t hi, uint64_t scale,
                         int64_t *counts, uint64_t *sl)
{
    int n_slices = bits_for(n);
    size_t step = chunk_cols(n_slices);
    for (size_t c0 = lo; c0 < hi; c0 += step) {
        size_t nc = hi - c0 < step ? hi - c0 : step;
        for (size_t i = 0; i < nc * (size_t)n_slices; ++i)
            sl[i] = 0;
        ops->count_add(x, stride, idx, n, c0, nc, sl, n_slices);
        ops->expand(sl, n_slices, nc, scale, counts + 64 * c0);
    }
}

static uint64_t magnitude(int64_t w) { return w < 0 ? (uint64_t)0 - (uint64_t)w : (uint64_t)w; }

typedef struct {
    const hdc_count_ops *ops;
    const uint64_t *x;
    const int64_t *weights;
    int64_t *counts;
    size_t n_rows, row_words, units;
    int uniform;
    uint64_t bits_used[2]; /* the weight bits in use, for positive and for negative weights */
} counts_job;

static void counts_unit(void *ctx, size_t u, int slot)
{
    const counts_job *j = ctx;
    uint64_t sl[SLICE_WORDS];
    size_t lo, hi;
    (void)slot;
    split(j->row_words, (int)u, (int)j->units, &lo, &hi);
    if (lo == hi)
        return;
    const int64_t *weights = j->weights;
    if (j->uniform) {
        uint64_t scale = weights ? (uint64_t)weights[0] : 1;
        if (scale)
            count_scaled(j->ops, j->x, j->row_words, NULL, j->n_rows, lo, hi, scale, j->counts, sl);
        return;
    }
    size_t *list = malloc(j->n_rows * sizeof *list);
    if (!list) {
        /* no memory for a row list: weight each row on its own (slow, still exact) */
        for (size_t r = 0; r < j->n_rows; ++r)
            if (weights[r])
                count_scaled(j->ops, j->x + r * j->row_words, j->row_words, NULL, 1, lo, hi,
                             (uint64_t)weights[r], j->counts, sl);
        return;
    }
    for (int sign = 0; sign < 2; ++sign) {
        for (int p = 0; p < 64; ++p) {
            if (!((j->bits_used[sign] >> p) & 1))
                continue;
            size_t n = 0;
            for (size_t r = 0; r < j->n_rows; ++r)
                if ((sign ? weights[r] < 0 : weights[r] > 0) && ((magnitude(weights[r]) >> p) & 1))
                    list[n++] = r;
            uint64_t scale = (uint64_t)1 << p;
            count_scaled(j->ops, j->x, j->row_words, list, n, lo, hi,
                         sign ? (uint64_t)0 - scale : scale, j->counts, sl);
        }
    }
    free(list);
}

void hdc_column_counts(const uint64_t *x, size_t n_rows, size_t row_words,
                       const int64_t *weights, int64_t *counts)
{
    if (n_rows == 0 || row_words == 0)
        return;
    int nt = hdc__threads_for((double)n_rows * (double)row_words);
    counts_job j = {hdc__count(), x, weights, counts, n_rows, row_words,
                    column_units(row_words, nt), 1, {0, 0}};
    if (weights)
        for (size_t r = 1; r < n_rows && j.uniform; ++r)
            j.uniform = weights[r] == weights[0];
    if (!j.uniform)
        for (size_t r = 0; r < n_rows; ++r)
            if (weights[r])
                j.bits_used[weights[r] < 0] |= magnitude(weights[r]);
    hdc__parallel(j.units, nt, counts_unit, &j);
}
