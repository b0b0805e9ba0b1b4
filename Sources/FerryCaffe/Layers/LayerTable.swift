import FerryIR

/// Builds one Caffe layer: emits IR nodes on the layer's bottoms (in order) and returns one value
/// per top. The layer, its parameters and its weight blobs are in the context.
typealias CaffeLayerBuilder = @Sendable (CaffeContext, [IRValue]) throws -> [IRValue]

/// The supported layers by Caffe type string (V1 enum types are mapped to these names first).
/// Adding a layer type is one entry here plus its builder function.
let caffeLayerTable: [String: CaffeLayerBuilder] = [
    "Input": buildInput,
    // Convolution and fully connected
    "Convolution": buildConvolution,
    "DepthwiseConvolution": buildConvolution,
    "ConvolutionDepthwise": buildConvolution,
    "InnerProduct": buildInnerProduct,
    "Deconvolution": buildDeconvolution,
    // Pooling
    "Pooling": buildPooling,
    // Activations
    "ReLU": buildReLU,
    "Sigmoid": unary(.sigmoid, "sigmoid"),
    "TanH": unary(.tanh, "tanh"),
    "Softmax": buildSoftmax,
    "PReLU": buildPReLU,
    "AbsVal": buildAbsVal,
    "Swish": buildSwish,
    "Clip": buildClip,
    "ReLU6": buildReLU6,
    "Power": buildPower,
    "ELU": buildELU,
    "BNLL": buildBNLL,
    "Exp": buildExp,
    "Log": buildLog,
    "Threshold": buildThreshold,
    // Normalization and per-channel arithmetic
    "BatchNorm": buildBatchNorm,
    "BN": buildBN,
    "Scale": buildScale,
    "Bias": buildBias,
    "Eltwise": buildEltwise,
    "MVN": buildMVN,
    "Normalize": buildNormalize,
    "LRN": buildLRN,
    // Data movement
    "Flatten": buildFlatten,
    "Reshape": buildReshape,
    "Permute": buildPermute,
    "Split": buildSplit,
    "Concat": buildConcat,
    "Slice": buildSlice,
    "Crop": buildCrop,
    "Tile": buildTile,
    "ShuffleChannel": buildShuffleChannel,
    "Embed": buildEmbed,
    // Resampling
    "Interp": buildInterp,
    "Upsample": buildUpsample,
    // Reductions
    "Reduction": buildReduction,
    "ArgMax": buildArgMax,
    // Detection (SSD)
    "PriorBox": buildPriorBox,
    "DetectionOutput": buildDetectionOutput,
    "Dropout": buildPassThrough,
]

// MARK: - Shared helpers

/// A builder for a one-input op with no parameters.
func unary(_ op: Op, _ role: String) -> CaffeLayerBuilder {
    { ctx, inputs in [try ctx.emit(op, [try single(inputs, ctx)], role: role)] }
}

func single(_ inputs: [IRValue], _ ctx: CaffeContext) throws -> IRValue {
    guard inputs.count == 1 else { throw ctx.error("expects one bottom, has \(inputs.count)") }
    return inputs[0]
}

/// A Caffe axis (negative counts from the end) checked against a rank.
func caffeAxis(_ axis: Int32, rank: Int, _ ctx: CaffeContext, _ what: String = "axis") throws -> Int {
    guard let a = normalizeAxis(Int(axis), rank: rank) else {
        throw ctx.error("\(what) \(axis) is out of range for a rank-\(rank) input")
    }
    return a
}

/// The shape that broadcasts a tensor covering dims [axis, axis + count) of a rank-`rank`
/// value: those dims followed by trailing 1s (numpy aligns the leading ones).
func broadcastShape(_ dims: [Int], axis: Int, rank: Int) -> [Int] {
    dims + Array(repeating: 1, count: max(0, rank - axis - dims.count))
}

/// The Dropout layer and the like: the top is the bottom (no node).
func buildPassThrough(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    [try single(inputs, ctx)]
}

/// Split: every top is the bottom.
func buildSplit(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    return Array(repeating: x, count: ctx.layer.top.count)
}

/// Input layer: one graph input per top, shaped by `input_param.shape` (one shape for all tops
/// when only one is given), batch dimension open.
func buildInput(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let shapes = ctx.layer.inputParam.shape
    guard !shapes.isEmpty else { throw ctx.error("input_param has no shape") }
    guard shapes.count == 1 || shapes.count == ctx.layer.top.count else {
        throw ctx.error("input_param has \(shapes.count) shapes for \(ctx.layer.top.count) tops")
    }
    return try ctx.layer.top.enumerated().map { i, top in
        let dims = shapes[shapes.count == 1 ? 0 : i].dim.map { Int($0) }
        let type: TensorType
        do {
            type = try CaffeImporter.inputType(dims, name: top)
        } catch let e as FerryError {
            throw ctx.error(e.message)
        }
        return ctx.addGraphInput(top, type)
    }
}
