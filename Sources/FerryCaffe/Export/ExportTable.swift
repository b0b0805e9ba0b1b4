import FerryIR

/// IR op name -> the writer emitting its Caffe layers. An op missing here is reported as one
/// Caffe cannot express. Adding an op is one entry here plus its writer.
let caffeExportTable: [String: CaffeLayerWriter] = [
    // Convolution and fully connected
    "Conv": writeConvolution,
    "ConvTranspose": writeDeconvolution,
    "Gemm": writeInnerProduct,
    "MatMul": writeMatMulAsInnerProduct,
    // Pooling
    "MaxPool": writePooling,
    "AveragePool": writePooling,
    "GlobalAveragePool": writeGlobalPooling,
    "GlobalMaxPool": writeGlobalPooling,
    "MaxPoolIndices": writePooling,
    // Resampling
    "Resize": writeResize,
    "MaxUnpool": writeMaxUnpool,
    // Activations
    "Relu": activation("ReLU"),
    "LeakyRelu": writeLeakyReLU,
    "Sigmoid": activation("Sigmoid"),
    "Tanh": activation("TanH"),
    "Elu": writeELU,
    "Clip": writeClip,
    "PRelu": writePReLU,
    "Abs": activation("AbsVal"),
    "Softplus": activation("BNLL"),
    "Exp": activation("Exp"),
    "Log": activation("Log"),
    "Softmax": writeSoftmax,
    "LogSoftmax": writeLogSoftmax,
    "HardSigmoid": writeHardSigmoid,
    "HardSwish": writeHardSwish,
    "Softsign": writeSoftsign,
    "Selu": writeSelu,
    "Mish": writeMish,
    "Gelu": writeGelu,
    "ArgMax": writeArgMax,
    "ReduceMax": writeReduceMaxAsArgMax,
    "ReduceMean": writeBatchStatisticsBN,
    "Neg": powerForm(scale: -1),
    "Sqrt": powerForm(power: 0.5),
    // Normalization
    "BatchNormalization": writeBatchNorm,
    "LRN": writeLRN,
    // Elementwise arithmetic
    "Add": writeBinary,
    "Sub": writeBinary,
    "Mul": writeBinary,
    "Div": writeBinary,
    "Pow": writePow,
    "Max": writeVariadic,
    "Min": writeMin,
    "Sum": writeVariadic,
    "Mean": writeVariadic,
    // Data movement
    "Concat": writeConcat,
    "Flatten": writeFlatten,
    "Reshape": writeReshape,
    "Squeeze": writeReshapeToOutputShape,
    "Unsqueeze": writeReshapeToOutputShape,
    "Transpose": writePermute,
    "Split": writeSplit,
    "Slice": writeSlice,
    "Tile": writeTile,
    "Identity": writeIdentity,
]

// MARK: - Shared pieces

/// The data input of a one-input node, as a blob.
func dataBottom(_ ctx: CaffeExportContext, _ node: Node) throws -> String {
    try ctx.bottom(node.inputs[0])
}

/// A one-input layer with no parameters, written in place when it can be.
func activation(_ type: String) -> CaffeLayerWriter {
    { ctx, node in
        ctx.addLayer(type, bottoms: [try dataBottom(ctx, node)], outputs: node.outputs, inPlace: true)
    }
}

/// Power: (shift + scale * x) ^ power.
func powerForm(power: Float = 1, scale: Float = 1, shift: Float = 0) -> CaffeLayerWriter {
    { ctx, node in
        ctx.addLayer("Power", bottoms: [try dataBottom(ctx, node)], outputs: node.outputs, inPlace: true,
                     powerParams(power: power, scale: scale, shift: shift))
    }
}

/// An axis normalized against the value's rank.
func exportAxis(_ axis: Int, of value: String, _ ctx: CaffeExportContext) throws -> Int {
    let rank = try ctx.rank(value)
    guard let a = normalizeAxis(axis, rank: rank) else { throw ctx.error("axis \(axis) is out of range for rank \(rank)") }
    return a
}

// MARK: - Activations

func writeLeakyReLU(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .leakyRelu(let alpha) = node.op else { return }
    ctx.addLayer("ReLU", bottoms: [try dataBottom(ctx, node)], outputs: node.outputs, inPlace: true) { $0.reluParam.negativeSlope = alpha }
}

func writeELU(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .elu(let alpha) = node.op else { return }
    ctx.addLayer("ELU", bottoms: [try dataBottom(ctx, node)], outputs: node.outputs, inPlace: true) { $0.eluParam.alpha = alpha }
}

/// Clip to [0, max] with max 6 is ReLU6 (the MobileNet forks' layer, which OpenCV reads);
/// [0, inf) is ReLU; other bounds are Clip (BVLC Caffe since 2019); one bound other than 0
/// (Keras's ReLU max_value after its ReLU) is a Power-ReLU-Power chain.
func writeClip(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .clip(let lo, let hi) = node.op else { return }
    let x = try dataBottom(ctx, node)
    switch (lo, hi) {
    case (0?, 6?): ctx.addLayer("ReLU6", bottoms: [x], outputs: node.outputs, inPlace: true)
    case (0?, nil): ctx.addLayer("ReLU", bottoms: [x], outputs: node.outputs, inPlace: true)
    case (let lo?, let hi?):
        ctx.addLayer("Clip", bottoms: [x], outputs: node.outputs, inPlace: true) { l in
            l.clipParam.min = lo
            l.clipParam.max = hi
        }
    default: try writeOneSidedClip(&ctx, node, lo: lo, hi: hi)
    }
}

/// PRelu with one slope per channel (C, 1, ...) or one shared slope -> PReLU; other slopes
/// (over whole axes of the data) -> a chain of layers.
func writePReLU(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard let slope = ctx.constant(node.inputs[1]) else { throw ctx.error("the slope must be a constant") }
    let x = try dataBottom(ctx, node)
    let sizes = try ctx.featureSizes(node.inputs[0])
    if slope.count == 1 {
        ctx.addLayer("PReLU", bottoms: [x], outputs: node.outputs, blobs: [slope.reshaped([1])], inPlace: true) {
            $0.preluParam.channelShared = true
        }
        return
    }
    // One slope per channel: a (C, 1, ..., 1) constant aligned at axis 1.
    let aligned = Array(repeating: 1, count: max(0, sizes.count + 1 - slope.rank)) + slope.shape
    guard let c = sizes.first, slope.count == c, aligned.count == sizes.count + 1, aligned[1] == c else {
        // A slope over other or more axes (Keras's PReLU without shared_axes): a chain.
        try writeSlopePerCellPReLU(&ctx, node, slope: slope)
        return
    }
    ctx.addLayer("PReLU", bottoms: [x], outputs: node.outputs, blobs: [slope.reshaped([c])], inPlace: true)
}

func writeSoftmax(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .softmax(let axis) = node.op else { return }
    let a = try exportAxis(axis, of: node.inputs[0], ctx)
    ctx.addLayer("Softmax", bottoms: [try dataBottom(ctx, node)], outputs: node.outputs) { l in
        if a != 1 { l.softmaxParam.axis = Int32(a) }
    }
}

func writePow(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard let e = ctx.constant(node.inputs[1]), e.count == 1 else {
        throw ctx.error("only a constant scalar exponent has a Caffe layer (Power)")
    }
    try powerForm(power: e.floats[0])(&ctx, node)
}

// MARK: - Normalization

/// BatchNormalization -> BatchNorm (mean, variance, scale factor 1) followed, unless gamma is 1
/// and beta 0, by Scale (gamma, beta): Caffe's BatchNorm only normalizes.
func writeBatchNorm(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .batchNormalization(let epsilon) = node.op else { return }
    let parts = node.inputs[1...4].map { ctx.constant($0) }
    guard let gamma = parts[0], let beta = parts[1], let mean = parts[2], let variance = parts[3] else {
        throw ctx.error("scale, bias, mean and variance must be constants")
    }
    let c = mean.count
    let x = try dataBottom(ctx, node)
    let identityAffine = gamma.floats.allSatisfy { $0 == 1 } && beta.floats.allSatisfy { $0 == 0 }
    let bnBlobs = [mean.reshaped([c]), variance.reshaped([c]), Tensor(shape: [1], floats: [1])]
    func configure(_ l: inout Caffe_LayerParameter) {
        l.batchNormParam.useGlobalStats = true
        if epsilon != 1e-5 { l.batchNormParam.eps = epsilon }
    }
    if identityAffine {
        ctx.addLayer("BatchNorm", bottoms: [x], outputs: node.outputs, blobs: bnBlobs, configure)
        return
    }
    let name = ctx.mainLayerName(producing: [])
    let normalized = ctx.intermediateBlob("\(node.outputs[0])/normalized")
    ctx.addRawLayer("BatchNorm", name: name, bottoms: [x], tops: [normalized], blobs: bnBlobs, configure)
    ctx.addLayer("Scale", bottoms: [normalized], outputs: node.outputs, blobs: [gamma.reshaped([c]), beta.reshaped([c])],
                 name: ctx.uniqueLayerName("\(name)/scale")) { l in
        l.scaleParam.biasTerm = true
    }
}

/// LRN across channels: the IR's window, alpha / size and bias are Caffe's local_size, alpha and k.
func writeLRN(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .lrn(let size, let alpha, let beta, let bias) = node.op else { return }
    guard size % 2 == 1 else { throw ctx.error("LRN size \(size) is even; Caffe's local_size is odd") }
    ctx.addLayer("LRN", bottoms: [try dataBottom(ctx, node)], outputs: node.outputs) { l in
        l.lrnParam.localSize = UInt32(size)
        l.lrnParam.alpha = alpha
        l.lrnParam.beta = beta
        if bias != 1 { l.lrnParam.k = bias }
    }
}
