/* kwta_sparse.c: event-driven k-WTA attention on sparse block codes (hdc_kwta_sparse).
 *
 * Per head, an inverted index lists for every block b the keys grouped by their index in that
 * block, each group (bucket) in increasing key order: a counting sort when block_size is small
 * next to the number of keys (a bucket is then found by its offset), else a sort of
 * (index << 32 | key) pairs (a bucket is then found by binary search). Because buckets ascend,
 * the prefix of a bucket below a causal query's visible count is exactly the bucket of an index
 * built incrementally from the keys before it. A query visits only its own bucket in each block,
 * counting overlaps per key in a zeroed per-thread array and marking the key in a bitmap (with a
 * summary bit per bitmap word). Reading the bitmap back lists the touched keys in increasing
 * order, so ranking needs no sort: the keys per overlap give the cut-off overlap s; keys above it
 * all win, and the keys at s that fill the remaining slots are the first ones listed; each goes
 * straight into its slot of the (overlap desc, key asc) order. Counts and bits are reset as they
 * are read. Work per query: O(B + overlaps + touched + Lk / 4096), never a scan of the keys.
 * Memory: 4 bytes per key and block (plus offsets), O(n_k + B) per thread. The softmax mix is
 * kwta.c's (hdc__kwta_mix: winners as (B - overlap) << 32 | key), as is the majority
 * (hdc__kwta_majority: bit-sliced counters on the active SIMD path).
 *
 * Units are blocks of queries of one head, claimed dynamically. Each query's result depends only
 * on its own winners accumulated in a fixed order: the same for every thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../internal.h"

#define QBLOCK 32   /* queries per work unit */
#define MAX_BLOCKS 65535 /* overlaps are counted in uint16 */

typedef struct {
    hdc_kwta_mix_fn mix;    /* softmax modes */
    const hdc_count_ops *count; /* majority mode */
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
    uint16_t *counts;       /* overlap per key (n_blocks <= MAX_BLOCKS); 2 bytes: stays in L1/L2 */
    uint64_t *seen;         /* bit per key: touched by this query */
    uint64_t *summary;      /* bit per word of `seen`: that word is non-zero */
    uint64_t *list;         /* the touched keys ascending, as (overlap << 32 | key) */
    uint64_t *win;
    double *wgt;
    uint32_t *hist;         /* keys per overlap 2 .. n_b, then start slots of the winners */
    size_t *rows;           /* majority: the winners' key numbers */
    uint64_t *slices;       /* majority: bit-sliced counters, up to 64 x width words */
} sscratch;

static size_t words_of(size_t bits) { return (bits + 63) / 64; }

/* majority: bit-sliced counters for up to 2^64 - 1 winners */
static size_t slice_words(const sjob *j) { return j->mode == 3 ? 64 * j->width : 0; }

static sscratch scratch_of(const sjob *j, int slot)
{
    char *p = j->scratch + (size_t)slot * j->scratch_bytes;
    sscratch s;   /* every array starts 8-byte aligned */
    s.seen = (uint64_t *)p;
    s.summary = s.seen + words_of(j->n_k);
    s.list = s.summary + words_of(words_of(j->n_k));
    s.win = s.list + j->n_k;
    s.wgt = (double *)(s.win + j->k);
    s.slices = (uint64_t *)(s.wgt + j->k);
    s.rows = (size_t *)(s.slices + slice_words(j));
    s.counts = (uint16_t *)(s.rows + j->k);
    s.hist = (uint32_t *)(s.counts + (j->n_k + 3) / 4 * 4);
    return s;
}

static size_t scratch_bytes(const sjob *j)
{
    size_t b = (words_of(j->n_k) + words_of(words_of(j->n_k)) + j->n_k) * sizeof(uint64_t)
               + j->k * (sizeof(uint64_t) + sizeof(double) + sizeof(size_t))
               + slice_words(j) * sizeof(uint64_t)
               + (j->n_k + 3) / 4 * 4 * sizeof(uint16_t) + (j->n_b + 2) * sizeof(uint32_t);
    if (!j->small && j->n_k * sizeof(uint64_t) > b)
        b = j->n_k * sizeof(uint64_t);   /* the build's pairs reuse the same slot */
    return (b + 63) / 64 * 64;
}

/* the touched keys below nvis into s->list in increasing key order, as (overlap << 32 | key),
 * resetting counts, seen and summary as it goes; also counts the keys per overlap >= 2 into
 * s->hist (zero on entry) and returns the largest overlap in *top */
static size_t gather(sscratch *s, size_t nvis, size_t *top)
{
    size_t n_t = 0, hi = 1;
    for (size_t sw = 0; sw < words_of(words_of(nvis)); ++sw) {
        for (uint64_t sm = s->summary[sw]; sm; sm &= sm - 1) {
            size_t w = sw * 64 + (size_t)__builtin_ctzll(sm);
            uint64_t bits = s->seen[w];
            s->seen[w] = 0;
            for (; bits; bits &= bits - 1) {
                size_t key = w * 64 + (size_t)__builtin_ctzll(bits);
                size_t c = s->counts[key];
                s->counts[key] = 0;
                s->list[n_t++] = (uint64_t)c << 32 | key;
                if (c > 1) {
                    s->hist[c]++;
                    hi = c > hi ? c : hi;
                }
            }
        }
        s->summary[sw] = 0;
    }
    *top = hi;
    return n_t;
}

/* the winners among the n_t touched keys in s->list (ascending keys) into s->win[0..return) as
 * (n_b - overlap) << 32 | key, ascending: highest overlap first, ties by smaller key. The list
 * is in key order, so each overlap's keys are placed in order into their slots: no sort. */
static size_t rank(const sjob *j, sscratch *s, size_t n_t, size_t top)
{
    size_t k = j->k, n_b = j->n_b, above = 0;
    uint32_t *hist = s->hist;
    size_t rest = n_t;                         /* keys with overlap 1 = n_t - those above 1 */
    for (size_t c = 2; c <= top; ++c)
        rest -= hist[c];
    hist[1] = (uint32_t)rest;
    size_t cut = top;                          /* keys with overlap > cut all win */
    while (cut > 1 && above + hist[cut] < k) {
        above += hist[cut];
        --cut;
    }
    size_t need = k - above < hist[cut] ? k - above : hist[cut], n_win = above + need;
    /* hist[c] becomes the first slot of overlap c (c > cut), highest overlap first */
    for (size_t c = top, slot = 0; c > cut; --c) {
        size_t n = hist[c];
        hist[c] = (uint32_t)slot;
        slot += n;
    }
    size_t taken = 0, placed = 0;
    for (size_t t = 0; t < n_t && placed < n_win; ++t) {
        size_t c = (size_t)(s->list[t] >> 32);
        uint64_t entry = (uint64_t)(n_b - c) << 32 | (uint32_t)s->list[t];
        if (c > cut) {
            s->win[hist[c]++] = entry;
            ++placed;
        } else if (c == cut && taken < need) {
            s->win[above + taken++] = entry;
            ++placed;
        }
    }
    for (size_t c = 1; c <= top; ++c)
        hist[c] = 0;
    return n_win;
}

/* winners of query row qr of head h into s->win[0..return) */
static size_t query(const sjob *j, size_t h, const uint32_t *qr, size_t nvis, sscratch *s,
                    uint64_t *touched)
{
    size_t n_k = j->n_k;
    uint32_t range[2 * 64];
    /* the walk: per block the bucket bounds first (prefetching the buckets, so the random reads
     * overlap), then the visible prefix of each bucket; blocks in groups of 64 */
    for (size_t b0 = 0; b0 < j->n_b; b0 += 64) {
        size_t nb = j->n_b - b0 < 64 ? j->n_b - b0 : 64;
        for (size_t b = 0; b < nb; ++b) {
            size_t t = h * j->n_b + b0 + b;
            uint32_t x = qr[b0 + b];
            if (j->small) {
                const uint32_t *off = j->offsets + t * (j->bs + 1);
                range[2 * b] = off[x];
                range[2 * b + 1] = off[x + 1];
            } else {
                const uint32_t *vals = j->vals + t * n_k;
                range[2 * b] = (uint32_t)bound(vals, n_k, x, 0);
                range[2 * b + 1] = (uint32_t)bound(vals, n_k, x, 1);
            }
            __builtin_prefetch(j->entries + t * n_k + range[2 * b]);
        }
        for (size_t b = 0; b < nb; ++b) {
            const uint32_t *ent = j->entries + (h * j->n_b + b0 + b) * n_k;
            for (size_t p = range[2 * b]; p < range[2 * b + 1]; ++p) {
                uint32_t key = ent[p];
                if (key >= nvis)
                    break;
                s->counts[key]++;
                s->seen[key >> 6] |= (uint64_t)1 << (key & 63);
                s->summary[key >> 12] |= (uint64_t)1 << ((key >> 6) & 63);
            }
        }
    }
    size_t top;
    size_t n_t = gather(s, nvis, &top);
    *touched += n_t;
    return n_t ? rank(j, s, n_t, top) : 0;
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
    uint64_t *o = (uint64_t *)j->out + row * width;
    if (n == 0)
        memset(o, 0, width * sizeof *o);
    else
        hdc__kwta_majority(j->count, (const uint64_t *)j->v + h * n_k * width, width, win, n,
                           s->rows, s->slices, o);
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
        || mode < 0 || mode > 3 || n_blocks > MAX_BLOCKS)
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
    j.count = hdc__count();
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
