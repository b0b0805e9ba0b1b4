import FerryIR

/// Inference BatchNormalization is a per-channel affine step, x * s + t with
/// s = scale / sqrt(var + eps) and t = B - mean * s. After a Conv or Gemm it folds into the
/// weights and bias; elsewhere it becomes one Mul and one Add by constants.
public struct FoldBatchNorm: NodeRewritePass {
    public let name = "fold-batchnorm"
    public let unit = "BatchNormalizations folded"
    public init() {}

    public func rewrite(at i: Int, in graph: inout Graph) throws -> Bool {
        let node = graph.nodes[i]
        guard case .batchNormalization(let epsilon) = node.op,
              let gamma = graph.constant(node.inputs[1]), let beta = graph.constant(node.inputs[2]),
              let mean = graph.constant(node.inputs[3]), let variance = graph.constant(node.inputs[4]),
              [gamma, beta, mean, variance].allSatisfy({ $0.dtype == .float32 }) else { return false }
        let g = gamma.floats, b = beta.floats, m = mean.floats, v = variance.floats
        let channels = g.count
        let scale = (0..<channels).map { g[$0] / (v[$0] + epsilon).squareRoot() }
        let shift = (0..<channels).map { b[$0] - m[$0] * scale[$0] }
        if let p = graph.producers()[node.inputs[0]], foldableChannels(of: p, in: graph) == channels,
           foldAffine(scale: scale, shift: shift, intoProducer: p, replacing: i, in: &graph) {
            return true
        }
        // No Conv to fold into: a Mul and an Add by (C, 1, ..., 1) constants.
        guard let rank = try graph.inferTypes()[node.inputs[0]]?.shape.rank else { return false }
        let shape = [channels] + Array(repeating: 1, count: max(rank - 2, 0))
        let s = graph.addInitializer("\(node.name)/scale", Tensor(shape: shape, floats: scale))
        let t = graph.addInitializer("\(node.name)/shift", Tensor(shape: shape, floats: shift))
        let scaled = graph.freshName("\(node.outputs[0])/scaled")
        let mul = Node(name: "\(node.name)/mul", op: .mul, inputs: [node.inputs[0], s], outputs: [scaled], origins: node.origins)
        let add = Node(name: node.name, op: .add, inputs: [scaled, t], outputs: node.outputs, origins: node.origins)
        graph.nodes.replaceSubrange(i...i, with: [mul, add])
        return true
    }
}
