import Foundation
import FerryIR

/// IR op name -> the writer emitting its Keras layers. An op missing here is one Keras has no
/// built-in layer for (reported; never written as a Lambda).
let kerasExportTable: [String: KerasLayerWriter] = [
    "Conv": writeKerasConv,
    "ConvTranspose": writeKerasConvTranspose,
    "RNN": writeKerasRecurrent,
    "LSTM": writeKerasRecurrent,
    "GRU": writeKerasRecurrent,
    "Unsqueeze": writeKerasUnsqueeze,
    "LayerNormalization": writeKerasLayerNormalization,
    "GroupNormalization": writeKerasGroupNormalization,
    "LpNormalization": writeKerasUnitNormalization,
    "Gather": writeKerasEmbedding,
    "Cast": writeKerasCast,
    "Resize": writeKerasResize,
    "Slice": writeKerasCropping,
    "Split": writeKerasSplit,
    "Abs": writeKerasAbs,
    "Tile": writeKerasTile,
    "Gemm": writeKerasDense,
    "MatMul": writeKerasDense,
    "MaxPool": writeKerasPooling,
    "AveragePool": writeKerasPooling,
    "GlobalAveragePool": writeKerasGlobalPooling,
    "GlobalMaxPool": writeKerasGlobalPooling,
    "BatchNormalization": writeKerasBatchNorm,
    "Relu": writeKerasReLU,
    "ThresholdedRelu": writeKerasReLU,
    "PRelu": writeKerasPReLU,
    "Gelu": writeKerasActivation,
    "Mish": writeKerasActivation,
    "HardSigmoid": writeKerasActivation,
    "HardSwish": writeKerasActivation,
    "LogSoftmax": writeKerasActivation,
    "Sigmoid": writeKerasActivation,
    "Tanh": writeKerasActivation,
    "Elu": writeKerasActivation,
    "Selu": writeKerasActivation,
    "Softplus": writeKerasActivation,
    "Softsign": writeKerasActivation,
    "Exp": writeKerasActivation,
    "LeakyRelu": writeKerasReLU,
    "Clip": writeKerasClip,
    "Softmax": writeKerasSoftmax,
    "Add": writeKerasBinary,
    "Sub": writeKerasBinary,
    "Mul": writeKerasBinary,
    "Div": writeKerasBinary,
    "Max": writeKerasMerge,
    "Min": writeKerasMerge,
    "Sum": writeKerasMerge,
    "Mean": writeKerasMerge,
    "Concat": writeKerasConcat,
    "Flatten": writeKerasFlatten,
    "Reshape": writeKerasReshape,
    "Transpose": writeKerasTranspose,
    "Pad": writeKerasZeroPadding,
]

/// TensorFlow's `same` padding of one axis: (begin, end).
func tfSamePads(_ n: Int, kernel: Int, stride: Int, dilation: Int) -> (Int, Int) {
    let span = (kernel - 1) * dilation + 1
    let out = (n + stride - 1) / stride
    let total = max((out - 1) * stride + span - n, 0)
    return (total / 2, total - total / 2)
}

/// The Keras padding of a convolution over `sizes`: `valid`, `same` (TensorFlow's pads),
/// `causal` (1-D, all (k - 1) * d pads at the start), or nil (a ZeroPadding layer first).
func kerasConvPadding(_ a: ConvAttributes, sizes: [Int]) -> String? {
    let n = a.kernelShape.count
    if a.pads.allSatisfy({ $0 == 0 }) { return "valid" }
    let same = (0..<n).allSatisfy { i in
        let (b, e) = tfSamePads(sizes[i], kernel: a.kernelShape[i], stride: a.strides[i], dilation: a.dilations[i])
        return a.pads[i] == b && a.pads[i + n] == e
    }
    if same && (a.strides.allSatisfy { $0 == 1 } || a.dilations.allSatisfy { $0 == 1 }) { return "same" }
    if n == 1 && a.pads == [(a.kernelShape[0] - 1) * a.dilations[0], 0] { return "causal" }
    return nil
}

/// IR Conv weight (out, in/groups, k...) -> Keras kernel (k..., in/groups, out).
func kerasConvKernel(_ w: Tensor) -> Tensor {
    let n = w.rank - 2
    return permuted(w, Array(2..<(n + 2)) + [1, 0])
}

/// IR depthwise weight (in * multiplier, 1, k...) -> Keras depthwise kernel (k..., in, multiplier):
/// output channel c * multiplier + j reads input channel c (TensorFlow's order).
func kerasDepthwiseKernel(_ w: Tensor, channels: Int) -> Tensor {
    let n = w.rank - 2
    let split = Tensor(shape: [channels, w.shape[0] / channels] + Array(w.shape[2...]), floats: w.floats)
    return permuted(split, Array(2..<(n + 2)) + [0, 1])
}

/// Conv (1-, 2- or 3-D) -> Conv1D/2D/3D (groups), DepthwiseConv1D/2D, or SeparableConv1D/2D (a
/// depthwise and a pointwise convolution of one source layer), channels-last; padding `valid`,
/// `same`, `causal` or a ZeroPadding1D/2D/3D before a `valid` convolution; a following activation
/// of the same source layer becomes `activation=`.
func writeKerasConv(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .conv(let attributes) = node.op else { return }
    var a = attributes
    let n = a.kernelShape.count
    guard (1...3).contains(n) else { throw ctx.error("\(n)-D convolution: Keras's convolutions are 1-, 2- or 3-D") }
    guard let w = ctx.constant(node.inputs[1]) else { throw ctx.error("the weights must be a constant") }
    let hasBias = node.inputs.count > 2 && !node.inputs[2].isEmpty
    let bias = hasBias ? ctx.constant(node.inputs[2]) : nil
    if hasBias && bias == nil { throw ctx.error("the bias must be a constant") }
    guard let inType = ctx.types[node.inputs[0]], inType.shape.rank == n + 2 else { throw ctx.error("the input's rank must be known") }
    let sizes = inType.shape.dims[2...].compactMap(\.value)
    guard sizes.count == n else { throw ctx.error("the input's spatial sizes must be known") }
    let cl = channelsLastLayout(n + 2)
    var x = try ctx.input(node.inputs[0], layout: cl)
    // Keras's convolutions take strides or dilation, not both: a strided dilated one is the
    // stride-1 convolution (the same sums at every cell) followed by MaxPooling(pool_size 1,
    // strides), which keeps every stride-th cell as it is: floor((L - 1) / s) + 1 cells of the
    // L = n + pads - span + 1 the stride-1 one makes, as many as the strided convolution's.
    var subsample: [Int]?
    if !a.strides.allSatisfy({ $0 == 1 }) && !a.dilations.allSatisfy({ $0 == 1 }) {
        guard n <= 3 else { throw ctx.error("strides \(a.strides) with dilation \(a.dilations) in \(n)-D") }
        subsample = a.strides
        a.strides = Array(repeating: 1, count: n)
    }
    let (m, cPerGroup) = (w.shape[0], w.shape[1])
    let kernelSize = Array(w.shape[2...])
    let channels = cPerGroup * a.group
    var padding = kerasConvPadding(a, sizes: sizes) ?? "valid"
    if kerasConvPadding(a, sizes: sizes) == nil {
        let shape = ctx.layers.first { $0.name == x.layer }?.outputShape ?? []
        let padded: [Int?] = shape.count == n + 2
            ? [shape[0]] + (0..<n).map { i in shape[i + 1].map { $0 + a.pads[i] + a.pads[i + n] } } + [shape[n + 1]] : []
        let pairs = (0..<n).map { [a.pads[$0], a.pads[$0 + n]] }
        // ZeroPadding1D takes no data_format in tf_keras.
        x = ctx.appendLayer("ZeroPadding\(n)D", named: "\(node.origins.first?.layer ?? node.name)_pad",
                            config: n == 1 ? ["padding": pairs[0]] : ["data_format": "channels_last", "padding": pairs],
                            inbound: [x], outputShape: padded)
        padding = "valid"
    }
    var common: [String: Any] = [
        "kernel_size": kernelSize, "strides": a.strides, "padding": padding, "data_format": "channels_last",
        "dilation_rate": a.dilations, "use_bias": bias != nil,
    ]
    let isDepthwise = subsample == nil && a.group > 1 && cPerGroup == 1 && m % channels == 0
    if isDepthwise && n <= 2, bias == nil, let next = ctx.soleSameLayerReader(of: node.outputs[0]),
       case .conv(let p) = next.node.op, p.kernelShape == Array(repeating: 1, count: n), p.group == 1, p.activation == nil,
       p.pads.allSatisfy({ $0 == 0 }), let pw = ctx.constant(next.node.inputs[1]), next.node.inputs[0] == node.outputs[0] {
        // A depthwise and a pointwise convolution of one source layer: SeparableConv1D/2D.
        let outs = pw.shape[0]
        let pwBias = next.node.inputs.count > 2 && !next.node.inputs[2].isEmpty ? ctx.constant(next.node.inputs[2]) : nil
        ctx.absorbed.insert(next.index)
        let folded = foldedActivation(&ctx, after: next.node, rank: n + 2, layout: cl)
        common["depth_multiplier"] = m / channels
        common["filters"] = outs
        common["activation"] = folded.name
        common["use_bias"] = pwBias != nil
        ctx.add("SeparableConv\(n)D", config: common, inbound: [x],
                weights: [("depthwise_kernel", kerasDepthwiseKernel(w, channels: channels)),
                          ("pointwise_kernel", kerasConvKernel(pw))] + (pwBias.map { [("bias", $0.reshaped([outs]))] } ?? []),
                output: folded.output, layout: cl)
        return
    }
    if isDepthwise && n <= 2 {
        common["depth_multiplier"] = m / channels
        let (activation, output) = foldedActivation(&ctx, after: node, rank: n + 2, layout: cl)
        common["activation"] = activation
        ctx.add("DepthwiseConv\(n)D", config: common, inbound: [x],
                weights: [("depthwise_kernel", kerasDepthwiseKernel(w, channels: channels))] + (bias.map { [("bias", $0.reshaped([m]))] } ?? []),
                output: output, layout: cl)
        return
    }
    let (activation, output) = foldedActivation(&ctx, after: node, rank: n + 2, layout: cl)
    common["activation"] = activation
    common["filters"] = m
    common["groups"] = a.group
    ctx.add("Conv\(n)D", config: common, inbound: [x],
            weights: [("kernel", kerasConvKernel(w))] + (bias.map { [("bias", $0.reshaped([m]))] } ?? []),
            output: output, layout: cl)
    if let strides = subsample, let conv = ctx.tensor[output], let i = ctx.layers.firstIndex(where: { $0.name == conv.layer }) {
        // The stride-1 convolution's own output shape (channels-last), then the subsampling.
        let full: [Int?] = [nil] + (0..<n).map { i -> Int? in
            let span: Int = (kernelSize[i] - 1) * a.dilations[i] + 1
            return sizes[i] + a.pads[i] + a.pads[i + n] - span + 1
        } + [m]
        ctx.layers[i].outputShape = full
        ctx.tensor[output] = ctx.appendLayer("MaxPooling\(n)D", named: "\(conv.layer)_subsample",
                                             config: ["pool_size": Array(repeating: 1, count: n), "strides": strides, "padding": "valid",
                                                      "data_format": "channels_last"],
                                             inbound: [conv], outputShape: ctx.types[output].map { t in cl.map { t.shape.dims[$0].value } } ?? [])
    }
}

/// The IR pads (begin, end) and output padding of one axis of a Keras transposed convolution
/// over `n` cells, as the Keras importer derives them from Keras's output length
/// (`deconv_output_length`) and TensorFlow's padding of the forward convolution.
func kerasConvTransposeAxis(_ n: Int, kernel: Int, stride s: Int, dilation: Int, same: Bool, outputPadding: Int?)
    -> (begin: Int, end: Int, extra: Int) {
    let k = (kernel - 1) * dilation + 1
    let out: Int
    if let extra = outputPadding {
        out = (n - 1) * s + k - 2 * (same ? k / 2 : 0) + extra
    } else {
        out = same ? n * s : n * s + max(k - s, 0)
    }
    let total = (n - 1) * s + k - out
    let begin = max(total, 0) / 2
    return (begin, max(total - begin, 0), max(begin - total, 0))
}

/// ConvTranspose (1-, 2- or 3-D, one group) -> Conv1D/2D/3DTranspose: the `padding` (`valid` or
/// `same`) and `output_padding` (none, or one per axis below the stride) whose output Keras
/// computes with exactly the IR's pads and output padding; else an error.
func writeKerasConvTranspose(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .convTranspose(let attributes) = node.op else { return }
    var a = attributes
    let n = a.kernelShape.count
    guard (1...3).contains(n) else { throw ctx.error("\(n)-D transposed convolution: Keras's are 1-, 2- or 3-D") }
    guard var w = ctx.constant(node.inputs[1]) else { throw ctx.error("the weights must be a constant") }
    if !a.strides.allSatisfy({ $0 == 1 }) && !a.dilations.allSatisfy({ $0 == 1 }) {
        // Keras's transposed convolutions take strides or dilation: a dilated kernel is the
        // kernel spanning the same cells with zero taps between its own (each output sums the
        // same products, and zero ones).
        w = spreadKernel(w, dilations: a.dilations)
        a.kernelShape = Array(w.shape.dropFirst(2))
        a.dilations = Array(repeating: 1, count: n)
    }
    if a.group > 1 {
        // Keras's transposed convolutions take one group: a grouped one is the ungrouped one
        // whose weights are zero between channels of different groups (each output sums the
        // same products, and zero ones for the other groups' inputs).
        w = blockDiagonalTransposedWeights(w, groups: a.group)
    }
    let hasBias = node.inputs.count > 2 && !node.inputs[2].isEmpty
    let bias = hasBias ? ctx.constant(node.inputs[2]) : nil
    if hasBias && bias == nil { throw ctx.error("the bias must be a constant") }
    guard let inType = ctx.types[node.inputs[0]], inType.shape.rank == n + 2,
          case let sizes = inType.shape.dims[2...].compactMap(\.value), sizes.count == n else {
        throw ctx.error("the input's spatial sizes must be known")
    }
    func matches(same: Bool, outputPadding: [Int]?) -> Bool {
        (0..<n).allSatisfy { i in
            let axis = kerasConvTransposeAxis(sizes[i], kernel: a.kernelShape[i], stride: a.strides[i], dilation: a.dilations[i],
                                              same: same, outputPadding: outputPadding?[i])
            return axis == (a.pads[i], a.pads[i + n], a.outputPadding[i])
        }
    }
    var chosen: (same: Bool, outputPadding: [Int]?)?
    for same in [false, true] where chosen == nil {
        if matches(same: same, outputPadding: nil) { chosen = (same, nil); break }
        // Each axis on its own: the output padding (below the stride) that gives its pads.
        let perAxis = (0..<n).map { i in
            (0..<a.strides[i]).first { p in
                kerasConvTransposeAxis(sizes[i], kernel: a.kernelShape[i], stride: a.strides[i], dilation: a.dilations[i],
                                       same: same, outputPadding: p) == (a.pads[i], a.pads[i + n], a.outputPadding[i])
            }
        }
        if perAxis.allSatisfy({ $0 != nil }) { chosen = (same, perAxis.map { $0! }) }
    }
    // Else Keras's `valid` output, every cell the kernel reaches ((n - 1) s + span, or n s when
    // the span is below the stride), and a Cropping of the IR's pads: the IR's cell j is that
    // output's cell j + the begin pad (Caffe's Deconvolution with pads larger than `same`'s).
    let outSizes = ctx.types[node.outputs[0]]?.shape.dims.dropFirst(2).compactMap(\.value) ?? []
    let fullSizes: [Int] = (0..<n).map { i -> Int in
        let span: Int = (a.kernelShape[i] - 1) * a.dilations[i] + 1
        return sizes[i] * a.strides[i] + max(span - a.strides[i], 0)
    }
    var crops: [[Int]]?
    if chosen == nil, outSizes.count == n, (0..<n).allSatisfy({ fullSizes[$0] - a.pads[$0] - outSizes[$0] >= 0 }) {
        chosen = (false, nil)
        crops = (0..<n).map { [a.pads[$0], fullSizes[$0] - a.pads[$0] - outSizes[$0]] }
    }
    guard let (same, outputPadding) = chosen else {
        throw ctx.error("transposed convolution with pads \(a.pads) and output padding \(a.outputPadding) on \(sizes) is neither "
                        + "Keras's `valid` nor its `same` with any output_padding, nor a crop of `valid`")
    }
    let cl = channelsLastLayout(n + 2)
    let x = try ctx.input(node.inputs[0], layout: cl)
    let filters = w.shape[1]
    let (activation, output) = foldedActivation(&ctx, after: node, rank: n + 2, layout: cl)
    ctx.add("Conv\(n)DTranspose", config: [
        "filters": filters, "kernel_size": a.kernelShape, "strides": a.strides, "padding": same ? "same" : "valid",
        "output_padding": outputPadding.map { $0 as Any } ?? NSNull(), "data_format": "channels_last",
        "dilation_rate": a.dilations, "activation": activation, "use_bias": bias != nil,
    ], inbound: [x], weights: [("kernel", kerasConvKernel(w))] + (bias.map { [("bias", $0.reshaped([filters]))] } ?? []),
       output: output, layout: cl)
    if let crops, let deconv = ctx.tensor[output], let i = ctx.layers.firstIndex(where: { $0.name == deconv.layer }) {
        ctx.layers[i].outputShape = [nil] + fullSizes.map { Optional($0) } + [filters]
        ctx.tensor[output] = ctx.appendLayer("Cropping\(n)D", named: "\(deconv.layer)_crop",
                                             config: n == 1 ? ["cropping": crops[0]] : ["cropping": crops, "data_format": "channels_last"],
                                             inbound: [deconv], outputShape: ctx.types[output].map { t in cl.map { t.shape.dims[$0].value } } ?? [])
    }
}

/// Weights (a, b, k...) with dilations d -> (a, b, (k - 1) d + 1...): each tap at its dilated
/// place, zeros between.
func spreadKernel(_ w: Tensor, dilations: [Int]) -> Tensor {
    let k = Array(w.shape.dropFirst(2))
    let span = zip(k, dilations).map { ($0 - 1) * $1 + 1 }
    let (taps, spanTaps) = (k.reduce(1, *), span.reduce(1, *))
    let src = w.floats
    var out = [Float](repeating: 0, count: w.shape[0] * w.shape[1] * spanTaps)
    for plane in 0..<(w.shape[0] * w.shape[1]) {
        for t in 0..<taps {
            // The tap's index along each axis (last fastest), then its place in the spread kernel.
            var rest = t, place = 0, step = 1
            var index = [Int](repeating: 0, count: k.count)
            for axis in (0..<k.count).reversed() { index[axis] = rest % k[axis]; rest /= k[axis] }
            for axis in (0..<k.count).reversed() { place += index[axis] * dilations[axis] * step; step *= span[axis] }
            out[plane * spanTaps + place] = src[plane * taps + t]
        }
    }
    return Tensor(shape: Array(w.shape.prefix(2)) + span, floats: out)
}

/// Grouped ConvTranspose weights (in, out / groups, k...) -> ungrouped ones (in, out, k...),
/// zero where the input and output channels are in different groups.
func blockDiagonalTransposedWeights(_ w: Tensor, groups: Int) -> Tensor {
    let (cin, outPerGroup) = (w.shape[0], w.shape[1])
    let taps = w.shape.dropFirst(2).reduce(1, *)
    let src = w.floats
    let cout = outPerGroup * groups
    var out = [Float](repeating: 0, count: cin * cout * taps)
    for c in 0..<cin {
        let g = c / (cin / groups)
        for j in 0..<outPerGroup {
            let from = (c * outPerGroup + j) * taps, to = (c * cout + g * outPerGroup + j) * taps
            out.replaceSubrange(to..<(to + taps), with: src[from..<(from + taps)])
        }
    }
    return Tensor(shape: [cin, cout] + Array(w.shape.dropFirst(2)), floats: out)
}

/// Gemm (A not transposed, constant B and C) and MatMul by a constant matrix (with an Add of a
/// constant vector of the same source layer) -> Dense on the IR's order of features.
func writeKerasDense(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard let b = ctx.constant(node.inputs[1]), b.rank == 2 else { throw ctx.error("only a product with a constant matrix is a Dense layer") }
    var kernel = b
    var bias: [Float]?
    var output = node.outputs[0]
    let rank = try ctx.rank(node.inputs[0])
    if case .gemm(let g) = node.op {
        guard !g.transA else { throw ctx.error("a transposed A has no Dense form") }
        if g.transB { kernel = transposedMatrix(b) }
        if g.alpha != 1 { kernel = Tensor(shape: kernel.shape, floats: kernel.floats.map { $0 * g.alpha }) }
        let n = kernel.shape[1]
        if node.inputs.count > 2 && !node.inputs[2].isEmpty {
            guard let c = ctx.constant(node.inputs[2]), c.count == n || c.count == 1 else {
                throw ctx.error("C must be a constant of \(n) values")
            }
            bias = (c.count == n ? c.floats : Array(repeating: c.floats[0], count: n)).map { $0 * g.beta }
        }
    } else if let next = ctx.soleSameLayerReader(of: output), case .add = next.node.op {
        let other = next.node.inputs[0] == output ? next.node.inputs[1] : next.node.inputs[0]
        if let c = ctx.constant(other), c.count == kernel.shape[1], c.shape.last == kernel.shape[1] {
            bias = c.floats
            output = next.node.outputs[0]
            ctx.absorbed.insert(next.index)
        }
    }
    let identity = Array(0..<rank)
    let x = try ctx.input(node.inputs[0], layout: identity)
    let folded = foldedActivation(&ctx, after: Node(name: node.name, op: node.op, inputs: node.inputs, outputs: [output],
                                                     origins: node.origins), rank: rank, layout: identity)
    ctx.add("Dense", config: ["units": kernel.shape[1], "activation": folded.name, "use_bias": bias != nil],
            inbound: [x], weights: [("kernel", kernel)] + (bias.map { [("bias", Tensor(shape: [$0.count], floats: $0))] } ?? []),
            output: folded.output, layout: identity)
}

func transposedMatrix(_ t: Tensor) -> Tensor {
    let (r, c) = (t.shape[0], t.shape[1])
    let src = t.floats
    var out = [Float](repeating: 0, count: src.count)
    for i in 0..<r { for j in 0..<c { out[j * r + i] = src[i * c + j] } }
    return Tensor(shape: [c, r], floats: out)
}

/// MaxPool / AveragePool (1-, 2- or 3-D) -> MaxPooling1D/2D/3D / AveragePooling1D/2D/3D with
/// `valid` or `same` when Keras's windows (floor rounding, TF same pads, averages over real
/// cells) read the same cells and divide by the same counts as the model's, axis by axis: so
/// Caffe's ceil rounding is written where its last window, clipped to the input, is the one
/// Keras's `same` reads.
func writeKerasPooling(_ ctx: inout KerasExportContext, _ node: Node) throws {
    let a: PoolAttributes
    let isMax: Bool
    switch node.op {
    case .maxPool(let p): a = p; isMax = true
    case .averagePool(let p): a = p; isMax = false
    default: return
    }
    let n = a.kernelShape.count
    guard (1...3).contains(n) else { throw ctx.error("\(n)-D pooling: Keras's pooling layers are 1-, 2- or 3-D") }
    guard a.isDense, node.outputs.count == 1 else { throw ctx.error("Keras pooling has no dilations and no Indices output") }
    guard let inType = ctx.types[node.inputs[0]], let outType = ctx.types[node.outputs[0]],
          case let sizes = inType.shape.dims.dropFirst(2).compactMap(\.value), sizes.count == n,
          case let outSizes = outType.shape.dims.dropFirst(2).compactMap(\.value), outSizes.count == n else {
        throw ctx.error("the spatial sizes must be known")
    }
    // The model's windows, axis by axis: the input cells each reads and what an average divides
    // by. Keras's `valid` and `same` windows read real cells only and divide by their count.
    func windows(_ i: Int, out: Int, padBegin: Int, padEnd: Int, countsPad: Bool) -> [[Int]] {
        (0..<out).map { j in
            let start = j * a.strides[i] - padBegin
            let first = max(start, 0), end = max(first, min(start + a.kernelShape[i], sizes[i]))
            let divisor = countsPad ? min(start + a.kernelShape[i], sizes[i] + padEnd) - start : end - first
            return [first, end, isMax ? 0 : divisor]
        }
    }
    func model(_ i: Int) -> [[Int]] {
        windows(i, out: outSizes[i], padBegin: a.pads[i], padEnd: a.pads[i + n], countsPad: !isMax && a.countIncludePad)
    }
    let valid = (0..<n).allSatisfy { i in
        sizes[i] >= a.kernelShape[i] && model(i) == windows(i, out: (sizes[i] - a.kernelShape[i]) / a.strides[i] + 1, padBegin: 0, padEnd: 0, countsPad: false)
    }
    let same = (0..<n).allSatisfy { i in
        let (b, e) = tfSamePads(sizes[i], kernel: a.kernelShape[i], stride: a.strides[i], dilation: 1)
        return model(i) == windows(i, out: (sizes[i] + a.strides[i] - 1) / a.strides[i], padBegin: b, padEnd: e, countsPad: false)
    }
    // Else ZeroPadding + `valid` windows, which read the model's cells and zeros for its pads:
    // the same where no window reads a pad cell, where an average counts the pads (Caffe's)
    // and every window is whole (Caffe's ceil rounding clips the last one to the padded
    // input, dividing by fewer), and for a maximum where the input is never negative (a zero
    // cannot win then) and every window holds a cell of the input.
    var zeroPads: [[Int]]?
    var zeroPadsRefusal = ""
    if !valid && !same {
        let ends: [Int] = (0..<n).map { i -> Int in
            let reach: Int = (outSizes[i] - 1) * a.strides[i] + a.kernelShape[i]
            return max(reach - sizes[i] - a.pads[i], 0)
        }
        let counts = (0..<n).allSatisfy { i -> Bool in
            let extent: Int = sizes[i] + a.pads[i] + ends[i] - a.kernelShape[i]
            return extent / a.strides[i] + 1 == outSizes[i]
        }
        let readsPad = (0..<n).contains { i in model(i).enumerated().contains { j, w in
            let start = j * a.strides[i] - a.pads[i]
            return start < 0 || start + a.kernelShape[i] > sizes[i]
        } }
        let whole = (0..<n).allSatisfy { i in model(i).allSatisfy { $0[1] > $0[0] && (isMax || $0[2] == a.kernelShape[i]) } }
        if !counts || !whole {
            zeroPadsRefusal = isMax ? "; with ZeroPadding a window would read no input cell"
                : "; with ZeroPadding every average would divide by the whole window, the model's by fewer"
        } else if isMax && readsPad && !isNeverNegative(node.inputs[0], in: ctx.graph) {
            zeroPadsRefusal = "; ZeroPadding's zeros would win over negative inputs (the input is not known to be >= 0)"
        } else if !isMax && readsPad && !a.countIncludePad {
            zeroPadsRefusal = "; ZeroPadding's zeros would be counted in averages the model takes over the input's cells"
        } else {
            zeroPads = (0..<n).map { [a.pads[$0], ends[$0]] }
        }
    }
    guard valid || same || zeroPads != nil else {
        throw ctx.error("pooling with kernel \(a.kernelShape), strides \(a.strides), pads \(a.pads)\(a.ceilMode ? ", ceil rounding" : "")"
                        + "\(!isMax && a.countIncludePad ? ", padding counted in averages" : "") on \(sizes) is neither Keras's `valid` nor its `same`"
                        + zeroPadsRefusal)
    }
    let cl = channelsLastLayout(n + 2)
    var x = try ctx.input(node.inputs[0], layout: cl)
    if let pairs = zeroPads {
        let shape = ctx.layers.first { $0.name == x.layer }?.outputShape ?? []
        let padded: [Int?] = shape.count == n + 2
            ? [shape[0]] + (0..<n).map { i in shape[i + 1].map { $0 + pairs[i][0] + pairs[i][1] } } + [shape[n + 1]] : []
        x = ctx.appendLayer("ZeroPadding\(n)D", named: "\(node.origins.first?.layer ?? node.name)_pad",
                            config: n == 1 ? ["padding": pairs[0]] : ["data_format": "channels_last", "padding": pairs],
                            inbound: [x], outputShape: padded)
    }
    ctx.add(isMax ? "MaxPooling\(n)D" : "AveragePooling\(n)D",
            config: ["pool_size": a.kernelShape, "strides": a.strides, "padding": same && !valid ? "same" : "valid",
                     "data_format": "channels_last"],
            inbound: [x], output: node.outputs[0], layout: cl)
}

/// Whether a value is >= 0 (or NaN) whatever the model's inputs: made by Relu, a Clip with a
/// lower bound >= 0, Sigmoid, Softmax, Exp, Softplus or Abs, or by pooling, concatenating or
/// moving such values.
func isNeverNegative(_ value: String, in graph: Graph, depth: Int = 0) -> Bool {
    guard depth < 64, let node = graph.nodes.first(where: { $0.outputs.contains(value) }) else { return false }
    switch node.op {
    case .relu, .sigmoid, .softmax, .exp, .softplus, .abs: return true
    case .clip(let low, _): return (low ?? -1) >= 0
    case .maxPool, .averagePool, .globalMaxPool, .globalAveragePool, .flatten, .reshape, .transpose, .identity, .slice, .split:
        return isNeverNegative(node.inputs[0], in: graph, depth: depth + 1)
    case .concat, .max:
        return node.inputs.allSatisfy { isNeverNegative($0, in: graph, depth: depth + 1) }
    default: return false
    }
}

/// GlobalAveragePool / GlobalMaxPool (1-, 2- or 3-D) -> GlobalAveragePooling1D/2D/3D /
/// GlobalMaxPooling1D/2D/3D with keepdims.
func writeKerasGlobalPooling(_ ctx: inout KerasExportContext, _ node: Node) throws {
    let rank = try ctx.rank(node.inputs[0])
    guard (3...5).contains(rank) else { throw ctx.error("global pooling of a \(rank)-D value: Keras's are 1-, 2- or 3-D") }
    let cl = channelsLastLayout(rank)
    let x = try ctx.input(node.inputs[0], layout: cl)
    let isMax: Bool
    if case .globalMaxPool = node.op { isMax = true } else { isMax = false }
    let cls = (isMax ? "GlobalMaxPooling" : "GlobalAveragePooling") + "\(rank - 2)D"
    // Keras's default form (keepdims=False) is the IR's pooling and a Flatten of one source layer.
    if let next = ctx.soleSameLayerReader(of: node.outputs[0]), case .flatten(1) = next.node.op {
        ctx.absorbed.insert(next.index)
        ctx.add(cls, config: ["data_format": "channels_last", "keepdims": false],
                inbound: [x], output: next.node.outputs[0], layout: [0, 1])
        return
    }
    ctx.add(cls, config: ["data_format": "channels_last", "keepdims": true],
            inbound: [x], output: node.outputs[0], layout: cl)
}

/// BatchNormalization -> BatchNormalization over the Keras axis holding the IR's channels.
func writeKerasBatchNorm(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .batchNormalization(let epsilon) = node.op else { return }
    let parts = node.inputs[1...4].map { ctx.constant($0) }
    guard let gamma = parts[0], let beta = parts[1], let mean = parts[2], let variance = parts[3] else {
        throw ctx.error("scale, bias, mean and variance must be constants")
    }
    guard let have = ctx.layout[node.inputs[0]], let x = ctx.tensor[node.inputs[0]] else { throw ctx.error("input not written") }
    let axis = have.firstIndex(of: 1)!
    let c = mean.count
    // A gamma of ones and a beta of zeros are written as scale=False / center=False, as the
    // importer reads those flags (as the other normalizations' writers do).
    let scale = !gamma.floats.allSatisfy { $0 == 1 }, center = !beta.floats.allSatisfy { $0 == 0 }
    let weights = (scale ? [("gamma", gamma.reshaped([c]))] : []) + (center ? [("beta", beta.reshaped([c]))] : [])
        + [("moving_mean", mean.reshaped([c])), ("moving_variance", variance.reshaped([c]))]
    ctx.add("BatchNormalization", config: ["axis": axis, "momentum": 0.99, "epsilon": Double(epsilon), "center": center, "scale": scale],
            inbound: [x], weights: weights, output: node.outputs[0], layout: have)
}

/// A constant seen in a Keras tensor's layout: scalar, or varying along the last Keras axis only.
func lastAxisValues(_ c: Tensor, rank: Int, layout: [Int]) -> [Float]? {
    if c.count == 1 { return c.floats }
    let aligned = Array(repeating: 1, count: max(0, rank - c.rank)) + c.shape
    let varying = aligned.indices.filter { aligned[$0] != 1 }
    guard varying.count == 1, layout.last == varying[0] else { return nil }
    return c.floats
}

/// Add/Sub/Mul/Div. Two data inputs -> Add, Subtract, Multiply (the second in the first's
/// layout); a constant that is a scalar or varies along the Keras channel axis -> Rescaling
/// (x * scale + offset; a Mul and an Add of one source layer become one Rescaling).
func writeKerasBinary(_ ctx: inout KerasExportContext, _ node: Node) throws {
    let (a, b) = (node.inputs[0], node.inputs[1])
    let ca = ctx.constant(a), cb = ctx.constant(b)
    if ca == nil && cb == nil {
        guard let have = ctx.layout[a], let xa = ctx.tensor[a] else { throw ctx.error("input not written") }
        guard try ctx.rank(a) == ctx.rank(b) else { throw ctx.error("inputs of different ranks have no Keras merge layer") }
        let xb = try ctx.input(b, layout: have)
        let cls: String
        switch node.op {
        case .add: cls = "Add"
        case .sub: cls = "Subtract"
        case .mul: cls = "Multiply"
        default: throw ctx.error("Keras has no layer dividing two tensors")
        }
        ctx.add(cls, config: [:], inbound: [xa, xb], output: node.outputs[0], layout: have)
        return
    }
    guard (ca == nil) != (cb == nil) else { throw ctx.error("both operands are constants") }
    let data = ca == nil ? a : b
    guard let have = ctx.layout[data], let x = ctx.tensor[data] else { throw ctx.error("input not written") }
    guard ctx.types[node.outputs[0]]?.shape == ctx.types[data]?.shape else {
        throw ctx.error("the constant operand makes the result larger than the data")
    }
    var c = (ca ?? cb)!
    let isScale: Bool
    switch node.op {
    case .mul: isScale = true
    case .add: isScale = false
    case .sub where ca != nil:
        // c - x = x * -1 + c, exactly (negation is exact and the sum the same).
        guard let values = lastAxisValues(c, rank: have.count, layout: have) else {
            throw ctx.error("the constant \(c.shape) varies along more than the channel axis; Keras's Rescaling cannot hold it")
        }
        ctx.add("Rescaling", config: ["scale": -1.0, "offset": values.count == 1 ? Double(values[0]) as Any : values.map { Double($0) } as Any],
                inbound: [x], output: node.outputs[0], layout: have)
        return
    case .sub:
        isScale = false; c = Tensor(shape: c.shape, floats: c.floats.map { -$0 })
    case .div:
        guard cb != nil else { throw ctx.error("a constant divided by data has no Keras layer") }
        isScale = true; c = Tensor(shape: c.shape, floats: c.floats.map { 1 / $0 })
    default: return
    }
    guard let values = lastAxisValues(c, rank: have.count, layout: have) else {
        throw ctx.error("the constant \(c.shape) varies along more than the channel axis; Keras's Rescaling cannot hold it")
    }
    let scale: [Float] = isScale ? values : [1]
    var offset: [Float] = isScale ? [0] : values
    var output = node.outputs[0]
    if isScale, let next = ctx.soleSameLayerReader(of: output), case .add = next.node.op {
        let other = next.node.inputs[0] == output ? next.node.inputs[1] : next.node.inputs[0]
        if let t = ctx.constant(other), let v = lastAxisValues(t, rank: have.count, layout: have),
           ctx.types[next.node.outputs[0]]?.shape == ctx.types[data]?.shape {
            offset = v
            output = next.node.outputs[0]
            ctx.absorbed.insert(next.index)
        }
    }
    func json(_ v: [Float]) -> Any { v.count == 1 ? Double(v[0]) as Any : v.map { Double($0) } as Any }
    ctx.add("Rescaling", config: ["scale": json(scale), "offset": json(offset)], inbound: [x], output: output, layout: have)
}

/// Max, Min, Sum, Mean of data inputs -> Maximum, Minimum, Add, Average.
func writeKerasMerge(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard let have = ctx.layout[node.inputs[0]] else { throw ctx.error("input not written") }
    guard node.inputs.count >= 2 else { throw ctx.error("a one-input merge has no Keras layer") }
    let xs = try node.inputs.map { try ctx.input($0, layout: have) }
    let cls: String
    switch node.op {
    case .max: cls = "Maximum"
    case .min: cls = "Minimum"
    case .sum: cls = "Add"
    default: cls = "Average"
    }
    ctx.add(cls, config: [:], inbound: xs, output: node.outputs[0], layout: have)
}

/// Abs -> Maximum of the tensor and its negation (Rescaling(-1)): max(x, -x) is |x| bit for
/// bit (Keras has no abs activation).
func writeKerasAbs(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .abs = node.op, let have = ctx.layout[node.inputs[0]], let x = ctx.tensor[node.inputs[0]] else {
        throw ctx.error("input not written")
    }
    let shape = ctx.types[node.inputs[0]].map { t in have.map { $0 == 0 ? nil : t.shape.dims[$0].value } } ?? []
    let negated = ctx.appendLayer("Rescaling", named: "\(kerasLayerName(node.origins.first?.layer ?? node.name))_negated",
                                  config: ["scale": -1.0, "offset": 0.0], inbound: [x], outputShape: shape)
    ctx.add("Maximum", config: [:], inbound: [x, negated], output: node.outputs[0], layout: have)
}

func writeKerasConcat(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .concat(let axis) = node.op, let have = ctx.layout[node.inputs[0]] else { throw ctx.error("input not written") }
    guard let a = normalizeAxis(axis, rank: have.count), a > 0 else { throw ctx.error("concatenating along the batch axis") }
    let xs = try node.inputs.map { try ctx.input($0, layout: have) }
    ctx.add("Concatenate", config: ["axis": have.firstIndex(of: a)!], inbound: xs, output: node.outputs[0], layout: have)
}

/// Flatten at axis 1 -> Flatten of the tensor in the IR's order (a Permute first where the
/// Keras tensor is channels-last, so that a following Dense reads its features in the order of
/// its weights).
func writeKerasFlatten(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .flatten(let axis) = node.op else { return }
    let rank = try ctx.rank(node.inputs[0])
    guard normalizeAxis(axis, rank: rank) == 1 else { throw ctx.error("Flatten at axis \(axis) has no Keras layer (Keras keeps the batch)") }
    let x = try ctx.input(node.inputs[0], layout: Array(0..<rank), orderOnly: true)
    ctx.add("Flatten", config: ["data_format": "channels_last"], inbound: [x], output: node.outputs[0], layout: [0, 1])
}

/// Reshape keeping the batch -> Reshape of the tensor in the IR's order.
func writeKerasReshape(_ ctx: inout KerasExportContext, _ node: Node) throws {
    if try writeKerasRepeatPattern(&ctx, node) { return }
    if try writeKerasTimeMerge(&ctx, node) { return }
    guard let inType = ctx.types[node.inputs[0]], let outType = ctx.types[node.outputs[0]],
          inType.shape.rank > 0, outType.shape.rank > 0,
          inType.shape.dims[0] == outType.shape.dims[0] || ctx.isTimeMerged(node.inputs[0]) else {
        throw ctx.error("a reshape that changes the batch axis has no Keras layer")
    }
    let target = outType.shape.dims.dropFirst().compactMap(\.value)
    guard target.count == outType.shape.rank - 1 else { throw ctx.error("the target shape must be known") }
    let x = try ctx.input(node.inputs[0], layout: Array(0..<inType.shape.rank), orderOnly: true)
    ctx.add("Reshape", config: ["target_shape": target], inbound: [x], output: node.outputs[0], layout: Array(0..<outType.shape.rank))
}

/// Transpose: no layer; the output is the same Keras tensor with a changed layout.
func writeKerasTranspose(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .transpose(let perm) = node.op, let have = ctx.layout[node.inputs[0]], let x = ctx.tensor[node.inputs[0]] else {
        throw ctx.error("input not written")
    }
    var inverse = [Int](repeating: 0, count: perm.count)
    for (i, p) in perm.enumerated() { inverse[p] = i }
    ctx.tensor[node.outputs[0]] = x
    ctx.layout[node.outputs[0]] = have.map { inverse[$0] }
}

/// A zero Pad of the spatial axes of a 3-, 4- or 5-D value -> ZeroPadding1D/2D/3D.
func writeKerasZeroPadding(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .pad(let p) = node.op else { return }
    let rank = p.pads.count / 2
    guard p.mode == .constant, p.value == 0, (3...5).contains(rank), p.pads.allSatisfy({ $0 >= 0 }),
          p.pads[0] == 0, p.pads[1] == 0, p.pads[rank] == 0, p.pads[rank + 1] == 0 else {
        throw ctx.error("only zero padding of the spatial axes of a 3-, 4- or 5-D tensor is a Keras layer (ZeroPadding1D/2D/3D)")
    }
    let pairs = (2..<rank).map { [p.pads[$0], p.pads[$0 + rank]] }
    let cl = channelsLastLayout(rank)
    let x = try ctx.input(node.inputs[0], layout: cl)
    // tf_keras's ZeroPadding1D takes no data_format.
    ctx.add("ZeroPadding\(rank - 2)D", config: rank == 3 ? ["padding": pairs[0]] : ["padding": pairs, "data_format": "channels_last"],
            inbound: [x], output: node.outputs[0], layout: cl)
}

/// A Slice (steps 1) of any axes but the batch of a 3-, 4- or 5-D value -> Cropping1D/2D/3D
/// with the cells it leaves out at each end (see `writeKerasCrops`).
func writeKerasCropping(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .slice(let s) = node.op else { return }
    guard node.inputs.dropFirst().allSatisfy(\.isEmpty), let inType = ctx.types[node.inputs[0]], (3...5).contains(inType.shape.rank),
          let sizes = knownTail(inType.shape) else {
        throw ctx.error("Keras has no built-in layer for Slice (Cropping1D/2D/3D: the axes but the batch of a 3-, 4- or 5-D value with known sizes)")
    }
    let rank = inType.shape.rank
    var cuts: [Int: [Int]] = [:]
    for (i, axis) in s.axes.enumerated() {
        guard let a = normalizeAxis(axis, rank: rank), a >= 1, s.steps[i] == 1 else {
            throw ctx.error("Keras has no built-in layer for Slice along the batch axis or with steps other than 1 (Cropping1D/2D/3D)")
        }
        let n = sizes[a - 1]
        let start = min(max(s.starts[i] < 0 ? s.starts[i] + n : s.starts[i], 0), n)
        let end = min(max(s.ends[i] < 0 ? s.ends[i] + n : s.ends[i], 0), n)
        guard end > start else { throw ctx.error("a Slice keeping no cells has no Keras layer") }
        cuts[a] = [start, n - end]
    }
    try writeKerasCrops(&ctx, node.inputs[0], sizes: sizes, cuts: cuts, output: node.outputs[0])
}

/// Split of a 3-, 4- or 5-D value along any axis but the batch -> one Cropping1D/2D/3D per part
/// that something reads (the first named after the source layer, the others after their values).
func writeKerasSplit(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .split(let axis, let parts) = node.op else { return }
    guard let inType = ctx.types[node.inputs[0]], (3...5).contains(inType.shape.rank), let sizes = knownTail(inType.shape),
          let a = normalizeAxis(axis, rank: inType.shape.rank), a >= 1, parts.count == node.outputs.count else {
        throw ctx.error("Keras has no built-in layer for Split (Cropping1D/2D/3D: the axes but the batch of a 3-, 4- or 5-D value with known sizes)")
    }
    var offset = 0
    var first = true
    for (part, output) in zip(parts, node.outputs) {
        defer { offset += part }
        guard ctx.isGraphOutput(output) || ctx.graph.nodes.contains(where: { $0.inputs.contains(output) }) else { continue }
        try writeKerasCrops(&ctx, node.inputs[0], sizes: sizes, cuts: [a: [offset, sizes[a - 1] - offset - part]], output: output,
                            name: first ? nil : ctx.uniqueName(kerasLayerName(output)))
        first = false
    }
}

/// Crops IR value `input` (sizes: every axis but the batch) by `cuts` (IR axis -> cells left out
/// at its start and end) into `output`. Keras's Cropping layers crop the axes between the batch
/// and the last one, whatever they hold: the Keras tensor takes a layout with the cut axes
/// there (channels-last when only spatial axes are cut, else one with an uncut axis last, a
/// Permute first where needed); when every axis is cut, a second Cropping, after a Permute to
/// channels-last, cuts the last spatial axis.
func writeKerasCrops(_ ctx: inout KerasExportContext, _ input: String, sizes: [Int], cuts: [Int: [Int]], output: String,
                     name: String? = nil) throws {
    let rank = sizes.count + 1
    let cl = channelsLastLayout(rank)
    var steps: [(layout: [Int], cuts: [Int: [Int]])]
    if cuts.keys.allSatisfy({ $0 >= 2 }) {
        steps = [(cl, cuts)]
    } else if let free = (1..<rank).last(where: { cuts[$0] == nil }) {
        steps = [([0] + (1..<rank).filter { $0 != free } + [free], cuts)]
    } else {
        steps = [(Array(0..<rank), cuts.filter { $0.key != rank - 1 }), (cl, [rank - 1: cuts[rank - 1]!])]
    }
    var x = try ctx.input(input, layout: steps[0].layout)
    var current = sizes
    let base = name ?? ctx.graph.nodes.first { $0.outputs.contains(output) }?.origins.first?.layer ?? output
    for (k, step) in steps.enumerated() {
        let cropping = (1...(rank - 2)).map { step.cuts[step.layout[$0]] ?? [0, 0] }
        let config: [String: Any] = rank == 3 ? ["cropping": cropping[0]] : ["cropping": cropping, "data_format": "channels_last"]
        for (axis, cut) in step.cuts { current[axis - 1] -= cut[0] + cut[1] }
        if k == steps.count - 1 {
            ctx.add("Cropping\(rank - 2)D", name: name, config: config, inbound: [x], output: output, layout: step.layout)
            return
        }
        let shape = step.layout.map { $0 == 0 ? nil : current[$0 - 1] }
        x = ctx.appendLayer("Cropping\(rank - 2)D", named: "\(kerasLayerName(base))_crop", config: config, inbound: [x], outputShape: shape)
        // keras = ir.transpose(layout); the next layout's tensor is keras.transpose(q).
        let next = steps[k + 1].layout
        let q = next.map { step.layout.firstIndex(of: $0)! }
        x = ctx.appendLayer("Permute", named: "\(x.layer)_permuted", config: ["dims": Array(q.dropFirst())], inbound: [x],
                            outputShape: next.map { $0 == 0 ? nil : current[$0 - 1] })
    }
}

/// Tile along axes but the batch -> Concatenate of the tensor with itself, one per tiled axis.
func writeKerasTile(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .tile(let repeats) = node.op else { return }
    guard node.inputs.dropFirst().allSatisfy(\.isEmpty), let have = ctx.layout[node.inputs[0]], var x = ctx.tensor[node.inputs[0]],
          repeats.count == have.count, repeats.first == 1, let inType = ctx.types[node.inputs[0]] else {
        throw ctx.error("Keras has no built-in layer for Tile along the batch axis or by repeats given as an input")
    }
    let tiled = repeats.indices.filter { repeats[$0] > 1 }
    guard !tiled.isEmpty else { throw ctx.error("Keras has no built-in layer for Tile repeating nothing (an identity)") }
    var shape: [Int?] = have.map { inType.shape.dims[$0].value }
    for (k, axis) in tiled.enumerated() {
        let kerasAxis = have.firstIndex(of: axis)!
        let config: [String: Any] = ["axis": kerasAxis]
        if k == tiled.count - 1 {
            ctx.add("Concatenate", config: config, inbound: Array(repeating: x, count: repeats[axis]), output: node.outputs[0], layout: have)
            return
        }
        shape[kerasAxis] = shape[kerasAxis].map { $0 * repeats[axis] }
        x = ctx.appendLayer("Concatenate", named: "\(node.origins.first?.layer ?? node.name)_tile\(axis)", config: config,
                            inbound: Array(repeating: x, count: repeats[axis]), outputShape: shape)
    }
}

/// TimeDistributed regions (an ONNX file's form of Keras's TimeDistributed, whose per-layer
/// Reshapes the optimizer merged): a Reshape folding time into the batch, (N, T, rest) -> (N*T,
/// rest), costs no layer, and the values computed from it per sample are the same Keras tensor
/// (N, T, rest) with each layer wrapped in TimeDistributed (`KerasExportContext.add`); a Reshape
/// unfolding it, (N*T, rest) -> (N, T, rest), ends the region. Returns false for other Reshapes.
func writeKerasTimeMerge(_ ctx: inout KerasExportContext, _ node: Node) throws -> Bool {
    guard let inType = ctx.types[node.inputs[0]], let outType = ctx.types[node.outputs[0]] else { return false }
    let i = inType.shape.dims, o = outType.shape.dims
    if !ctx.isTimeMerged(node.inputs[0]), i.count == o.count + 1, i.count >= 3, let steps = i[1].value, i[0] != o[0],
       Array(i.dropFirst(2)) == Array(o.dropFirst()), o.dropFirst().allSatisfy({ $0.value != nil }) {
        let x = try ctx.input(node.inputs[0], layout: Array(0..<i.count), orderOnly: true)
        ctx.tensor[node.outputs[0]] = x
        ctx.layout[node.outputs[0]] = Array(0..<o.count)
        ctx.timeSteps[x] = steps
        return true
    }
    if ctx.isTimeMerged(node.inputs[0]), o.count == i.count + 1, i.count >= 2, let steps = o[1].value,
       Array(o.dropFirst(2)) == Array(i.dropFirst()), ctx.timeSteps[ctx.tensor[node.inputs[0]]!] == steps {
        let x = try ctx.input(node.inputs[0], layout: Array(0..<i.count), orderOnly: true)
        ctx.tensor[node.outputs[0]] = x
        ctx.layout[node.outputs[0]] = Array(0..<o.count)
        ctx.unmerged.insert(node.outputs[0])
        return true
    }
    return false
}
