import FerryIR

/// Multiplication and addition by per-channel constants after a Conv or Gemm (Caffe's
/// BatchNorm + Scale, Keras Rescaling, folded normalizations) are folded into its weights and
/// bias: conv(x, W, b) * s + t = conv(x, W * s, b * s + t) channel by channel.
public struct FoldAffineIntoConv: NodeRewritePass {
    public let name = "fold-affine-into-conv"
    public let unit = "Mul/Add/Sub/Div nodes folded"
    public init() {}

    /// Folds node `i` into its producer when it is an affine step by a per-channel constant.
    public func rewrite(at i: Int, in graph: inout Graph) throws -> Bool {
        let node = graph.nodes[i]
        // Which operand is the Conv/Gemm result and which the constant (Sub and Div: x - c, x / c only).
        let commutative: Bool
        switch node.op {
        case .mul, .add: commutative = true
        case .sub, .div: commutative = false
        default: return false
        }
        guard let (p, _, c) = graph.fusableProducers(ofOperandsOf: i, commutative: commutative, where: { _ in true })
                  .first(where: { graph.constant(node.inputs[$0.other]) != nil }),
              let channels = foldableChannels(of: p, in: graph),
              let constant = graph.constant(node.inputs[c]), constant.dtype == .float32,
              let perChannel = valuesPerChannel(constant, channels: channels, producer: graph.nodes[p].op) else { return false }
        var scale = Array(repeating: Float(1), count: channels)
        var shift = Array(repeating: Float(0), count: channels)
        switch node.op {
        case .mul: scale = perChannel
        case .div: scale = perChannel.map { 1 / $0 }
        case .add: shift = perChannel
        default: shift = perChannel.map { -$0 }
        }
        return foldAffine(scale: scale, shift: shift, intoProducer: p, replacing: i, in: &graph)
    }

    /// The constant as one value per output channel of the producer, if it broadcasts that way.
    func valuesPerChannel(_ constant: Tensor, channels: Int, producer: Op) -> [Float]? {
        let values = constant.floats
        if values.count == 1 { return Array(repeating: values[0], count: channels) }
        switch producer {
        case .conv(let a):
            // Varying along axis 1 of (N, C, spatial...) only: right-aligned (C, 1, ..., 1).
            let rank = a.kernelShape.count + 2
            guard constant.rank <= rank else { return nil }
            let padded = Array(repeating: 1, count: rank - constant.rank) + constant.shape
            guard padded[0] == 1, padded[1] == channels, padded.dropFirst(2).allSatisfy({ $0 == 1 }) else { return nil }
        default:
            guard constant.count == channels, constant.rank <= 2, constant.shape.last == channels else { return nil }
        }
        return values
    }
}

/// The output channel count of node `p` when a per-channel affine step after it can fold into
/// its weights: a Conv or Gemm with constant weights (and bias), no fused activation, whose
/// result nothing else reads.
func foldableChannels(of p: Int, in graph: Graph) -> Int? {
    let producer = graph.nodes[p]
    // A fused residual is added after the bias: scaling the weights would not scale it.
    guard producer.op.fusedActivation == nil, (2...3).contains(producer.inputs.count), graph.isPrivate(producer.outputs[0]),
          let weight = graph.constant(producer.inputs[1]), weight.dtype == .float32 else { return nil }
    if producer.inputs.count > 2, !producer.inputs[2].isEmpty, graph.constant(producer.inputs[2]) == nil { return nil }
    let channels: Int
    switch producer.op {
    case .conv: channels = weight.shape[0]
    case .gemm(let a):
        guard !a.transA, a.beta == 1 else { return nil }
        channels = a.transB ? weight.shape[0] : weight.shape[1]
    default: return nil
    }
    if producer.inputs.count > 2, let b = graph.constant(producer.inputs[2]), b.count != channels { return nil }
    return channels
}

/// Replaces node `i` (an affine step y = x * scale + shift per channel, reading node `p`'s
/// result) by folding it into `p`'s weight and bias. `p` must pass `foldableChannels`.
func foldAffine(scale: [Float], shift: [Float], intoProducer p: Int, replacing i: Int, in graph: inout Graph) -> Bool {
    let producer = graph.nodes[p]
    // The weights are scaled into a new initializer; the original is dropped below once unread.
    guard let shape = graph.constant(producer.inputs[1])?.shape, var w = graph.constant(producer.inputs[1])?.floats else { return false }
    // When this node is their only reader the graph lets go of them first, so that they are
    // scaled in place: a copy would hold the weight twice for a moment (ResNet50's 9.4 MB 3x3
    // kernels were most of what its optimization added to the process's peak).
    if graph.isPrivate(producer.inputs[1]) { graph.initializers[producer.inputs[1]] = nil }
    let channels = scale.count
    if case .gemm(let a) = producer.op, !a.transB {
        for r in 0..<shape[0] { for ch in 0..<channels { w[r * channels + ch] *= scale[ch] } }
    } else {
        let per = w.count / channels
        for ch in 0..<channels { for k in 0..<per { w[ch * per + k] *= scale[ch] } }
    }
    let oldBias = producer.inputs.count > 2 ? graph.constant(producer.inputs[2])?.floats : nil
    let b = oldBias ?? Array(repeating: 0, count: channels)
    let bias = (0..<channels).map { b[$0] * scale[$0] + shift[$0] }
    var fused = producer
    fused.inputs[1] = graph.addInitializer(producer.inputs[1], Tensor(shape: shape, floats: w))
    let biasName = graph.addInitializer("\(producer.name)/bias", Tensor(shape: [channels], floats: bias))
    if fused.inputs.count > 2 { fused.inputs[2] = biasName } else { fused.inputs.append(biasName) }
    graph.replace(pattern: [p, i], with: fused)
    graph.dropUnreadInitializers(Array(producer.inputs.dropFirst()))
    return true
}
