/* count.c: hdc_bundle and hdc_column_counts, the ISA-independent drivers of bundle/<isa>.c.
 *
 * Columns (row words) are split between threads; each thread counts its columns over all rows
 * into bit-sliced counters on its own stack, so threads never share a write and the result does
 * not depend on the thread count. Weighted counts are decomposed by the bits of the weights:
 * sum_r w_r * bit_r = sum_p (+-2^p) * (number of rows whose |w_r| has bit p), each term a plain
 * count, so the cost grows with the bits of the weights, not with their size.
 */
#include <stdlib.h>
#include "internal.h"

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

void hdc_bundle(const uint64_t *x, size_t n_rows, size_t row_words, const uint64_t *tie,
                uint64_t *out)
{
    if (n_rows == 0 || row_words == 0)
        return;
    const hdc_count_ops *ops = hdc__count();
    int n_slices = bits_for(n_rows);
    int tie_on = (n_rows % 2) == 0;
    uint64_t half = n_rows / 2;
    int nt = hdc__threads_for((double)n_rows * (double)row_words);
    size_t step = chunk_cols(n_slices);
#pragma omp parallel for num_threads(nt) schedule(static, 1) if (nt > 1)
    for (int t = 0; t < nt; ++t) {
        uint64_t sl[SLICE_WORDS];
        size_t lo, hi;
        split(row_words, t, nt, &lo, &hi);
        for (size_t c0 = lo; c0 < hi; c0 += step) {
            size_t nc = hi - c0 < step ? hi - c0 : step;
            for (size_t i = 0; i < nc * (size_t)n_slices; ++i)
                sl[i] = 0;
            ops->count_add(x, row_words, NULL, n_rows, c0, nc, sl, n_slices);
            ops->majority(sl, n_slices, nc, half, tie_on, tie + c0, out + c0);
        }
    }
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

void hdc_column_counts(const uint64_t *x, size_t n_rows, size_t row_words,
                       const int64_t *weights, int64_t *counts)
{
    if (n_rows == 0 || row_words == 0)
        return;
    const hdc_count_ops *ops = hdc__count();
    int uniform = 1;
    if (weights)
        for (size_t r = 1; r < n_rows && uniform; ++r)
            uniform = weights[r] == weights[0];
    size_t *idx = NULL;
    if (!uniform) {
        idx = malloc(n_rows * sizeof *idx);
        if (!idx) {
            /* no memory for the row lists: one row at a time, each with its own weight */
            for (size_t r = 0; r < n_rows; ++r)
                hdc_column_counts(x + r * row_words, 1, row_words, weights + r, counts);
            return;
        }
    }
    /* the weight bits in use, for positive and for negative weights */
    uint64_t bits_used[2] = {0, 0};
    if (!uniform)
        for (size_t r = 0; r < n_rows; ++r)
            if (weights[r])
                bits_used[weights[r] < 0] |= magnitude(weights[r]);
    int nt = hdc__threads_for((double)n_rows * (double)row_words);
#pragma omp parallel for num_threads(nt) schedule(static, 1) if (nt > 1)
    for (int t = 0; t < nt; ++t) {
        uint64_t sl[SLICE_WORDS];
        size_t lo, hi;
        split(row_words, t, nt, &lo, &hi);
        if (lo == hi)
            continue;
        if (uniform) {
            uint64_t scale = weights ? (uint64_t)weights[0] : 1;
            if (scale)
                count_scaled(ops, x, row_words, NULL, n_rows, lo, hi, scale, counts, sl);
            continue;
        }
        /* thread t owns idx entries only while nt == 1; otherwise each thread builds its own
         * list in a private allocation */
        size_t *list = nt == 1 ? idx : malloc(n_rows * sizeof *list);
        if (!list) {
            /* allocation failed: weight each row on its own (slow, still exact) */
            for (size_t r = 0; r < n_rows; ++r)
                if (weights[r])
                    count_scaled(ops, x + r * row_words, row_words, NULL, 1, lo, hi,
                                 (uint64_t)weights[r], counts, sl);
            continue;
        }
        for (int sign = 0; sign < 2; ++sign) {
            for (int p = 0; p < 64; ++p) {
                if (!((bits_used[sign] >> p) & 1))
                    continue;
                size_t n = 0;
                for (size_t r = 0; r < n_rows; ++r)
                    if ((sign ? weights[r] < 0 : weights[r] > 0) && ((magnitude(weights[r]) >> p) & 1))
                        list[n++] = r;
                uint64_t scale = (uint64_t)1 << p;
                count_scaled(ops, x, row_words, list, n, lo, hi, sign ? (uint64_t)0 - scale : scale,
                             counts, sl);
            }
        }
        if (list != idx)
            free(list);
    }
    free(idx);
}
