/* bundle/avx2.c: bit-sliced counting on 256-bit AVX2 vectors. */
#include "../internal.h"
#ifdef HDC_X86
#pragma GCC target("avx2")
#define VW 4
#define COUNT_TABLE hdc_count_avx2
#include "bundle.inc"
#endif
