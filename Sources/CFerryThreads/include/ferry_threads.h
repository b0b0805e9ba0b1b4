#ifndef FERRY_THREADS_H
#define FERRY_THREADS_H

/// One chunk of a parallel loop: `chunk` in 0..<chunks, `context` as given to ferry_pool_run.
typedef void (*ferry_chunk_fn)(void *context, long chunk);

/// Runs fn(context, k) for every k in 0..<chunks and returns when all are done. The calling
/// thread and up to chunks - 1 persistent workers (created on first need) claim chunks from a
/// shared counter; workers spin briefly after each job, then sleep on a futex, so back-to-back
/// loops (a plan runs hundreds per inference) start in about a microsecond instead of a thread
/// wake-up, and a worker that is late leaves its chunks to the caller. When the pool is busy
/// (another caller, or a call from inside a chunk) the chunks run one after another on the
/// calling thread: the same chunks, so results do not change, only the speed. A worker that
/// finds itself on the CPU its caller is on moves to the others it may run on (Linux wakes a
/// sleeping thread on its waker's CPU, and the two then shared it for whole runs).
void ferry_pool_run(long chunks, ferry_chunk_fn fn, void *context);

#endif
