/* pool_stress.c: many small threaded calls back to back, the pattern that once let a late worker
 * pair an old job's state with a new job's function (a unit ran twice and the caller returned
 * before the last unit finished). Built with -fsanitize=thread by tests/test_c_sanitizers.py;
 * every result is compared with a one-thread run of the same call. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "hdc.h"

static uint64_t state = 88172645463325252ull;

static uint64_t next64(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

int main(void)
{
    enum { NQ = 9, NM = 7, W = 2, K = 2, L = 40 };
    uint64_t q[NQ * W], m[NM * W], codes[L * W];
    int32_t d1[NQ * K], d2[NQ * K];
    int64_t i1[NQ * K], i2[NQ * K], w1[L * K], w2[L * K];
    int32_t wd1[L * K], wd2[L * K];
    int bad = 0, isa = hdc_isa_supported() & 4 ? 2 : hdc_isa_supported() & 2 ? 1 : 0;
    hdc_set_parallel_threshold(0);
    hdc_set_isa(isa);
    for (int t = 0; t < 20000; ++t) {
        for (int i = 0; i < NQ * W; ++i)
            q[i] = next64();
        for (int i = 0; i < NM * W; ++i)
            m[i] = next64();
        for (int i = 0; i < L * W; ++i)
            codes[i] = next64();
        hdc_set_num_threads(1);
        hdc_topk(q, NQ, m, NM, W, K, NULL, d1, i1);
        hdc_kwta_select(codes, codes, 1, L, L, W, K, NULL, wd1, w1);
        hdc_set_num_threads(2);
        hdc_topk(q, NQ, m, NM, W, K, NULL, d2, i2);
        hdc_kwta_select(codes, codes, 1, L, L, W, K, NULL, wd2, w2);
        if (memcmp(d1, d2, sizeof d1) || memcmp(i1, i2, sizeof i1) || memcmp(wd1, wd2, sizeof wd1) ||
            memcmp(w1, w2, sizeof w1))
            ++bad;
    }
    printf("%s (%d mismatches)\n", bad ? "FAILED" : "OK", bad);
    return bad ? 1 : 0;
}
