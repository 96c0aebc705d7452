/* bundle/avx512.c: bit-sliced counting on 512-bit vectors (the CSA pairs compile to vpternlogq);
 * counts are expanded with masked adds, 8 columns per instruction. */
#include "../internal.h"
#ifdef HDC_X86
#pragma GCC target("avx512f,avx512bw")
#include <immintrin.h>
#define VW 8
#define COUNT_TABLE hdc_count_avx512
#define HDC_EXPAND_DEFINED 1

static void expand(const uint64_t *sl, int n_slices, size_t ncols, uint64_t scale,
                   int64_t *counts)
{
    __m512i add[64];
    for (int s = 0; s < n_slices; ++s)
        add[s] = _mm512_set1_epi64((long long)(scale << s));
    for (size_t c = 0; c < ncols; ++c) {
        for (int B = 0; B < 8; ++B) {
            int64_t *p = counts + 64 * c + 8 * B;
            __m512i acc = _mm512_loadu_si512(p);
            for (int s = 0; s < n_slices; ++s) {
                __mmask8 k = (__mmask8)(sl[s * ncols + c] >> (8 * B));
                acc = _mm512_mask_add_epi64(acc, k, acc, add[s]);
            }
            _mm512_storeu_si512(p, acc);
        }
    }
}
#include "bundle.inc"
#endif
