/* pool.c: the thread pool behind every parallel kernel.
 *
 * A call is split into units; the caller and the pool's workers claim units with one atomic
 * counter and the caller waits only for units that were claimed and are still running. A
 * worker that the OS has not scheduled yet therefore never delays a call (with OpenMP's
 * fork-join every team thread must arrive at the closing barrier: on a busy 2-core machine a
 * 30 us bundle took 24 ms). Workers spin briefly after a job, then sleep on a condition variable.
 *
 * Claims carry the job's generation in the same 64-bit word as the unit counter, and a new job
 * first closes the old counter under a fresh generation before its function and context are
 * written, so a worker that wakes late can never claim a unit with a mismatched job.
 * One job at a time uses the pool; a concurrent caller (another Python thread) runs its units
 * itself. Unit u is always processed by exactly one thread; `slot` (0 for the caller, 1.. for
 * workers, always < the requested thread count) lets callers keep per-thread scratch, and each
 * slot claims its units in increasing order.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"

#define MAX_WORKERS 255
#define SPIN_CLAIMS 4000 /* polls of the job word before a worker sleeps */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;  /* guards workers and sleeping */
static pthread_cond_t g_wake = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t g_busy = PTHREAD_MUTEX_INITIALIZER;  /* held by the job's caller */
static int g_workers;                                       /* started workers */

/* the current job; fields are written before `g_state` is published (release) */
static hdc_task_fn g_fn;
static void *g_ctx;
static size_t g_units;
static int g_slots;                 /* threads that may take part (slots 0 .. g_slots - 1) */
static uint64_t g_state;            /* generation << 32 | next unit to claim */
static size_t g_done;               /* units finished in this generation */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Under load a worker can be preempted in the middle of a unit, and the caller then waits for
 * it, for a whole scheduler time slice at worst: on a 2-core machine with a busy core, 2-thread
 * bundles took 3x and single-query scans 4x the 1-thread time. So the caller times each threaded
 * call: when the team was slower than the caller alone would have been (its own units' time
 * scaled to all units), the next `g_backoff` calls run on the caller only, doubling up to
 * MAX_BACKOFF while that repeats; a call where the team pays off halves it again. The serial
 * spell also ends after BACKOFF_NS per serial call owed (at most MAX_SPELL_NS): load comes and
 * goes in time, not in calls, and a program making few large calls (a benchmark alternating
 * with another library whose threads spin after each call) otherwise ran 1-threaded for
 * hundreds of calls after one slow one. */
#define MAX_BACKOFF 256
#define BACKOFF_NS 10000000LL    /* 10 ms */
#define MAX_SPELL_NS 2000000000LL /* 2 s */
static int g_backoff;     /* serial calls to make after the next slow threaded one */
static int g_serial_left; /* serial calls still to make */
static int64_t g_serial_until; /* ... while CLOCK_MONOTONIC (ns) is before this */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + (int64_t)ts.tv_nsec;
}

/* claim and run units of generation `gen` as `slot`; returns how many it ran */
static size_t run_units(uint32_t gen, int slot)
{
    size_t ran = 0;
    for (;;) {
        uint64_t st = __atomic_load_n(&g_state, __ATOMIC_ACQUIRE);
        if ((uint32_t)(st >> 32) != gen)
            return ran;
        size_t unit = (size_t)(uint32_t)st;
        /* relaxed reads: if a later job overwrote them, the claim below fails */
        hdc_task_fn fn = __atomic_load_n(&g_fn, __ATOMIC_RELAXED);
        void *ctx = __atomic_load_n(&g_ctx, __ATOMIC_RELAXED);
        size_t units = __atomic_load_n(&g_units, __ATOMIC_RELAXED);
        if (unit >= units || slot >= __atomic_load_n(&g_slots, __ATOMIC_RELAXED))
            return ran;
        if (!__atomic_compare_exchange_n(&g_state, &st, st + 1, 0, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
            continue;
        fn(ctx, unit, slot);
        ++ran;
        __atomic_add_fetch(&g_done, 1, __ATOMIC_RELEASE);
    }
}

static void *worker_main(void *arg)
{
    int slot = (int)(intptr_t)arg;
    uint32_t seen = (uint32_t)(__atomic_load_n(&g_state, __ATOMIC_ACQUIRE) >> 32);
    for (;;) {
        uint32_t gen = seen;
        for (int i = 0; i < SPIN_CLAIMS && gen == seen; ++i) {
            cpu_relax();
            gen = (uint32_t)(__atomic_load_n(&g_state, __ATOMIC_ACQUIRE) >> 32);
        }
        if (gen == seen) {
            pthread_mutex_lock(&g_lock);
            while ((gen = (uint32_t)(__atomic_load_n(&g_state, __ATOMIC_ACQUIRE) >> 32)) == seen)
                pthread_cond_wait(&g_wake, &g_lock);
            pthread_mutex_unlock(&g_lock);
        }
        seen = gen;
        run_units(gen, slot);
    }
    return NULL;
}

/* A forked child has none of the parent's worker threads, and a lock some other parent thread
 * held stays held: start the child with an empty pool and fresh locks. */
static void pool_after_fork_child(void)
{
    g_workers = 0;
    pthread_mutex_init(&g_lock, NULL);
    pthread_cond_init(&g_wake, NULL);
    pthread_mutex_init(&g_busy, NULL);
}

static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, pool_after_fork_child);
}

/* start workers up to n (caller holds g_busy); returns how many run */
static int ensure_workers(int n)
{
    if (n > MAX_WORKERS)
        n = MAX_WORKERS;
    pthread_once(&g_atfork_once, register_atfork);
    pthread_mutex_lock(&g_lock);
    while (g_workers < n) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 1 << 20);
        int rc = pthread_create(&th, &attr, worker_main, (void *)(intptr_t)(g_workers + 1));
        pthread_attr_destroy(&attr);
        if (rc != 0)
            break;
        ++g_workers;
    }
    int have = g_workers;
    pthread_mutex_unlock(&g_lock);
    return have;
}

void hdc__parallel(size_t units, int n_threads, hdc_task_fn fn, void *ctx)
{
    if (units == 0)
        return;
    /* (the unit counter is the low 32 bits of g_state) */
    int serial = n_threads <= 1 || units == 1 || units >= UINT32_MAX;
    if (!serial && __atomic_load_n(&g_serial_left, __ATOMIC_RELAXED) > 0) {
        if (now_ns() < __atomic_load_n(&g_serial_until, __ATOMIC_RELAXED)) {
            __atomic_sub_fetch(&g_serial_left, 1, __ATOMIC_RELAXED);
            serial = 1;
        } else {
            __atomic_store_n(&g_serial_left, 0, __ATOMIC_RELAXED); /* the spell has expired */
        }
    }
    if (serial || pthread_mutex_trylock(&g_busy) != 0) {
        /* serial, or the pool is busy with another caller's job: do it all here */
        for (size_t u = 0; u < units; ++u)
            fn(ctx, u, 0);
        return;
    }
    int workers = ensure_workers(n_threads - 1);
    if (workers == 0) {
        pthread_mutex_unlock(&g_busy);
        for (size_t u = 0; u < units; ++u)
            fn(ctx, u, 0);
        return;
    }
    /* First close the finished job under a new generation, then write the job: a worker that
     * read the old state before this cannot claim with it any more (its compare-exchange fails),
     * so it can never pair the old state with a half-written job (that ran a unit of the new job
     * unsynchronised, and counted it in g_done, which let the caller return early). A worker
     * that reads this closing state finds no unit to claim and waits for the next generation. */
    uint32_t gen = (uint32_t)(__atomic_load_n(&g_state, __ATOMIC_RELAXED) >> 32) + 1;
    __atomic_exchange_n(&g_state, (uint64_t)gen << 32 | UINT32_MAX, __ATOMIC_ACQ_REL);
    __atomic_store_n(&g_fn, fn, __ATOMIC_RELAXED);
    __atomic_store_n(&g_ctx, ctx, __ATOMIC_RELAXED);
    __atomic_store_n(&g_units, units, __ATOMIC_RELAXED);
    __atomic_store_n(&g_slots, n_threads, __ATOMIC_RELAXED);
    __atomic_store_n(&g_done, 0, __ATOMIC_RELAXED);
    ++gen;
    pthread_mutex_lock(&g_lock);
    __atomic_store_n(&g_state, (uint64_t)gen << 32, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&g_wake);
    pthread_mutex_unlock(&g_lock);
    double t0 = now_s();
    size_t mine = run_units(gen, 0);
    double t1 = now_s();
    /* every unit is claimed: wait for the ones still running elsewhere */
    for (unsigned spins = 0; __atomic_load_n(&g_done, __ATOMIC_ACQUIRE) < units; ++spins) {
        if (spins < 4096)
            cpu_relax();
        else
            sched_yield();
    }
    if (mine < units) {
        /* the team helped: compare with the caller alone (its pace over all units); a caller
         * that got no unit at all was preempted by its own workers */
        int backoff = __atomic_load_n(&g_backoff, __ATOMIC_RELAXED);
        if (mine == 0 || now_s() - t0 > (t1 - t0) * (double)units / (double)mine) {
            backoff = backoff ? (backoff < MAX_BACKOFF ? 2 * backoff : MAX_BACKOFF) : 4;
            int64_t spell = (int64_t)backoff * BACKOFF_NS;
            __atomic_store_n(&g_serial_until, now_ns() + (spell < MAX_SPELL_NS ? spell : MAX_SPELL_NS),
                             __ATOMIC_RELAXED);
            __atomic_store_n(&g_serial_left, backoff, __ATOMIC_RELAXED);
        } else {
            backoff /= 2;
        }
        __atomic_store_n(&g_backoff, backoff, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&g_busy);
}

int hdc__default_threads(void)
{
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n >= 1)
            return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 1 ? (int)n : 1;
}

/* a forked child has no workers: forget them, and reset the locks the parent may have held */
static void after_fork_child(void)
{
    pthread_mutex_init(&g_lock, NULL);
    pthread_mutex_init(&g_busy, NULL);
    pthread_cond_init(&g_wake, NULL);
    g_workers = 0;
}

__attribute__((constructor)) static void pool_init(void)
{
    pthread_atfork(NULL, NULL, after_fork_child);
}
