import FerryIR

/// Flatten(axis: 1) -> Gemm becomes one Gemm that reads its input as (d0, d1 * ... * dn)
/// itself (`GemmAttributes.flattensA`): Keras's Flatten + Dense, Caffe's InnerProduct on a
/// feature map. The Flatten was only a change of shape of a contiguous tensor; fused, the Gemm
/// reads the feature map directly. A Reshape to (d0, rest) counts as such a Flatten. The Gemm
/// records the Flatten's layer before its own; exporters write the Flatten back.
public struct FuseFlattenGemm: NodeRewritePass {
    public let name = "fuse-flatten-gemm"
    public let unit = "Flattens fused"
    public init() {}

    public func rewrite(at g: Int, in graph: inout Graph) throws -> Bool {
        guard case .gemm(var attributes) = graph.nodes[g].op, !attributes.flattensA, !attributes.transA,
              let f = graph.producers()[graph.nodes[g].inputs[0]], graph.isPrivate(graph.nodes[g].inputs[0]) else { return false }
        switch graph.nodes[f].op {
        case .flatten(1):
            break
        case .reshape:
            // Only a Reshape that keeps axis 0 and joins the rest, as Flatten(1) would.
            let types = try graph.inferTypes()
            guard let x = types[graph.nodes[f].inputs[0]]?.shape, let y = types[graph.nodes[f].outputs[0]]?.shape,
                  x.rank >= 2, y.rank == 2, x.dims[0] == y.dims[0],
                  let rest = Array(x.dims.dropFirst()).fixedSizes(), y.dims[1] == .fixed(rest.reduce(1, *)) else { return false }
        default:
            return false
        }
        attributes.flattensA = true
        var fused = graph.nodes[g]
        fused.op = .gemm(attributes)
        fused.inputs[0] = graph.nodes[f].inputs[0]
        // The Flatten's layers come first: the fused node carries the result of its last layer
        // (layer-by-layer comparison), and the Flatten written back for export names the first.
        fused.origins = graph.nodes[f].origins
        mergeOrigins(&fused, graph.nodes[g])
        graph.nodes[g] = fused
        graph.nodes.remove(at: f)
        return true
    }
}
