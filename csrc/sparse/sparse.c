/* sparse/sparse.c: overlap, all-pairs overlap and top-k by overlap of sparse block codes (one
 * index per block; uint8 / uint16 / uint32 indices). The equal-index count of one query against
 * a run of stored rows, and of a group of queries against a transposed tile of stored rows
 * (query blocking), come from the active path's table (hdc_sparse_ops); everything else is
 * written once here. Top-k keeps bounded heaps per query (topk_heap.h) fed through a distance
 * threshold, as the dense top-k does, so no (queries, rows) block is ever materialised. Indices are only compared, never used as addresses, so no value a caller
 * passes can make a kernel read or write out of bounds. */
#include <stdlib.h>
#include "../internal.h"
#include "../topk_heap.h"

/* stored rows per tile: the tile stays in L1 while every query of a chunk passes over it */
#define TILE_BYTES (16 * 1024)

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

/* at least this many queries per work unit: compared against transposed tiles (eq_tile, query
 * blocking), else row by row (eq_rows) */
#define TILE_MIN_QUERIES 4
/* queries per pass over the stored rows in one work unit (bounds the distance buffer) */
#define QUERY_CHUNK 256
/* stored rows per eq_rows call on the row-by-row path */
#define ROW_TILE 256

/* rows [r0, r0 + nr) x blocks [b0, b0 + nb) of m transposed into tile (HDC_SPARSE_TILE columns;
 * columns from nr on keep earlier values, whose distances are never read) */
#define DEFINE_TRANSPOSE(name, type)                                                               \
    static void name(const void *mv, size_t blocks, size_t r0, size_t nr, size_t b0, size_t nb,   \
                     void *tile)                                                                   \
    {                                                                                              \
        const type *m = (const type *)mv + r0 * blocks + b0;                                       \
        type *t = (type *)tile;                                                                    \
        for (size_t j = 0; j < nr; ++j)                                                            \
            for (size_t b = 0; b < nb; ++b)                                                        \
                t[b * HDC_SPARSE_TILE + j] = m[j * blocks + b];                                    \
    }
DEFINE_TRANSPOSE(transpose_u8, uint8_t)
DEFINE_TRANSPOSE(transpose_u16, uint16_t)
DEFINE_TRANSPOSE(transpose_u32, uint32_t)
typedef void (*transpose_fn)(const void *, size_t, size_t, size_t, size_t, size_t, void *);
static const transpose_fn TRANSPOSE[3] = {transpose_u8, transpose_u16, transpose_u32};

typedef struct {
    const hdc_sparse_ops *ops;
    int t, by_query;
    const char *q, *m;
    size_t nq, nm, blocks, row_bytes, k, units, groups;
    heap_t *heaps;
    uint32_t *dist; /* per thread slot: QUERY_CHUNK * HDC_SPARSE_TILE */
    void *tiles;    /* per thread slot: HDC_SPARSE_TILE_BLOCKS * HDC_SPARSE_TILE * 4 bytes */
} topk_job;

#define TILE_SLOT_BYTES ((size_t)HDC_SPARSE_TILE_BLOCKS * HDC_SPARSE_TILE * 4)

/* queries [qa, qz) against stored rows [ra, rz); heaps[i - qa] for query i; the heaps hold
 * (blocks - overlap, row), so the heap order is highest overlap first, ties by smaller row */
static void topk_part(const topk_job *j, size_t qa, size_t qz, size_t ra, size_t rz,
                      heap_t *heaps, uint32_t *dist, void *tile)
{
    const hdc_ham_ops *ham = hdc__ham();
    const uint32_t blocks = (uint32_t)j->blocks;
    if (qz - qa >= TILE_MIN_QUERIES) {
        hdc_sparse_tile_fn eq = j->ops->eq_tile[j->t];
        for (size_t c0 = qa; c0 < qz; c0 += QUERY_CHUNK) {
            size_t nc = qz - c0 < QUERY_CHUNK ? qz - c0 : QUERY_CHUNK;
            for (size_t r0 = ra; r0 < rz; r0 += HDC_SPARSE_TILE) {
                size_t nr = rz - r0 < HDC_SPARSE_TILE ? rz - r0 : HDC_SPARSE_TILE;
                for (size_t e = 0; e < nc * HDC_SPARSE_TILE; ++e)
                    dist[e] = blocks;
                for (size_t b0 = 0; b0 < j->blocks; b0 += HDC_SPARSE_TILE_BLOCKS) {
                    size_t nb = j->blocks - b0;
                    nb = nb < HDC_SPARSE_TILE_BLOCKS ? nb : HDC_SPARSE_TILE_BLOCKS;
                    TRANSPOSE[j->t](j->m, j->blocks, r0, nr, b0, nb, tile);
                    eq(j->q + c0 * j->row_bytes + b0 * (j->row_bytes / j->blocks), j->blocks, nc,
                       tile, nb, dist);
                }
                for (size_t i = 0; i < nc; ++i)
                    scan_block(ham, &heaps[c0 + i - qa], 1, j->k, dist + i * HDC_SPARSE_TILE, nr, r0);
            }
        }
        return;
    }
    hdc_sparse_eq_fn eq = j->ops->eq_rows[j->t];
    int32_t *ov = (int32_t *)dist;
    for (size_t r0 = ra; r0 < rz; r0 += ROW_TILE) {
        size_t nr = rz - r0 < ROW_TILE ? rz - r0 : ROW_TILE;
        for (size_t i = qa; i < qz; ++i) {
            eq(j->q + i * j->row_bytes, j->m + r0 * j->row_bytes, nr, j->blocks, ov);
            for (size_t r = 0; r < nr; ++r)
                dist[r] = blocks - (uint32_t)ov[r];
            scan_block(ham, &heaps[i - qa], 1, j->k, dist, nr, r0);
        }
    }
}

static void topk_unit(void *ctx, size_t u, int slot)
{
    const topk_job *j = ctx;
    uint32_t *dist = j->dist + (size_t)slot * QUERY_CHUNK * HDC_SPARSE_TILE;
    void *tile = (char *)j->tiles + (size_t)slot * TILE_SLOT_BYTES;
    if (j->by_query) {
        /* query ranges start at multiples of 8, so eq_tile's register groups stay full */
        size_t qa = j->groups * u / j->units * 8;
        size_t qz = u == j->units - 1 ? j->nq : j->groups * (u + 1) / j->units * 8;
        topk_part(j, qa, qz, 0, j->nm, j->heaps + qa, dist, tile);
        for (size_t i = qa; i < qz; ++i)
            finish(&j->heaps[i], j->k);
    } else {
        size_t r0 = j->nm * u / j->units, r1 = j->nm * (u + 1) / j->units;
        topk_part(j, 0, j->nq, r0, r1, j->heaps + (size_t)slot * j->nq, dist, tile);
    }
}

int hdc_sparse_topk(const void *q, size_t nq, const void *m, size_t nm, size_t blocks,
                    int itemsize, size_t k, int32_t *out_overlap, int64_t *out_idx)
{
    int t = type_slot(itemsize);
    if (t < 0 || k == 0 || k > nm || blocks >= (size_t)1 << 30)
        return -1;
    if (nq == 0)
        return 0;
    size_t row_bytes = blocks * (size_t)itemsize;
    int nt = hdc__threads_for((double)nq * (double)nm * (double)row_bytes / 8);
    /* many queries: threads split the queries; few: the stored rows, each thread keeping its own
     * heaps, merged at the end. Units are claimed dynamically (a delayed thread holds no one up) */
    int by_query = nq >= (size_t)TILE_MIN_QUERIES * 2 * (size_t)nt || nt == 1;
    size_t groups = nq / 8, units;
    if (by_query) {
        units = groups < (size_t)nt * 2 ? groups : (size_t)nt * 2;
        units = units ? units : 1;
    } else {
        units = nm < (size_t)nt * 8 ? nm : (size_t)nt * 8;
    }
    heap_t *heaps = malloc((size_t)nt * nq * sizeof *heaps);
    uint32_t *dist = malloc((size_t)nt * QUERY_CHUNK * HDC_SPARSE_TILE * sizeof *dist);
    void *tiles = calloc((size_t)nt, TILE_SLOT_BYTES);
    uint32_t *xd = NULL;
    int64_t *xi = NULL;
    if (!by_query) {
        xd = malloc((size_t)(nt - 1) * nq * k * sizeof *xd);
        xi = malloc((size_t)(nt - 1) * nq * k * sizeof *xi);
    }
    if (!heaps || !dist || !tiles || (!by_query && (!xd || !xi))) {
        free(heaps);
        free(dist);
        free(tiles);
        free(xd);
        free(xi);
        return -2;
    }
    /* slot 0's heaps live in the outputs (distances blocks - overlap, turned into overlaps last) */
    for (size_t i = 0; i < nq; ++i)
        heaps[i] = (heap_t){(uint32_t *)out_overlap + i * k, out_idx + i * k, 0};
    if (!by_query)
        for (int s = 1; s < nt; ++s)
            for (size_t i = 0; i < nq; ++i) {
                size_t off = ((size_t)(s - 1) * nq + i) * k;
                heaps[(size_t)s * nq + i] = (heap_t){xd + off, xi + off, 0};
            }
    topk_job j = {hdc__sparse(), t, by_query, q, m, nq, nm, blocks, row_bytes, k, units, groups,
                  heaps, dist, tiles};
    hdc__parallel(units, nt, topk_unit, &j);
    if (!by_query) {
        merge_job mj = {heaps, nq, k, nt};
        hdc__parallel(nq < (size_t)nt * 4 ? nq : (size_t)nt * 4, nq > 1 ? nt : 1, merge_unit, &mj);
    }
    for (size_t e = 0; e < nq * k; ++e)
        out_overlap[e] = (int32_t)(blocks - ((uint32_t *)out_overlap)[e]);
    free(heaps);
    free(dist);
    free(tiles);
    free(xd);
    free(xi);
    return 0;
}
