/* sparse/sparse.c: overlap, all-pairs overlap and top-k by overlap of sparse block codes (one
 * index per block; uint8 / uint16 / uint32 indices). The equal-index count of one query against
 * a run of stored rows comes from the active path's table (hdc_sparse_ops); everything else is
 * written once here. Indices are only compared, never used as addresses, so no value a caller
 * passes can make a kernel read or write out of bounds. */
#include <stdlib.h>
#include <string.h>
#include "../internal.h"

/* stored rows per tile: the tile stays in L1 while every query of a chunk passes over it */
#define TILE_BYTES (16 * 1024)
/* bytes of the (queries, stored rows) overlap block of one top-k pass */
#define TOPK_BLOCK_BYTES ((size_t)64 << 20)

static int type_slot(int itemsize)
{
    return itemsize == 1 ? 0 : itemsize == 2 ? 1 : itemsize == 4 ? 2 : -1;
}

/* ---- overlap of row pairs ------------------------------------------------------------------ */

typedef struct {
    hdc_sparse_eq_fn eq;
    const char *a, *b;
    size_t rows, blocks, row_bytes, units;
    int32_t *out;
} pairs_job;

static void pairs_unit(void *ctx, size_t unit, int slot)
{
    (void)slot;
    pairs_job *j = ctx;
    size_t r0 = j->rows * unit / j->units, r1 = j->rows * (unit + 1) / j->units;
    for (size_t r = r0; r < r1; ++r)
        j->eq(j->a + r * j->row_bytes, j->b + r * j->row_bytes, 1, j->blocks, j->out + r);
}

int hdc_sparse_overlap(const void *a, const void *b, size_t rows, size_t blocks, int itemsize,
                       int32_t *out)
{
    int t = type_slot(itemsize);
    if (t < 0)
        return -1;
    if (rows == 0)
        return 0;
    int nt = hdc__threads_for((double)rows * (double)blocks * itemsize / 8);
    size_t units = rows < (size_t)nt * 4 ? rows : (size_t)nt * 4;
    pairs_job j = {hdc__sparse()->eq_rows[t], a, b, rows, blocks, blocks * (size_t)itemsize, units, out};
    hdc__parallel(units, nt, pairs_unit, &j);
    return 0;
}

/* ---- all pairs ------------------------------------------------------------------------------ */

typedef struct {
    hdc_sparse_eq_fn eq;
    const char *a, *b;
    size_t na, nb, blocks, row_bytes, tile;
    int32_t *out;
} cdist_job;

/* unit = one tile of stored rows against every query */
static void cdist_unit(void *ctx, size_t unit, int slot)
{
    (void)slot;
    cdist_job *j = ctx;
    size_t r0 = unit * j->tile, r1 = r0 + j->tile < j->nb ? r0 + j->tile : j->nb;
    for (size_t i = 0; i < j->na; ++i)
        j->eq(j->a + i * j->row_bytes, j->b + r0 * j->row_bytes, r1 - r0, j->blocks,
              j->out + i * j->nb + r0);
}

static void cdist_run(hdc_sparse_eq_fn eq, const void *a, size_t na, const void *b, size_t nb,
                      size_t blocks, int itemsize, int32_t *out)
{
    size_t row_bytes = blocks * (size_t)itemsize;
    size_t tile = TILE_BYTES / (row_bytes ? row_bytes : 1);
    if (tile < 1)
        tile = 1;
    size_t units = (nb + tile - 1) / tile;
    int nt = hdc__threads_for((double)na * (double)nb * (double)row_bytes / 8);
    cdist_job j = {eq, a, b, na, nb, blocks, row_bytes, tile, out};
    hdc__parallel(units, nt, cdist_unit, &j);
}

int hdc_sparse_cdist(const void *a, size_t na, const void *b, size_t nb, size_t blocks,
                     int itemsize, int32_t *out)
{
    int t = type_slot(itemsize);
    if (t < 0)
        return -1;
    if (na && nb)
        cdist_run(hdc__sparse()->eq_rows[t], a, na, b, nb, blocks, itemsize, out);
    return 0;
}

/* ---- top-k ---------------------------------------------------------------------------------- */

/* The k best of one row of overlaps ov[0..n): highest first, equal overlaps by smaller index.
 * A histogram of the blocks + 1 possible values gives the k-th best value t; a counting sort
 * places the rows above t, then the first k - above rows equal to t, in index order.
 * hist, slot: blocks + 1 entries each. */
static void select_k(const int32_t *ov, size_t n, size_t blocks, size_t k, int64_t *hist,
                     int64_t *slot, int32_t *out_ov, int64_t *out_idx)
{
    memset(hist, 0, (blocks + 1) * sizeof *hist);
    for (size_t j = 0; j < n; ++j)
        hist[ov[j]] += 1;
    size_t t = blocks;
    int64_t total = hist[t];
    while (total < (int64_t)k) {
        t -= 1;
        total += hist[t];
    }
    int64_t above = total - hist[t], pos = 0, taken = 0;
    for (size_t v = blocks; v > t; --v) {
        slot[v] = pos;
        pos += hist[v];
    }
    for (size_t j = 0; j < n; ++j) {
        size_t v = (size_t)ov[j];
        if (v > t) {
            out_ov[slot[v]] = (int32_t)v;
            out_idx[slot[v]] = (int64_t)j;
            slot[v] += 1;
        } else if (v == t && taken < (int64_t)k - above) {
            out_ov[above + taken] = (int32_t)v;
            out_idx[above + taken] = (int64_t)j;
            taken += 1;
        }
    }
}

typedef struct {
    const int32_t *ov;
    size_t nm, blocks, k;
    int64_t *scratch; /* 2 * (blocks + 1) per thread slot */
    int32_t *out_ov;
    int64_t *out_idx;
} select_job;

static void select_unit(void *ctx, size_t unit, int slot)
{
    select_job *j = ctx;
    int64_t *hist = j->scratch + (size_t)slot * 2 * (j->blocks + 1);
    select_k(j->ov + unit * j->nm, j->nm, j->blocks, j->k, hist, hist + j->blocks + 1,
             j->out_ov + unit * j->k, j->out_idx + unit * j->k);
}

int hdc_sparse_topk(const void *q, size_t nq, const void *m, size_t nm, size_t blocks,
                    int itemsize, size_t k, int32_t *out_overlap, int64_t *out_idx)
{
    int t = type_slot(itemsize);
    if (t < 0 || k == 0 || k > nm || blocks >= (size_t)1 << 30)
        return -1;
    if (nq == 0)
        return 0;
    hdc_sparse_eq_fn eq = hdc__sparse()->eq_rows[t];
    size_t chunk = TOPK_BLOCK_BYTES / (4 * nm);
    if (chunk < 1)
        chunk = 1;
    if (chunk > nq)
        chunk = nq;
    int nt = hdc_get_num_threads();
    int32_t *ov = malloc(chunk * nm * sizeof *ov);
    int64_t *scratch = malloc((size_t)(nt > 0 ? nt : 1) * 2 * (blocks + 1) * sizeof *scratch);
    if (!ov || !scratch) {
        free(ov);
        free(scratch);
        return -2;
    }
    size_t row_bytes = blocks * (size_t)itemsize;
    for (size_t q0 = 0; q0 < nq; q0 += chunk) {
        size_t n = nq - q0 < chunk ? nq - q0 : chunk;
        cdist_run(eq, (const char *)q + q0 * row_bytes, n, m, nm, blocks, itemsize, ov);
        select_job sj = {ov, nm, blocks, k, scratch, out_overlap + q0 * k, out_idx + q0 * k};
        int st = hdc__threads_for((double)n * (double)nm);
        hdc__parallel(n, st < nt ? st : nt, select_unit, &sj);
    }
    free(ov);
    free(scratch);
    return 0;
}
