import FerryIR

/// MatMul of a 2-D value by a 2-D weight, followed by Add of a bias row, becomes one Gemm
/// (Keras Dense on N-D inputs and ONNX exports from other tools write the pair).
public struct FuseMatMulAdd: Pass {
    public let name = "fuse-matmul-add"
    public let unit = "MatMul+Add pairs fused"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var fused = 0
        let types = try graph.inferTypes()
        var i = 0
        while i < graph.nodes.count {
            let add = graph.nodes[i]
            guard case .add = add.op else { i += 1; continue }
            let producers = graph.producers()
            // The MatMul may be either operand; the other must be a constant bias of N values.
            let candidates = [(0, 1), (1, 0)].compactMap { (m, b) -> (Int, String)? in
                guard let p = producers[add.inputs[m]], case .matMul = graph.nodes[p].op else { return nil }
                return (p, add.inputs[b])
            }
            guard let (p, biasName) = candidates.first, let bias = graph.constant(biasName),
                  let a = types[graph.nodes[p].inputs[0]], a.shape.rank == 2,
                  let w = graph.constant(graph.nodes[p].inputs[1]), w.rank == 2, w.dtype == .float32,
                  bias.rank <= 2, bias.count == w.shape[1], bias.shape.dropLast().allSatisfy({ $0 == 1 }),
                  graph.consumers()[graph.nodes[p].outputs[0]]?.count == 1,
                  !graph.outputNames.contains(graph.nodes[p].outputs[0]) else {
                i += 1
                continue
            }
            let biasVector = graph.addInitializer("\(graph.nodes[p].name)/bias", bias.reshaped([bias.count]))
            graph.nodes[p].op = .gemm(GemmAttributes())
            graph.nodes[p].inputs.append(biasVector)
            graph.nodes[p].outputs = add.outputs
            mergeOrigins(&graph.nodes[p], add)
            graph.nodes.remove(at: i)
            fused += 1
        }
        return fused
    }
}
