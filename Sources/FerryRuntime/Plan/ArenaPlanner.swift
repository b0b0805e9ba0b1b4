/// One intermediate's block in a plan's arena: where it sits and the steps during which it holds
/// a live value (from the step that writes it to the last step that reads it, both included;
/// -1 for graph inputs, written before the first step; the step count for graph outputs).
public struct ArenaBlock: Sendable, Hashable {
    /// Offset and size in float32 elements, both multiples of `ArenaPlanner.alignment`.
    public var offset: Int
    public var size: Int
    public var firstStep: Int
    public var lastStep: Int

    public var bytes: Int { size * 4 }

    /// Whether both blocks hold live values at some step.
    public func livesWith(_ other: ArenaBlock) -> Bool {
        firstStep <= other.lastStep && other.firstStep <= lastStep
    }

    /// Whether the blocks share any element.
    public func sharesMemory(with other: ArenaBlock) -> Bool {
        size > 0 && other.size > 0 && offset < other.offset + other.size && other.offset < offset + size
    }
}

/// Places blocks in one arena so that blocks live at the same time never share memory: largest
/// first, each into the smallest gap left between the blocks it lives with (greedy best-fit, as
/// TensorFlow Lite's arena planner does), else after them.
enum ArenaPlanner {
    /// Elements per alignment unit: 16 floats = 64 bytes, one cache line (and one AVX-512 vector).
    static let alignment = 16

    static func aligned(_ count: Int) -> Int { (count + alignment - 1) / alignment * alignment }

    /// Sets every block's offset around blocks already `placed`; returns the arena's size in
    /// elements (the end of the last block, placed or not).
    static func place(_ blocks: inout [ArenaBlock], around placed: [ArenaBlock] = []) -> Int {
        let order = blocks.indices.sorted {
            blocks[$0].size != blocks[$1].size ? blocks[$0].size > blocks[$1].size : blocks[$0].firstStep < blocks[$1].firstStep
        }
        var done = placed
        var total = placed.map { $0.offset + $0.size }.max() ?? 0
        for i in order {
            let block = blocks[i]
            let neighbours = done.filter { $0.livesWith(block) && $0.size > 0 }.sorted { $0.offset < $1.offset }
            var best: (offset: Int, gap: Int)?
            var end = 0
            for other in neighbours {
                let gap = other.offset - end
                if gap >= block.size, best == nil || gap < best!.gap { best = (end, gap) }
                end = Swift.max(end, other.offset + other.size)
            }
            blocks[i].offset = best?.offset ?? end
            done.append(blocks[i])
            total = Swift.max(total, blocks[i].offset + block.size)
        }
        return total
    }

    /// Pairs of blocks that live at the same time and share memory (empty for a correct plan).
    static func conflicts(_ blocks: [ArenaBlock]) -> [(Int, Int)] {
        var found: [(Int, Int)] = []
        for i in blocks.indices {
            for j in blocks.indices where j > i && blocks[i].livesWith(blocks[j]) && blocks[i].sharesMemory(with: blocks[j]) {
                found.append((i, j))
            }
        }
        return found
    }
}
