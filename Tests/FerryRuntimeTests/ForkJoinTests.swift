import Dispatch
@testable import FerryRuntime
import Testing

/// The fork-join pool behind parallelChunks: every chunk runs exactly once per loop, for loops
/// of changing widths back to back (workers created mid-way must not skip the loop that
/// created them), from several threads at once (a busy pool runs the loop on the caller), and
/// from inside a chunk.
struct ForkJoinTests {
    @Test func everyChunkRunsOnceUnderConcurrentCallers() {
        DispatchQueue.concurrentPerform(iterations: 3) { caller in
            var counts = [Int](repeating: 0, count: 64)
            for round in 0..<1000 {
                let threads = 1 + (round * 7 + caller) % 6, count = 1 + (round * 13) % 50
                counts.withUnsafeMutableBufferPointer { c in
                    let pointer = UncheckedPointer(c.baseAddress!)
                    parallelChunks(count, threads: threads) { range in
                        for i in range { pointer.value[i] += 1 }
                        if round % 100 == 0 {
                            // Nested: runs serially inside the chunk.
                            parallelChunks(4, threads: 4) { _ in }
                        }
                    }
                }
                #expect(counts[0..<count].allSatisfy { $0 == 1 } && counts[count...].allSatisfy { $0 == 0 },
                        "caller \(caller) round \(round): \(counts[0..<count])")
                for i in 0..<count { counts[i] = 0 }
            }
        }
    }
}

struct UncheckedPointer: @unchecked Sendable {
    let value: UnsafeMutablePointer<Int>
    init(_ value: UnsafeMutablePointer<Int>) { self.value = value }
}
