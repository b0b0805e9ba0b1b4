// A minimal fork-join pool for the plan runtime (see ferry_threads.h).
//
// Chunks are claimed, not assigned: the caller and the workers take the next unclaimed chunk
// from one counter until none is left, and the caller then waits only for chunks already being
// run. A worker that is slow to wake (a loaded machine) therefore never holds the caller up:
// the caller runs its chunks itself, and the worst case is the serial loop. Which thread runs a
// chunk does not change the result, as each chunk computes its own part in a fixed order.
#define _GNU_SOURCE
#include "ferry_threads.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { MAX_WORKERS = 63, PAUSE_SPINS = 4000, YIELD_SPINS = 50 };

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;   // held by the running caller
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;
static long worker_count = 0;

// The job. `generation` is a sequence lock: odd while the caller writes the job, even once it
// is published. `ticket` holds the job's generation (high 32 bits) and the next unclaimed
// chunk (low 32 bits): a claim is a compare-and-swap that only succeeds for the job the worker
// read, so a worker that wakes late can never claim a chunk of a later job with an earlier
// job's function.
static _Atomic(ferry_chunk_fn) job_fn;
static _Atomic(void *) job_context;
static _Atomic long job_chunks;
static _Atomic int generation = 0;
static _Atomic uint64_t ticket = 0;
static _Atomic long done = 0;           // chunks of the current job finished
static _Atomic int caller_sleeping = 0;
static _Atomic int sleepers = 0;        // workers asleep on `generation`
static _Atomic int caller_cpu = -1;     // the CPU the caller of the current job was on

static __thread int inside_pool = 0;    // set on worker threads and while a caller runs

static long futex_wait(_Atomic int *address, int value, long nanoseconds) {
    struct timespec limit = {0, nanoseconds};
    return syscall(SYS_futex, (int *)address, FUTEX_WAIT_PRIVATE, value, nanoseconds ? &limit : NULL, NULL, 0);
}

static long futex_wake(_Atomic int *address, int count) {
    return syscall(SYS_futex, (int *)address, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/// Claims and runs chunks of job `gen` until none is left.
static void run_chunks(int gen, ferry_chunk_fn fn, void *context, long chunks) {
    for (;;) {
        uint64_t current = atomic_load(&ticket);
        if ((int)(current >> 32) != gen) return;
        long k = (long)(current & 0xffffffffu);
        if (k >= chunks) return;
        if (!atomic_compare_exchange_weak(&ticket, &current, current + 1)) continue;
        fn(context, k);
        if (atomic_fetch_add(&done, 1) + 1 == chunks && atomic_exchange(&caller_sleeping, 0)) {
            futex_wake(&caller_sleeping, 1);
        }
    }
}

/// Moves this worker off the CPU the job's caller is on. Linux tends to wake a sleeping thread on
/// its waker's CPU; a worker woken there then shared that CPU with the caller, and both kept
/// spinning on it while the other CPUs idled: whole runs at one core's speed (a bidirectional
/// GRU layer 4.1 ms instead of 2.0, ResNet50 65 ms instead of 37). Checking costs a vDSO call;
/// moving, a system call, only when the two meet. `allowed` is the worker's CPU set at start.
static void keep_off_caller_cpu(const cpu_set_t *allowed) {
    int mine = sched_getcpu(), theirs = atomic_load(&caller_cpu);
    if (mine < 0 || mine != theirs) return;
    cpu_set_t others = *allowed;
    CPU_CLR(theirs, &others);
    if (CPU_COUNT(&others) == 0) return;
    pthread_setaffinity_np(pthread_self(), sizeof others, &others);
}

static void *worker_main(void *argument) {
    // `seen` starts at the generation current when the worker was created (before the job that
    // needed it was published): reading it here could skip that job when the thread starts late.
    int seen = (int)(intptr_t)argument;
    inside_pool = 1;
    cpu_set_t allowed;
    int know_allowed = pthread_getaffinity_np(pthread_self(), sizeof allowed, &allowed) == 0;
    for (;;) {
        int now;
        int spins = 0;
        while ((now = atomic_load(&generation)) == seen || (now & 1)) {
            spins++;
            if (spins < PAUSE_SPINS) { cpu_relax(); continue; }
            if (spins < PAUSE_SPINS + YIELD_SPINS) { sched_yield(); continue; }
            atomic_fetch_add(&sleepers, 1);
            if (atomic_load(&generation) == now) futex_wait(&generation, now, 0);
            atomic_fetch_sub(&sleepers, 1);
            spins = 0;
        }
        ferry_chunk_fn fn = atomic_load(&job_fn);
        void *context = atomic_load(&job_context);
        long chunks = atomic_load(&job_chunks);
        if (atomic_load(&generation) != now) continue;   // rewritten while read: look again
        seen = now;
        if (know_allowed) keep_off_caller_cpu(&allowed);
        run_chunks(now, fn, context, chunks);
    }
    return NULL;
}

static int ensure_workers(long needed) {
    if (needed > MAX_WORKERS) needed = MAX_WORKERS;
    pthread_mutex_lock(&create_lock);
    while (worker_count < needed) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attributes, worker_main, (void *)(intptr_t)atomic_load(&generation));
        pthread_attr_destroy(&attributes);
        if (failed) break;
        worker_count++;
    }
    int any = worker_count > 0;
    pthread_mutex_unlock(&create_lock);
    return any;
}

static void run_serially(long chunks, ferry_chunk_fn fn, void *context) {
    for (long k = 0; k < chunks; k++) fn(context, k);
}

void ferry_pool_run(long chunks, ferry_chunk_fn fn, void *context) {
    if (chunks <= 0) return;
    if (chunks == 1 || chunks > 0xffffffffL || inside_pool || pthread_mutex_trylock(&pool_lock) != 0) {
        run_serially(chunks, fn, context);
        return;
    }
    if (!ensure_workers(chunks - 1)) {
        pthread_mutex_unlock(&pool_lock);
        run_serially(chunks, fn, context);
        return;
    }
    inside_pool = 1;
    atomic_store(&caller_cpu, sched_getcpu());
    int gen = atomic_fetch_add(&generation, 1) + 2;   // odd while writing, then gen (even)
    atomic_store(&job_fn, fn);
    atomic_store(&job_context, context);
    atomic_store(&job_chunks, chunks);
    atomic_store(&done, 0);
    atomic_store(&ticket, (uint64_t)(unsigned)gen << 32);
    atomic_store(&generation, gen);
    if (atomic_load(&sleepers) > 0) futex_wake(&generation, INT_MAX);
    run_chunks(gen, fn, context, chunks);
    int spins = 0;
    while (atomic_load(&done) != chunks) {
        spins++;
        if (spins < PAUSE_SPINS) { cpu_relax(); continue; }
        if (spins < PAUSE_SPINS + YIELD_SPINS) { sched_yield(); continue; }
        atomic_store(&caller_sleeping, 1);
        // The worker finishing the last chunk clears the flag and wakes us (a wait that starts
        // after the clear returns at once); the time limit is only a guard.
        if (atomic_load(&done) != chunks) futex_wait(&caller_sleeping, 1, 1000000);
        atomic_store(&caller_sleeping, 0);
        spins = 0;
    }
    inside_pool = 0;
    pthread_mutex_unlock(&pool_lock);
}
