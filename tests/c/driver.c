/* driver.c: every C kernel on every ISA path this CPU runs, 1 and 2 threads, at odd sizes,
 * against plain bit-by-bit references written here. Every buffer is allocated to its exact
 * size, so a build with -fsanitize=address catches any read or write past an end.
 * Exit status 0 when everything matches; prints the first mismatches otherwise.
 * Built and run by tests/test_c_sanitizers.py. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hdc.h"

static int failures;
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t next64(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#define CHECK(cond, ...)                                                                         \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            if (failures++ < 20) {                                                               \
                fprintf(stderr, "MISMATCH isa=%d threads=%d: ", hdc_get_isa(),                   \
                        hdc_get_num_threads());                                                  \
                fprintf(stderr, __VA_ARGS__);                                                    \
                fputc('\n', stderr);                                                             \
            }                                                                                    \
        }                                                                                        \
    } while (0)

static size_t words_of(size_t dim) { return (dim + 63) / 64; }

/* exact-size allocation (never NULL, so zero-size arrays are still distinct pointers) */
static void *alloc(size_t bytes) { return malloc(bytes ? bytes : 1); }

static uint64_t *rand_rows(size_t n, size_t dim)
{
    size_t w = words_of(dim);
    uint64_t *x = alloc(n * w * sizeof *x);
    for (size_t i = 0; i < n * w; ++i)
        x[i] = next64();
    if (dim % 64)
        for (size_t r = 0; r < n; ++r)
            x[r * w + w - 1] &= ((uint64_t)1 << (dim % 64)) - 1;
    return x;
}

static int bit(const uint64_t *row, size_t i) { return (int)((row[i / 64] >> (i % 64)) & 1); }

/* word by word with the compiler's popcount: a plain reference, no SIMD, no blocking */
static int32_t ref_dist(const uint64_t *a, const uint64_t *b, size_t dim)
{
    int32_t d = 0;
    for (size_t i = 0; i < words_of(dim); ++i)
        d += __builtin_popcountll(a[i] ^ b[i]);
    return d;
}

static void test_elementwise(size_t dim, size_t n)
{
    size_t w = words_of(dim);
    uint64_t *a = rand_rows(n, dim), *b = rand_rows(n, dim);
    uint64_t *out = alloc(n * w * sizeof *out);
    hdc_bind(a, b, out, n * w);
    for (size_t i = 0; i < n * w; ++i)
        CHECK(out[i] == (a[i] ^ b[i]), "bind dim=%zu n=%zu", dim, n);
    size_t shifts[] = {1, 5, 63, 64, 65, dim / 2, dim - 1};
    for (size_t s = 0; s < sizeof shifts / sizeof *shifts; ++s) {
        size_t shift = shifts[s] % dim;
        hdc_permute(a, out, n, w, dim, shift);
        for (size_t r = 0; r < n; ++r) {
            for (size_t i = 0; i < dim; ++i)
                if (bit(out + r * w, (i + shift) % dim) != bit(a + r * w, i)) {
                    CHECK(0, "permute dim=%zu n=%zu shift=%zu bit=%zu", dim, n, shift, i);
                    break;
                }
            if (dim % 64)
                CHECK((out[r * w + w - 1] >> (dim % 64)) == 0, "permute padding dim=%zu", dim);
        }
    }
    int32_t *cnt = alloc(n * sizeof *cnt);
    hdc_popcount(a, cnt, n, w);
    for (size_t r = 0; r < n; ++r) {
        int32_t want = 0;
        for (size_t i = 0; i < dim; ++i)
            want += (int32_t)bit(a + r * w, i);
        CHECK(cnt[r] == want, "popcount dim=%zu n=%zu", dim, n);
    }
    hdc_hamming(a, b, cnt, n, w);
    for (size_t r = 0; r < n; ++r)
        CHECK(cnt[r] == ref_dist(a + r * w, b + r * w, dim), "hamming dim=%zu n=%zu", dim, n);
    free(a), free(b), free(out), free(cnt);
}

typedef struct {
    int32_t d;
    int64_t i;
} pair_t;

static int cmp_pair(const void *x, const void *y)
{
    const pair_t *p = x, *q = y;
    if (p->d != q->d)
        return p->d < q->d ? -1 : 1;
    return p->i < q->i ? -1 : p->i > q->i;
}

static void test_search(size_t dim, size_t n_m, size_t n_q)
{
    size_t w = words_of(dim);
    uint64_t *m = rand_rows(n_m, dim), *q = rand_rows(n_q, dim);
    /* repeated rows make equal distances, so the index tie order matters */
    for (size_t r = 3; r < n_m; r += 3)
        memcpy(m + r * w, m, w * sizeof *m);
    int32_t *cd = alloc(n_q * n_m * sizeof *cd), *want = alloc(n_q * n_m * sizeof *want);
    for (size_t i = 0; i < n_q; ++i)
        for (size_t j = 0; j < n_m; ++j)
            want[i * n_m + j] = ref_dist(q + i * w, m + j * w, dim);
    hdc_cdist(q, n_q, m, n_m, w, cd);
    for (size_t i = 0; i < n_q * n_m; ++i)
        CHECK(cd[i] == want[i], "cdist dim=%zu n_m=%zu n_q=%zu", dim, n_m, n_q);
    size_t ks[] = {1, 2, 5, n_m, n_m + 3};
    pair_t *all = alloc(n_m * sizeof *all);
    int64_t *vis = alloc(n_q * sizeof *vis);
    for (int use_vis = 0; use_vis < 2; ++use_vis) {
        for (size_t i = 0; i < n_q; ++i)
            vis[i] = (int64_t)(next64() % (n_m + 3)) - 1;
        for (size_t kk = 0; kk < sizeof ks / sizeof *ks; ++kk) {
            size_t k = ks[kk];
            if (k == 0)
                continue;
            int32_t *od = alloc(n_q * k * sizeof *od);
            int64_t *oi = alloc(n_q * k * sizeof *oi);
            int rc = hdc_topk(q, n_q, m, n_m, w, k, use_vis ? vis : NULL, od, oi);
            CHECK(rc == 0, "topk rc=%d", rc);
            for (size_t i = 0; i < n_q; ++i) {
                size_t v = n_m;
                if (use_vis)
                    v = vis[i] < 0 ? 0 : (size_t)vis[i] < n_m ? (size_t)vis[i] : n_m;
                for (size_t j = 0; j < v; ++j)
                    all[j] = (pair_t){want[i * n_m + j], (int64_t)j};
                qsort(all, v, sizeof *all, cmp_pair);
                for (size_t s = 0; s < k; ++s) {
                    int32_t wd = s < v ? all[s].d : INT32_MAX;
                    int64_t wi = s < v ? all[s].i : -1;
                    CHECK(od[i * k + s] == wd && oi[i * k + s] == wi,
                          "topk dim=%zu n_m=%zu n_q=%zu k=%zu vis=%d slot=%zu", dim, n_m, n_q, k,
                          use_vis, s);
                }
            }
            free(od), free(oi);
        }
    }
    CHECK(hdc_topk(q, n_q, m, n_m, w, 0, NULL, NULL, NULL) == -1, "topk k=0 must fail");
    free(m), free(q), free(cd), free(want), free(all), free(vis);
}

static void test_xor_reduce(size_t dim, size_t n)
{
    size_t w = words_of(dim);
    uint64_t *x = rand_rows(n, dim), *out = alloc(w * sizeof *out);
    CHECK(hdc_xor_reduce(x, n, w, out) == 0, "xor_reduce dim=%zu n=%zu failed", dim, n);
    for (size_t c = 0; c < w; ++c) {
        uint64_t want = 0;
        for (size_t r = 0; r < n; ++r)
            want ^= x[r * w + c];
        CHECK(out[c] == want, "xor_reduce dim=%zu n=%zu word=%zu", dim, n, c);
    }
    free(x), free(out);
}

static void test_counts(size_t dim, size_t n)
{
    size_t w = words_of(dim);
    uint64_t *x = rand_rows(n, dim), *tie = rand_rows(1, dim), *out = alloc(w * sizeof *out);
    int64_t *weights = alloc(n * sizeof *weights), *counts = alloc(w * 64 * sizeof *counts);
    hdc_bundle(x, n, w, tie, out);
    for (size_t i = 0; i < dim; ++i) {
        size_t c = 0;
        for (size_t r = 0; r < n; ++r)
            c += (size_t)bit(x + r * w, i);
        int want = 2 * c > n ? 1 : 2 * c < n ? 0 : bit(tie, i);
        if (bit(out, i) != want) {
            CHECK(0, "bundle dim=%zu n=%zu bit=%zu", dim, n, i);
            break;
        }
    }
    for (int mode = 0; mode < 4; ++mode) {
        for (size_t r = 0; r < n; ++r)
            weights[r] = mode == 1 ? (int64_t)(next64() % 15) - 7
                       : mode == 2 ? -1
                       : mode == 3 ? (int64_t)(next64() >> 20) - (int64_t)(1ull << 43) : 1;
        for (size_t b = 0; b < w * 64; ++b)
            counts[b] = (int64_t)(b % 7) - 3;
        hdc_column_counts(x, n, w, mode == 0 ? NULL : weights, counts);
        for (size_t b = 0; b < w * 64; ++b) {
            uint64_t want = (uint64_t)((int64_t)(b % 7) - 3);
            for (size_t r = 0; r < n; ++r)
                if (bit(x + r * w, b))
                    want += mode == 0 ? 1 : (uint64_t)weights[r];
            if ((uint64_t)counts[b] != want) {
                CHECK(0, "column_counts dim=%zu n=%zu mode=%d col=%zu", dim, n, mode, b);
                break;
            }
        }
    }
    free(x), free(tie), free(out), free(weights), free(counts);
}

/* k-WTA attention: winners against qsort of (distance, index) per head and query; softmax and
 * majority against plain loops over those winners. Queries alternate between copies of keys and
 * random codes, so the previous query's bound is sometimes far too tight (a rescan) and sometimes
 * far too loose (buffer reductions); repeated keys make ties at the cut-off. */
static void test_kwta(size_t dim, size_t n_h, size_t n_q, size_t n_k)
{
    size_t w = words_of(dim), dv = 5;
    uint64_t *keys = rand_rows(n_h * n_k, dim), *q = rand_rows(n_h * n_q, dim);
    uint64_t *vw = rand_rows(n_h * n_k, 70);
    for (size_t r = 3; r < n_h * n_k; r += 4)
        memcpy(keys + r * w, keys + (r - 3) * w, w * sizeof *keys);
    for (size_t i = 0; i < n_h * n_q; i += 2)
        memcpy(q + i * w, keys + (next64() % (n_h * n_k)) * w, w * sizeof *q);
    float *vf = alloc(n_h * n_k * dv * sizeof *vf);
    double *vd = alloc(n_h * n_k * dv * sizeof *vd);
    for (size_t i = 0; i < n_h * n_k * dv; ++i)
        vd[i] = vf[i] = (float)((double)(next64() >> 11) / 9007199254740992.0 - 0.5);
    int64_t *vis = alloc(n_q * sizeof *vis);
    pair_t *all = alloc((n_k ? n_k : 1) * sizeof *all);
    size_t ks[] = {1, 3, 40, n_k + 3};
    for (int use_vis = 0; use_vis < 2; ++use_vis) {
        for (size_t i = 0; i < n_q; ++i)
            vis[i] = (int64_t)(next64() % (n_k + 3)) - 1;
        for (size_t kc = 0; kc < sizeof ks / sizeof *ks; ++kc) {
            size_t k = ks[kc], rows = n_h * n_q;
            int32_t *od = alloc(rows * k * sizeof *od);
            int64_t *oi = alloc(rows * k * sizeof *oi), *oi2 = alloc(rows * k * sizeof *oi2);
            float *of = alloc(rows * dv * sizeof *of);
            double *odd = alloc(rows * dv * sizeof *odd);
            uint64_t *om = alloc(rows * 2 * sizeof *om);
            const int64_t *nv = use_vis ? vis : NULL;
            CHECK(hdc_kwta_select(q, keys, n_h, n_q, n_k, w, k, nv, od, oi) == 0, "kwta_select rc");
            CHECK(hdc_kwta_softmax_f32(q, keys, n_h, n_q, n_k, w, k, nv, vf, dv, 0.3, of, oi2) == 0,
                  "kwta_softmax_f32 rc");
            CHECK(memcmp(oi, oi2, rows * k * sizeof *oi) == 0, "kwta softmax winners");
            CHECK(hdc_kwta_softmax_f64(q, keys, n_h, n_q, n_k, w, k, nv, vd, dv, 0.3, odd, oi2) == 0,
                  "kwta_softmax_f64 rc");
            CHECK(hdc_kwta_majority(q, keys, n_h, n_q, n_k, w, k, nv, vw, 2, om, oi2) == 0,
                  "kwta_majority rc");
            CHECK(memcmp(oi, oi2, rows * k * sizeof *oi) == 0, "kwta majority winners");
            for (size_t h = 0; h < n_h; ++h)
                for (size_t i = 0; i < n_q; ++i) {
                    size_t row = h * n_q + i, v = n_k;
                    if (use_vis)
                        v = vis[i] < 0 ? 0 : (size_t)vis[i] < n_k ? (size_t)vis[i] : n_k;
                    for (size_t j = 0; j < v; ++j)
                        all[j] = (pair_t){ref_dist(q + row * w, keys + (h * n_k + j) * w, dim),
                                          (int64_t)j};
                    qsort(all, v, sizeof *all, cmp_pair);
                    size_t kk = v < k ? v : k;
                    for (size_t s = 0; s < k; ++s) {
                        int32_t wd = s < kk ? all[s].d : INT32_MAX;
                        int64_t wi = s < kk ? all[s].i : -1;
                        CHECK(od[row * k + s] == wd && oi[row * k + s] == wi,
                              "kwta_select dim=%zu n_k=%zu k=%zu vis=%d row=%zu slot=%zu", dim,
                              n_k, k, use_vis, row, s);
                    }
                    for (size_t e = 0; e < dv; ++e) {
                        double acc = 0.0, total = 0.0;
                        for (size_t s = 0; s < kk; ++s) {
                            double wgt = exp(-((double)(all[s].d - all[0].d) * 0.3));
                            total += wgt;
                            acc += wgt * vd[(h * n_k + (size_t)all[s].i) * dv + e];
                        }
                        double want = kk ? acc / total : 0.0;
                        CHECK(fabs(odd[row * dv + e] - want) <= 1e-12 && fabs(of[row * dv + e] - want) <= 1e-6,
                              "kwta_softmax dim=%zu n_k=%zu k=%zu row=%zu", dim, n_k, k, row);
                    }
                    for (size_t b = 0; b < 70; ++b) {
                        size_t c = 0;
                        for (size_t s = 0; s < kk; ++s)
                            c += (size_t)bit(vw + (h * n_k + (size_t)all[s].i) * 2, b);
                        int want = kk == 0 ? 0 : 2 * c > kk ? 1 : 2 * c < kk ? 0
                                 : bit(vw + (h * n_k + (size_t)all[0].i) * 2, b);
                        CHECK(bit(om + row * 2, b) == want, "kwta_majority dim=%zu k=%zu row=%zu bit=%zu",
                              dim, k, row, b);
                    }
                }
            free(od), free(oi), free(oi2), free(of), free(odd), free(om);
        }
    }
    CHECK(hdc_kwta_select(q, keys, n_h, n_q, n_k, w, 0, NULL, NULL, NULL) == -1,
          "kwta_select k=0 must fail");
    free(keys), free(q), free(vw), free(vf), free(vd), free(vis), free(all);
}

/* hdc_kwta_sparse against a brute-force ranking: codes of n_b indices < bs (both index layouts:
 * counting sort for small bs, sorted pairs for large), causal and not, every mode */
static void test_kwta_sparse(size_t n_b, uint64_t bs, size_t n_h, size_t n_q, size_t n_k, size_t k)
{
    size_t rows = n_h * n_q, dv = 3;
    uint32_t *q = alloc(rows * n_b * sizeof *q), *keys = alloc(n_h * n_k * n_b * sizeof *keys);
    uint32_t spread = bs < 5 ? (uint32_t)bs : 5;     /* few distinct indices: ties and overlaps */
    for (size_t i = 0; i < rows * n_b; ++i)
        q[i] = (uint32_t)(next64() % spread) + (uint32_t)(bs - spread);
    for (size_t i = 0; i < n_h * n_k * n_b; ++i)
        keys[i] = (uint32_t)(next64() % spread) + (uint32_t)(bs - spread);
    int64_t *nv = alloc(n_q * sizeof *nv), *oi = alloc(rows * k * sizeof *oi);
    int64_t *oi2 = alloc(rows * k * sizeof *oi2);
    int32_t *os = alloc(rows * k * sizeof *os);
    float *vf = alloc(n_h * n_k * dv * sizeof *vf), *of = alloc(rows * dv * sizeof *of);
    uint64_t *vw = rand_rows(n_h * n_k, 128), *om = alloc(rows * 2 * sizeof *om), touched, t2;
    for (size_t i = 0; i < n_h * n_k * dv; ++i)
        vf[i] = (float)(next64() % 100) / 50.0f - 1.0f;
    for (size_t i = 0; i < n_q; ++i)
        nv[i] = (int64_t)(i + n_k - n_q + 1);
    for (int vis = 0; vis < 2; ++vis) {
        const int64_t *nvp = vis ? nv : NULL;
        CHECK(hdc_kwta_sparse(q, keys, n_h, n_q, n_k, n_b, bs, k, nvp, 0, NULL, 0, 0.0, os, NULL,
                              oi, &touched) == 0, "kwta_sparse select rc");
        CHECK(hdc_kwta_sparse(q, keys, n_h, n_q, n_k, n_b, bs, k, nvp, 1, vf, dv, 0.5, NULL, of,
                              oi2, &t2) == 0 && t2 == touched, "kwta_sparse softmax rc");
        CHECK(memcmp(oi, oi2, rows * k * sizeof *oi) == 0, "kwta_sparse softmax winners");
        CHECK(hdc_kwta_sparse(q, keys, n_h, n_q, n_k, n_b, bs, k, nvp, 3, vw, 2, 0.0, NULL, om,
                              oi2, &t2) == 0 && t2 == touched, "kwta_sparse majority rc");
        CHECK(memcmp(oi, oi2, rows * k * sizeof *oi) == 0, "kwta_sparse majority winners");
        uint64_t want_touched = 0;
        for (size_t h = 0; h < n_h; ++h)
            for (size_t i = 0; i < n_q; ++i) {
                size_t row = h * n_q + i, nvis = vis ? (size_t)nv[i] : n_k, r = 0;
                if (nvis > n_k)
                    nvis = n_k;
                /* walk overlaps from high to low, keys in increasing order: the winner order */
                for (size_t s = n_b; s >= 1 && r < k; --s)
                    for (size_t key = 0; key < nvis && r < k; ++key) {
                        size_t ov = 0;
                        for (size_t b = 0; b < n_b; ++b)
                            ov += q[row * n_b + b] == keys[(h * n_k + key) * n_b + b];
                        if (ov == s) {
                            CHECK(oi[row * k + r] == (int64_t)key && os[row * k + r] == (int32_t)s,
                                  "kwta_sparse winner n_b=%zu bs=%llu row=%zu slot=%zu", n_b,
                                  (unsigned long long)bs, row, r);
                            ++r;
                        }
                    }
                for (; r < k; ++r)
                    CHECK(oi[row * k + r] == -1 && os[row * k + r] == -1, "kwta_sparse empty slot");
                for (size_t key = 0; key < nvis; ++key) {
                    size_t ov = 0;
                    for (size_t b = 0; b < n_b; ++b)
                        ov += q[row * n_b + b] == keys[(h * n_k + key) * n_b + b];
                    want_touched += ov > 0;
                }
            }
        CHECK(touched == want_touched, "kwta_sparse touched %llu != %llu",
              (unsigned long long)touched, (unsigned long long)want_touched);
    }
    q[rows * n_b - 1] = (uint32_t)bs;                 /* an index out of range: refused */
    CHECK(hdc_kwta_sparse(q, keys, n_h, n_q, n_k, n_b, bs, k, NULL, 0, NULL, 0, 0.0, os, NULL, oi,
                          &touched) == -2, "kwta_sparse index >= block_size must fail");
    CHECK(hdc_kwta_sparse(q, keys, n_h, n_q, n_k, n_b, bs, 0, NULL, 0, NULL, 0, 0.0, os, NULL, oi,
                          &touched) == -1, "kwta_sparse k=0 must fail");
    free(q), free(keys), free(nv), free(oi), free(oi2), free(os), free(vf), free(of), free(vw);
    free(om);
}

/* sparse block codes: indices of itemsize bytes from a small alphabet (many ties), odd block
 * counts around the 16/32/64-lane widths, against a naive count; top-k order checked too */
static void test_sparse(size_t blocks, size_t n_m, size_t n_q, int itemsize)
{
    unsigned char *m = alloc(n_m * blocks * itemsize), *q = alloc(n_q * blocks * itemsize);
    for (size_t i = 0; i < n_m * blocks * itemsize; ++i)
        m[i] = (unsigned char)(next64() % 3);
    for (size_t i = 0; i < n_q * blocks * itemsize; ++i)
        q[i] = (unsigned char)(next64() % 3);
    int32_t *cd = alloc(n_q * n_m * sizeof *cd), *pr = alloc(n_m * sizeof *pr);
    size_t rb = blocks * itemsize;
    CHECK(hdc_sparse_cdist(q, n_q, m, n_m, blocks, itemsize, cd) == 0, "sparse cdist");
    for (size_t i = 0; i < n_q; ++i)
        for (size_t j = 0; j < n_m; ++j) {
            int32_t want = 0;
            for (size_t b = 0; b < blocks; ++b)
                want += memcmp(q + i * rb + b * itemsize, m + j * rb + b * itemsize, itemsize) == 0;
            CHECK(cd[i * n_m + j] == want, "sparse cdist value");
        }
    if (n_m && n_q) {
        CHECK(hdc_sparse_overlap(q, m, 1, blocks, itemsize, pr) == 0 && pr[0] == cd[0], "sparse overlap");
        size_t k = n_m < 5 ? n_m : 5;
        int32_t *oo = alloc(n_q * k * sizeof *oo);
        int64_t *oi = alloc(n_q * k * sizeof *oi);
        CHECK(hdc_sparse_topk(q, n_q, m, n_m, blocks, itemsize, k, oo, oi) == 0, "sparse topk");
        for (size_t i = 0; i < n_q; ++i)
            for (size_t r = 0; r < k; ++r) {
                int64_t j = oi[i * k + r];
                CHECK(j >= 0 && (size_t)j < n_m && oo[i * k + r] == cd[i * n_m + j], "sparse topk value");
                if (r)
                    CHECK(oo[i * k + r - 1] > oo[i * k + r] ||
                          (oo[i * k + r - 1] == oo[i * k + r] && oi[i * k + r - 1] < j), "sparse topk order");
            }
        for (size_t i = 0; i < n_q; ++i) { /* exactly k rows rank at or before the last one kept */
            int32_t lo = oo[i * k + k - 1];
            int64_t li = oi[i * k + k - 1];
            size_t ahead = 0;
            for (size_t j = 0; j < n_m; ++j)
                ahead += cd[i * n_m + j] > lo || (cd[i * n_m + j] == lo && (int64_t)j <= li);
            CHECK(ahead == k, "sparse topk misses a better row");
        }
        CHECK(hdc_sparse_topk(q, n_q, m, n_m, blocks, itemsize, 0, oo, oi) == -1, "sparse topk k=0");
        CHECK(hdc_sparse_topk(q, n_q, m, n_m, blocks, 3, 1, oo, oi) == -1, "sparse topk itemsize");
        free(oo);
        free(oi);
    }
    free(m);
    free(q);
    free(cd);
    free(pr);
}

/* the inverted index against the scan: rows of `blocks` indices < bs from a small alphabet (many
 * ties), cut into segments of `segment` rows; then a damaged index and a bad query are refused */
static void test_sparse_index(size_t blocks, size_t n, size_t n_q, uint64_t bs, size_t segment,
                              int itemsize)
{
    unsigned char *m = alloc(n * blocks * itemsize), *q = alloc(n_q * blocks * itemsize);
    for (size_t i = 0; i < n * blocks; ++i) {
        uint32_t v = (uint32_t)(next64() % (bs < 3 ? bs : 3));
        memcpy(m + i * itemsize, &v, (size_t)itemsize); /* little-endian: the low bytes */
    }
    for (size_t i = 0; i < n_q; ++i) /* queries: stored rows */
        memcpy(q + i * blocks * itemsize, m + (next64() % n) * blocks * itemsize, blocks * itemsize);
    size_t n_seg = (n + segment - 1) / segment, entries = n_seg * blocks * (size_t)bs + 1;
    int64_t *off = alloc(entries * sizeof *off);
    uint16_t *post = alloc(n * blocks * sizeof *post);
    CHECK(hdc_sparse_index_build(m, n, blocks, itemsize, bs, segment, off, post) == 0, "index build");
    size_t k = n < 6 ? n : 6;
    int32_t *oo = alloc(n_q * k * sizeof *oo), *wo = alloc(n_q * k * sizeof *wo);
    int64_t *oi = alloc(n_q * k * sizeof *oi), *wi = alloc(n_q * k * sizeof *wi);
    CHECK(hdc_sparse_index_topk(q, n_q, blocks, itemsize, bs, segment, off, post, n, k, oo, oi) == 0,
          "index topk");
    CHECK(hdc_sparse_topk(q, n_q, m, n, blocks, itemsize, k, wo, wi) == 0, "index: scan topk");
    CHECK(memcmp(oo, wo, n_q * k * sizeof *oo) == 0 && memcmp(oi, wi, n_q * k * sizeof *oi) == 0,
          "index topk == scan (blocks=%zu n=%zu segment=%zu itemsize=%d)", blocks, n, segment,
          itemsize);
    if (n > 0 && blocks > 0) {
        for (size_t e = 0; e < n * blocks; ++e) /* row numbers past their segments (n < 65535) */
            post[e] = 65535;
        CHECK(hdc_sparse_index_topk(q, n_q, blocks, itemsize, bs, segment, off, post, n, k, oo, oi) ==
                  -1, "damaged postings refused");
        hdc_sparse_index_build(m, n, blocks, itemsize, bs, segment, off, post);
        for (size_t e = 1; e + 1 < entries; ++e) /* lists reaching past the postings */
            off[e] = INT64_MAX / 2;
        CHECK(hdc_sparse_index_topk(q, n_q, blocks, itemsize, bs, segment, off, post, n, k, oo, oi) ==
                  -1, "damaged offsets refused");
        uint32_t big = (uint32_t)bs;
        if (itemsize == 4 || bs < ((uint64_t)1 << (8 * itemsize))) {
            memcpy(m, &big, (size_t)itemsize);
            CHECK(hdc_sparse_index_build(m, n, blocks, itemsize, bs, segment, off, post) == -1,
                  "index >= block_size refused by the build");
        }
    }
    free(m);
    free(q);
    free(off);
    free(post);
    free(oo);
    free(wo);
    free(oi);
    free(wi);
}

int main(void)
{
    static const size_t dims[] = {1, 63, 64, 65, 127, 129, 256, 257, 520, 1000, 8191};
    static const size_t rows[] = {0, 1, 7, 33, 100};
    static const size_t queries[] = {1, 3, 8, 9, 17};
    hdc_set_parallel_threshold(0);
    int supported = hdc_isa_supported();
    if (hdc_set_isa(99) != -1 || hdc_set_isa(-1) != -1) {
        fprintf(stderr, "hdc_set_isa accepted an invalid id\n");
        return 1;
    }
    for (int isa = 0; isa < HDC_N_ISAS; ++isa) {
        if (!(supported & (1 << isa))) {
            if (hdc_set_isa(isa) != -1) {
                fprintf(stderr, "hdc_set_isa(%d) accepted an unsupported path\n", isa);
                return 1;
            }
            continue;
        }
        if (hdc_set_isa(isa) != 0 || hdc_get_isa() != isa) {
            fprintf(stderr, "hdc_set_isa(%d) failed\n", isa);
            return 1;
        }
        for (int nt = 1; nt <= 2; ++nt) {
            hdc_set_num_threads(nt);
            for (size_t d = 0; d < sizeof dims / sizeof *dims; ++d) {
                size_t dim = dims[d];
                size_t big = dim <= 1000 ? 1 : 0; /* large dims: fewer cases, same code paths */
                for (size_t r = 0; r < sizeof rows / sizeof *rows - (1 - big); ++r) {
                    test_elementwise(dim, rows[r]);
                    test_xor_reduce(dim, rows[r]);
                    if (rows[r])
                        test_counts(dim, rows[r] + (size_t)(dim == 129) * 16);
                    for (size_t qi = 0; qi < sizeof queries / sizeof *queries; qi += 2 - big)
                        test_search(dim, rows[r], queries[qi]);
                }
            }
            for (size_t d = 0; d < 4; ++d) {
                static const size_t kwta_dims[] = {1, 65, 256, 1000};
                test_kwta(kwta_dims[d], 2, 9, 33);
                test_kwta(kwta_dims[d], 2, 40, 700);
            }
            test_kwta_sparse(4, 5, 2, 9, 33, 6);          /* counting-sort index */
            test_kwta_sparse(7, 3000, 2, 40, 41, 3);      /* sorted-pair index (bs > n_k + 1024) */
            test_kwta_sparse(1, 1, 1, 5, 5, 7);           /* k > keys: fewer winners */
            test_kwta_sparse(66, 8, 1, 3, 4200, 40);      /* > 64 blocks, > 4,096 keys (bitmap) */

            static const size_t sparse_blocks[] = {1, 15, 16, 17, 31, 33, 63, 64, 65, 100, 129};
            for (size_t b = 0; b < sizeof sparse_blocks / sizeof *sparse_blocks; ++b)
                for (int it = 1; it <= 4; it *= 2) {
                    test_sparse(sparse_blocks[b], 37, 3, it);
                    test_sparse(sparse_blocks[b], 0, 2, it);
                }
            for (int it = 1; it <= 4; it *= 2) { /* past 255 vectors of 16 bytes: counter flushes */
                test_sparse(4100, 5, 2, it);
                /* query blocking (>= 4 queries per thread): partial tiles of 64 rows, query
                 * groups with remainders, blocks in several chunks of at most 255 */
                test_sparse(100, 133, 9, it);
                test_sparse(600, 70, 19, it);
                test_sparse_index(7, 150, 5, 3, 16, it);    /* many segments, many ties */
                test_sparse_index(300, 40, 2, 2, 65536, it); /* 16-bit counters */
                test_sparse_index(3, 1, 1, 5, 1, it);
            }
            printf("isa %d threads %d: done\n", isa, nt);
        }
    }
    printf("%s (%d mismatches)\n", failures ? "FAILED" : "OK", failures);
    return failures ? 1 : 0;
}
