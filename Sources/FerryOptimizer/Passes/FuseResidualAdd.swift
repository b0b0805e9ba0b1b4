import FerryIR

/// Add(conv(x), r) becomes a Conv with `r` as its fused residual (input 3), so the sum is made
/// in the convolution's epilogue; a following activation then fuses too (ResNet's
/// conv -> add -> relu becomes one node). Only a Conv without an activation qualifies (the
/// activation would come before the add), and only when nothing else reads its result.
public struct FuseResidualAdd: Pass {
    public let name = "fuse-residual-add"
    public let unit = "residual Adds fused"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var fused = 0
        let types = try graph.inferTypes()
        var i = 0
        while i < graph.nodes.count {
            let add = graph.nodes[i]
            guard case .add = add.op else { i += 1; continue }
            let producers = graph.producers()
            let choice = [(0, 1), (1, 0)].first { c, r in
                guard let p = producers[add.inputs[c]], case .conv(let a) = graph.nodes[p].op, a.activation == nil,
                      graph.nodes[p].inputs.count <= 3,
                      graph.consumers()[add.inputs[c]]?.count == 1, !graph.outputNames.contains(add.inputs[c]),
                      let out = types[add.inputs[c]], let residual = types[add.inputs[r]] else { return false }
                // The residual must have the conv result's own shape (no broadcasting in the epilogue).
                return residual.shape == out.shape && residual.dtype == out.dtype
            }
            guard let (c, r) = choice, let p = producers[add.inputs[c]] else { i += 1; continue }
            var conv = graph.nodes[p]
            while conv.inputs.count < 3 { conv.inputs.append("") }
            conv.inputs.append(add.inputs[r])
            conv.outputs = add.outputs
            mergeOrigins(&conv, add)
            // The residual may be computed after the Conv: the fused node takes the Add's place,
            // where both its inputs and the residual are defined.
            graph.nodes[i] = conv
            graph.nodes.remove(at: p)
            fused += 1
        }
        return fused
    }
}
