/// The IR's operator set. Semantics follow the ONNX operator of the same name (opset 17) so
/// that export is one-to-one and the ONNX node tests can check the kernels. Attributes are
/// typed; inputs are positional as in ONNX (an absent optional input is the empty name "").
public enum Op: Sendable, Hashable {
    // Linear algebra and convolution
    /// Inputs: X (N, C, spatial...), W (M, C/group, kernel...), optional B (M).
    case conv(ConvAttributes)
    /// Inputs: A, B, optional C (unidirectionally broadcast to the result).
    case gemm(GemmAttributes)
    /// numpy matmul of two inputs.
    case matMul
    /// Inputs: X (N, C, spatial...), W (C, M/group, kernel...), optional B (M). The gradient of
    /// Conv: every input cell scatters its kernel-weighted contribution into the output.
    case convTranspose(ConvTransposeAttributes)

    // Pooling over NCHW inputs
    case maxPool(PoolAttributes)
    /// Caffe's pooling mask (a MAX Pooling's second top; not ONNX): for each 2-D max-pooling
    /// window, the float index h * W + w within its (n, c) plane of the window's first largest
    /// value (scanning rows, then columns), -1 for a window with no input cell. Output shape
    /// as MaxPool's, float32.
    case maxPoolIndices(PoolAttributes)
    /// Max unpooling with Caffe's plane indices (the SegNet / ENet forks' Upsample with a
    /// mask; not ONNX): inputs values and indices (N, C, h, w), the indices as
    /// `maxPoolIndices` makes them; output (N, C, outputHeight, outputWidth) of zeros with each
    /// value written at its index in its plane, a later value winning. An index outside the
    /// plane is an error.
    case maxUnpool(outputHeight: Int, outputWidth: Int)
    case averagePool(PoolAttributes)
    case globalAveragePool
    case globalMaxPool

    // Elementwise activations
    case relu
    case sigmoid
    case tanh
    case leakyRelu(alpha: Float)
    /// Softmax along one axis (ONNX opset 13+ semantics).
    case softmax(axis: Int)
    /// log(Softmax) along one axis (ONNX opset 13+ semantics), computed without overflow.
    case logSoftmax(axis: Int)
    /// 0.5 x (1 + erf(x / sqrt 2)); `approximate`: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
    case gelu(approximate: Bool)
    /// x for x >= 0, alpha (exp(x) - 1) below.
    case elu(alpha: Float)
    /// gamma x for x > 0, gamma alpha (exp(x) - 1) otherwise.
    case selu(alpha: Float, gamma: Float)
    /// max(0, min(1, alpha x + beta)).
    case hardSigmoid(alpha: Float, beta: Float)
    /// x where x > alpha, else 0.
    case thresholdedRelu(alpha: Float)
    /// min(max(x, min), max); a nil bound does not clip (ONNX 11+ passes the bounds as inputs).
    case clip(min: Float?, max: Float?)
    /// Inputs X, slope; slope broadcasts unidirectionally to X. x < 0 ? slope x : x.
    case prelu
    /// log(1 + exp(x)), x / (1 + |x|), x relu6(x + 3) / 6, x tanh(softplus(x)).
    case softplus, softsign, hardSwish, mish

    // Elementwise unary math
    case abs, neg, exp, log, sqrt, reciprocal, floor, ceil, erf

    // Elementwise binary with numpy broadcasting
    case add, sub, mul, div
    /// X to the power Y.
    case pow
    /// One or more inputs, numpy broadcasting: elementwise max, min, sum and mean.
    case max, min, sum, mean

    // Normalization
    /// Inference form. Inputs X (N, C, ...), scale, B, mean, var (each [C]):
    /// (x - mean) / sqrt(var + epsilon) * scale + B per channel.
    case batchNormalization(epsilon: Float)
    /// Training form (ONNX training_mode = 1), inputs as above: X normalized with its own
    /// per-channel statistics (mean and population variance over every axis but 1). Outputs
    /// Y, then optionally the running mean and variance: input mean x momentum + batch mean
    /// x (1 - momentum), likewise the variance.
    case batchNormalizationTraining(epsilon: Float, momentum: Float)
    /// Inputs X (N, C, spatial...), scale [C], B [C]: each (n, c) slice normalized over its
    /// spatial elements (population variance), then scaled and shifted per channel.
    case instanceNormalization(epsilon: Float)
    /// Inputs X, Scale, optional B: normalized over axes axis..<rank, then times Scale plus B
    /// (both broadcast to X). Only ONNX's first output (Y).
    case layerNormalization(axis: Int, epsilon: Float)
    /// Inputs X (N, C, ...), scale [C], bias [C] (per channel, as in ONNX opset 21): channels
    /// split into `numGroups` groups, each (n, group) normalized over its channels and spatial elements.
    case groupNormalization(numGroups: Int, epsilon: Float)
    /// Across channels: x / (bias + alpha / size * sum of x^2 over the window of `size`
    /// channels c - (size-1)/2 ... c + ceil((size-1)/2))^beta.
    case lrn(size: Int, alpha: Float, beta: Float, bias: Float)
    /// x / ||x||_p along `axis`, p 1 or 2; a zero norm gives 0.
    case lpNormalization(axis: Int, p: Int)

    // Reductions
    /// Reduces over `axes` (nil: every axis), keeping them as size 1 when `keepDims`.
    case reduce(ReduceOperation, axes: [Int]?, keepDims: Bool)
    /// Index (int64) of the first (or last) largest / smallest element along `axis`.
    case argMax(axis: Int, keepDims: Bool, selectLastIndex: Bool)
    case argMin(axis: Int, keepDims: Bool, selectLastIndex: Bool)
    /// ONNX TopK (sorted, K as an attribute): outputs the k largest (or smallest) values along
    /// `axis`, best first, and their indices (int64); equal values in index order.
    case topK(axis: Int, k: Int, largest: Bool)

    // Comparison and logic, numpy broadcasting, bool results
    /// Elementwise a == b, a > b, a < b, a >= b, a <= b of two inputs of one element type.
    case equal, greater, less, greaterOrEqual, lessOrEqual
    /// Logical not of a bool input; and / or of two bool inputs.
    case not, and, or
    /// Inputs condition (bool), X, Y, broadcast together: X where the condition holds, else Y.
    case `where`

    // Type conversion
    /// Converts elements to `to`: floats to integers truncate toward zero, integers wrap
    /// to narrower ones, anything nonzero is true, float16 rounds to nearest even.
    case cast(to: DType)

    // Data movement
    /// ONNX Flatten: 2-D result (product of dims before axis, product from axis on).
    case flatten(axis: Int)
    /// ONNX Reshape with the target shape as an attribute: 0 copies the input's dimension
    /// (with `allowZero`, as ONNX's allowzero = 1, it is a size 0, and no -1 may appear),
    /// -1 is inferred.
    case reshape(shape: [Int], allowZero: Bool = false)
    case transpose(perm: [Int])
    case identity
    /// Joins its inputs (one or more, same dtype, same sizes off the axis) along an axis.
    case concat(axis: Int)
    /// Cuts the input along an axis into sizes.count outputs of these sizes.
    case split(axis: Int, sizes: [Int])
    case slice(SliceAttributes)
    case pad(PadAttributes)
    /// Removes the listed axes (each of size 1); an empty list removes every axis of size 1.
    case squeeze(axes: [Int])
    /// Inserts size-1 axes at the listed positions of the output.
    case unsqueeze(axes: [Int])
    /// Repeats the input repeats[i] times along axis i.
    case tile(repeats: [Int])
    /// Broadcasts the input with `shape` (numpy rules in both directions, as ONNX Expand).
    case expand(shape: [Int])
    /// Inputs: data, indices (int64 or int32; negative counts from the end). The output is
    /// data's shape with the axis replaced by the indices' shape.
    case gather(axis: Int)
    /// Moves (blockSize x blockSize) groups of channels into space.
    case depthToSpace(blockSize: Int, mode: DepthToSpaceMode)
    /// Moves (blockSize x blockSize) blocks of space into channels (the inverse of DCR DepthToSpace).
    case spaceToDepth(blockSize: Int)
    /// Resamples an N-D input (nearest, linear or cubic) to `sizes`, or by `scales`.
    case resize(ResizeAttributes)

    // Recurrent layers, ONNX layouts and gate orders. Inputs: X, W, R, then optional B,
    // sequence_lens (int32), initial_h (LSTM: then initial_c, P). Outputs: Y, Y_h (LSTM: Y_c);
    // a node may list fewer (a prefix) or name an unused one "" (`hasOptionalOutputs`).
    /// Gates i, o, f, c.
    case lstm(RecurrentAttributes)
    /// Gates z, r, h.
    case gru(RecurrentAttributes)
    case rnn(RecurrentAttributes)

    // Detection
    /// SSD's DetectionOutput (Caffe): inputs loc, conf, priors; output (1, 1, detections, 7).
    /// No ONNX equivalent: export refuses it.
    case detectionOutput(DetectionOutputAttributes)

    /// Whether a node may list a prefix of the outputs and name unused ones "" (the recurrent
    /// ops and MaxPool, as ONNX allows); every other op's node names each output.
    public var hasOptionalOutputs: Bool {
        switch self {
        case .lstm, .gru, .rnn: return true
        // Y, then the optional Indices.
        case .maxPool: return true
        // Y, then the optional running mean and variance.
        case .batchNormalizationTraining: return true
        default: return false
        }
    }

    /// The ONNX op type name.
    public var name: String {
        switch self {
        case .conv: return "Conv"
        case .gemm: return "Gemm"
        case .matMul: return "MatMul"
        case .convTranspose: return "ConvTranspose"
        case .maxPool: return "MaxPool"
        case .maxPoolIndices: return "MaxPoolIndices"
        case .maxUnpool: return "MaxUnpool"
        case .averagePool: return "AveragePool"
        case .globalAveragePool: return "GlobalAveragePool"
        case .globalMaxPool: return "GlobalMaxPool"
        case .relu: return "Relu"
        case .sigmoid: return "Sigmoid"
        case .tanh: return "Tanh"
        case .leakyRelu: return "LeakyRelu"
        case .softmax: return "Softmax"
        case .logSoftmax: return "LogSoftmax"
        case .gelu: return "Gelu"
        case .elu: return "Elu"
        case .selu: return "Selu"
        case .hardSigmoid: return "HardSigmoid"
        case .thresholdedRelu: return "ThresholdedRelu"
        case .clip: return "Clip"
        case .prelu: return "PRelu"
        case .softplus: return "Softplus"
        case .softsign: return "Softsign"
        case .hardSwish: return "HardSwish"
        case .mish: return "Mish"
        case .abs: return "Abs"
        case .neg: return "Neg"
        case .exp: return "Exp"
        case .log: return "Log"
        case .sqrt: return "Sqrt"
        case .reciprocal: return "Reciprocal"
        case .floor: return "Floor"
        case .ceil: return "Ceil"
        case .erf: return "Erf"
        case .add: return "Add"
        case .sub: return "Sub"
        case .mul: return "Mul"
        case .div: return "Div"
        case .pow: return "Pow"
        case .max: return "Max"
        case .min: return "Min"
        case .sum: return "Sum"
        case .mean: return "Mean"
        case .batchNormalization, .batchNormalizationTraining: return "BatchNormalization"
        case .instanceNormalization: return "InstanceNormalization"
        case .layerNormalization: return "LayerNormalization"
        case .groupNormalization: return "GroupNormalization"
        case .lrn: return "LRN"
        case .lpNormalization: return "LpNormalization"
        case .reduce(let operation, _, _): return operation.onnxName
        case .argMax: return "ArgMax"
        case .topK: return "TopK"
        case .argMin: return "ArgMin"
        case .equal: return "Equal"
        case .greater: return "Greater"
        case .less: return "Less"
        case .greaterOrEqual: return "GreaterOrEqual"
        case .lessOrEqual: return "LessOrEqual"
        case .not: return "Not"
        case .and: return "And"
        case .or: return "Or"
        case .where: return "Where"
        case .cast: return "Cast"
        case .flatten: return "Flatten"
        case .reshape: return "Reshape"
        case .transpose: return "Transpose"
        case .identity: return "Identity"
        case .concat: return "Concat"
        case .split: return "Split"
        case .slice: return "Slice"
        case .pad: return "Pad"
        case .squeeze: return "Squeeze"
        case .unsqueeze: return "Unsqueeze"
        case .tile: return "Tile"
        case .expand: return "Expand"
        case .gather: return "Gather"
        case .depthToSpace: return "DepthToSpace"
        case .spaceToDepth: return "SpaceToDepth"
        case .resize: return "Resize"
        case .lstm: return "LSTM"
        case .gru: return "GRU"
        case .rnn: return "RNN"
        case .detectionOutput: return "DetectionOutput"
        }
    }

    /// How many inputs the op takes: (required, maximum).
    public var arity: (required: Int, maximum: Int) {
        switch self {
        // Conv's optional input 3 is a residual the optimizer fused in (added before the activation).
        case .conv: return (2, 4)
        case .gemm: return (2, 3)
        case .convTranspose: return (2, 3)
        case .matMul, .add, .sub, .mul, .div: return (2, 2)
        case .prelu: return (2, 2)
        case .pow: return (2, 2)
        case .max, .min, .sum, .mean: return (1, Int.max)
        case .batchNormalization, .batchNormalizationTraining: return (5, 5)
        case .instanceNormalization, .groupNormalization: return (3, 3)
        case .layerNormalization: return (2, 3)
        case .equal, .greater, .less, .greaterOrEqual, .lessOrEqual, .and, .or: return (2, 2)
        case .where: return (3, 3)
        case .detectionOutput: return (3, 3)
        case .maxUnpool: return (2, 2)
        case .concat: return (1, Int.max)
        case .gather: return (2, 2)
        case .lstm: return (3, 8)
        case .gru, .rnn: return (3, 6)
        default: return (1, 1)
        }
    }

    /// Attributes in a stable, readable order (for dumps and for exporters that want a list).
    public var attributeSummary: [(String, String)] {
        func list(_ a: [Int]) -> String { "[" + a.map(String.init).joined(separator: ",") + "]" }
        switch self {
        case .conv(let c):
            return [("kernel_shape", list(c.kernelShape)), ("strides", list(c.strides)),
                    ("pads", list(c.pads)), ("dilations", list(c.dilations)), ("group", String(c.group))]
                + (c.activation.map { [("activation", $0.name)] } ?? [])
        case .convTranspose(let c):
            return [("kernel_shape", list(c.kernelShape)), ("strides", list(c.strides)),
                    ("pads", list(c.pads)), ("dilations", list(c.dilations)), ("group", String(c.group)),
                    ("output_padding", list(c.outputPadding))]
        case .gemm(let g):
            return [("alpha", "\(g.alpha)"), ("beta", "\(g.beta)"),
                    ("transA", g.transA ? "1" : "0"), ("transB", g.transB ? "1" : "0")]
                + (g.activation.map { [("activation", $0.name)] } ?? [])
                + (g.flattensA ? [("flattens_a", "1")] : [])
        case .maxUnpool(let h, let w): return [("output_size", list([h, w]))]
        case .maxPool(let p), .averagePool(let p), .maxPoolIndices(let p):
            var a = [("kernel_shape", list(p.kernelShape)), ("strides", list(p.strides)),
                     ("pads", list(p.pads)), ("ceil_mode", p.ceilMode ? "1" : "0")]
            if case .averagePool = self { a.append(("count_include_pad", p.countIncludePad ? "1" : "0")) }
            if !p.isDense { a.append(("dilations", list(p.dilations))) }
            if p.indicesOrder == .columnMajor { a.append(("storage_order", "1")) }
            return a
        case .leakyRelu(let alpha): return [("alpha", "\(alpha)")]
        case .softmax(let axis), .flatten(let axis): return [("axis", String(axis))]
        case .logSoftmax(let axis): return [("axis", String(axis))]
        case .gelu(let approximate): return [("approximate", approximate ? "tanh" : "none")]
        case .elu(let alpha), .thresholdedRelu(let alpha): return [("alpha", "\(alpha)")]
        case .selu(let alpha, let gamma): return [("alpha", "\(alpha)"), ("gamma", "\(gamma)")]
        case .hardSigmoid(let alpha, let beta): return [("alpha", "\(alpha)"), ("beta", "\(beta)")]
        case .clip(let lo, let hi):
            return [lo.map { ("min", "\($0)") }, hi.map { ("max", "\($0)") }].compactMap { $0 }
        case .batchNormalization(let epsilon), .instanceNormalization(let epsilon): return [("epsilon", "\(epsilon)")]
        case .batchNormalizationTraining(let epsilon, let momentum):
            return [("epsilon", "\(epsilon)"), ("momentum", "\(momentum)"), ("training_mode", "1")]
        case .layerNormalization(let axis, let epsilon): return [("axis", String(axis)), ("epsilon", "\(epsilon)")]
        case .groupNormalization(let groups, let epsilon): return [("num_groups", String(groups)), ("epsilon", "\(epsilon)")]
        case .lrn(let size, let alpha, let beta, let bias):
            return [("size", String(size)), ("alpha", "\(alpha)"), ("beta", "\(beta)"), ("bias", "\(bias)")]
        case .lpNormalization(let axis, let p): return [("axis", String(axis)), ("p", String(p))]
        case .reduce(_, let axes, let keepDims):
            return (axes.map { [("axes", list($0))] } ?? []) + [("keepdims", keepDims ? "1" : "0")]
        case .argMax(let axis, let keepDims, let last), .argMin(let axis, let keepDims, let last):
            return [("axis", String(axis)), ("keepdims", keepDims ? "1" : "0"), ("select_last_index", last ? "1" : "0")]
        case .topK(let axis, let k, let largest):
            return [("axis", String(axis)), ("k", String(k)), ("largest", largest ? "1" : "0")]
        case .cast(let to): return [("to", to.rawValue)]
        case .reshape(let shape, let allowZero): return [("shape", list(shape))] + (allowZero ? [("allowzero", "1")] : [])
        case .transpose(let perm): return [("perm", list(perm))]
        case .concat(let axis), .gather(let axis): return [("axis", String(axis))]
        case .split(let axis, let sizes): return [("axis", String(axis)), ("split", list(sizes))]
        case .slice(let s):
            return [("starts", list(s.starts)), ("ends", list(s.ends)), ("axes", list(s.axes)), ("steps", list(s.steps))]
        case .pad(let p): return [("pads", list(p.pads)), ("mode", p.mode.rawValue), ("value", "\(p.value)")]
        case .squeeze(let axes), .unsqueeze(let axes): return [("axes", list(axes))]
        case .tile(let repeats): return [("repeats", list(repeats))]
        case .expand(let shape): return [("shape", list(shape))]
        case .depthToSpace(let b, let mode): return [("blocksize", String(b)), ("mode", mode.rawValue)]
        case .spaceToDepth(let b): return [("blocksize", String(b))]
        case .resize(let r):
            var a = [("mode", r.mode.rawValue), ("coordinate_transformation_mode", r.coordinateTransformation.rawValue)]
            if r.mode == .nearest { a.append(("nearest_mode", r.nearestMode.rawValue)) }
            if r.mode == .cubic { a += [("cubic_coeff_a", "\(r.cubicCoeffA)"), ("exclude_outside", r.excludeOutside ? "1" : "0")] }
            if let scales = r.scales { a.append(("scales", "[" + scales.map { "\($0)" }.joined(separator: ",") + "]")) }
            if let sizes = r.sizes { a.append(("sizes", list(sizes))) }
            if let axes = r.axes { a.append(("axes", list(axes))) }
            return a
        case .lstm(let r), .gru(let r), .rnn(let r):
            var a = [("hidden_size", String(r.hiddenSize)), ("direction", r.direction.rawValue)]
            if !r.activations.isEmpty { a.append(("activations", r.activations.map(\.description).joined(separator: ","))) }
            if let clip = r.clip { a.append(("clip", "\(clip)")) }
            if case .gru = self { a.append(("linear_before_reset", r.linearBeforeReset ? "1" : "0")) }
            if case .lstm = self, r.inputForget { a.append(("input_forget", "1")) }
            if r.layout != 0 { a.append(("layout", String(r.layout))) }
            return a
        default: return []
        }
    }
}

/// An elementwise activation a Conv or Gemm applies to its result in the same kernel (an
/// epilogue), put there by the optimizer. Exporters write it back as a separate node
/// (`Graph.splittingFusedActivations`).
public enum FusedActivation: Sendable, Hashable {
    case relu
    case sigmoid
    case tanh
    case leakyRelu(alpha: Float)
    /// Relu6 and other clamps.
    case clip(min: Float?, max: Float?)
    case hardSigmoid(alpha: Float, beta: Float)
    case hardSwish
    case elu(alpha: Float)
    case gelu(approximate: Bool)
    /// x * sigmoid(beta * x): Keras swish/silu (beta 1), Caffe Swish. No single ONNX op before
    /// opset 24: it splits back into Sigmoid and Mul (`Graph.splittingFusedActivations`).
    case swish(beta: Float)

    /// The standalone op computing the same function, when one op does (all but swish).
    public var op: Op? {
        switch self {
        case .relu: return .relu
        case .sigmoid: return .sigmoid
        case .tanh: return .tanh
        case .leakyRelu(let alpha): return .leakyRelu(alpha: alpha)
        case .clip(let lo, let hi): return .clip(min: lo, max: hi)
        case .hardSigmoid(let alpha, let beta): return .hardSigmoid(alpha: alpha, beta: beta)
        case .hardSwish: return .hardSwish
        case .elu(let alpha): return .elu(alpha: alpha)
        case .gelu(let approximate): return .gelu(approximate: approximate)
        case .swish: return nil
        }
    }

    /// The name reports and graphs show: the standalone op's, or "Swish".
    public var name: String {
        if case .swish(let beta) = self { return beta == 1 ? "Swish" : "Swish(beta=\(beta))" }
        return op?.name ?? "\(self)"
    }

    /// The fused form of a standalone activation op, when there is one.
    public init?(_ op: Op) {
        switch op {
        case .relu: self = .relu
        case .sigmoid: self = .sigmoid
        case .tanh: self = .tanh
        case .leakyRelu(let alpha): self = .leakyRelu(alpha: alpha)
        case .clip(let lo, let hi): self = .clip(min: lo, max: hi)
        case .hardSigmoid(let alpha, let beta): self = .hardSigmoid(alpha: alpha, beta: beta)
        case .hardSwish: self = .hardSwish
        case .elu(let alpha): self = .elu(alpha: alpha)
        case .gelu(let approximate): self = .gelu(approximate: approximate)
        default: return nil
        }
    }
}

/// What a `.reduce` computes over the reduced elements (ONNX ReduceSum ... ReduceLogSumExp).
public enum ReduceOperation: Sendable, Hashable, CaseIterable {
    case sum, mean, max, min, prod, l1, l2, sumSquare, logSumExp

    /// The ONNX op type.
    public var onnxName: String {
        switch self {
        case .sum: return "ReduceSum"
        case .mean: return "ReduceMean"
        case .max: return "ReduceMax"
        case .min: return "ReduceMin"
        case .prod: return "ReduceProd"
        case .l1: return "ReduceL1"
        case .l2: return "ReduceL2"
        case .sumSquare: return "ReduceSumSquare"
        case .logSumExp: return "ReduceLogSumExp"
        }
    }
}

/// ONNX Conv attributes, all explicit (no auto_pad: importers resolve padding to numbers).
public struct ConvAttributes: Sendable, Hashable {
    public var kernelShape: [Int]
    public var strides: [Int]
    /// ONNX order: all begin pads, then all end pads ([top, left, bottom, right] in 2-D).
    public var pads: [Int]
    public var dilations: [Int]
    public var group: Int
    /// Applied to the result (after the bias and any fused residual, input 3) when the
    /// optimizer fused it in.
    public var activation: FusedActivation?

    public init(kernelShape: [Int], strides: [Int]? = nil, pads: [Int]? = nil,
                dilations: [Int]? = nil, group: Int = 1, activation: FusedActivation? = nil) {
        let n = kernelShape.count
        self.kernelShape = kernelShape
        self.strides = strides ?? Array(repeating: 1, count: n)
        self.pads = pads ?? Array(repeating: 0, count: 2 * n)
        self.dilations = dilations ?? Array(repeating: 1, count: n)
        self.group = group
        self.activation = activation
    }
}

/// ONNX Gemm: alpha * A' * B' + beta * C, A' and B' optionally transposed.
public struct GemmAttributes: Sendable, Hashable {
    public var alpha: Float
    public var beta: Float
    public var transA: Bool
    public var transB: Bool
    /// Applied to the result when the optimizer fused it in.
    public var activation: FusedActivation?
    /// A is read as 2-D, (d0, d1 * ... * dn): a Flatten(axis: 1) before the Gemm that the
    /// optimizer fused in (Keras Flatten + Dense). Exporters split it back into a Flatten.
    public var flattensA: Bool

    public init(alpha: Float = 1, beta: Float = 1, transA: Bool = false, transB: Bool = false,
                activation: FusedActivation? = nil, flattensA: Bool = false) {
        self.alpha = alpha
        self.beta = beta
        self.transA = transA
        self.transB = transB
        self.activation = activation
        self.flattensA = flattensA
    }
}

/// ONNX MaxPool / AveragePool attributes, padding explicit.
public struct PoolAttributes: Sendable, Hashable {
    public var kernelShape: [Int]
    public var strides: [Int]
    /// All begin pads, then all end pads.
    public var pads: [Int]
    /// Output size rounds up instead of down (Caffe's pooling).
    public var ceilMode: Bool
    /// AveragePool only: whether padded cells count in the divisor (Caffe yes, Keras no).
    /// When true, the divisor is the window clipped to the padded input: cells a ceil-mode
    /// window reaches beyond the end padding never count (ONNX Runtime, PyTorch and Caffe agree).
    public var countIncludePad: Bool
    /// MaxPool only (AveragePool has none before ONNX opset 19): the window reads every
    /// dilation-th cell, spanning (kernel - 1) * dilation + 1.
    public var dilations: [Int]
    /// MaxPool only: how its optional second output (Indices, int64) flattens a cell's spatial
    /// position; either way the index counts whole (N, C) planes before it.
    public var indicesOrder: StorageOrder

    public init(kernelShape: [Int], strides: [Int]? = nil, pads: [Int]? = nil,
                ceilMode: Bool = false, countIncludePad: Bool = false,
                dilations: [Int]? = nil, indicesOrder: StorageOrder = .rowMajor) {
        let n = kernelShape.count
        self.kernelShape = kernelShape
        self.strides = strides ?? Array(repeating: 1, count: n)
        self.pads = pads ?? Array(repeating: 0, count: 2 * n)
        self.ceilMode = ceilMode
        self.countIncludePad = countIncludePad
        self.dilations = dilations ?? Array(repeating: 1, count: n)
        self.indicesOrder = indicesOrder
    }

    /// Whether every window is a dense block (no dilation): what the fast kernels and the
    /// Keras and Caffe pooling layers express.
    public var isDense: Bool { dilations.allSatisfy { $0 == 1 } }
}

/// Order of a flattened multi-dimensional position (ONNX MaxPool's storage_order).
public enum StorageOrder: Sendable, Hashable {
    /// The last axis varies fastest (storage_order 0).
    case rowMajor
    /// The first axis varies fastest (storage_order 1).
    case columnMajor
}

/// ONNX ConvTranspose attributes, all explicit (importers resolve auto_pad and output_shape
/// to pads and output_padding). Output size per axis:
/// stride * (in - 1) + outputPadding + (kernel - 1) * dilation + 1 - padBegin - padEnd.
public struct ConvTransposeAttributes: Sendable, Hashable {
    public var kernelShape: [Int]
    public var strides: [Int]
    /// All begin pads, then all end pads: cells cut from the full scattered output.
    public var pads: [Int]
    public var dilations: [Int]
    public var group: Int
    /// Cells added at the end of each axis (where a stride > 1 leaves the size ambiguous).
    public var outputPadding: [Int]

    public init(kernelShape: [Int], strides: [Int]? = nil, pads: [Int]? = nil, dilations: [Int]? = nil,
                group: Int = 1, outputPadding: [Int]? = nil) {
        let n = kernelShape.count
        self.kernelShape = kernelShape
        self.strides = strides ?? Array(repeating: 1, count: n)
        self.pads = pads ?? Array(repeating: 0, count: 2 * n)
        self.dilations = dilations ?? Array(repeating: 1, count: n)
        self.group = group
        self.outputPadding = outputPadding ?? Array(repeating: 0, count: n)
    }
}

/// ONNX Slice (opset 13) with its inputs as attributes. Negative starts and ends count from
/// the end, then are clamped (to [0, size] for positive steps, [-1, size - 1] for negative);
/// ends beyond the size (importers write Int64.max for "to the end") are clamped too.
public struct SliceAttributes: Sendable, Hashable {
    public var starts: [Int]
    public var ends: [Int]
    /// One axis per start (negative counts from the end); by default 0..<starts.count.
    public var axes: [Int]
    /// Non-zero; by default 1 on every axis.
    public var steps: [Int]

    public init(starts: [Int], ends: [Int], axes: [Int]? = nil, steps: [Int]? = nil) {
        self.starts = starts
        self.ends = ends
        self.axes = axes ?? Array(0..<starts.count)
        self.steps = steps ?? Array(repeating: 1, count: starts.count)
    }
}

/// ONNX Pad modes.
public enum PadMode: String, Sendable, Hashable, CaseIterable {
    /// Fill with `value`.
    case constant
    /// Mirror without repeating the edge cell (numpy "reflect").
    case reflect
    /// Repeat the edge cell.
    case edge
}

/// ONNX Pad (opset 13) with pads and the constant as attributes.
public struct PadAttributes: Sendable, Hashable {
    /// ONNX order: every axis's begin count, then every axis's end count (one pair per input
    /// axis). Negative counts remove cells.
    public var pads: [Int]
    public var mode: PadMode
    /// The fill of `.constant` mode, converted to the input's element type.
    public var value: Float

    public init(pads: [Int], mode: PadMode = .constant, value: Float = 0) {
        self.pads = pads
        self.mode = mode
        self.value = value
    }
}

/// ONNX DepthToSpace channel orders.
public enum DepthToSpaceMode: String, Sendable, Hashable, CaseIterable {
    /// depth-column-row: channel (bh * b + bw) * C' + c (TensorFlow's depth_to_space).
    case dcr = "DCR"
    /// column-row-depth: channel c * b * b + bh * b + bw (PyTorch's pixel_shuffle).
    case crd = "CRD"
}

/// ONNX Resize (opset 13+ semantics) with scales or sizes as attributes.
public struct ResizeAttributes: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable, CaseIterable { case nearest, linear, cubic }
    /// How an output coordinate maps to an input coordinate (ONNX coordinate_transformation_mode).
    public enum CoordinateTransformation: String, Sendable, Hashable, CaseIterable {
        /// (x + 0.5) / scale - 0.5 (TF2 / PyTorch bilinear with align_corners=False).
        case halfPixel = "half_pixel"
        /// As halfPixel, but 0 where the output length is 1.
        case pytorchHalfPixel = "pytorch_half_pixel"
        /// x * (in - 1) / (out - 1).
        case alignCorners = "align_corners"
        /// x / scale (Keras UpSampling2D nearest, TF1 resize).
        case asymmetric
        /// (x + 0.5) / scale (TensorFlow's nearest resize with half-pixel centres; ONNX
        /// opsets 11 and 12 name it, later ones say it with half_pixel and another rounding).
        case tfHalfPixelForNN = "tf_half_pixel_for_nn"
        /// Samples the region `roi` (TensorFlow's crop_and_resize): start (in - 1) + x (end -
        /// start) (in - 1) / (out - 1), or (start + end) (in - 1) / 2 where out is 1; a
        /// coordinate outside [0, in - 1] gives `extrapolationValue`.
        case tfCropAndResize = "tf_crop_and_resize"
    }
    /// How nearest mode rounds the input coordinate.
    public enum NearestMode: String, Sendable, Hashable, CaseIterable {
        case roundPreferFloor = "round_prefer_floor"
        case roundPreferCeil = "round_prefer_ceil"
        case floor, ceil
    }

    public var mode: Mode
    public var coordinateTransformation: CoordinateTransformation
    public var nearestMode: NearestMode
    /// One scale per input axis, or per entry of `axes` (output size floor(in * scale));
    /// exactly one of scales and sizes.
    public var scales: [Float]?
    /// One size per input axis, or per entry of `axes`.
    public var sizes: [Int]?
    /// The axes that scales or sizes speak of, ascending (ONNX opset 18); the others keep
    /// their size. nil: every axis. Sizes for the spatial axes only keep the batch open.
    public var axes: [Int]?
    /// Cubic mode's A (-0.75 as PyTorch; TensorFlow uses -0.5).
    public var cubicCoeffA: Float
    /// Cubic mode: weights of taps outside the input are set to 0 and the rest renormalised.
    public var excludeOutside: Bool
    /// tfCropAndResize only: the region, normalized to [0, 1] per input axis, every axis's
    /// start then every axis's end (nil: the whole input).
    public var roi: [Float]?
    /// tfCropAndResize only: the value of output cells whose coordinate falls outside the input.
    public var extrapolationValue: Float

    public init(mode: Mode = .nearest, coordinateTransformation: CoordinateTransformation = .halfPixel,
                nearestMode: NearestMode = .roundPreferFloor, scales: [Float]? = nil, sizes: [Int]? = nil,
                cubicCoeffA: Float = -0.75, excludeOutside: Bool = false, axes: [Int]? = nil,
                roi: [Float]? = nil, extrapolationValue: Float = 0) {
        self.roi = roi
        self.extrapolationValue = extrapolationValue
        self.mode = mode
        self.coordinateTransformation = coordinateTransformation
        self.nearestMode = nearestMode
        self.scales = scales
        self.sizes = sizes
        self.cubicCoeffA = cubicCoeffA
        self.excludeOutside = excludeOutside
        self.axes = axes
    }
}

/// Direction of a recurrent layer.
public enum RecurrentDirection: String, Sendable, Hashable, CaseIterable {
    case forward, reverse, bidirectional

    public var count: Int { self == .bidirectional ? 2 : 1 }
}

/// The activation functions ONNX recurrent layers take (f, g, h), with their parameters.
public enum ActivationFunction: Sendable, Hashable, CustomStringConvertible {
    case sigmoid, tanh, relu
    /// alpha * x + beta
    case affine(alpha: Float, beta: Float)
    case leakyRelu(alpha: Float)
    /// x if x >= alpha else 0
    case thresholdedRelu(alpha: Float)
    /// alpha * tanh(beta * x)
    case scaledTanh(alpha: Float, beta: Float)
    /// min(max(alpha * x + beta, 0), 1) (Keras 2 hard_sigmoid: 0.2, 0.5; Keras 3: 1/6, 0.5)
    case hardSigmoid(alpha: Float, beta: Float)
    /// x if x >= 0 else alpha * (e^x - 1)
    case elu(alpha: Float)
    case softsign, softplus

    /// The ONNX name (activations attribute).
    public var onnxName: String {
        switch self {
        case .sigmoid: return "Sigmoid"
        case .tanh: return "Tanh"
        case .relu: return "Relu"
        case .affine: return "Affine"
        case .leakyRelu: return "LeakyRelu"
        case .thresholdedRelu: return "ThresholdedRelu"
        case .scaledTanh: return "ScaledTanh"
        case .hardSigmoid: return "HardSigmoid"
        case .elu: return "Elu"
        case .softsign: return "Softsign"
        case .softplus: return "Softplus"
        }
    }

    /// alpha and beta as ONNX's activation_alpha / activation_beta hold them (0 where unused).
    public var parameters: (alpha: Float, beta: Float) {
        switch self {
        case .affine(let a, let b), .scaledTanh(let a, let b), .hardSigmoid(let a, let b): return (a, b)
        case .leakyRelu(let a), .thresholdedRelu(let a), .elu(let a): return (a, 0)
        default: return (0, 0)
        }
    }

    public var hasParameters: Bool {
        switch self {
        case .sigmoid, .tanh, .relu, .softsign, .softplus: return false
        default: return true
        }
    }

    public var description: String {
        switch self {
        case .affine(let a, let b), .scaledTanh(let a, let b), .hardSigmoid(let a, let b): return "\(onnxName)(\(a),\(b))"
        case .leakyRelu(let a), .thresholdedRelu(let a), .elu(let a): return "\(onnxName)(\(a))"
        default: return onnxName
        }
    }
}

/// ONNX LSTM / GRU / RNN attributes.
public struct RecurrentAttributes: Sendable, Hashable {
    public var hiddenSize: Int
    public var direction: RecurrentDirection
    /// Empty for ONNX's defaults (LSTM sigmoid, tanh, tanh; GRU sigmoid, tanh; RNN tanh), else
    /// one list per direction (forward first), or one list used for both directions.
    public var activations: [ActivationFunction]
    /// Gate pre-activations are clipped to [-clip, clip].
    public var clip: Float?
    /// GRU: apply the reset gate after multiplying by R (Keras reset_after=True, cuDNN).
    public var linearBeforeReset: Bool
    /// LSTM: couple the input and forget gates (f = 1 - i).
    public var inputForget: Bool
    /// 0: X (seq, batch, input), Y (seq, dirs, batch, hidden), states (dirs, batch, hidden);
    /// 1: batch first: X (batch, seq, input), Y (batch, seq, dirs, hidden), states (batch, dirs, hidden).
    public var layout: Int

    public init(hiddenSize: Int, direction: RecurrentDirection = .forward, activations: [ActivationFunction] = [],
                clip: Float? = nil, linearBeforeReset: Bool = false, inputForget: Bool = false, layout: Int = 0) {
        self.hiddenSize = hiddenSize
        self.direction = direction
        self.activations = activations
        self.clip = clip
        self.linearBeforeReset = linearBeforeReset
        self.inputForget = inputForget
        self.layout = layout
    }
}
