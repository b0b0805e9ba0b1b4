import Dispatch

/// Lets a closure that is only called while its caller waits (DispatchQueue.concurrentPerform
/// returns after every iteration ran) cross into the worker threads.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
}

/// Runs `body` over `0..<count` split into at most `threads` contiguous chunks, one per worker,
/// and returns when all are done. The split depends only on `count`, `threads` and `grain`, and
/// every element is computed by one chunk in a fixed order, so results never depend on timing.
/// Chunks smaller than `grain` elements are not worth a thread: fewer chunks are used.
@inline(__always)
func parallelChunks(_ count: Int, threads: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    let chunks = Swift.min(threads, Swift.max(1, count / Swift.max(grain, 1)))
    if chunks <= 1 {
        body(0..<count)
        return
    }
    withoutActuallyEscaping(body) { body in
        let box = UncheckedSendable(value: body)
        DispatchQueue.concurrentPerform(iterations: chunks) { k in
            box.value((count * k / chunks)..<(count * (k + 1) / chunks))
        }
    }
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
    withoutActuallyEscaping(body) { body in
        let box = UncheckedSendable(value: body)
        DispatchQueue.concurrentPerform(iterations: chunks) { k in
            box.value(k, (count * k / chunks)..<(count * (k + 1) / chunks))
        }
    }
}
