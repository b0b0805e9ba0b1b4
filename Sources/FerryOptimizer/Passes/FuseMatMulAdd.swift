import FerryIR

/// MatMul of a 2-D value by a 2-D weight, followed by Add of a bias row, becomes one Gemm
/// (Keras Dense on N-D inputs and ONNX exports from other tools write the pair).
public struct FuseMatMulAdd: NodeRewritePass {
    public let name = "fuse-matmul-add"
    public let unit = "MatMul+Add pairs fused"
    public init() {}

    public func rewrite(at i: Int, in graph: inout Graph) throws -> Bool {
        guard case .add = graph.nodes[i].op else { return false }
        let add = graph.nodes[i]
        // The MatMul may be either operand; the other must be a constant bias of N values.
        let candidates = graph.fusableProducers(ofOperandsOf: i) { node in
            if case .matMul = node.op { return true }
            return false
        }
        for (p, _, b) in candidates {
            let matMul = graph.nodes[p]
            guard let bias = graph.constant(add.inputs[b]),
                  let w = graph.constant(matMul.inputs[1]), w.rank == 2, w.dtype == .float32,
                  bias.rank <= 2, bias.count == w.shape[1], bias.shape.dropLast().allSatisfy({ $0 == 1 }),
                  try graph.inferTypes()[matMul.inputs[0]]?.shape.rank == 2 else { continue }
            var gemm = matMul
            gemm.op = .gemm(GemmAttributes())
            gemm.inputs.append(graph.addInitializer("\(matMul.name)/bias", bias.reshaped([bias.count])))
            graph.replace(pattern: [p, i], with: gemm)
            return true
        }
        return false
    }
}
