/* dispatch.c: the one place that picks an instruction-set path and a thread count.
 *
 * Each path needs a set of CPU features; every feature bit is tested on its own (CPUID leaves 1
 * and 7, XGETBV for the OS-saved YMM/ZMM state; on aarch64 the HWCAP_ASIMD bit), once at load,
 * and the best runnable path becomes active. hdc_set_isa() changes it later (Python's
 * hdc.set_isa and the HDC_ISA variable, applied by hdc/backend.py with an error when this CPU
 * cannot run the path, go through it). The active tables
 * are read with relaxed atomics.
 */
#include <stdlib.h>
#include "internal.h"
#ifdef HDC_X86
#include <cpuid.h>
#endif
#if defined(HDC_NEON) && defined(__linux__)
#include <sys/auxv.h>
#endif

static int g_features = -1;        /* HDC_CPU_* bits */
static int g_isa = HDC_ISA_SCALAR; /* active path */
static int g_threads = 1;
/* the calling thread's cap on hdc__threads_for (0: none), for callers that run kernels from
 * several threads at once (shards of one process: each takes its share of the cores) */
static __thread int t_thread_limit;

static const hdc_ham_ops *g_ham = &hdc_ham_scalar;
static const hdc_count_ops *g_count = &hdc_count_scalar;
static const hdc_sparse_ops *g_sparse = &hdc_sparse_scalar;

/* the features each path needs */
static const int NEEDS[HDC_N_ISA] = {
    [HDC_ISA_SCALAR] = 0,
    [HDC_ISA_AVX2] = HDC_CPU_POPCNT | HDC_CPU_AVX2 | HDC_CPU_OS_YMM,
    [HDC_ISA_AVX512BW] = HDC_CPU_POPCNT | HDC_CPU_AVX2 | HDC_CPU_OS_YMM | HDC_CPU_AVX512F |
                         HDC_CPU_AVX512BW | HDC_CPU_AVX512VL | HDC_CPU_OS_ZMM,
    [HDC_ISA_AVX512VPOPCNT] = HDC_CPU_POPCNT | HDC_CPU_AVX2 | HDC_CPU_OS_YMM | HDC_CPU_AVX512F |
                              HDC_CPU_AVX512BW | HDC_CPU_AVX512VL | HDC_CPU_OS_ZMM |
                              HDC_CPU_AVX512VPOPCNTDQ,
    [HDC_ISA_NEON] = HDC_CPU_ASIMD,
};

int hdc_isa_needs(int isa) { return isa >= 0 && isa < HDC_N_ISA ? NEEDS[isa] : -1; }

int hdc_isa_compiled(void)
{
#if defined(HDC_X86)
    return (1 << HDC_ISA_SCALAR) | (1 << HDC_ISA_AVX2) | (1 << HDC_ISA_AVX512BW) |
           (1 << HDC_ISA_AVX512VPOPCNT);
#elif defined(HDC_NEON)
    return (1 << HDC_ISA_SCALAR) | (1 << HDC_ISA_NEON);
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

static int detect(void)
{
    int f = 0;
#ifdef HDC_X86
    unsigned int a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
        if ((c >> 23) & 1)
            f |= HDC_CPU_POPCNT;
        unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
        /* XMM|YMM state; then opmask, ZMM_Hi256 and Hi16_ZMM */
        if (osxsave && avx && (xcr0 & 0x6) == 0x6) {
            f |= HDC_CPU_OS_YMM;
            if ((xcr0 & 0xE0) == 0xE0)
                f |= HDC_CPU_OS_ZMM;
        }
        if (__get_cpuid_max(0, NULL) >= 7) {
            __cpuid_count(7, 0, a, b, c, d);
            f |= ((b >> 5) & 1) ? HDC_CPU_AVX2 : 0;
            f |= ((b >> 16) & 1) ? HDC_CPU_AVX512F : 0;
            f |= ((b >> 30) & 1) ? HDC_CPU_AVX512BW : 0;
            f |= ((b >> 31) & 1) ? HDC_CPU_AVX512VL : 0;
            f |= ((c >> 14) & 1) ? HDC_CPU_AVX512VPOPCNTDQ : 0;
        }
    }
#elif defined(HDC_NEON)
#if defined(__linux__) && defined(HWCAP_ASIMD)
    if (getauxval(AT_HWCAP) & HWCAP_ASIMD)
        f |= HDC_CPU_ASIMD;
#else
    f |= HDC_CPU_ASIMD; /* Advanced SIMD is part of every AArch64 CPU */
#endif
#endif
    return f;
}

int hdc_cpu_features(void)
{
    int f = __atomic_load_n(&g_features, __ATOMIC_RELAXED);
    if (f < 0) {
        f = detect();
        __atomic_store_n(&g_features, f, __ATOMIC_RELAXED);
    }
    return f;
}

int hdc_isa_supported(void)
{
    int f = hdc_cpu_features(), mask = 0;
    for (int isa = 0; isa < HDC_N_ISA; ++isa)
        if ((f & NEEDS[isa]) == NEEDS[isa])
            mask |= 1 << isa;
    return mask & hdc_isa_compiled();
}

static void activate(int isa)
{
    const hdc_ham_ops *ham = hdc_cpu_features() & HDC_CPU_POPCNT ? &hdc_ham_scalar_popcnt
                                                                  : &hdc_ham_scalar;
    const hdc_count_ops *count = &hdc_count_scalar;
    const hdc_sparse_ops *sparse = &hdc_sparse_scalar;
    switch (isa) {
#ifdef HDC_X86
    case HDC_ISA_AVX512VPOPCNT:
        ham = &hdc_ham_avx512vpopcnt, count = &hdc_count_avx512bw, sparse = &hdc_sparse_avx512bw;
        break;
    case HDC_ISA_AVX512BW:
        ham = &hdc_ham_avx512bw, count = &hdc_count_avx512bw, sparse = &hdc_sparse_avx512bw;
        break;
    case HDC_ISA_AVX2:
        ham = &hdc_ham_avx2, count = &hdc_count_avx2, sparse = &hdc_sparse_avx2;
        break;
#endif
#ifdef HDC_NEON
    case HDC_ISA_NEON:
        ham = &hdc_ham_neon, count = &hdc_count_neon, sparse = &hdc_sparse_neon;
        break;
#endif
    default:
        isa = HDC_ISA_SCALAR;
    }
    __atomic_store_n(&g_ham, ham, __ATOMIC_RELAXED);
    __atomic_store_n(&g_count, count, __ATOMIC_RELAXED);
    __atomic_store_n(&g_sparse, sparse, __ATOMIC_RELAXED);
    __atomic_store_n(&g_isa, isa, __ATOMIC_RELAXED);
}

/* the best path in mask: the one needing the most features (ids ascend by speed per arch) */
static int best(int mask)
{
    for (int isa = HDC_N_ISA - 1; isa > 0; --isa)
        if (mask & (1 << isa))
            return isa;
    return HDC_ISA_SCALAR;
}

__attribute__((constructor)) static void hdc_init(void)
{
    activate(best(hdc_isa_supported()));
    g_threads = hdc__default_threads();
    /* for C programs linking the library directly (Python sets the count itself) */
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

int hdc_get_thread_limit(void) { return t_thread_limit; }

void hdc_set_thread_limit(int n) { t_thread_limit = n < 0 ? 0 : n; }

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
    if (t_thread_limit > 0 && t_thread_limit < n)
        n = t_thread_limit;
    double min_work = (double)__atomic_load_n(&g_min_work, __ATOMIC_RELAXED);
    if (n <= 1 || work < min_work)
        return 1;
    if (min_work <= 0)
        return n;
    double most = work / (min_work / 2);
    return most < n ? ((int)most < 1 ? 1 : (int)most) : n;
}
