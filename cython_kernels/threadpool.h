/* edgecnn's persistent worker pool for the packed kernels (gemm_s8.h), in place of an OpenMP
 * team. Why: on a loaded 2-core machine a fork-join team's end barrier waits for every thread
 * to be scheduled, so a call cost a whole time slice (18 ms measured) whenever another
 * process held the second core. Here the calling thread claims chunks itself and never waits
 * for a worker that has not started: it waits only for chunks a worker has already claimed.
 * Workers spin briefly after a job (cheap hand-over between layers), then sleep on a condition
 * variable, so they do not steal a core from other engines between calls.
 * Chunks are claimed with one 64-bit CAS on (job generation << 32 | next index), so a worker
 * late from an earlier job can never claim a chunk of a later one.
 * One pool per process: every extension module includes this header, so each would own a pool
 * of its own, and on 2 cores the workers of one module would still spin while another's start
 * (a conv layer followed by a dense one). conv.pyx exports its ec_pool_run_local in a capsule
 * (pool_capsule()); the other modules call ec_pool_adopt() with it at import.
 */
#ifndef EDGECNN_THREADPOOL_H
#define EDGECNN_THREADPOOL_H

#include <stdint.h>

typedef void (*ec_task_fn)(void *ctx, int index, int slot); /* slot: 0 caller, 1.. workers */
typedef void (*ec_pool_run_fn)(ec_task_fn fn, void *ctx, int total, int nthreads);

#if defined(_WIN32)
#define EC_POOL_MAX 1
static int ec_pool_slots(int want) { (void)want; return 1; }
static void ec_pool_run_local(ec_task_fn fn, void *ctx, int total, int nthreads) {
    int i;
    (void)nthreads;
    for (i = 0; i < total; i++) fn(ctx, i, 0);
}
#else
#include <pthread.h>
#include <sched.h>
#include <time.h>

#define EC_POOL_MAX 64
#define EC_POOL_SPIN_NS 200000 /* a worker spins this long after its last chunk, then sleeps */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started;               /* workers running */
    uint32_t gen;              /* job generation (under mu, and in state) */
    uint64_t state;            /* gen << 32 | next chunk (atomic) */
    int total;                 /* chunks of the current job */
    int done;                  /* chunks finished (atomic) */
    int wanted;                /* workers asked to help in this job */
    ec_task_fn fn;
    void *ctx;
} ec_pool_t;

static ec_pool_t ec_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0,
                            0, 0, 0};

static inline void ec_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t ec_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Claim and run chunks of job `gen` until none is left. */
static void ec_pool_work(uint32_t gen, int slot) {
    for (;;) {
        uint64_t s = __atomic_load_n(&ec_pool.state, __ATOMIC_ACQUIRE);
        uint32_t idx = (uint32_t)s;
        if ((uint32_t)(s >> 32) != gen || (int)idx >= ec_pool.total) return;
        if (!__atomic_compare_exchange_n(&ec_pool.state, &s, s + 1, 0, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
            continue;
        ec_pool.fn(ec_pool.ctx, (int)idx, slot);
        __atomic_add_fetch(&ec_pool.done, 1, __ATOMIC_RELEASE);
    }
}

static void *ec_pool_main(void *arg) {
    int slot = (int)(intptr_t)arg;
    uint32_t seen = 0;
    for (;;) {
        int64_t until = ec_now_ns() + EC_POOL_SPIN_NS;
        uint32_t gen;
        int spins = 0;
        for (;;) { /* spin for a new job, then sleep */
            gen = (uint32_t)(__atomic_load_n(&ec_pool.state, __ATOMIC_ACQUIRE) >> 32);
            if (gen != seen) break;
            ec_cpu_relax();
            if (++spins % 256 == 0 && ec_now_ns() > until) {
                pthread_mutex_lock(&ec_pool.mu);
                while (ec_pool.gen == seen) pthread_cond_wait(&ec_pool.cv, &ec_pool.mu);
                gen = ec_pool.gen;
                pthread_mutex_unlock(&ec_pool.mu);
                break;
            }
        }
        seen = gen;
        if (slot <= __atomic_load_n(&ec_pool.wanted, __ATOMIC_ACQUIRE)) ec_pool_work(gen, slot);
    }
    return NULL;
}

/* Start workers so that `want` threads (caller included) can run; returns how many can. */
static int ec_pool_slots(int want) {
    if (want > EC_POOL_MAX) want = EC_POOL_MAX;
    pthread_mutex_lock(&ec_pool.mu);
    while (ec_pool.started + 1 < want) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, ec_pool_main, (void *)(intptr_t)(ec_pool.started + 1)))
            break;
        pthread_attr_destroy(&attr);
        ec_pool.started++;
    }
    want = ec_pool.started + 1 < want ? ec_pool.started + 1 : want;
    pthread_mutex_unlock(&ec_pool.mu);
    return want;
}

/* fn(ctx, i, slot) for i in [0, total) on up to nthreads threads; returns when all are done.
 * One job at a time: callers are the Python thread holding a bound kernel (not reentrant). */
static void ec_pool_run_local(ec_task_fn fn, void *ctx, int total, int nthreads) {
    uint32_t gen;
    if (nthreads > total) nthreads = total;
    if (nthreads > 1) nthreads = ec_pool_slots(nthreads);
    if (nthreads <= 1) {
        int i;
        for (i = 0; i < total; i++) fn(ctx, i, 0);
        return;
    }
    pthread_mutex_lock(&ec_pool.mu);
    ec_pool.fn = fn;
    ec_pool.ctx = ctx;
    ec_pool.total = total;
    __atomic_store_n(&ec_pool.done, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&ec_pool.wanted, nthreads - 1, __ATOMIC_RELAXED);
    gen = ++ec_pool.gen;
    __atomic_store_n(&ec_pool.state, (uint64_t)gen << 32, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&ec_pool.cv);
    pthread_mutex_unlock(&ec_pool.mu);
    ec_pool_work(gen, 0);
    for (int spins = 1; __atomic_load_n(&ec_pool.done, __ATOMIC_ACQUIRE) < total; spins++) {
        ec_cpu_relax();
        if (spins % 1024 == 0) sched_yield(); /* a preempted worker may need this core */
    }
}
#endif

/* The process's pool: this module's own until ec_pool_adopt hands it another module's. */
static ec_pool_run_fn ec_pool_runner = ec_pool_run_local;

static void ec_pool_adopt(ec_pool_run_fn run) {
    if (run) ec_pool_runner = run;
}

static inline void ec_pool_run(ec_task_fn fn, void *ctx, int total, int nthreads) {
    ec_pool_runner(fn, ctx, total, nthreads);
}

#endif /* EDGECNN_THREADPOOL_H */
