import CFerryThreads

/// Runs `body(k)` for k in 0..<chunks on the fork-join pool (CFerryThreads: chunk 0 on this
/// thread, the others on persistent workers that spin briefly between loops, so the hundreds of
/// loops of one inference do not each pay a thread wake-up, as DispatchQueue.concurrentPerform
/// did). Returns when every chunk is done.
@inline(__always)
func forkJoin(_ chunks: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { body in
        var task = body
        withUnsafeMutablePointer(to: &task) { pointer in
            ferry_pool_run(chunks, { context, k in
                context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(k)
            }, pointer)
        }
    }
}

/// Runs `body` over `0..<count` split into at most `threads` contiguous chunks, one per worker,
/// and returns when all are done. The split depends only on `count`, `threads` and `grain`, and
/// every element is computed by one chunk in a fixed order, so results never depend on timing.
/// Chunks smaller than `grain` elements are not worth a thread: fewer chunks are used.
@inline(__always)
func parallelChunks(_ count: Int, threads: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
    parallelChunksIndexed(count, threads: threads, grain: grain) { _, range in body(range) }
}

/// `parallelChunks` that also tells each chunk its index (0..<chunks, at most `threads`), for
/// per-thread scratch.
@inline(__always)
func parallelChunksIndexed(_ count: Int, threads: Int, grain: Int = 1, _ body: (Int, Range<Int>) -> Void) {
    guard count > 0 else { return }
    let chunks = Swift.min(threads, Swift.max(1, count / Swift.max(grain, 1)))
    if chunks <= 1 {
        body(0, 0..<count)
        return
    }
    forkJoin(chunks) { k in body(k, (count * k / chunks)..<(count * (k + 1) / chunks)) }
}
