/* topk_heap.h: bounded max-heaps of (distance, index) for top-k, shared by the dense
 * (search/search.c) and sparse (sparse/sparse.c) top-k drivers. A heap is ordered by
 * (distance, index), worst at the root, so the k kept are the same total order whatever the
 * order rows are offered in, the thread count or the tile size. */
#ifndef HDC_TOPK_HEAP_H
#define HDC_TOPK_HEAP_H
#include <stdint.h>
#include "internal.h"

/* a max-heap of (distance, index) pairs, worst at the root */
typedef struct {
    uint32_t *d;
    int64_t *i;
    size_t n;
} heap_t;

static inline int worse(uint32_t da, int64_t ia, uint32_t db, int64_t ib)
{
    return da > db || (da == db && ia > ib);
}

static inline void sift_down(heap_t *h, size_t k, size_t pos)
{
    uint32_t d = h->d[pos];
    int64_t i = h->i[pos];
    for (;;) {
        size_t c = 2 * pos + 1;
        if (c >= k)
            break;
        if (c + 1 < k && worse(h->d[c + 1], h->i[c + 1], h->d[c], h->i[c]))
            ++c;
        if (!worse(h->d[c], h->i[c], d, i))
            break;
        h->d[pos] = h->d[c];
        h->i[pos] = h->i[c];
        pos = c;
    }
    h->d[pos] = d;
    h->i[pos] = i;
}

/* Up to this capacity a heap is kept sorted, worst first (a sorted array is a valid max-heap):
 * an offer shifts the entries it passes, one well-predicted loop, where a sift takes a hard to
 * predict branch per level. Top-k of a shard (rows split over several searches) makes twice the
 * offers of one search over all rows; measured on Emerald Rapids, 1,024 queries x 1,000 rows,
 * k = 10: see docs/distributed.md. */
#define HEAP_SORTED_MAX_K 16

/* offer (d, i); k is the heap's capacity */
static inline void heap_offer(heap_t *h, size_t k, uint32_t d, int64_t i)
{
    if (k <= HEAP_SORTED_MAX_K) {
        size_t p;
        if (h->n < k) {         /* insert: entries better than (d, i) move one place up */
            p = h->n++;
            for (; p > 0 && worse(d, i, h->d[p - 1], h->i[p - 1]); --p) {
                h->d[p] = h->d[p - 1];
                h->i[p] = h->i[p - 1];
            }
        } else if (worse(h->d[0], h->i[0], d, i)) {  /* drop the worst: entries worse move down */
            for (p = 0; p + 1 < k && worse(h->d[p + 1], h->i[p + 1], d, i); ++p) {
                h->d[p] = h->d[p + 1];
                h->i[p] = h->i[p + 1];
            }
        } else {
            return;
        }
        h->d[p] = d;
        h->i[p] = i;
        return;
    }
    if (h->n < k) {
        size_t pos = h->n++;
        while (pos > 0) {
            size_t parent = (pos - 1) / 2;
            if (!worse(d, i, h->d[parent], h->i[parent]))
                break;
            h->d[pos] = h->d[parent];
            h->i[pos] = h->i[parent];
            pos = parent;
        }
        h->d[pos] = d;
        h->i[pos] = i;
    } else if (worse(h->d[0], h->i[0], d, i)) {
        h->d[0] = d;
        h->i[0] = i;
        sift_down(h, k, 0);
    }
}

static inline uint32_t threshold(const heap_t *h, size_t k)
{
    return h->n < k ? 0xFFFFFFFFu : h->d[0];
}

/* offer rows r0 + r (r < rows) to the qb heaps; distances buf[r * qb + j] for heap j. Only
 * candidates below a heap's threshold are visited (find_hit scans 8-16 at a time). Indices
 * ascend, so a full heap only takes a strictly closer row, which replaces the root. After a hit
 * the rest of its 16-entry window is checked here, not by another find_hit: that call reloads
 * the thresholds just stored (a stalled store-to-load forward) and costs more than the few
 * compares, and hits come in runs while the heaps fill (a shard's search, over fewer rows,
 * spends a larger share of its rows there). */
static inline void scan_block(const hdc_ham_ops *ops, heap_t *heaps, size_t qb, size_t k,
                       const uint32_t *buf, size_t rows, size_t r0)
{
    uint32_t thr[16], open[16]; /* open: a heap's threshold while it is not full */
    for (size_t l = 0; l < 16; ++l)
        open[l] = 0xFFFFFFFFu;
    int empty = rows >= k;
    for (size_t j = 0; j < qb; ++j)
        empty &= heaps[j].n == 0;
    if (empty) {
        /* The first block a heap sees: split its rows into k groups; the largest group minimum
         * bounds the k-th smallest distance of the block (k distinct rows are at or below it), so
         * a row above it can never be kept. Offering only the rest skips about a third of the
         * offers of a search (most come while a heap fills): 61 -> 43 per query for 2,000 random
         * rows, k = 10, and 109 -> 74 for two searches of 1,000 (a memory in 2 shards). */
        for (size_t j = 0; j < qb; ++j)
            open[j] = 0;
        for (size_t g = 0; g < k; ++g) {
            uint32_t least[16];
            for (size_t j = 0; j < qb; ++j)
                least[j] = 0xFFFFFFFFu;
            for (size_t r = rows * g / k; r < rows * (g + 1) / k; ++r)
                for (size_t j = 0; j < qb; ++j)
                    least[j] = buf[r * qb + j] < least[j] ? buf[r * qb + j] : least[j];
            for (size_t j = 0; j < qb; ++j)
                open[j] = least[j] > open[j] ? least[j] : open[j];
        }
        for (size_t l = 0; l < 16; ++l)  /* distances < 2^31: no overflow */
            open[l] = l < qb ? open[l] + 1 : open[l % qb];
    }
    for (size_t l = 0; l < 16; ++l)
        thr[l] = heaps[l % qb].n < k ? open[l] : threshold(&heaps[l % qb], k);
    size_t n = rows * qb;
    size_t i = ops->find_hit(buf, 0, n, thr);
    while (i < n) {
        size_t r = i / qb, j = i % qb;
        heap_offer(&heaps[j], k, buf[i], (int64_t)(r0 + r));
        uint32_t t = heaps[j].n < k ? open[j] : threshold(&heaps[j], k);
        for (size_t l = j; l < 16; l += qb)
            thr[l] = t;
        size_t end = (i | 15) + 1 < n ? (i | 15) + 1 : n;
        for (++i; i < end && buf[i] >= thr[i & 15]; ++i) {
        }
        if (i == end)
            i = ops->find_hit(buf, end, n, thr);
    }
}

/* sort a heap ascending in place (heap sort) and pad the unused slots (INT32_MAX, -1) */
static inline void finish(heap_t *h, size_t k)
{
    size_t n = h->n;
    for (size_t end = n; end > 1; --end) {
        uint32_t d = h->d[0];
        int64_t i = h->i[0];
        h->d[0] = h->d[end - 1];
        h->i[0] = h->i[end - 1];
        h->d[end - 1] = d;
        h->i[end - 1] = i;
        sift_down(h, end - 1, 0);
    }
    for (size_t s = n; s < k; ++s) {
        h->d[s] = (uint32_t)INT32_MAX;
        h->i[s] = -1;
    }
}

typedef struct {
    heap_t *heaps;
    size_t n_q, k;
    int nt;
} merge_job;

static inline void merge_unit(void *ctx, size_t u, int slot)
{
    const merge_job *j = ctx;
    size_t units = j->n_q < (size_t)j->nt * 4 ? j->n_q : (size_t)j->nt * 4;
    size_t i0 = j->n_q * u / units, i1 = j->n_q * (u + 1) / units;
    (void)slot;
    for (size_t i = i0; i < i1; ++i) {
        for (int s = 1; s < j->nt; ++s) {
            heap_t *o = &j->heaps[(size_t)s * j->n_q + i];
            for (size_t e = 0; e < o->n; ++e)
                heap_offer(&j->heaps[i], j->k, o->d[e], o->i[e]);
        }
        finish(&j->heaps[i], j->k);
    }
}

#endif
