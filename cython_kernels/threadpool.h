/* edgecnn's persistent worker pool for the packed kernels (gemm_s8.h), in place of an OpenMP
 * team. Why: on a loaded 2-core machine a fork-join team's end barrier waits for every thread
 * to be scheduled, so a call cost a whole time slice (18 ms measured) whenever another
 * process held the second core. Here the calling thread works itself and never waits for a
 * worker that has not started: it waits only for chunks a worker has already claimed.
 * Workers spin briefly after a job (cheap hand-over between layers), then sleep on a condition
 * variable, so they do not steal a core from other engines between calls.
 *
 * Chunks are dealt out in contiguous ranges, one per thread (slot s of n takes
 * [s * total / n, (s + 1) * total / n)), claimed from the front by their owner; a thread done
 * with its own range takes chunks from the back of the others'. Kernels number their chunks in
 * memory order (pixel blocks, output rows), so the same thread writes the same part of every
 * activation from one layer to the next and reads the next layer's input from its own cache
 * (with one shared counter the split changed at random every layer: on 2 cores, every layer
 * then pulled half its input from the other core's L2). A range is one 64-bit word, claimed
 * by CAS: (generation mod 2^20) << 44 | front << 22 | back, so a worker late from an earlier
 * job cannot claim a chunk of a later one (unless it slept through exactly 2^20 jobs).
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
#define EC_POOL_MAX_CHUNKS ((1 << 22) - 1)

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started;     /* workers running */
    uint32_t gen;    /* job generation (written under mu, read atomically) */
    int nslots;      /* threads of the current job, caller included */
    int done;        /* chunks finished (atomic) */
    ec_task_fn fn;
    void *ctx;
} ec_pool_t;

static ec_pool_t ec_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0,
                            0};

/* The chunk range of each slot, one cache line each (claims by two threads never share one). */
typedef struct {
    uint64_t w;
    char pad[56];
} ec_pool_range;
static ec_pool_range ec_pool_ranges[EC_POOL_MAX] __attribute__((aligned(64)));

static inline uint64_t ec_range_word(uint32_t gen, uint32_t lo, uint32_t hi) {
    return (uint64_t)(gen & 0xFFFFFu) << 44 | (uint64_t)lo << 22 | hi;
}

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

/* Claim one chunk of job `gen` from slot s's range: its front (owner) or its back (thief).
 * Returns the chunk index, or -1 when the range is empty or belongs to another job. */
static int ec_pool_claim(uint32_t gen, int s, int back) {
    uint64_t *w = &ec_pool_ranges[s].w;
    uint64_t v = __atomic_load_n(w, __ATOMIC_ACQUIRE);
    for (;;) {
        uint32_t lo = (uint32_t)(v >> 22) & EC_POOL_MAX_CHUNKS, hi = (uint32_t)v & EC_POOL_MAX_CHUNKS;
        uint64_t next;
        if ((uint32_t)(v >> 44) != (gen & 0xFFFFFu) || lo >= hi) return -1;
        next = back ? ec_range_word(gen, lo, hi - 1) : ec_range_word(gen, lo + 1, hi);
        if (__atomic_compare_exchange_n(w, &v, next, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return (int)(back ? hi - 1 : lo);
    }
}

/* Run chunks of job `gen` as slot `slot` of n: its own range front to back, then the others'
 * from their backs, until none is left. */
static void ec_pool_work(uint32_t gen, int slot, int n) {
    int v, i;
    while ((i = ec_pool_claim(gen, slot, 0)) >= 0) {
        ec_pool.fn(ec_pool.ctx, i, slot);
        __atomic_add_fetch(&ec_pool.done, 1, __ATOMIC_RELEASE);
    }
    for (v = 1; v < n; v++) {
        int s = (slot + v) % n;
        while ((i = ec_pool_claim(gen, s, 1)) >= 0) {
            ec_pool.fn(ec_pool.ctx, i, slot);
            __atomic_add_fetch(&ec_pool.done, 1, __ATOMIC_RELEASE);
        }
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
            gen = __atomic_load_n(&ec_pool.gen, __ATOMIC_ACQUIRE);
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
        {
            int n = __atomic_load_n(&ec_pool.nslots, __ATOMIC_ACQUIRE);
            if (slot < n) ec_pool_work(gen, slot, n);
        }
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
    int s;
    if (nthreads > total) nthreads = total;
    if (nthreads > 1) nthreads = ec_pool_slots(nthreads);
    if (nthreads <= 1 || total > EC_POOL_MAX_CHUNKS) {
        int i;
        for (i = 0; i < total; i++) fn(ctx, i, 0);
        return;
    }
    pthread_mutex_lock(&ec_pool.mu);
    ec_pool.fn = fn;
    ec_pool.ctx = ctx;
    __atomic_store_n(&ec_pool.done, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&ec_pool.nslots, nthreads, __ATOMIC_RELAXED);
    gen = ec_pool.gen + 1;
    for (s = 0; s < nthreads; s++)
        __atomic_store_n(&ec_pool_ranges[s].w,
                         ec_range_word(gen, (uint32_t)((int64_t)total * s / nthreads),
                                       (uint32_t)((int64_t)total * (s + 1) / nthreads)),
                         __ATOMIC_RELAXED);
    __atomic_store_n(&ec_pool.gen, gen, __ATOMIC_RELEASE); /* publishes all of the above */
    pthread_cond_broadcast(&ec_pool.cv);
    pthread_mutex_unlock(&ec_pool.mu);
    ec_pool_work(gen, 0, nthreads);
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
