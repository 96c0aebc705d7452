/* kwta_sparse.c: event-driven k-WTA attention on sparse block codes (hdc_kwta_sparse).
 *
 * Per head, an inverted index lists for every block b the keys grouped by their index in that
 * block, each group (bucket) in increasing key order: a counting sort when block_size is small
 * next to the number of keys (a bucket is then found by its offset), else a sort of
 * (index << 32 | key) pairs (a bucket is then found by binary search). Because buckets ascend,
 * the prefix of a bucket below a causal query's visible count is exactly the bucket of an index
 * built incrementally from the keys before it. A query visits only its own bucket in each block,
 * counting overlaps per key in a zeroed per-thread array and listing the keys it touched; only
 * those are ranked and reset. Ranking: a histogram of their overlaps (1 .. B) gives the cut-off
 * overlap s; keys above it all win, and the keys at s that fill the remaining slots are the
 * smallest-numbered ones (a quickselect). Work per query: O(B + overlaps + touched), never a
 * scan of the keys. Memory: 4 bytes per key and block (plus offsets), O(n_k + B) per thread.
 * The softmax mix is attention.c's (hdc__kwta_mix: winners as (B - overlap) << 32 | key).
 *
 * Units are blocks of queries of one head, claimed dynamically. Each query's result depends only
 * on its own winners accumulated in a fixed order: the same for every thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../internal.h"

#define QBLOCK 32   /* queries per work unit */

typedef struct {
    hdc_kwta_mix_fn mix;    /* softmax modes */
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
    uint32_t *counts, *list, *hist, *bits, *range;
    uint64_t *win;
    double *wgt;
} sscratch;

static sscratch scratch_of(const sjob *j, int slot)
{
    char *p = j->scratch + (size_t)slot * j->scratch_bytes;
    sscratch s;
    s.counts = (uint32_t *)p;
    s.list = s.counts + j->n_k;
    s.win = (uint64_t *)(s.list + j->n_k);            /* 2 n_k uint32: 8-byte aligned */
    s.wgt = (double *)(s.win + j->k);
    s.hist = (uint32_t *)(s.wgt + j->k);
    s.bits = s.hist + j->n_b + 2;
    s.range = s.bits + 64;
    return s;
}

static size_t scratch_bytes(const sjob *j)
{
    size_t b = 2 * j->n_k * sizeof(uint32_t) + j->k * (sizeof(uint64_t) + sizeof(double))
               + (3 * j->n_b + 2 + 64) * sizeof(uint32_t);
    if (!j->small && j->n_k * sizeof(uint64_t) > b)
        b = j->n_k * sizeof(uint64_t);   /* the build's pairs reuse the same slot */
    return (b + 63) / 64 * 64;
}

/* reorder a[0..n) so that a[0..m) hold its m smallest (distinct) values, in any order */
static void smallest_u32(uint32_t *a, size_t n, size_t m)
{
    size_t lo = 0, hi = n;
    while (hi - lo > 1 && m > lo && m < hi) {
        uint32_t p = a[lo + (hi - lo) / 2];
        size_t lt = lo, gt = hi;               /* three-way partition around p */
        for (size_t i = lo; i < gt;) {
            if (a[i] < p) {
                uint32_t t = a[i];
                a[i++] = a[lt];
                a[lt++] = t;
            } else if (a[i] > p) {
                uint32_t t = a[i];
                a[i] = a[--gt];
                a[gt] = t;
            } else {
                ++i;
            }
        }
        if (m <= lt)
            hi = lt;
        else if (m >= gt)
            lo = gt;
        else
            break;                             /* the cut falls among the values equal to p */
    }
}

static void sort_u64(uint64_t *a, size_t n)
{
    for (size_t i = 1; i < n; ++i) {
        uint64_t x = a[i];
        size_t p = i;
        for (; p > 0 && a[p - 1] > x; --p)
            a[p] = a[p - 1];
        a[p] = x;
    }
}

/* the winners among the n_t touched keys (s->list, overlaps in s->counts, reset here) into
 * s->win[0..return) as (n_b - overlap) << 32 | key, ascending: highest overlap first, ties by
 * smaller key */
static size_t rank(const sjob *j, sscratch *s, size_t n_t)
{
    size_t k = j->k, n_b = j->n_b;
    if (n_t <= k) {
        for (size_t t = 0; t < n_t; ++t) {
            uint32_t key = s->list[t];
            s->win[t] = (uint64_t)(n_b - s->counts[key]) << 32 | key;
            s->counts[key] = 0;
        }
        sort_u64(s->win, n_t);
        return n_t;
    }
    memset(s->hist, 0, (n_b + 1) * sizeof *s->hist);
    for (size_t t = 0; t < n_t; ++t)
        s->hist[s->counts[s->list[t]]]++;
    size_t cut = n_b, above = 0;               /* above: keys with overlap > cut */
    while (above + s->hist[cut] < k) {
        above += s->hist[cut];
        --cut;
    }
    size_t need = k - above, n_win = 0, n_eq = 0;
    /* keys above the cut go to win; keys at it are compacted into the front of list */
    for (size_t t = 0; t < n_t; ++t) {
        uint32_t key = s->list[t], c = s->counts[key];
        s->counts[key] = 0;
        if (c > cut)
            s->win[n_win++] = (uint64_t)(n_b - c) << 32 | key;
        else if (c == cut)
            s->list[n_eq++] = key;
    }
    smallest_u32(s->list, n_eq, need);
    for (size_t t = 0; t < need; ++t)
        s->win[n_win++] = (uint64_t)(n_b - cut) << 32 | s->list[t];
    sort_u64(s->win, n_win);
    return n_win;
}

/* winners of query row qr of head h into s->win[0..return) */
static size_t query(const sjob *j, size_t h, const uint32_t *qr, size_t nvis, sscratch *s,
                    uint64_t *touched)
{
    size_t n_t = 0, n_k = j->n_k;
    /* bucket bounds of every block first, prefetching the buckets: the B random reads overlap */
    for (size_t b = 0; b < j->n_b; ++b) {
        size_t t = h * j->n_b + b;
        if (j->small) {
            const uint32_t *off = j->offsets + t * (j->bs + 1);
            s->range[2 * b] = off[qr[b]];
            s->range[2 * b + 1] = off[qr[b] + 1];
        } else {
            const uint32_t *vals = j->vals + t * n_k;
            s->range[2 * b] = (uint32_t)bound(vals, n_k, qr[b], 0);
            s->range[2 * b + 1] = (uint32_t)bound(vals, n_k, qr[b], 1);
        }
        __builtin_prefetch(j->entries + t * n_k + s->range[2 * b]);
    }
    for (size_t b = 0; b < j->n_b; ++b) {
        const uint32_t *ent = j->entries + (h * j->n_b + b) * n_k;
        for (size_t p = s->range[2 * b]; p < s->range[2 * b + 1]; ++p) {
            uint32_t key = ent[p];
            if (key >= nvis)
                break;
            if (s->counts[key]++ == 0)
                s->list[n_t++] = key;
        }
    }
    *touched += n_t;
    return rank(j, s, n_t);
}

static void mix(const sjob *j, size_t h, size_t row, const uint64_t *win, size_t n, sscratch *s)
{
    size_t width = j->width, n_k = j->n_k;
    if (j->mode == 1 || j->mode == 2) {
        size_t esize = j->mode == 1 ? sizeof(float) : sizeof(double);
        char *o = (char *)j->out + row * width * esize;
        if (n == 0)
            memset(o, 0, width * esize);
        else
            j->mix(j->table, win, n, (const char *)j->v + h * n_k * width * esize, width, s->wgt, o);
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
        if (j->small && i + 1 < i1) {          /* the next query's bucket offsets */
            const uint32_t *qn = j->q + (h * j->n_q + i + 1) * j->n_b;
            for (size_t b = 0; b < j->n_b; ++b)
                __builtin_prefetch(j->offsets + (h * j->n_b + b) * (j->bs + 1) + qn[b]);
        }
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
    j.mix = hdc__kwta_mix(mode == 2, hdc_get_isa());
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
