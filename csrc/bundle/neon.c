/* bundle/neon.c: bit-sliced counting on aarch64 Advanced SIMD (two 128-bit registers per step;
 * the CSA logic compiles to eor/and/orr/bsl on q registers). */
#include "../internal.h"
#ifdef HDC_NEON
#define VW 4
#define COUNT_TABLE hdc_count_neon
#include "bundle.inc"
#endif
