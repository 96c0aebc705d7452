/* elementwise.c: hdc_bind, hdc_permute, hdc_popcount, hdc_hamming and the small dispatch
 * wrappers. bind and permute are memory-bound word loops the compiler vectorises for the
 * baseline target; rows are split between threads above a size threshold. */
#include <string.h>
#include "internal.h"

/* outputs above this many words skip the caches (non-temporal stores) */
#define STREAM_WORDS ((size_t)1 << 20)

void hdc_bind(const uint64_t *a, const uint64_t *b, uint64_t *out, size_t n)
{
    const hdc_ham_ops *ops = hdc__ham();
    int stream = n >= STREAM_WORDS;
    int nt = hdc__threads_for((double)n / 2);
#pragma omp parallel for num_threads(nt) schedule(static, 1) if (nt > 1)
    for (int t = 0; t < nt; ++t) {
        /* chunk bounds on 8-word (cache line) multiples */
        size_t blocks = (n + 7) / 8;
        size_t i0 = blocks * (size_t)t / (size_t)nt * 8, i1 = blocks * (size_t)(t + 1) / (size_t)nt * 8;
        if (i1 > n)
            i1 = n;
        if (i0 < i1)
            ops->xor_words(a + i0, b + i0, out + i0, i1 - i0, stream);
    }
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

/* output word j of the rotation, the general way (any j) */
static inline uint64_t rotated_word(const uint64_t *x, size_t w, size_t dim, size_t shift, size_t j)
{
    size_t first = 64 * j;
    size_t width = dim - first < 64 ? dim - first : 64;
    size_t s1 = (first + dim - shift) % dim;
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
                          unsigned o)
{
    if (j1 <= j0)
        return;
    const uint64_t *s = x + k0;
    size_t n = j1 - j0;
    uint64_t *dst = out + j0;
    if (o == 0) {
        memcpy(dst, s, n * sizeof *dst);
        return;
    }
    for (size_t d = 0; d < n; ++d)
        dst[d] = (s[d] >> o) | (s[d + 1] << (64 - o));
}

/* Output bit i takes input bit (i - shift) mod dim. Words j with 64 j + 64 <= shift read a run
 * starting at dim - shift + 64 j; words with 64 j >= shift and 64 j + 64 <= dim read from
 * 64 j - shift. Both runs end inside [0, dim), so one funnel shift per word covers them; the
 * word straddling the shift point and a partial last word take the general path. */
static void permute_row(const uint64_t *x, uint64_t *out, size_t w, size_t dim, size_t shift)
{
    size_t pre = shift / 64;          /* words [0, pre): first region */
    size_t post0 = (shift + 63) / 64; /* words [post0, post1): second region */
    size_t post1 = dim / 64;
    size_t a = dim - shift;
    funnel(x, out, 0, pre, a >> 6, (unsigned)(a & 63));
    for (size_t j = pre; j < post0; ++j)
        out[j] = rotated_word(x, w, dim, shift, j);
    if (post1 > post0) {
        size_t b = 64 * post0 - shift;
        funnel(x, out, post0, post1, b >> 6, (unsigned)(b & 63));
    } else {
        post1 = post0;
    }
    for (size_t j = post1; j < w; ++j)
        out[j] = rotated_word(x, w, dim, shift, j);
}

/* rows up to this many words are rotated into a stack buffer, then streamed out */
#define PERMUTE_BUF_WORDS 2048

void hdc_permute(const uint64_t *x, uint64_t *out, size_t n_rows, size_t n_words, size_t dim,
                 size_t shift)
{
    if (n_rows == 0 || n_words == 0 || dim == 0)
        return;
    if (n_words != (dim + 63) / 64)
        return; /* inconsistent sizes: write nothing rather than guess */
    shift %= dim;
    const hdc_ham_ops *ops = hdc__ham();
    int stream = n_rows * n_words >= STREAM_WORDS && n_words <= PERMUTE_BUF_WORDS;
    int nt = hdc__threads_for((double)n_rows * (double)n_words / 2);
#pragma omp parallel for num_threads(nt) schedule(static, 1) if (nt > 1)
    for (int t = 0; t < nt; ++t) {
        uint64_t buf[PERMUTE_BUF_WORDS];
        size_t r0 = n_rows * (size_t)t / (size_t)nt, r1 = n_rows * (size_t)(t + 1) / (size_t)nt;
        for (size_t r = r0; r < r1; ++r) {
            if (stream) {
                permute_row(x + r * n_words, buf, n_words, dim, shift);
                ops->stream_copy(out + r * n_words, buf, n_words);
            } else {
                permute_row(x + r * n_words, out + r * n_words, n_words, dim, shift);
            }
        }
        if (stream)
            ops->store_fence();
    }
}

void hdc_popcount(const uint64_t *x, uint32_t *out, size_t n_rows, size_t n_words)
{
    const hdc_ham_ops *ops = hdc__ham();
    int nt = hdc__threads_for((double)n_rows * (double)n_words);
#pragma omp parallel for num_threads(nt) schedule(static, 1) if (nt > 1)
    for (int t = 0; t < nt; ++t) {
        size_t r0 = n_rows * (size_t)t / (size_t)nt, r1 = n_rows * (size_t)(t + 1) / (size_t)nt;
        ops->popcount_rows(x + r0 * n_words, out + r0, r1 - r0, n_words);
    }
}

void hdc_hamming(const uint64_t *a, const uint64_t *b, uint32_t *out, size_t n_rows,
                 size_t n_words)
{
    const hdc_ham_ops *ops = hdc__ham();
    int nt = hdc__threads_for((double)n_rows * (double)n_words);
#pragma omp parallel for num_threads(nt) schedule(static, 1) if (nt > 1)
    for (int t = 0; t < nt; ++t) {
        size_t r0 = n_rows * (size_t)t / (size_t)nt, r1 = n_rows * (size_t)(t + 1) / (size_t)nt;
        ops->hamming_rows(a + r0 * n_words, b + r0 * n_words, out + r0, r1 - r0, n_words);
    }
}
