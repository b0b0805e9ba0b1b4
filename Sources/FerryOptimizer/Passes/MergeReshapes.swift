import FerryIR

/// Chains of shape-only ops become one Reshape: a Reshape, Flatten, Squeeze or Unsqueeze of
/// another one reads the first one's input directly, and a Transpose that moves only axes of
/// size 1 (the others keep their order) is a Reshape. Keras's squeeze-and-excitation block
/// (GlobalAveragePool -> Flatten -> Reshape to NHWC -> Transpose to NCHW) collapses to a
/// Reshape to the pooled shape itself, which eliminate-noop-reshapes then removes.
public struct MergeReshapes: Pass {
    public let name = "merge-reshapes"
    public let unit = "reshapes merged"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var merged = 0
        var types = try graph.inferTypes()
        for i in graph.nodes.indices {
            let node = graph.nodes[i]
            guard isShapeOnly(node.op) || isReshapeLikeTranspose(node, types) else { continue }
            // Follow the chain of shape-only producers back to the first real value.
            var source = node.inputs[0]
            var absorbed: [Int] = []
            while let p = graph.producers()[source], isShapeOnly(graph.nodes[p].op) || isReshapeLikeTranspose(graph.nodes[p], types) {
                absorbed.append(p)
                source = graph.nodes[p].inputs[0]
            }
            // Alone, only a reshape-like Transpose changes (Flatten stays Flatten for Gemm).
            var isTranspose = false
            if case .transpose = node.op { isTranspose = true }
            if absorbed.isEmpty && !isTranspose { continue }
            guard let from = types[source]?.shape, let to = types[node.outputs[0]]?.shape,
                  let target = reshapeTarget(from: from, to: to) else { continue }
            graph.nodes[i].op = .reshape(shape: target)
            graph.nodes[i].inputs = [source]
            for p in absorbed { mergeOrigins(&graph.nodes[i], graph.nodes[p]) }
            merged += 1
            types = try graph.inferTypes()
        }
        return merged
    }

    func isShapeOnly(_ op: Op) -> Bool {
        switch op {
        case .reshape, .flatten, .squeeze, .unsqueeze: return true
        default: return false
        }
    }

    /// A Transpose whose axes of size other than 1 keep their relative order only moves 1s.
    func isReshapeLikeTranspose(_ node: Node, _ types: [String: TensorType]) -> Bool {
        guard case .transpose(let perm) = node.op, let shape = types[node.inputs[0]]?.shape else { return false }
        let moving = perm.filter { shape.dims[$0] != .fixed(1) }
        return moving == moving.sorted()
    }
}

/// A Reshape target turning `from` into `to`: fixed sizes as numbers, a symbolic dimension as 0
/// (copy) when `from` has the same one at the same position. Nil when that cannot express it
/// (a moved symbolic dimension, a size 0, which Reshape reads as "copy").
func reshapeTarget(from: Shape, to: Shape) -> [Int]? {
    var target: [Int] = []
    for (i, d) in to.dims.enumerated() {
        switch d {
        case .fixed(let n):
            guard n > 0 else { return nil }
            target.append(n)
        case .symbolic:
            guard i < from.rank, from.dims[i] == d else { return nil }
            target.append(0)
        }
    }
    return target
}
