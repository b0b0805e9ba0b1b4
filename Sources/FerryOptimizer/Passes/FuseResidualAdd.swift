import FerryIR

/// Add(conv(x), r) becomes a Conv with `r` as its fused residual (input 3), so the sum is made
/// in the convolution's epilogue; a following activation then fuses too (ResNet's
/// conv -> add -> relu becomes one node). Only a Conv without an activation qualifies (the
/// activation would come before the add), and only when nothing else reads its result.
public struct FuseResidualAdd: NodeRewritePass {
    public let name = "fuse-residual-add"
    public let unit = "residual Adds fused"
    public init() {}

    public func rewrite(at i: Int, in graph: inout Graph) throws -> Bool {
        guard case .add = graph.nodes[i].op else { return false }
        let add = graph.nodes[i]
        let candidates = graph.fusableProducers(ofOperandsOf: i) { node in
            guard case .conv(let a) = node.op else { return false }
            return a.activation == nil && node.inputs.count <= 3
        }
        guard !candidates.isEmpty else { return false }
        let types = try graph.inferTypes()
        for (p, c, r) in candidates {
            // The residual must have the conv result's own shape (no broadcasting in the epilogue).
            guard let out = types[add.inputs[c]], let residual = types[add.inputs[r]],
                  residual.shape == out.shape, residual.dtype == out.dtype else { continue }
            var conv = graph.nodes[p]
            while conv.inputs.count < 3 { conv.inputs.append("") }
            conv.inputs.append(add.inputs[r])
            // The residual may be computed after the Conv: the fused node takes the Add's place.
            graph.replace(pattern: [p, i], with: conv)
            return true
        }
        return false
    }
}
