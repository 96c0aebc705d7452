/* hamming/neon.c: distances with aarch64 Advanced SIMD. Bits are counted per byte (vcntq_u8),
 * byte counts are added for up to 31 vectors (<= 248 per byte), then widened to 64-bit lanes by
 * pairwise adds (vpaddlq); an odd last word goes through the scalar popcount, so no load passes
 * the end of a row. dist_multi takes 4 queries per memory vector. */
#include "../internal.h"
#ifdef HDC_NEON
#include <arm_neon.h>

#define QB 4

static inline uint64x2_t widen(uint8x16_t bytes)
{
    return vpaddlq_u32(vpaddlq_u16(vpaddlq_u8(bytes)));
}

static inline uint8x16_t cnt_xor(const uint64_t *a, const uint64_t *b, size_t c)
{
    return vcntq_u8(vreinterpretq_u8_u64(veorq_u64(vld1q_u64(a + c), vld1q_u64(b + c))));
}

static inline uint32_t dist_row(const uint64_t *a, const uint64_t *b, size_t w)
{
    size_t full = w / 2 * 2, c = 0;
    uint64x2_t acc = vdupq_n_u64(0);
    while (c < full) {
        size_t stop = c + 2 * 31 < full ? c + 2 * 31 : full;
        uint8x16_t bytes = vdupq_n_u8(0);
        for (; c < stop; c += 2)
            bytes = vaddq_u8(bytes, cnt_xor(a, b, c));
        acc = vaddq_u64(acc, widen(bytes));
    }
    uint64_t s = vgetq_lane_u64(acc, 0) + vgetq_lane_u64(acc, 1);
    if (c < w)
        s += (uint64_t)__builtin_popcountll(a[c] ^ b[c]);
    return (uint32_t)s;
}

static void dist_multi(const uint64_t *q, const uint64_t *m, size_t n_rows, size_t w,
                       uint32_t *out)
{
    size_t full = w / 2 * 2;
    const uint64_t *q0 = q, *q1 = q + w, *q2 = q + 2 * w, *q3 = q + 3 * w;
    for (size_t r = 0; r < n_rows; ++r) {
        const uint64_t *mr = m + r * w;
        uint64x2_t a0 = vdupq_n_u64(0), a1 = a0, a2 = a0, a3 = a0;
        size_t c = 0;
        while (c < full) {
            size_t stop = c + 2 * 31 < full ? c + 2 * 31 : full;
            uint8x16_t b0 = vdupq_n_u8(0), b1 = b0, b2 = b0, b3 = b0;
            for (; c < stop; c += 2) {
                uint64x2_t mv = vld1q_u64(mr + c);
#define CNT(qj) vcntq_u8(vreinterpretq_u8_u64(veorq_u64(mv, vld1q_u64((qj) + c))))
                b0 = vaddq_u8(b0, CNT(q0));
                b1 = vaddq_u8(b1, CNT(q1));
                b2 = vaddq_u8(b2, CNT(q2));
                b3 = vaddq_u8(b3, CNT(q3));
#undef CNT
            }
            a0 = vaddq_u64(a0, widen(b0));
            a1 = vaddq_u64(a1, widen(b1));
            a2 = vaddq_u64(a2, widen(b2));
            a3 = vaddq_u64(a3, widen(b3));
        }
        uint64_t t0 = vgetq_lane_u64(a0, 0) + vgetq_lane_u64(a0, 1);
        uint64_t t1 = vgetq_lane_u64(a1, 0) + vgetq_lane_u64(a1, 1);
        uint64_t t2 = vgetq_lane_u64(a2, 0) + vgetq_lane_u64(a2, 1);
        uint64_t t3 = vgetq_lane_u64(a3, 0) + vgetq_lane_u64(a3, 1);
        if (c < w) {
            t0 += (uint64_t)__builtin_popcountll(mr[c] ^ q0[c]);
            t1 += (uint64_t)__builtin_popcountll(mr[c] ^ q1[c]);
            t2 += (uint64_t)__builtin_popcountll(mr[c] ^ q2[c]);
            t3 += (uint64_t)__builtin_popcountll(mr[c] ^ q3[c]);
        }
        out[4 * r] = (uint32_t)t0;
        out[4 * r + 1] = (uint32_t)t1;
        out[4 * r + 2] = (uint32_t)t2;
        out[4 * r + 3] = (uint32_t)t3;
    }
}

static void dist_one(const uint64_t *q, const uint64_t *m, size_t n_rows, size_t w, uint32_t *out)
{
    for (size_t r = 0; r < n_rows; ++r)
        out[r] = dist_row(q, m + r * w, w);
}

static void hamming_rows(const uint64_t *a, const uint64_t *b, uint32_t *out, size_t n_rows,
                         size_t w)
{
    for (size_t r = 0; r < n_rows; ++r)
        out[r] = dist_row(a + r * w, b + r * w, w);
}

static void popcount_rows(const uint64_t *x, uint32_t *out, size_t n_rows, size_t w)
{
    size_t full = w / 2 * 2;
    for (size_t r = 0; r < n_rows; ++r) {
        const uint64_t *xr = x + r * w;
        uint64x2_t acc = vdupq_n_u64(0);
        size_t c = 0;
        while (c < full) {
            size_t stop = c + 2 * 31 < full ? c + 2 * 31 : full;
            uint8x16_t bytes = vdupq_n_u8(0);
            for (; c < stop; c += 2)
                bytes = vaddq_u8(bytes, vcntq_u8(vreinterpretq_u8_u64(vld1q_u64(xr + c))));
            acc = vaddq_u64(acc, widen(bytes));
        }
        uint64_t s = vgetq_lane_u64(acc, 0) + vgetq_lane_u64(acc, 1);
        if (c < w)
            s += (uint64_t)__builtin_popcountll(xr[c]);
        out[r] = (uint32_t)s;
    }
}

/* the first i in [start, n) with buf[i] < thr[i % 16]: 4 lanes per step from a multiple of 4 */
static size_t find_hit(const uint32_t *buf, size_t start, size_t n, const uint32_t *thr)
{
    size_t i = start;
    for (; i < n && (i & 3); ++i)
        if (buf[i] < thr[i & 15])
            return i;
    for (; i + 4 <= n; i += 4) {
        uint32x4_t lt = vcltq_u32(vld1q_u32(buf + i), vld1q_u32(thr + (i & 15)));
        if (vmaxvq_u32(lt))
            break;
    }
    for (; i < n; ++i)
        if (buf[i] < thr[i & 15])
            return i;
    return n;
}

static void xor_words(const uint64_t *a, const uint64_t *b, uint64_t *out, size_t n, int stream)
{
    (void)stream;
    size_t i = 0;
    for (; i + 2 <= n; i += 2)
        vst1q_u64(out + i, veorq_u64(vld1q_u64(a + i), vld1q_u64(b + i)));
    if (i < n)
        out[i] = a[i] ^ b[i];
}

static void stream_copy(uint64_t *dst, const uint64_t *src, size_t n)
{
    size_t i = 0;
    for (; i + 2 <= n; i += 2)
        vst1q_u64(dst + i, vld1q_u64(src + i));
    if (i < n)
        dst[i] = src[i];
}

static void store_fence(void) {}

/* a block of 8 transposed keys as four vectors of 2 (a lane per key); lane sums by pairwise adds
 * within each 64-bit lane; the zero keys padding the last block are never reported */
static size_t kwta_scan(const uint64_t *q, const uint64_t *kt, size_t w, size_t j0, size_t j1,
                        uint32_t below, uint64_t *cand)
{
    size_t n = 0;
    for (size_t j = j0; j < j1; j += 8) {
        const uint64_t *block = kt + j / 8 * 8 * w;
        uint64x2_t acc[4] = {vdupq_n_u64(0), vdupq_n_u64(0), vdupq_n_u64(0), vdupq_n_u64(0)};
        for (size_t c = 0; c < w;) {
            size_t stop = c + 31 < w ? c + 31 : w;
            uint8x16_t b[4] = {vdupq_n_u8(0), vdupq_n_u8(0), vdupq_n_u8(0), vdupq_n_u8(0)};
            for (; c < stop; ++c) {
                uint64x2_t qc = vdupq_n_u64(q[c]);
                for (int v = 0; v < 4; ++v)
                    b[v] = vaddq_u8(b[v], vcntq_u8(vreinterpretq_u8_u64(
                                              veorq_u64(vld1q_u64(block + c * 8 + 2 * v), qc))));
            }
            for (int v = 0; v < 4; ++v)
                acc[v] = vaddq_u64(acc[v], widen(b[v]));
        }
        uint64_t d[8];
        for (int v = 0; v < 4; ++v)
            vst1q_u64(d + 2 * v, acc[v]);
        size_t live = j1 - j < 8 ? j1 - j : 8;
        for (size_t l = 0; l < live; ++l)
            if (d[l] < below)
                cand[n++] = d[l] << 32 | (j + l);
    }
    return n;
}

const hdc_ham_ops hdc_ham_neon = {"neon", QB, dist_multi, dist_one, hamming_rows, popcount_rows,
                                  find_hit, xor_words, stream_copy, store_fence, kwta_scan};
#endif
