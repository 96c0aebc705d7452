/* hamming/scalar.c: portable popcount distances (no special instructions). */
#define HAM_TABLE hdc_ham_scalar
#include "scalar.inc"
