import FerryIR
import Foundation

/// Common subexpressions: weights with identical dtype, shape and data become one weight, and
/// a node computing the same op (with the same attributes) on the same inputs as an earlier
/// node is dropped, its readers reading the earlier node's outputs. A duplicate whose output is
/// a graph output is kept, so every output keeps its name.
public struct EliminateDuplicates: Pass {
    public let name = "eliminate-duplicates"
    public let unit = "duplicate nodes and weights removed"
    public init() {}

    struct Key: Hashable {
        var op: Op
        var inputs: [String]
    }

    public func run(_ graph: inout Graph) throws -> Int {
        var removed = 0
        let outputs = graph.outputNames
        let graphInputs = graph.inputNames
        // Weights: the first of each content (in name order, for stable results) stays.
        // Compared bit for bit (0 and -0 differ, NaNs match), among weights of one type and shape.
        var renamed: [String: String] = [:]
        var kept: [TensorType: [String]] = [:]
        for name in graph.initializers.keys.sorted() where !graphInputs.contains(name) && !outputs.contains(name) {
            let tensor = graph.initializers[name]!
            if let same = kept[tensor.type]?.first(where: { sameBits(graph.initializers[$0]!, tensor) }) {
                renamed[name] = same
            } else {
                kept[tensor.type, default: []].append(name)
            }
        }
        for (old, new) in renamed {
            graph.replaceUses(of: old, with: new)
            graph.initializers[old] = nil
        }
        removed += renamed.count
        // Nodes, in order, so a duplicate's inputs have already been renamed to the kept ones.
        var seen: [Key: Int] = [:]
        var i = 0
        while i < graph.nodes.count {
            let node = graph.nodes[i]
            let key = Key(op: node.op, inputs: node.inputs)
            if let k = seen[key], !node.outputs.contains(where: outputs.contains),
               zip(node.outputs, graph.nodes[k].outputs).allSatisfy({ $0.0.isEmpty || !$0.1.isEmpty }) {
                for (dup, kept) in zip(node.outputs, graph.nodes[k].outputs) where !dup.isEmpty {
                    graph.replaceUses(of: dup, with: kept)
                }
                mergeOrigins(&graph.nodes[k], node)
                graph.nodes.remove(at: i)
                removed += 1
                continue
            }
            if seen[key] == nil { seen[key] = i }
            i += 1
        }
        return removed
    }
}

/// Whether two tensors of one type hold the same bytes.
func sameBits(_ a: Tensor, _ b: Tensor) -> Bool {
    func equal<T>(_ x: [T], _ y: [T]) -> Bool {
        x.withUnsafeBytes { p in y.withUnsafeBytes { q in p.count == q.count && (p.count == 0 || memcmp(p.baseAddress!, q.baseAddress!, p.count) == 0) } }
    }
    switch (a.storage, b.storage) {
    case (.float32(let x), .float32(let y)): return equal(x, y)
    case (.float16(let x), .float16(let y)): return equal(x, y)
    default: return a.storage == b.storage
    }
}
