/* dispatch.c: the one place that picks an instruction-set path and a thread count.
 *
 * CPU features are detected once at load (CPUID leaves 1 and 7 plus XGETBV, so a path is only
 * used when the OS also saves its register state), HDC_ISA=scalar|avx2|avx512 may lower the
 * choice, and hdc_set_isa() changes it later. The active tables are read with relaxed atomics.
 */
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#ifdef HDC_X86
#include <cpuid.h>
#endif

static int g_supported = -1;       /* bitmask of runnable paths */
static int g_has_popcnt = 0;
static int g_isa = HDC_ISA_SCALAR; /* active path */
static int g_threads = 1;

static const hdc_ham_ops *g_ham = &hdc_ham_scalar;
static const hdc_count_ops *g_count = &hdc_count_scalar;
static const hdc_sparse_ops *g_sparse = &hdc_sparse_scalar;

int hdc_isa_compiled(void)
{
#ifdef HDC_X86
    return (1 << HDC_ISA_SCALAR) | (1 << HDC_ISA_AVX2) | (1 << HDC_ISA_AVX512);
#else
    return 1 << HDC_ISA_SCALAR;
#endif
}

#ifdef HDC_X86
static unsigned long long xgetbv0(void)
{
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

static void detect(void)
{
    int mask = 1 << HDC_ISA_SCALAR;
#ifdef HDC_X86
    unsigned int a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        int popcnt = (c >> 23) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
        g_has_popcnt = popcnt;
        unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
        int ymm_ok = osxsave && avx && (xcr0 & 0x6) == 0x6;
        int zmm_ok = ymm_ok && (xcr0 & 0xE0) == 0xE0;
        if (__get_cpuid_max(0, NULL) >= 7) {
            __cpuid_count(7, 0, a, b, c, d);
            int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1;
            int vpopcntdq = (c >> 14) & 1;
            if (ymm_ok && avx2 && popcnt)
                mask |= 1 << HDC_ISA_AVX2;
            if (zmm_ok && avx512f && avx512bw && vpopcntdq && popcnt)
                mask |= 1 << HDC_ISA_AVX512;
        }
    }
#endif
    g_supported = mask & hdc_isa_compiled();
}

int hdc_isa_supported(void)
{
    if (g_supported < 0)
        detect();
    return g_supported;
}

static void activate(int isa)
{
    switch (isa) {
#ifdef HDC_X86
    case HDC_ISA_AVX512:
        __atomic_store_n(&g_ham, &hdc_ham_avx512, __ATOMIC_RELAXED);
        __atomic_store_n(&g_count, &hdc_count_avx512, __ATOMIC_RELAXED);
        __atomic_store_n(&g_sparse, &hdc_sparse_avx512bw, __ATOMIC_RELAXED);
        break;
    case HDC_ISA_AVX2:
        __atomic_store_n(&g_ham, &hdc_ham_avx2, __ATOMIC_RELAXED);
        __atomic_store_n(&g_count, &hdc_count_avx2, __ATOMIC_RELAXED);
        __atomic_store_n(&g_sparse, &hdc_sparse_avx2, __ATOMIC_RELAXED);
        break;
#endif
    default:
        __atomic_store_n(&g_ham, g_has_popcnt ? &hdc_ham_scalar_popcnt : &hdc_ham_scalar,
                         __ATOMIC_RELAXED);
        __atomic_store_n(&g_count, &hdc_count_scalar, __ATOMIC_RELAXED);
        __atomic_store_n(&g_sparse, &hdc_sparse_scalar, __ATOMIC_RELAXED);
        isa = HDC_ISA_SCALAR;
    }
    __atomic_store_n(&g_isa, isa, __ATOMIC_RELAXED);
}

static int best(int mask)
{
    for (int isa = HDC_N_ISA - 1; isa > 0; --isa)
        if (mask & (1 << isa))
            return isa;
    return HDC_ISA_SCALAR;
}

__attribute__((constructor)) static void hdc_init(void)
{
    int mask = hdc_isa_supported();
    int isa = best(mask);
    const char *env = getenv("HDC_ISA");
    if (env) {
        static const char *names[HDC_N_ISA] = {"scalar", "avx2", "avx512"};
        for (int i = 0; i < HDC_N_ISA; ++i)
            if (strcmp(env, names[i]) == 0 && (mask & (1 << i)))
                isa = i;
    }
    activate(isa);
    g_threads = hdc__default_threads();
    const char *nt = getenv("HDC_NUM_THREADS");
    if (nt && atoi(nt) >= 1)
        g_threads = atoi(nt);
}

int hdc_get_isa(void) { return __atomic_load_n(&g_isa, __ATOMIC_RELAXED); }

int hdc_set_isa(int isa)
{
    if (isa < 0 || isa >= HDC_N_ISA || !(hdc_isa_supported() & (1 << isa)))
        return -1;
    activate(isa);
    return 0;
}

int hdc_get_num_threads(void) { return __atomic_load_n(&g_threads, __ATOMIC_RELAXED); }

void hdc_set_num_threads(int n)
{
    if (n < 1)
        n = 1;
    __atomic_store_n(&g_threads, n, __ATOMIC_RELAXED);
}

const hdc_ham_ops *hdc__ham(void) { return __atomic_load_n(&g_ham, __ATOMIC_RELAXED); }
const hdc_count_ops *hdc__count(void) { return __atomic_load_n(&g_count, __ATOMIC_RELAXED); }
const hdc_sparse_ops *hdc__sparse(void) { return __atomic_load_n(&g_sparse, __ATOMIC_RELAXED); }

/* below this many words of work a call stays on the calling thread (waking a team costs a few
 * microseconds, about what 30k words of popcount take) */
static size_t g_min_work = 32768;

size_t hdc_set_parallel_threshold(size_t words)
{
    return __atomic_exchange_n(&g_min_work, words, __ATOMIC_RELAXED);
}

int hdc__threads_for(double work)
{
    int n = hdc_get_num_threads();
    double min_work = (double)__atomic_load_n(&g_min_work, __ATOMIC_RELAXED);
    if (n <= 1 || work < min_work)
        return 1;
    if (min_work <= 0)
        return n;
    double most = work / (min_work / 2);
    return most < n ? ((int)most < 1 ? 1 : (int)most) : n;
}
