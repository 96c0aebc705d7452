/* bundle/scalar.c: bit-sliced counting on plain 64-bit words (pairs of them per step). */
#define VW 2
#define COUNT_TABLE hdc_count_scalar
#include "bundle.inc"
