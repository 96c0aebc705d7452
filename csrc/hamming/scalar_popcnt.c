/* hamming/scalar_popcnt.c: the scalar kernels compiled for the POPCNT instruction; dispatch.c
 * uses them for the scalar path when CPUID reports POPCNT. Elsewhere this file is a copy of
 * scalar.c's table. */
#include "../internal.h"
#ifdef HDC_X86
#pragma GCC target("popcnt")
#endif
#define HAM_TABLE hdc_ham_scalar_popcnt
#include "scalar.inc"
