/* kwta_sparse.c: event-driven k-WTA attention on sparse block codes (hdc_kwta_sparse).
 *
 * Per head, an inverted index lists for every block b the keys grouped by their index in that
 * block, each group (bucket) in increasing key order: a counting sort when block_size is small
 * next to the number of keys (a bucket is then found by its offset), else a sort of
 * (index << 32 | key) pairs (a bucket is then found by binary search). Because buckets ascend,
 * the prefix of a bucket below a causal query's visible count is exactly the bucket of an index
 * built incrementally from the keys before it. A query visits only its own bucket in each block,
 * counting overlaps per key in a zeroed per-thread array and listing the keys it touched; only
 * those are ranked (insertion into k slots keyed by (n_blocks - overlap) << 32 | key, smaller
 * is better) and reset. Work per query: O(B + overlaps + touched x k in the worst case), never
 * a scan of the keys. Memory: 4 bytes per key and block (plus offsets), O(n_k + k) per thread.
 *
 * Units are blocks of queries of one head, claimed dynamically. Each query's result depends only
 * on its own winners accumulated in a fixed order: the same for every thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "kwta_sparse/kwta_sparse.h"

#define QBLOCK 32   /* queries per work unit */

typedef struct {
    const uint32_t *q, *keys;
    size_t n_heads, n_q, n_k, n_b, k, width, blocks;
    uint64_t bs;
    int small;              /* counting-sort index: offsets per (head, block, index) */
    uint32_t *entries;      /* (H, B, n_k) key numbers, bucket by bucket */
    uint32_t *offsets;      /* small: (H, B, bs + 1) bucket starts */
    uint32_t *vals;         /* large: (H, B, n_k) the sorted indices, for binary search */
    const int64_t *n_visible;
    int mode;
    const void *v;
    const double *table;    /* exp(-gap * inv_temp), gap = 0 .. n_b */
    int32_t *out_score;
    void *out;
    int64_t *out_idx;
    char *scratch;
    size_t scratch_bytes;
    uint64_t *touched;      /* per thread slot */
} sjob;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* index of (head, block) t: small: counting sort; large: sorted (index, key) pairs */
static void build_unit(void *ctx, size_t t, int slot)
{
    sjob *j = ctx;
    size_t h = t / j->n_b, b = t % j->n_b, n_k = j->n_k;
    const uint32_t *col = j->keys + h * n_k * j->n_b + b;
    uint32_t *ent = j->entries + t * n_k;
    if (j->small) {
        uint32_t *off = j->offsets + t * (j->bs + 1);
        memset(off, 0, (j->bs + 1) * sizeof *off);
        for (size_t r = 0; r < n_k; ++r)
            off[col[r * j->n_b] + 1]++;
        for (uint64_t x = 0; x < j->bs; ++x)
            off[x + 1] += off[x];
        /* place keys in increasing order; off[x] runs ahead, then is restored */
        for (size_t r = 0; r < n_k; ++r)
            ent[off[col[r * j->n_b]]++] = (uint32_t)r;
        for (uint64_t x = j->bs; x > 0; --x)
            off[x] = off[x - 1];
        off[0] = 0;
    } else {
        uint64_t *pairs = (uint64_t *)(j->scratch + (size_t)slot * j->scratch_bytes);
        for (size_t r = 0; r < n_k; ++r)
            pairs[r] = (uint64_t)col[r * j->n_b] << 32 | r;
        qsort(pairs, n_k, sizeof *pairs, cmp_u64);
        uint32_t *vals = j->vals + t * n_k;
        for (size_t r = 0; r < n_k; ++r) {
            ent[r] = (uint32_t)pairs[r];
            vals[r] = (uint32_t)(pairs[r] >> 32);
        }
    }
}

/* first position in vals[0..n) whose value is >= x (> x when after) */
static size_t bound(const uint32_t *vals, size_t n, uint32_t x, int after)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (vals[mid] < x || (after && vals[mid] == x))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

typedef struct {
    uint32_t *counts, *list;
    uint64_t *win;
    double *acc;
    uint32_t *bits;
} sscratch;

static sscratch scratch_of(const sjob *j, int slot)
{
    char *p = j->scratch + (size_t)slot * j->scratch_bytes;
    sscratch s;
    s.counts = (uint32_t *)p;
    s.list = s.counts + j->n_k;
    s.win = (uint64_t *)(s.list + j->n_k + (j->n_k & 1));
    s.acc = (double *)(s.win + j->k);
    s.bits = (uint32_t *)(s.acc + (j->mode == 1 || j->mode == 2 ? j->width : 0));
    return s;
}

static size_t scratch_bytes(const sjob *j)
{
    size_t b = (2 * j->n_k + 1) * sizeof(uint32_t) + j->k * sizeof(uint64_t)
               + j->width * sizeof(double) + 64 * sizeof(uint32_t);
    if (!j->small && j->n_k * sizeof(uint64_t) > b)
        b = j->n_k * sizeof(uint64_t);   /* the build's pairs reuse the same slot */
    return (b + 63) / 64 * 64;
}

/* winners of query row qr of head h into s->win[0..return) */
static size_t query(const sjob *j, size_t h, const uint32_t *qr, size_t nvis, sscratch *s,
                    uint64_t *touched)
{
    size_t n_t = 0, n_k = j->n_k;
    for (size_t b = 0; b < j->n_b; ++b) {
        size_t t = h * j->n_b + b;
        const uint32_t *ent = j->entries + t * n_k;
        size_t lo, hi;
        if (j->small) {
            const uint32_t *off = j->offsets + t * (j->bs + 1);
            lo = off[qr[b]];
            hi = off[qr[b] + 1];
        } else {
            const uint32_t *vals = j->vals + t * n_k;
            lo = bound(vals, n_k, qr[b], 0);
            hi = bound(vals, n_k, qr[b], 1);
        }
        for (size_t p = lo; p < hi; ++p) {
            uint32_t key = ent[p];
            if (key >= nvis)
                break;
            if (s->counts[key]++ == 0)
                s->list[n_t++] = key;
        }
    }
    *touched += n_t;
    size_t n = 0, k = j->k;
    for (size_t t = 0; t < n_t; ++t) {
        uint32_t key = s->list[t];
        uint64_t e = (uint64_t)(j->n_b - s->counts[key]) << 32 | key;
        s->counts[key] = 0;
        size_t p;
        if (n == k) {
            if (e > s->win[k - 1])
                continue;
            p = k - 1;
        } else {
            p = n++;
        }
        for (; p > 0 && s->win[p - 1] > e; --p)
            s->win[p] = s->win[p - 1];
        s->win[p] = e;
    }
    return n;
}

static void mix(const sjob *j, size_t h, size_t row, const uint64_t *win, size_t n, sscratch *s)
{
    size_t width = j->width, n_k = j->n_k;
    if (j->mode == 1 || j->mode == 2) {
        for (size_t e = 0; e < width; ++e)
            s->acc[e] = 0.0;
        double total = 0.0;
        for (size_t r = 0; r < n; ++r) {
            double w = j->table[(win[r] >> 32) - (win[0] >> 32)];
            size_t key = (uint32_t)win[r];
            total += w;
            if (j->mode == 1) {
                const float *vr = (const float *)j->v + (h * n_k + key) * width;
                for (size_t e = 0; e < width; ++e)
                    s->acc[e] += w * (double)vr[e];
            } else {
                const double *vr = (const double *)j->v + (h * n_k + key) * width;
                for (size_t e = 0; e < width; ++e)
                    s->acc[e] += w * vr[e];
            }
        }
        double scale = n ? 1.0 / total : 0.0;
        if (j->mode == 1) {
            float *o = (float *)j->out + row * width;
            for (size_t e = 0; e < width; ++e)
                o[e] = (float)(s->acc[e] * scale);
        } else {
            double *o = (double *)j->out + row * width;
            for (size_t e = 0; e < width; ++e)
                o[e] = s->acc[e] * scale;
        }
        return;
    }
    /* majority of the winners' value words */
    uint64_t *o = (uint64_t *)j->out + row * width;
    const uint64_t *v = j->v;
    for (size_t w = 0; w < width; ++w) {
        if (n == 0) {
            o[w] = 0;
            continue;
        }
        memset(s->bits, 0, 64 * sizeof *s->bits);
        for (size_t r = 0; r < n; ++r) {
            uint64_t word = v[(h * n_k + (uint32_t)win[r]) * width + w];
            for (int b = 0; b < 64; ++b)
                s->bits[b] += (word >> b) & 1;
        }
        uint64_t tie = v[(h * n_k + (uint32_t)win[0]) * width + w], res = 0;
        for (int b = 0; b < 64; ++b) {
            uint64_t twice = 2 * (uint64_t)s->bits[b];
            if (twice > n || (twice == n && ((tie >> b) & 1)))
                res |= (uint64_t)1 << b;
        }
        o[w] = res;
    }
}

static void query_unit(void *ctx, size_t u, int slot)
{
    const sjob *j = ctx;
    size_t h = u / j->blocks, i0 = (u % j->blocks) * QBLOCK;
    size_t i1 = i0 + QBLOCK < j->n_q ? i0 + QBLOCK : j->n_q;
    sscratch s = scratch_of(j, slot);
    for (size_t i = i0; i < i1; ++i) {
        size_t nvis = j->n_k;
        if (j->n_visible) {
            int64_t c = j->n_visible[i];
            nvis = c < 0 ? 0 : ((uint64_t)c < j->n_k ? (size_t)c : j->n_k);
        }
        size_t row = h * j->n_q + i;
        size_t n = query(j, h, j->q + row * j->n_b, nvis, &s, &j->touched[slot]);
        for (size_t r = 0; r < j->k; ++r)
            j->out_idx[row * j->k + r] = r < n ? (int64_t)(uint32_t)s.win[r] : -1;
        if (j->mode == 0) {
            for (size_t r = 0; r < j->k; ++r)
                j->out_score[row * j->k + r] =
                    r < n ? (int32_t)(j->n_b - (s.win[r] >> 32)) : -1;
        } else {
            mix(j, h, row, s.win, n, &s);
        }
    }
}

static int out_of_range(const uint32_t *x, size_t n, uint64_t bs)
{
    uint32_t worst = 0;
    for (size_t i = 0; i < n; ++i)
        worst = x[i] > worst ? x[i] : worst;
    return n && worst >= bs;
}

int hdc_kwta_sparse(const uint32_t *q, const uint32_t *keys, size_t n_heads, size_t n_q,
                    size_t n_k, size_t n_blocks, uint64_t block_size, size_t k,
                    const int64_t *n_visible, int mode, const void *v, size_t width,
                    double inv_temp, int32_t *out_score, void *out, int64_t *out_idx,
                    uint64_t *touched)
{
    *touched = 0;
    if (k == 0 || n_k >= UINT32_MAX || block_size == 0 || block_size > ((uint64_t)1 << 32)
        || mode < 0 || mode > 3 || n_blocks >= UINT32_MAX)
        return -1;
    if (out_of_range(q, n_heads * n_q * n_blocks, block_size)
        || out_of_range(keys, n_heads * n_k * n_blocks, block_size))
        return -2;
    if (n_heads == 0 || n_q == 0)
        return 0;
    sjob j = {.q = q, .keys = keys, .n_heads = n_heads, .n_q = n_q, .n_k = n_k,
              .n_b = n_blocks, .k = k, .width = mode == 0 ? 0 : width, .bs = block_size,
              .n_visible = n_visible, .mode = mode, .v = v, .out_score = out_score, .out = out,
              .out_idx = out_idx};
    j.blocks = (n_q + QBLOCK - 1) / QBLOCK;
    /* offsets cost 4 bytes per possible index: worth it while no larger than the entries */
    j.small = block_size <= n_k + 1024;
    j.scratch_bytes = scratch_bytes(&j);
    double work = (double)n_heads * (double)n_q * (double)(n_blocks + 1) * 16.0;
    int nt = hdc__threads_for(work);
    size_t units = n_heads * n_blocks;
    j.entries = malloc((units * n_k + 1) * sizeof *j.entries);
    j.offsets = j.small ? malloc((units * (block_size + 1) + 1) * sizeof *j.offsets) : NULL;
    j.vals = j.small ? NULL : malloc((units * n_k + 1) * sizeof *j.vals);
    j.scratch = calloc((size_t)nt, j.scratch_bytes);
    j.touched = calloc((size_t)nt, sizeof *j.touched);
    double *table = malloc((n_blocks + 1) * sizeof *table);
    int rc = 0;
    if (!j.entries || (j.small ? !j.offsets : !j.vals) || !j.scratch || !j.touched || !table) {
        rc = -1;
        goto done;
    }
    for (size_t gap = 0; gap <= n_blocks; ++gap)
        table[gap] = exp(-((double)gap * inv_temp));
    j.table = table;
    hdc__parallel(units, nt, build_unit, &j);
    /* the build's pairs shared the scratch: the counts must start at zero */
    memset(j.scratch, 0, (size_t)nt * j.scratch_bytes);
    hdc__parallel(n_heads * j.blocks, nt, query_unit, &j);
    for (int t = 0; t < nt; ++t)
        *touched += j.touched[t];
done:
    free(j.entries);
    free(j.offsets);
    free(j.vals);
    free(j.scratch);
    free(j.touched);
    free(table);
    return rc;
}
