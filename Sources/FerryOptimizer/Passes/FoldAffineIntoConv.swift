import FerryIR

/// Multiplication and addition by per-channel constants after a Conv or Gemm (Caffe's
/// BatchNorm + Scale, Keras Rescaling, folded normalizations) are folded into its weights and
/// bias: conv(x, W, b) * s + t = conv(x, W * s, b * s + t) channel by channel.
public struct FoldAffineIntoConv: Pass {
    public let name = "fold-affine-into-conv"
    public let unit = "Mul/Add/Sub/Div nodes folded"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var folded = 0
        var i = 0
        while i < graph.nodes.count {
            if try fold(at: i, in: &graph) { folded += 1 } else { i += 1 }
        }
        return folded
    }

    /// Folds node `i` into its producer when it is an affine step by a per-channel constant.
    func fold(at i: Int, in graph: inout Graph) throws -> Bool {
        let node = graph.nodes[i]
        let producers = graph.producers()
        // Which operand is the Conv/Gemm result and which the constant (Sub and Div: x - c, x / c only).
        let commutative: Bool
        switch node.op {
        case .mul, .add: commutative = true
        case .sub, .div: commutative = false
        default: return false
        }
        let orders = commutative ? [(0, 1), (1, 0)] : [(0, 1)]
        guard let (v, c) = orders.first(where: { v, c in
                  producers[node.inputs[v]] != nil && graph.constant(node.inputs[c]) != nil }),
              let p = producers[node.inputs[v]],
              graph.consumers()[node.inputs[v]]?.count == 1,
              !graph.outputNames.contains(node.inputs[v]),
              let constant = graph.constant(node.inputs[c]), constant.dtype == .float32 else { return false }
        let producer = graph.nodes[p]
        switch producer.op {
        case .conv, .gemm: break
        default: return false
        }
        guard producer.op.fusedActivation == nil, let weight = graph.constant(producer.inputs[1]),
              weight.dtype == .float32 else { return false }

        // Channels of the result, and the constant as one value per channel.
        let channels: Int
        switch producer.op {
        case .conv:
            channels = weight.shape[0]
            // The constant must vary along axis 1 of (N, C, spatial...) only: right-aligned, (C, 1, ..., 1).
            let rank = weight.rank
            guard constant.rank <= rank else { return false }
            let padded = Array(repeating: 1, count: rank - constant.rank) + constant.shape
            guard padded[0] == 1, padded[1] == channels || padded[1] == 1, padded.dropFirst(2).allSatisfy({ $0 == 1 }) else {
                return false
            }
        case .gemm(let a):
            guard !a.transA, a.beta == 1 else { return false }
            channels = a.transB ? weight.shape[0] : weight.shape[1]
            guard constant.count == 1 || (constant.count == channels && constant.rank <= 2 && constant.shape.last == channels) else { return false }
        default:
            return false
        }
        let values = constant.floats
        let perChannel = (0..<channels).map { values.count == 1 ? values[0] : values[$0] }
        var scale = Array(repeating: Float(1), count: channels)
        var shift = Array(repeating: Float(0), count: channels)
        switch node.op {
        case .mul: scale = perChannel
        case .div: scale = perChannel.map { 1 / $0 }
        case .add: shift = perChannel
        default: shift = perChannel.map { -$0 }
        }

        // New weight: scale each output channel.
        var w = weight.floats
        switch producer.op {
        case .gemm(let a) where !a.transB:
            for r in 0..<weight.shape[0] { for ch in 0..<channels { w[r * channels + ch] *= scale[ch] } }
        default:
            let per = w.count / channels
            for ch in 0..<channels { for k in 0..<per { w[ch * per + k] *= scale[ch] } }
        }
        let oldBias = producer.inputs.count > 2 ? graph.constant(producer.inputs[2]) : nil
        if producer.inputs.count > 2, !producer.inputs[2].isEmpty, oldBias == nil { return false }
        if let b = oldBias, b.count != channels { return false }
        let b = oldBias?.floats ?? Array(repeating: 0, count: channels)
        let bias = (0..<channels).map { b[$0] * scale[$0] + shift[$0] }

        graph.nodes[p].inputs[1] = graph.addInitializer(producer.inputs[1], Tensor(shape: weight.shape, floats: w))
        let biasName = graph.addInitializer("\(producer.name)/bias", Tensor(shape: [channels], floats: bias))
        if graph.nodes[p].inputs.count > 2 { graph.nodes[p].inputs[2] = biasName } else { graph.nodes[p].inputs.append(biasName) }
        graph.nodes[p].outputs = node.outputs
        mergeOrigins(&graph.nodes[p], node)
        graph.nodes.remove(at: i)
        return true
    }
}
