import FerryIR

/// A Keras activation function name (`activation=` argument or Activation layer).
enum KerasActivation: String {
    case linear, relu, relu6, sigmoid, hardSigmoid = "hard_sigmoid", tanh, softmax
    case logSoftmax = "log_softmax", softplus, softsign, elu, selu, exponential
    case swish, silu, hardSwish = "hard_swish", hardSilu = "hard_silu", gelu, mish
    case leakyRelu = "leaky_relu"

    /// Reads `key` (absent means `fallback`, null means linear). Keras 3 may also write a
    /// serialized function object; its registered name is used.
    init(_ config: ConfigReader, key: String = "activation", default fallback: String = "linear") throws {
        let name: String
        switch config.raw(key) {
        case nil:
            name = config.keys.contains(key) ? "linear" : fallback
        case .string(let s)?:
            name = s
        case .object(let o)?:
            guard let s = o["config"]?.string ?? o["registered_name"]?.string ?? o["class_name"]?.string else {
                throw config.error("activation is an object without a name")
            }
            name = s
        case let other?:
            throw config.error("activation should be a name, is \(other.summary)")
        }
        guard let a = KerasActivation(rawValue: name) else {
            throw config.error("activation '\(name)' is not supported")
        }
        self = a
    }
}

/// Keras's SELU constants.
let seluAlpha: Float = 1.6732632423543772848170429916717
let seluScale: Float = 1.0507009873554804934193349852946

extension LayerContext {
    /// Applies an activation in whatever layout the tensor is held (softmax works on the
    /// channel axis: the last in Keras layout, axis 1 channels first).
    func activate(_ activation: KerasActivation, _ t: KerasTensor) throws -> KerasTensor {
        let (x, channelsFirst) = anyLayout(t)
        let axis = channelsFirst ? 1 : -1
        let y: IRValue
        switch activation {
        case .linear: return t
        case .relu: y = try emit(.relu, [x], role: "relu")
        case .relu6: y = try emit(.clip(min: 0, max: 6), [x], role: "relu6")
        case .sigmoid: y = try emit(.sigmoid, [x], role: "sigmoid")
        case .hardSigmoid:
            // Keras 2: clip(0.2 x + 0.5, 0, 1); Keras 3: relu6(x + 3) / 6.
            let slope: Float = kerasMajor == 2 ? 0.2 : 1.0 / 6.0
            y = try emit(.hardSigmoid(alpha: slope, beta: 0.5), [x], role: "hard_sigmoid")
        case .tanh: y = try emit(.tanh, [x], role: "tanh")
        case .softmax: y = try emit(.softmax(axis: axis), [x], role: "softmax")
        case .logSoftmax: y = try emit(.logSoftmax(axis: axis), [x], role: "log_softmax")
        case .softplus: y = try emit(.softplus, [x], role: "softplus")
        case .softsign: y = try emit(.softsign, [x], role: "softsign")
        case .elu: y = try emit(.elu(alpha: 1), [x], role: "elu")
        case .selu: y = try emit(.selu(alpha: seluAlpha, gamma: seluScale), [x], role: "selu")
        case .exponential: y = try emit(.exp, [x], role: "exp")
        case .swish, .silu:
            let s = try emit(.sigmoid, [x], role: "sigmoid")
            y = try emit(.mul, [x, s], role: "swish")
        case .hardSwish, .hardSilu: y = try emit(.hardSwish, [x], role: "hard_swish")
        case .gelu: y = try emit(.gelu(approximate: false), [x], role: "gelu")
        case .mish: y = try emit(.mish, [x], role: "mish")
        case .leakyRelu: y = try emit(.leakyRelu(alpha: 0.2), [x], role: "leaky_relu")
        }
        return channelsFirst ? KerasTensor(channelsFirst: y) : KerasTensor(keras: y)
    }

    /// The tensor in the layout it is held in, wrapped back after `body` maps it.
    func sameLayout(_ t: KerasTensor, _ body: (IRValue, Bool) throws -> IRValue) throws -> KerasTensor {
        let (x, channelsFirst) = anyLayout(t)
        let y = try body(x, channelsFirst)
        return channelsFirst ? KerasTensor(channelsFirst: y) : KerasTensor(keras: y)
    }
}

extension KerasTensor {
    /// The shape in Keras layout, whichever layout the tensor is held in.
    var kerasShape: Shape {
        if let k = kerasForm { return k.shape }
        let d = channelsFirstForm!.shape.dims
        return Shape([d[0]] + Array(d[2...]) + [d[1]])
    }
}

/// A Keras axis (negative counts from the end) of a rank-`rank` tensor, as an index into the
/// tensor's Keras layout, or into its channels-first layout when `channelsFirst`.
func kerasAxis(_ axis: Int, rank: Int, channelsFirst: Bool) -> Int? {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0, a < rank else { return nil }
    guard channelsFirst, rank >= 3 else { return a }
    if a == 0 { return 0 }
    return a == rank - 1 ? 1 : a + 1
}

/// ReLU layer: min(max_value, x) above the threshold, negative_slope (x - threshold) below.
struct ReLUSpec: KerasLayer {
    var maxValue: Float?
    var negativeSlope: Float
    var threshold: Float

    init(config: ConfigReader) throws {
        maxValue = try config.optionalFloat("max_value")
        negativeSlope = try config.float("negative_slope", default: 0)
        threshold = try config.float("threshold", default: 0)
        if negativeSlope != 0 && threshold != 0 {
            throw config.error("ReLU with both negative_slope and threshold is not supported")
        }
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        try [ctx.sameLayout(single(inputs, ctx)) { x, _ in
            var y: IRValue
            if threshold != 0 {
                y = try ctx.emit(.thresholdedRelu(alpha: threshold), [x], role: "thresholded_relu")
            } else if negativeSlope != 0 {
                y = try ctx.emit(.leakyRelu(alpha: negativeSlope), [x], role: "leaky_relu")
            } else {
                y = try ctx.emit(.relu, [x], role: "relu")
            }
            if let maxValue { y = try ctx.emit(.clip(min: nil, max: maxValue), [y], role: "max_value") }
            return y
        }]
    }
}

/// LeakyReLU: `alpha` (Keras 2, default 0.3) or `negative_slope` (Keras 3, default 0.3).
struct LeakyReLUSpec: KerasLayer {
    var slope: Float

    init(config: ConfigReader) throws {
        slope = try config.optionalFloat("negative_slope") ?? config.optionalFloat("alpha") ?? 0.3
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        try [ctx.sameLayout(single(inputs, ctx)) { x, _ in
            try ctx.emit(.leakyRelu(alpha: slope), [x], role: "leaky_relu")
        }]
    }
}

/// ELU layer (alpha).
struct ELUSpec: KerasLayer {
    var alpha: Float

    init(config: ConfigReader) throws {
        alpha = try config.float("alpha", default: 1)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        try [ctx.sameLayout(single(inputs, ctx)) { x, _ in try ctx.emit(.elu(alpha: alpha), [x], role: "elu") }]
    }
}

/// ThresholdedReLU (theta): x where x > theta, else 0.
struct ThresholdedReLUSpec: KerasLayer {
    var theta: Float

    init(config: ConfigReader) throws {
        theta = try config.float("theta", default: 1)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        try [ctx.sameLayout(single(inputs, ctx)) { x, _ in
            try ctx.emit(.thresholdedRelu(alpha: theta), [x], role: "thresholded_relu")
        }]
    }
}

/// Softmax layer over one axis (default the last).
struct SoftmaxSpec: KerasLayer {
    var axis: Int
    /// Keras leaves masked positions out of the softmax.
    var maskEffect: KerasMaskEffect { .reads }

    init(config: ConfigReader) throws {
        if let list = config.raw("axis")?.array {
            guard list.count == 1 else { throw config.error("Softmax over several axes is not supported") }
            axis = try JSONValue.int(list[0], orThrow: config.error("Softmax axis should be an integer"))
        } else {
            axis = try config.int("axis", default: -1)
        }
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        try [ctx.sameLayout(single(inputs, ctx)) { x, channelsFirst in
            guard let a = kerasAxis(axis, rank: x.rank, channelsFirst: channelsFirst) else {
                throw ctx.error("axis \(axis) is out of range for rank \(x.rank)")
            }
            return try ctx.emit(.softmax(axis: a), [x], role: "softmax")
        }]
    }
}

/// PReLU: a learned slope per element, shared (size 1) along `shared_axes`; stored in Keras
/// layout without the batch axis, it is permuted to match a channels-first tensor.
struct PReLUSpec: KerasLayer {
    var sharedAxes: [Int]

    init(config: ConfigReader) throws {
        switch config.raw("shared_axes") {
        case nil: sharedAxes = []
        case .array(let list)?:
            sharedAxes = try list.map { try JSONValue.int($0, orThrow: config.error("shared_axes should be integers")) }
        default:
            sharedAxes = [try config.int("shared_axes")]
        }
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let t = try single(inputs, ctx)
        let rank = t.rank
        let kerasShape = t.kerasShape
        var alphaShape: [Int] = []
        for i in 1..<rank {
            if sharedAxes.contains(i) { alphaShape.append(1); continue }
            guard let d = kerasShape[i].value else { throw ctx.error("PReLU needs known sizes, the input is \(kerasShape)") }
            alphaShape.append(d)
        }
        let channelsFirst = ctx.anyLayout(t).channelsFirst
        let spec = WeightSpec(role: "alpha", shape: alphaShape)
        let alpha = try ctx.placedWeights([spec], [channelsFirst && rank >= 3
            ? .permuted("alpha", weight: 0, stored: alphaShape, [rank - 2] + Array(0..<(rank - 2)))
            : .stored("alpha", weight: 0, shape: alphaShape)])[0]
        return [try ctx.sameLayout(t) { x, _ in try ctx.emit(.prelu, [x, alpha], role: "prelu") }]
    }
}
