/* search/search.c: hdc_cdist and hdc_topk, the ISA-independent drivers of hamming/<isa>.c.
 *
 * The stored rows are walked in tiles that stay in L2 while every query group of the calling
 * thread is scored against them (dist_multi register-blocks qb queries per memory load).
 * Threads split the queries when there are enough of them, else the stored rows; top-k keeps a
 * bounded max-heap per query (ordered by (distance, index)), so the result is the same total
 * order whatever the thread count or tile size, and extra memory is O(n_q * k) per thread.
 */
#include <stdint.h>
#include <stdlib.h>
#include "../internal.h"
#include "../topk_heap.h"

#define TILE_BYTES (192u * 1024u)
#define TILE_MAX_ROWS 2048u
#define QB_MAX 8

static size_t tile_rows(size_t w)
{
    size_t t = TILE_BYTES / ((w ? w : 1) * 8);
    if (t < 16)
        t = 16;
    if (t > TILE_MAX_ROWS)
        t = TILE_MAX_ROWS;
    return t;
}

/* ---- cdist --------------------------------------------------------------------------------- */

/* queries [qa, qz) x stored rows [ra, rz); buf holds a tile of qb-query rows (or is NULL:
 * then every query goes through dist_one, which needs no buffer) */
static void cdist_part(const hdc_ham_ops *ops, const uint64_t *a, size_t qa, size_t qz,
                       const uint64_t *b, size_t ra, size_t rz, size_t n_b, size_t w, uint32_t *out,
                       uint32_t *buf)
{
    size_t T = tile_rows(w), qb = (size_t)ops->qb;
    for (size_t r0 = ra; r0 < rz; r0 += T) {
        size_t nr = rz - r0 < T ? rz - r0 : T;
        size_t q = qa;
        for (; buf && q + qb <= qz; q += qb) {
            ops->dist_multi(a + q * w, b + r0 * w, nr, w, buf);
            for (size_t j = 0; j < qb; ++j) {
                uint32_t *o = out + (q + j) * n_b + r0;
                for (size_t r = 0; r < nr; ++r)
                    o[r] = buf[r * qb + j];
            }
        }
        for (; q < qz; ++q)
            ops->dist_one(a + q * w, b + r0 * w, nr, w, out + q * n_b + r0);
    }
}

typedef struct {
    const hdc_ham_ops *ops;
    const uint64_t *a, *b;
    uint32_t *out;
    size_t n_a, n_b, w, units;
    int by_query;
} cdist_job;

static void cdist_unit(void *ctx, size_t u, int slot)
{
    const cdist_job *j = ctx;
    size_t qb = (size_t)j->ops->qb, groups = j->n_a / qb;
    (void)slot;
    uint32_t *buf = j->n_a >= qb ? malloc(tile_rows(j->w) * qb * sizeof *buf) : NULL;
    if (j->by_query) {
        size_t qa = groups * u / j->units * qb;
        size_t qz = u == j->units - 1 ? j->n_a : groups * (u + 1) / j->units * qb;
        cdist_part(j->ops, j->a, qa, qz, j->b, 0, j->n_b, j->n_b, j->w, j->out, buf);
    } else {
        size_t r0 = j->n_b * u / j->units, r1 = j->n_b * (u + 1) / j->units;
        cdist_part(j->ops, j->a, 0, j->n_a, j->b, r0, r1, j->n_b, j->w, j->out, buf);
    }
    free(buf);
}

void hdc_cdist(const uint64_t *a, size_t n_a, const uint64_t *b, size_t n_b, size_t n_words,
               int32_t *out)
{
    if (n_a == 0 || n_b == 0 || n_words == 0)
        return;
    const hdc_ham_ops *ops = hdc__ham();
    int nt = hdc__threads_for((double)n_a * (double)n_b * (double)n_words / 4);
    size_t qb = (size_t)ops->qb;
    /* many queries: blocks of query groups (each scans all rows); few: row ranges. A few units
     * per thread, claimed dynamically, so a thread the OS delays does not hold the call up */
    int by_query = n_a >= qb * (size_t)nt * 2;
    size_t groups = n_a / qb;
    size_t units = by_query ? (size_t)nt * 2 : (size_t)nt * 8;
    if (by_query && units > groups)
        units = groups;
    if (!by_query && units > n_b)
        units = n_b;
    /* distances < 2^31 (hdc.h): the tables' uint32 results are the int32 values */
    cdist_job j = {ops, a, b, (uint32_t *)out, n_a, n_b, n_words, units, by_query};
    hdc__parallel(units, nt, cdist_unit, &j);
}

/* ---- top-k --------------------------------------------------------------------------------- */

/* one heap, rows r0 + r for r < rows, distances buf[r * stride] */
static void scan_strided(heap_t *h, size_t k, const uint32_t *buf, size_t stride, size_t rows,
                         size_t r0)
{
    uint32_t thr = threshold(h, k);
    for (size_t r = 0; r < rows; ++r) {
        if (buf[r * stride] < thr) {
            heap_offer(h, k, buf[r * stride], (int64_t)(r0 + r));
            thr = threshold(h, k);
        }
    }
}

static size_t visible(const int64_t *n_visible, size_t q, size_t n_m)
{
    if (!n_visible)
        return n_m;
    int64_t v = n_visible[q];
    return v <= 0 ? 0 : (uint64_t)v < n_m ? (size_t)v : n_m;
}

/* queries [qa, qz) against stored rows [ra, rz); heaps[q - qa]; buf holds T * qb distances */
static void topk_part(const hdc_ham_ops *ops, const uint64_t *q, size_t qa, size_t qz,
                      const uint64_t *m, size_t ra, size_t rz, size_t n_m, size_t w, size_t k,
                      const int64_t *n_visible, heap_t *heaps, uint32_t *buf)
{
    size_t T = tile_rows(w), qb = (size_t)ops->qb;
    for (size_t r0 = ra; r0 < rz; r0 += T) {
        size_t nr = rz - r0 < T ? rz - r0 : T;
        size_t g = qa;
        for (; g + qb <= qz; g += qb) {
            size_t most = 0, least = SIZE_MAX;
            for (size_t j = 0; j < qb; ++j) {
                size_t v = visible(n_visible, g + j, n_m);
                most = v > most ? v : most;
                least = v < least ? v : least;
            }
            if (most <= r0)
                continue;
            size_t rows = most - r0 < nr ? most - r0 : nr;
            ops->dist_multi(q + g * w, m + r0 * w, rows, w, buf);
            if (least >= r0 + rows) {
                scan_block(ops, heaps + (g - qa), qb, k, buf, rows, r0);
                continue;
            }
            /* the group's visible ranges end inside this tile: each query on its own */
            for (size_t j = 0; j < qb; ++j) {
                size_t v = visible(n_visible, g + j, n_m);
                if (v > r0)
                    scan_strided(&heaps[g + j - qa], k, buf + j, qb, v - r0 < rows ? v - r0 : rows, r0);
            }
        }
        for (; g < qz; ++g) {
            size_t v = visible(n_visible, g, n_m);
            if (v <= r0)
                continue;
            size_t rows = v - r0 < nr ? v - r0 : nr;
            ops->dist_one(q + g * w, m + r0 * w, rows, w, buf);
            scan_block(ops, &heaps[g - qa], 1, k, buf, rows, r0);
        }
    }
}

typedef struct {
    const hdc_ham_ops *ops;
    const uint64_t *q, *m;
    size_t n_q, n_m, w, k, T, units, groups;
    const int64_t *n_visible;
    heap_t *heaps;
    uint32_t *bufs;
    int by_query;
} topk_job;

static void topk_unit(void *ctx, size_t u, int slot)
{
    const topk_job *j = ctx;
    size_t qb = (size_t)j->ops->qb;
    uint32_t *buf = j->bufs + (size_t)slot * j->T * qb;
    if (j->by_query) {
        size_t qa = j->groups * u / j->units * qb;
        size_t qz = u == j->units - 1 ? j->n_q : j->groups * (u + 1) / j->units * qb;
        topk_part(j->ops, j->q, qa, qz, j->m, 0, j->n_m, j->n_m, j->w, j->k, j->n_visible,
                  j->heaps + qa, buf);
        for (size_t i = qa; i < qz; ++i)
            finish(&j->heaps[i], j->k);
    } else {
        size_t r0 = j->n_m * u / j->units, r1 = j->n_m * (u + 1) / j->units;
        topk_part(j->ops, j->q, 0, j->n_q, j->m, r0, r1, j->n_m, j->w, j->k, j->n_visible,
                  j->heaps + (size_t)slot * j->n_q, buf);
    }
}

int hdc_topk(const uint64_t *q, size_t n_q, const uint64_t *m, size_t n_m, size_t n_words,
             size_t k, const int64_t *n_visible, int32_t *out_dist, int64_t *out_idx)
{
    if (k == 0)
        return -1;
    if (n_q == 0)
        return 0;
    const hdc_ham_ops *ops = hdc__ham();
    size_t w = n_words;
    size_t T = tile_rows(w), qb = (size_t)ops->qb;
    int nt = hdc__threads_for((double)n_q * (double)n_m * (double)n_words / 4);
    int by_query = n_q >= qb * (size_t)nt * 2 || nt == 1;
    heap_t *heaps = malloc((size_t)nt * n_q * sizeof *heaps);
    uint32_t *bufs = malloc((size_t)nt * T * qb * sizeof *bufs);
    /* heaps of threads other than 0 when they split the stored rows */
    uint32_t *xd = NULL;
    int64_t *xi = NULL;
    if (!by_query && heaps && bufs) {
        xd = malloc((size_t)(nt - 1) * n_q * k * sizeof *xd);
        xi = malloc((size_t)(nt - 1) * n_q * k * sizeof *xi);
        if (!xd || !xi) {
            /* not enough memory for per-thread heaps: split the queries instead */
            free(xd);
            free(xi);
            xd = NULL;
            xi = NULL;
            by_query = 1;
        }
    }
    if (!heaps || !bufs) {
        free(heaps);
        free(bufs);
        return -1;
    }
    for (size_t i = 0; i < n_q; ++i)
        heaps[i] = (heap_t){(uint32_t *)out_dist + i * k, out_idx + i * k, 0};
    if (!by_query)
        for (int t = 1; t < nt; ++t)
            for (size_t i = 0; i < n_q; ++i) {
                size_t off = ((size_t)(t - 1) * n_q + i) * k;
                heaps[(size_t)t * n_q + i] = (heap_t){xd + off, xi + off, 0};
            }
    /* work units claimed dynamically, so a thread that the OS delays does not hold the others
     * up: blocks of query groups (each scans all rows), or row ranges (per-slot heaps; a slot's
     * ranges ascend, which the strict threshold in scan_block relies on) */
    size_t groups = n_q / qb;
    size_t units = by_query ? (nt > 1 ? (size_t)nt * 2 : 1) : (size_t)nt * 8;
    if (by_query && units > groups)
        units = groups ? groups : 1;
    if (!by_query && units > n_m)
        units = n_m ? n_m : 1;
    topk_job j = {ops, q, m, n_q, n_m, w, k, T, units, groups, n_visible, heaps, bufs, by_query};
    hdc__parallel(units, nt, topk_unit, &j);
    if (!by_query) {
        /* merge every slot's candidates into slot 0's heaps (the outputs), then sort */
        merge_job mj = {heaps, n_q, k, nt};
        hdc__parallel(n_q < (size_t)nt * 4 ? n_q : (size_t)nt * 4, n_q > 1 ? nt : 1, merge_unit, &mj);
    }
    free(xd);
    free(xi);
    free(heaps);
    free(bufs);
    return 0;
}
