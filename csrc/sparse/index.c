/* sparse/index.c: the inverted index of sparse block codes and exact top-k through it.
 *
 * Layout (built by hdc_sparse_index_build): the stored rows are cut into segments of `segment`
 * (<= 65536) rows. postings hold, key after key (key = block * block_size + index), the rows with
 * that index in that block in increasing order, each as its segment-local number (uint16); so a
 * key's list is contiguous, one part per segment. offsets[key * n_seg + s] is where the part of
 * segment s starts (the next entry is where it ends); the last entry is n * K.
 *
 * A query walks one segment at a time: it adds 1 to the counter of every row on its K lists (a
 * counter per row of the segment, uint8 below 256 blocks: 64 KiB for 65536 rows, which stays in
 * L2 while the segment's lists stream past), then reads the counters in row order, 256 at a time
 * with one vectorised compare against the least count that could still enter the bounded heap
 * (topk_heap.h, ordered by (blocks - count, row)), offers those, and clears the counters with one
 * memset. Rows no list holds have overlap 0; when fewer than k rows are counted, the smallest of
 * those fill the rest. The answer is the scan's, ties by smaller row included.
 *
 * Offsets and postings are checked as they are read (a list must lie inside its segment's
 * postings, a local row inside the segment), so a damaged index gives an error, never an access
 * out of bounds.
 */
#include <stdlib.h>
#include <string.h>
#include "../internal.h"
#include "../topk_heap.h"

#define MAX_SEGMENT 65536
/* counters checked for candidates at a time (one vectorised compare, then a closer look) */
#define SCAN_CHUNK 256
/* lists ahead whose first postings are prefetched */
#define PREFETCH_LISTS 8

static int type_slot(int itemsize)
{
    return itemsize == 1 ? 0 : itemsize == 2 ? 1 : itemsize == 4 ? 2 : -1;
}

static inline uint64_t index_at(const void *x, int t, size_t i)
{
    return t == 0 ? ((const uint8_t *)x)[i] : t == 1 ? ((const uint16_t *)x)[i] : ((const uint32_t *)x)[i];
}

/* ---- build ---------------------------------------------------------------------------------- */

typedef struct {
    const void *x;
    int t, phase;
    size_t n, blocks, segment, n_seg;
    uint64_t block_size;
    int64_t *offsets;
    uint16_t *postings;
    int bad; /* set (never cleared) by a unit that met an index >= block_size, or failed to allocate */
} build_job;

/* one segment. Phase 0: count its rows per key into column s of the offsets table (turned into
 * starts by one prefix sum between the phases); phase 1: place its rows at those starts. */
static void build_unit(void *ctx, size_t s, int slot)
{
    (void)slot;
    build_job *j = ctx;
    size_t keys = j->blocks * (size_t)j->block_size, n_seg = j->n_seg;
    size_t r0 = s * j->segment, r1 = r0 + j->segment < j->n ? r0 + j->segment : j->n;
    int64_t *cur = calloc(keys ? keys : 1, sizeof *cur);
    if (!cur) {
        __atomic_store_n(&j->bad, -2, __ATOMIC_RELAXED);
        return;
    }
    if (j->phase == 0) {
        for (size_t r = r0; r < r1; ++r)
            for (size_t b = 0; b < j->blocks; ++b) {
                uint64_t v = index_at(j->x, j->t, r * j->blocks + b);
                if (v >= j->block_size) {
                    __atomic_store_n(&j->bad, -1, __ATOMIC_RELAXED);
                    free(cur);
                    return;
                }
                cur[b * j->block_size + v] += 1;
            }
        for (size_t key = 0; key < keys; ++key)
            j->offsets[key * n_seg + s] = cur[key];
    } else {
        for (size_t key = 0; key < keys; ++key)
            cur[key] = j->offsets[key * n_seg + s];
        for (size_t r = r0; r < r1; ++r)
            for (size_t b = 0; b < j->blocks; ++b) {
                size_t key = b * j->block_size + (size_t)index_at(j->x, j->t, r * j->blocks + b);
                j->postings[cur[key]++] = (uint16_t)(r - r0);
            }
    }
    free(cur);
}

int hdc_sparse_index_build(const void *x, size_t n, size_t blocks, int itemsize, uint64_t block_size,
                           size_t segment, int64_t *offsets, uint16_t *postings)
{
    int t = type_slot(itemsize);
    if (t < 0 || segment == 0 || segment > MAX_SEGMENT || block_size == 0 ||
        (blocks && block_size > SIZE_MAX / 8 / blocks))
        return -1;
    size_t n_seg = (n + segment - 1) / segment, entries = n_seg * blocks * (size_t)block_size;
    build_job j = {x, t, 0, n, blocks, segment, n_seg, block_size, offsets, postings, 0};
    int nt = hdc__threads_for((double)n * (double)blocks * 4);
    hdc__parallel(n_seg, nt, build_unit, &j);
    if (j.bad)
        return j.bad;
    int64_t pos = 0;
    for (size_t e = 0; e < entries; ++e) {
        int64_t c = offsets[e];
        offsets[e] = pos;
        pos += c;
    }
    offsets[entries] = pos;
    j.phase = 1;
    hdc__parallel(n_seg, nt, build_unit, &j);
    return j.bad;
}

/* ---- top-k ---------------------------------------------------------------------------------- */

typedef struct {
    const void *q;
    int t, by_query;
    size_t nq, blocks, segment, n, n_seg, k, units;
    uint64_t block_size;
    const int64_t *offsets;
    const uint16_t *postings;
    heap_t *heaps;
    void *counters; /* per thread slot: segment counters of cbytes each */
    size_t cbytes;
    int bad;
} itopk_job;

/* one query against segments [s0, s1) into heap h; 0, or -1 for a damaged index. CT: the counter
 * type (uint8_t when blocks < 256, uint16_t when blocks < 65536, else uint32_t) */
#define DEFINE_QUERY_SEGMENTS(name, CT)                                                           \
    static int name(const itopk_job *j, size_t qi, size_t s0, size_t s1, heap_t *h, CT *cnt)      \
    {                                                                                              \
        size_t K = j->blocks, L = (size_t)j->block_size, n_seg = j->n_seg;                         \
        const int64_t *off = j->offsets, total = (int64_t)(j->n * K);                              \
        for (size_t s = s0; s < s1; ++s) {                                                         \
            size_t r0 = s * j->segment, rows = j->n - r0 < j->segment ? j->n - r0 : j->segment;    \
            for (size_t b = 0; b < K; ++b) {                                                       \
                uint64_t v = index_at(j->q, j->t, qi * K + b);                                     \
                if (v >= L)                                                                        \
                    return -1;                                                                     \
                size_t e = (b * L + v) * n_seg + s;                                                \
                int64_t p0 = off[e], p1 = off[e + 1];                                              \
                if (p0 < 0 || p1 < p0 || p1 > total)                                               \
                    return -1;                                                                     \
                /* the lists start at random places: fetch the heads of later ones early */        \
                if (b + PREFETCH_LISTS < K) {                                                      \
                    size_t ahead = (b + PREFETCH_LISTS) * L +                                      \
                                   index_at(j->q, j->t, qi * K + b + PREFETCH_LISTS) % L;          \
                    int64_t pa = off[ahead * n_seg + s];                                           \
                    if (pa >= 0 && pa < total)                                                     \
                        __builtin_prefetch(j->postings + pa);                                      \
                }                                                                                  \
                for (int64_t p = p0; p < p1; ++p) {                                                \
                    size_t r = j->postings[p];                                                     \
                    if (r >= rows)                                                                 \
                        return -1;                                                                 \
                    cnt[r] += 1;                                                                   \
                }                                                                                  \
            }                                                                                      \
            /* rows in increasing order: only counts that can enter the heap are looked at */      \
            for (size_t c0 = 0; c0 < rows; c0 += SCAN_CHUNK) {                                     \
                size_t c1 = rows - c0 < SCAN_CHUNK ? rows : c0 + SCAN_CHUNK;                       \
                uint32_t thr = threshold(h, j->k);                                                 \
                CT least = (CT)(thr >= K ? 1 : K - thr);                                           \
                int any = 0;                                                                       \
                for (size_t r = c0; r < c1; ++r)                                                   \
                    any |= cnt[r] >= least;                                                        \
                if (!any)                                                                          \
                    continue;                                                                      \
                for (size_t r = c0; r < c1; ++r)                                                   \
                    if (cnt[r] >= least) {                                                         \
                        heap_offer(h, j->k, (uint32_t)(K - cnt[r]), (int64_t)(r0 + r));            \
                        thr = threshold(h, j->k);                                                  \
                        least = (CT)(thr >= K ? 1 : K - thr);                                      \
                    }                                                                              \
            }                                                                                      \
            memset(cnt, 0, rows * sizeof *cnt);                                                    \
        }                                                                                          \
        return 0;                                                                                  \
    }
DEFINE_QUERY_SEGMENTS(query_segments_u8, uint8_t)
DEFINE_QUERY_SEGMENTS(query_segments_u16, uint16_t)
DEFINE_QUERY_SEGMENTS(query_segments_u32, uint32_t)

static size_t counter_bytes(size_t blocks)
{
    return blocks < 256 ? 1 : blocks < 65536 ? 2 : 4;
}

static int query_segments(const itopk_job *j, size_t qi, size_t s0, size_t s1, heap_t *h, void *cnt)
{
    switch (counter_bytes(j->blocks)) {
    case 1:
        return query_segments_u8(j, qi, s0, s1, h, cnt);
    case 2:
        return query_segments_u16(j, qi, s0, s1, h, cnt);
    default:
        return query_segments_u32(j, qi, s0, s1, h, cnt);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* a heap that is not full holds every row with overlap >= 1: the smallest other rows (overlap 0,
 * distance blocks) fill it, then it is sorted; -2 when the scratch cannot be allocated */
static int fill_and_finish(heap_t *h, size_t k, size_t blocks)
{
    if (h->n < k) {
        size_t have = h->n;
        int64_t *taken = malloc((have ? have : 1) * sizeof *taken);
        if (!taken)
            return -2;
        memcpy(taken, h->i, have * sizeof *taken);
        qsort(taken, have, sizeof *taken, cmp_i64);
        size_t next = 0;
        for (int64_t r = 0; h->n < k; ++r) {
            if (next < have && taken[next] == r) {
                ++next;
                continue;
            }
            heap_offer(h, k, (uint32_t)blocks, r);
        }
        free(taken);
    }
    finish(h, k);
    return 0;
}

static void itopk_unit(void *ctx, size_t u, int slot)
{
    itopk_job *j = ctx;
    void *cnt = (char *)j->counters + (size_t)slot * j->cbytes;
    int rc = 0;
    if (j->by_query) {
        size_t qa = j->nq * u / j->units, qz = j->nq * (u + 1) / j->units;
        for (size_t i = qa; i < qz && rc == 0; ++i) {
            rc = query_segments(j, i, 0, j->n_seg, &j->heaps[i], cnt);
            if (rc == 0)
                rc = fill_and_finish(&j->heaps[i], j->k, j->blocks);
        }
    } else {
        size_t s0 = j->n_seg * u / j->units, s1 = j->n_seg * (u + 1) / j->units;
        for (size_t i = 0; i < j->nq && rc == 0; ++i)
            rc = query_segments(j, i, s0, s1, &j->heaps[(size_t)slot * j->nq + i], cnt);
    }
    if (rc)
        __atomic_store_n(&j->bad, rc, __ATOMIC_RELAXED);
}

int hdc_sparse_index_topk(const void *q, size_t nq, size_t blocks, int itemsize,
                          uint64_t block_size, size_t segment, const int64_t *offsets,
                          const uint16_t *postings, size_t n, size_t k, int32_t *out_overlap,
                          int64_t *out_idx)
{
    int t = type_slot(itemsize);
    if (t < 0 || segment == 0 || segment > MAX_SEGMENT || block_size == 0 || k == 0 || k > n ||
        blocks >= (size_t)1 << 30 || block_size > SIZE_MAX / 8 / (blocks ? blocks : 1))
        return -1;
    if (nq == 0)
        return 0;
    size_t n_seg = (n + segment - 1) / segment;
    /* work: about the postings a query reads, twice */
    double work = (double)nq * (double)blocks * ((double)n / (double)block_size + 1) * 8;
    int nt = hdc__threads_for(work);
    int by_query = nq >= (size_t)nt * 2 || nt == 1 || n_seg == 1;
    size_t units = by_query ? (nq < (size_t)nt * 4 ? nq : (size_t)nt * 4)
                            : (n_seg < (size_t)nt * 4 ? n_seg : (size_t)nt * 4);
    size_t cbytes = (segment * counter_bytes(blocks) + 63) / 64 * 64;
    heap_t *heaps = malloc((size_t)nt * nq * sizeof *heaps);
    void *counters = calloc((size_t)nt, cbytes);
    uint32_t *xd = NULL;
    int64_t *xi = NULL;
    if (!by_query) {
        xd = malloc((size_t)(nt - 1) * nq * k * sizeof *xd);
        xi = malloc((size_t)(nt - 1) * nq * k * sizeof *xi);
    }
    int rc = 0;
    if (!heaps || !counters || (!by_query && (!xd || !xi)))
        rc = -2;
    if (rc == 0) {
        for (size_t i = 0; i < nq; ++i)
            heaps[i] = (heap_t){(uint32_t *)out_overlap + i * k, out_idx + i * k, 0};
        if (!by_query)
            for (int s = 1; s < nt; ++s)
                for (size_t i = 0; i < nq; ++i) {
                    size_t off = ((size_t)(s - 1) * nq + i) * k;
                    heaps[(size_t)s * nq + i] = (heap_t){xd + off, xi + off, 0};
                }
        itopk_job j = {q, t, by_query, nq, blocks, segment, n, n_seg, k, units, block_size,
                       offsets, postings, heaps, counters, cbytes, 0};
        hdc__parallel(units, nt, itopk_unit, &j);
        rc = j.bad;
        if (rc == 0 && !by_query) {
            /* every slot's heap of query i into slot 0's, then fill and sort */
            for (size_t i = 0; i < nq; ++i) {
                for (int s = 1; s < nt; ++s) {
                    heap_t *o = &heaps[(size_t)s * nq + i];
                    for (size_t e = 0; e < o->n; ++e)
                        heap_offer(&heaps[i], k, o->d[e], o->i[e]);
                }
                if (rc == 0)
                    rc = fill_and_finish(&heaps[i], k, blocks);
            }
        }
        if (rc == 0)
            for (size_t e = 0; e < nq * k; ++e)
                out_overlap[e] = (int32_t)(blocks - ((uint32_t *)out_overlap)[e]);
    }
    free(heaps);
    free(counters);
    free(xd);
    free(xi);
    return rc;
}
