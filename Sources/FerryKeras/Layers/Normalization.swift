import FerryIR

/// The `axis` of a normalization layer: an integer or (Keras 2 BatchNormalization) a list.
func normalizationAxes(_ config: ConfigReader, default value: [Int]) throws -> [Int] {
    switch config.raw("axis") {
    case nil: return value
    case .array(let list)?:
        return try list.map { try JSONValue.int($0, orThrow: config.error("axis should hold integers")) }
    default:
        return [try config.int("axis")]
    }
}

/// BatchNormalization at inference: (x - moving_mean) / sqrt(moving_variance + epsilon) * gamma
/// + beta along one axis. Weights gamma (when `scale`), beta (when `center`), moving mean and
/// variance. Along the channel axis it is the IR's BatchNormalization on the channels-first
/// tensor; along another axis, a folded multiply and add in Keras layout.
struct BatchNormalizationSpec: KerasLayer {
    var axis: Int
    var epsilon: Float
    var center: Bool
    var scale: Bool

    init(config: ConfigReader) throws {
        let axes = try normalizationAxes(config, default: [-1])
        guard axes.count == 1 else { throw config.error("BatchNormalization over several axes \(axes) is not supported") }
        axis = axes[0]
        epsilon = try config.float("epsilon", default: 1e-3)
        center = try config.bool("center", default: true)
        scale = try config.bool("scale", default: true)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let t = try single(inputs, ctx)
        let shape = t.kerasShape
        let rank = shape.rank
        let a = axis < 0 ? axis + rank : axis
        guard a >= 1, a < rank else { throw ctx.error("axis \(axis) is out of range for the input \(shape)") }
        guard let c = shape[a].value else { throw ctx.error("needs a known size along axis \(axis), the input is \(shape)") }
        var specs: [WeightSpec] = []
        if scale { specs.append(WeightSpec(role: "gamma", shape: [c])) }
        if center { specs.append(WeightSpec(role: "beta", shape: [c])) }
        specs += [WeightSpec(role: "moving_mean", shape: [c]), WeightSpec(role: "moving_variance", shape: [c])]
        let w = try ctx.weights(specs)
        let gamma = scale ? w[0] : ctx.constant("gamma", Tensor(shape: [c], floats: Array(repeating: 1, count: c)))
        let beta = center ? w[scale ? 1 : 0] : ctx.constant("beta", Tensor(shape: [c], floats: Array(repeating: 0, count: c)))
        let mean = w[w.count - 2], variance = w[w.count - 1]

        if a == rank - 1 {
            let x = try ctx.channelsFirst(t)
            let y = try ctx.emit(.batchNormalization(epsilon: epsilon), [x, gamma, beta, mean, variance],
                                 role: "batchnorm")
            return [KerasTensor(channelsFirst: y)]
        }
        // Another axis: the IR's BatchNormalization normalizes axis 1, so the Keras tensor's axis
        // `a` is moved there (no Transpose when it is 1 already, as after a Dense on 3-D or 4-D
        // input) and back. The weights stay the file's own, so the Keras writer finds the layer
        // again (axis = where its layout puts the IR's axis 1) with the same weights, bit for bit.
        let x = try ctx.kerasLayout(t)
        let toAxis1 = [0, a] + (1..<rank).filter { $0 != a }
        let moved = a == 1 ? x : try ctx.emit(.transpose(perm: toAxis1), [x], role: "axis_to_front")
        var y = try ctx.emit(.batchNormalization(epsilon: epsilon), [moved, gamma, beta, mean, variance], role: "batchnorm")
        if a != 1 {
            var back = [Int](repeating: 0, count: rank)
            for (k, p) in toAxis1.enumerated() { back[p] = k }
            y = try ctx.emit(.transpose(perm: back), [y], role: "axis_back")
        }
        return [KerasTensor(keras: y)]
    }
}

/// LayerNormalization over any axes of the Keras-layout tensor: gamma and beta have the sizes
/// of those axes. Over trailing axes it is the IR's LayerNormalization; over others, reductions:
/// (x - mean) / sqrt(var + eps) * gamma + beta. Keras 3's (deprecated) rms_scaling computes
/// x / sqrt(var + eps) * gamma: the variance, without subtracting the mean, and no beta.
struct LayerNormalizationSpec: KerasLayer {
    var axes: [Int]
    var epsilon: Float
    var center: Bool
    var scale: Bool
    var rmsScaling: Bool

    init(config: ConfigReader) throws {
        axes = try normalizationAxes(config, default: [-1])
        epsilon = try config.float("epsilon", default: 1e-3)
        rmsScaling = try config.bool("rms_scaling", default: false)
        center = try config.bool("center", default: true) && !rmsScaling
        scale = try config.bool("scale", default: true) || rmsScaling
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try ctx.kerasLayout(single(inputs, ctx))
        let rank = x.rank
        let normalized = Set(axes.map { $0 < 0 ? $0 + rank : $0 }).sorted()
        guard let first = normalized.first, first >= 1, normalized.last! < rank else {
            throw ctx.error("LayerNormalization over axes \(axes) is out of range for a rank-\(rank) input")
        }
        var shape: [Int] = []
        for a in normalized {
            guard let d = x.shape[a].value else { throw ctx.error("needs known sizes, the input is \(x.shape)") }
            shape.append(d)
        }
        let count = shape.reduce(1, *)
        var specs: [WeightSpec] = []
        if scale { specs.append(WeightSpec(role: "gamma", shape: shape)) }
        if center { specs.append(WeightSpec(role: "beta", shape: shape)) }
        let trailing = normalized == Array(first..<rank)
        // Weights broadcast along the normalized axes (already so when they are trailing).
        var bshape = Array(repeating: 1, count: rank)
        for (a, d) in zip(normalized, shape) { bshape[a] = d }
        let w = try ctx.weights(specs) { _, t in trailing ? t : t.reshaped(bshape) }
        if trailing && !rmsScaling {
            let gamma = scale ? w[0] : ctx.constant("gamma", Tensor(shape: shape, floats: Array(repeating: 1, count: count)))
            let beta: IRValue? = center ? w[scale ? 1 : 0] : nil
            let y = try ctx.emit(.layerNormalization(axis: first, epsilon: epsilon), [x, gamma, beta], role: "layernorm")
            return [KerasTensor(keras: y)]
        }
        let mean = try ctx.emit(.reduce(.mean, axes: normalized, keepDims: true), [x], role: "mean")
        let centered = try ctx.emit(.sub, [x, mean], role: "centered")
        let squares = try ctx.emit(.mul, [centered, centered], role: "squares")
        let variance = try ctx.emit(.reduce(.mean, axes: normalized, keepDims: true), [squares], role: "variance")
        let eps = ctx.constant("epsilon", Tensor(shape: [], floats: [epsilon]))
        let std = try ctx.emit(.sqrt, [try ctx.emit(.add, [variance, eps], role: "variance_eps")], role: "std")
        var y = try ctx.emit(.div, [rmsScaling ? x : centered, std], role: "normalized")
        if scale { y = try ctx.emit(.mul, [y, w[0]], role: "gamma") }
        if center { y = try ctx.emit(.add, [y, w[scale ? 1 : 0]], role: "beta") }
        return [KerasTensor(keras: y)]
    }
}

/// GroupNormalization along the channel axis: channels split into `groups` contiguous groups.
struct GroupNormalizationSpec: KerasLayer {
    var groups: Int
    var epsilon: Float
    var center: Bool
    var scale: Bool

    init(config: ConfigReader) throws {
        groups = try config.int("groups", default: 32)
        try requirePositive([groups], "groups", config)
        let axes = try normalizationAxes(config, default: [-1])
        guard axes == [-1] else { throw config.error("GroupNormalization along axis \(axes) is not supported (only -1)") }
        epsilon = try config.float("epsilon", default: 1e-3)
        center = try config.bool("center", default: true)
        scale = try config.bool("scale", default: true)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try ctx.channelsFirst(single(inputs, ctx))
        guard x.rank >= 3 else { throw ctx.error("expects an input with spatial axes, got \(x.shape)") }
        guard let c = x.shape[1].value, c % groups == 0 else {
            throw ctx.error("channels of \(x.shape) are not a multiple of groups \(groups)")
        }
        var specs: [WeightSpec] = []
        if scale { specs.append(WeightSpec(role: "gamma", shape: [c])) }
        if center { specs.append(WeightSpec(role: "beta", shape: [c])) }
        let w = try ctx.weights(specs)
        let gamma = scale ? w[0] : ctx.constant("gamma", Tensor(shape: [c], floats: Array(repeating: 1, count: c)))
        let beta = center ? w[scale ? 1 : 0] : ctx.constant("beta", Tensor(shape: [c], floats: Array(repeating: 0, count: c)))
        let y = try ctx.emit(.groupNormalization(numGroups: groups, epsilon: epsilon), [x, gamma, beta], role: "groupnorm")
        return [KerasTensor(channelsFirst: y)]
    }
}

/// UnitNormalization: x / ||x||_2 along one axis (Keras clamps the squared norm at 1e-12;
/// ONNX LpNormalization gives 0 for a zero norm: they differ only for norms below 1e-6).
struct UnitNormalizationSpec: KerasLayer {
    var axis: Int

    init(config: ConfigReader) throws {
        let axes = try normalizationAxes(config, default: [-1])
        guard axes.count == 1 else { throw config.error("UnitNormalization over several axes \(axes) is not supported") }
        axis = axes[0]
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        try [ctx.sameLayout(single(inputs, ctx)) { x, channelsFirst in
            guard let a = kerasAxis(axis, rank: x.rank, channelsFirst: channelsFirst), a > 0 else {
                throw ctx.error("axis \(axis) is out of range for rank \(x.rank)")
            }
            return try ctx.emit(.lpNormalization(axis: a, p: 2), [x], role: "l2_normalize")
        }]
    }
}

/// The Normalization preprocessing layer: (x - mean) / max(sqrt(variance), 1e-7) along the
/// kept axes (or its inverse with invert=True), with mean and variance from the config (given to the constructor) or from the
/// weights (adapted: mean, variance, count). Folded into a multiply and an add.
struct PreprocessingNormalizationSpec: KerasLayer {
    var axes: [Int]
    /// invert=True maps normalized values back: mean + x * max(sqrt(variance), 1e-7).
    var invert: Bool
    var mean: [Float]?
    var variance: [Float]?

    init(config: ConfigReader) throws {
        axes = config.raw("axis") == nil ? [] : try normalizationAxes(config, default: [-1])
        invert = try config.bool("invert", default: false)
        mean = try config.floats("mean")
        variance = try config.floats("variance")
        guard (mean == nil) == (variance == nil) else { throw config.error("Normalization has mean without variance") }
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try ctx.kerasLayout(single(inputs, ctx))
        let rank = x.rank
        let kept = axes.map { $0 < 0 ? $0 + rank : $0 }
        guard kept.allSatisfy({ $0 >= 1 && $0 < rank }) else { throw ctx.error("axis \(axes) is out of range for \(x.shape)") }
        var statShape: [Int] = []
        for a in kept {
            guard let d = x.shape[a].value else { throw ctx.error("needs known sizes, the input is \(x.shape)") }
            statShape.append(d)
        }
        let count = statShape.reduce(1, *)
        var m: [Float], v: [Float]
        if let mean, let variance {
            func widen(_ a: [Float]) throws -> [Float] {
                if a.count == count { return a }
                guard a.count == 1 else { throw ctx.error("mean and variance should hold 1 or \(count) values") }
                return Array(repeating: a[0], count: count)
            }
            (m, v) = (try widen(mean), try widen(variance))
        } else {
            let w = try ctx.weights([WeightSpec(role: "mean", shape: statShape), WeightSpec(role: "variance", shape: statShape),
                                     WeightSpec(role: "count", shape: [], used: false)])
            m = ctx.builder.graph.initializers[w[0].name]!.floats
            v = ctx.builder.graph.initializers[w[1].name]!.floats
        }
        let std = v.map { max($0.squareRoot(), 1e-7) }
        let scale = invert ? std : std.map { 1 / $0 }
        let shift = invert ? m : zip(m, scale).map { -$0 * $1 }
        // Broadcast shape: the kept axes' sizes, 1 elsewhere (kept axes are in increasing order).
        var bshape = Array(repeating: 1, count: rank)
        for (a, d) in zip(kept, statShape) { bshape[a] = d }
        var y = try ctx.emit(.mul, [x, ctx.constant("scale", Tensor(shape: bshape, floats: scale))], role: "scale")
        y = try ctx.emit(.add, [y, ctx.constant("shift", Tensor(shape: bshape, floats: shift))], role: "shift")
        return [KerasTensor(keras: y)]
    }
}
