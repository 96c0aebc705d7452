/* elementwise/elementwise.c: hdc_bind, hdc_permute, hdc_popcount, hdc_hamming and the small dispatch
 * wrappers. bind and permute are memory-bound word loops the compiler vectorises for the
 * baseline target; rows are split between threads above a size threshold. */
#include <string.h>
#include "../internal.h"

/* outputs above this many words skip the caches (non-temporal stores) */
#define STREAM_WORDS ((size_t)1 << 20)

/* [*lo, *hi) of n items for unit u of units, on multiples of `align` */
static void range_of(size_t n, size_t u, size_t units, size_t align, size_t *lo, size_t *hi)
{
    size_t blocks = (n + align - 1) / align;
    *lo = blocks * u / units * align;
    *hi = blocks * (u + 1) / units * align;
    if (*lo > n)
        *lo = n;
    if (*hi > n)
        *hi = n;
}

static size_t units_for(size_t n, int nt)
{
    size_t units = nt > 1 ? (size_t)nt * 4 : 1;
    return units < n ? units : (n ? n : 1);
}

typedef struct {
    const hdc_ham_ops *ops;
    const uint64_t *a, *b;
    uint64_t *out;
    size_t n, units, n_words, dim, shift;
    uint32_t *out32;
    int stream;
} elem_job;

static void bind_unit(void *ctx, size_t u, int slot)
{
    const elem_job *j = ctx;
    size_t lo, hi;
    (void)slot;
    range_of(j->n, u, j->units, 8, &lo, &hi);
    if (lo < hi)
        j->ops->xor_words(j->a + lo, j->b + lo, j->out + lo, hi - lo, j->stream);
}

void hdc_bind(const uint64_t *a, const uint64_t *b, uint64_t *out, size_t n)
{
    int nt = hdc__threads_for((double)n / 2);
    elem_job j = {hdc__ham(), a, b, out, n, units_for((n + 7) / 8, nt), 0, 0, 0, NULL,
                  n >= STREAM_WORDS};
    hdc__parallel(j.units, nt, bind_unit, &j);
}

/* Large outputs skip the caches with non-temporal stores written as the words are computed, so
 * the reads of x and the writes overlap (SSE2, part of the x86-64 baseline). */
#ifdef __x86_64__
#include <emmintrin.h>
#define PERMUTE_STREAM 1
#else
#define PERMUTE_STREAM 0
#endif

static inline void put(uint64_t *p, uint64_t v, int stream)
{
#if PERMUTE_STREAM
    if (stream) {
        _mm_stream_si64((long long *)p, (long long)v);
        return;
    }
#endif
    (void)stream;
    *p = v;
}

/* up to 64 bits of row x (w words) from bit `start`; bits past the row read as 0 */
static inline uint64_t read64(const uint64_t *x, size_t w, size_t start)
{
    size_t k = start >> 6, o = start & 63;
    uint64_t v = x[k] >> o;
    if (o && k + 1 < w)
        v |= x[k + 1] << (64 - o);
    return v;
}

static inline uint64_t low_mask(size_t n) { return n >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1); }

/* output word j of the rotation, the general way (any j; 0 <= shift < dim) */
static inline uint64_t rotated_word(const uint64_t *x, size_t w, size_t dim, size_t shift, size_t j)
{
    size_t first = 64 * j;
    size_t width = dim - first < 64 ? dim - first : 64;
    size_t s1 = first + dim - shift; /* (first - shift) mod dim, without a division */
    if (s1 >= dim)
        s1 -= dim;
    size_t len1 = dim - s1 < width ? dim - s1 : width;
    uint64_t v = read64(x, w, s1) & low_mask(len1);
    if (len1 < width)
        v |= (read64(x, w, 0) & low_mask(width - len1)) << len1;
    return v;
}

/* out[j] = the 64 source bits from bit 64 (k0 + j - j0) + o, for j in [j0, j1). The caller
 * guarantees those bits lie inside the row's valid bits, so when o != 0 the second word read
 * (the one holding the last bit) exists too. */
static inline void funnel(const uint64_t *x, uint64_t *out, size_t j0, size_t j1, size_t k0,
                          unsigned o, int stream)
{
    if (j1 <= j0)
        return;
    const uint64_t *s = x + k0;
    size_t n = j1 - j0, d = 0;
    uint64_t *dst = out + j0;
#if PERMUTE_STREAM
    if (stream) {
        if ((uintptr_t)dst & 15) {
            put(dst, o ? (s[0] >> o) | (s[1] << (64 - o)) : s[0], 1);
            d = 1;
        }
        if (o == 0) {
            for (; d + 2 <= n; d += 2)
                _mm_stream_si128((__m128i *)(dst + d), _mm_loadu_si128((const __m128i *)(s + d)));
        } else {
            __m128i right = _mm_cvtsi32_si128((int)o), left = _mm_cvtsi32_si128(64 - (int)o);
            for (; d + 2 <= n; d += 2) {
                __m128i lo = _mm_srl_epi64(_mm_loadu_si128((const __m128i *)(s + d)), right);
                __m128i hi = _mm_sll_epi64(_mm_loadu_si128((const __m128i *)(s + d + 1)), left);
                _mm_stream_si128((__m128i *)(dst + d), _mm_or_si128(lo, hi));
            }
        }
        for (; d < n; ++d)
            put(dst + d, o ? (s[d] >> o) | (s[d + 1] << (64 - o)) : s[d], 1);
        return;
    }
#endif
    (void)stream;
    if (o == 0) {
        memcpy(dst, s, n * sizeof *dst);
        return;
    }
    for (; d < n; ++d)
        dst[d] = (s[d] >> o) | (s[d + 1] << (64 - o));
}

/* Output bit i takes input bit (i - shift) mod dim. Words j with 64 j + 64 <= shift read a run
 * starting at dim - shift + 64 j; words with 64 j >= shift and 64 j + 64 <= dim read from
 * 64 j - shift. Both runs end inside [0, dim), so one funnel shift per word covers them; the
 * word straddling the shift point and a partial last word take the general path. */
static void permute_row(const uint64_t *x, uint64_t *out, size_t w, size_t dim, size_t shift,
                        int stream)
{
    size_t pre = shift / 64;          /* words [0, pre): first region */
    size_t post0 = (shift + 63) / 64; /* words [post0, post1): second region */
    size_t post1 = dim / 64;
    size_t a = dim - shift;
    funnel(x, out, 0, pre, a >> 6, (unsigned)(a & 63), stream);
    for (size_t j = pre; j < post0; ++j)
        put(out + j, rotated_word(x, w, dim, shift, j), stream);
    if (post1 > post0) {
        size_t b = 64 * post0 - shift;
        funnel(x, out, post0, post1, b >> 6, (unsigned)(b & 63), stream);
    } else {
        post1 = post0;
    }
    for (size_t j = post1; j < w; ++j)
        put(out + j, rotated_word(x, w, dim, shift, j), stream);
}

static void permute_unit(void *ctx, size_t u, int slot)
{
    const elem_job *j = ctx;
    size_t r0, r1, w = j->n_words;
    (void)slot;
    range_of(j->n, u, j->units, 1, &r0, &r1);
    for (size_t r = r0; r < r1; ++r)
        permute_row(j->a + r * w, j->out + r * w, w, j->dim, j->shift, j->stream);
#if PERMUTE_STREAM
    if (j->stream)
        _mm_sfence();
#endif
}

void hdc_permute(const uint64_t *x, uint64_t *out, size_t n_rows, size_t n_words, size_t dim,
                 size_t shift)
{
    if (n_rows == 0 || n_words == 0 || dim == 0)
        return;
    if (n_words != (dim + 63) / 64)
        return; /* inconsistent sizes: write nothing rather than guess */
    int nt = hdc__threads_for((double)n_rows * (double)n_words / 2);
    elem_job j = {hdc__ham(), x, NULL, out, n_rows, units_for(n_rows, nt), n_words, dim,
                  shift % dim, NULL, PERMUTE_STREAM && n_rows * n_words >= STREAM_WORDS};
    hdc__parallel(j.units, nt, permute_unit, &j);
}

static void popcount_unit(void *ctx, size_t u, int slot)
{
    const elem_job *j = ctx;
    size_t r0, r1;
    (void)slot;
    range_of(j->n, u, j->units, 1, &r0, &r1);
    if (r0 < r1)
        j->ops->popcount_rows(j->a + r0 * j->n_words, j->out32 + r0, r1 - r0, j->n_words);
}

void hdc_popcount(const uint64_t *x, int32_t *out, size_t n_rows, size_t n_words)
{
    int nt = hdc__threads_for((double)n_rows * (double)n_words);
    /* counts < 2^31 (hdc.h), so the tables' uint32 results are the int32 values */
    elem_job j = {hdc__ham(), x, NULL, NULL, n_rows, units_for(n_rows, nt), n_words, 0, 0,
                  (uint32_t *)out, 0};
    hdc__parallel(n_rows ? j.units : 0, nt, popcount_unit, &j);
}

static void hamming_unit(void *ctx, size_t u, int slot)
{
    const elem_job *j = ctx;
    size_t r0, r1, w = j->n_words;
    (void)slot;
    range_of(j->n, u, j->units, 1, &r0, &r1);
    if (r0 < r1)
        j->ops->hamming_rows(j->a + r0 * w, j->b + r0 * w, j->out32 + r0, r1 - r0, w);
}

void hdc_hamming(const uint64_t *a, const uint64_t *b, int32_t *out, size_t n_rows,
                 size_t n_words)
{
    int nt = hdc__threads_for((double)n_rows * (double)n_words);
    elem_job j = {hdc__ham(), a, b, NULL, n_rows, units_for(n_rows, nt), n_words, 0, 0,
                  (uint32_t *)out, 0};
    hdc__parallel(n_rows ? j.units : 0, nt, hamming_unit, &j);
}
