import FerryIR

/// The window arguments every Keras convolution shares, for `rank` spatial dimensions.
struct ConvWindow {
    var kernelSize: [Int]
    var strides: [Int]
    var dilations: [Int]
    var padding: KerasPadding

    init(_ config: ConfigReader, rank: Int) throws {
        kernelSize = try config.ints("kernel_size", count: rank)
        strides = try config.ints("strides", count: rank, default: Array(repeating: 1, count: rank))
        dilations = try config.ints("dilation_rate", count: rank, default: Array(repeating: 1, count: rank))
        padding = try KerasPadding(config)
        try requireChannelsLast(config)
        try requirePositive(kernelSize, "kernel_size", config)
        try requirePositive(strides, "strides", config)
        try requirePositive(dilations, "dilation_rate", config)
        if padding == .causal && rank != 1 { throw config.error("causal padding is for 1-D convolutions only") }
    }

    /// The input channels first with its channel count, and the ONNX pads.
    func prepare(_ t: KerasTensor, _ ctx: LayerContext) throws -> (x: IRValue, channels: Int, pads: [Int]) {
        let rank = kernelSize.count
        let x = try ctx.channelsFirst(t)
        guard x.rank == rank + 2 else {
            throw ctx.error("expects a \(rank + 2)-D input, got \(x.shape) (channels first)")
        }
        guard let channels = x.shape[1].value else { throw ctx.error("needs a known channel count") }
        let pads = try padding.pads(spatial: Array(x.shape.dims[2...]), kernel: kernelSize, strides: strides,
                                    dilations: dilations, ctx)
        return (x, channels, pads)
    }

    func attributes(pads: [Int], group: Int) -> ConvAttributes {
        ConvAttributes(kernelShape: kernelSize, strides: strides, pads: pads, dilations: dilations, group: group)
    }
}

/// Keras kernel (k..., in, out) to the IR weight (out, in, k...): the permutation of its axes.
func convKernelPermutation(rank: Int) -> [Int] {
    let n = rank - 2
    return [n + 1, n] + Array(0..<n)
}

/// Depthwise kernel (k..., in, multiplier) to the grouped-conv weight (in * multiplier, 1, k...):
/// output channel c * multiplier + m filters input channel c (TensorFlow's order).
func depthwiseKernel(_ role: String, weight: Int, stored: [Int]) -> PlacedWeight {
    let n = stored.count - 2
    return .permuted(role, weight: weight, stored: stored, [n, n + 1] + Array(0..<n),
                     as: [stored[n] * stored[n + 1], 1] + stored[..<n])
}

/// A regular Keras kernel (k..., in, out) as the IR weight (out, in, k...), and a transposed
/// convolution's (k..., out, in) as (in, out, k...).
func convKernel(_ role: String, weight: Int, stored: [Int]) -> PlacedWeight {
    .permuted(role, weight: weight, stored: stored, convKernelPermutation(rank: stored.count))
}

/// The kernel (placed by `kernel`) and, with `useBias`, the bias as stored.
func kernelAndBias(_ specs: [WeightSpec], kernel: PlacedWeight, useBias: Bool) -> [PlacedWeight] {
    [kernel] + (useBias ? [.stored("bias", weight: specs.count - 1, shape: specs[specs.count - 1].shape)] : [])
}

/// The two kernels of a one-node convolution layer.
enum ConvKernel {
    /// Conv1D/2D/3D: (k..., in/groups, filters).
    case regular(filters: Int, groups: Int)
    /// DepthwiseConv1D/2D: (k..., in, multiplier), one group per input channel.
    case depthwise(multiplier: Int)
}

/// Conv1D / Conv2D / Conv3D and DepthwiseConv1D / DepthwiseConv2D (channels_last): one IR Conv.
/// A regular Keras kernel (k..., in/groups, out) becomes the IR weight (out, in/groups, k...); a
/// depthwise kernel (k..., in, multiplier) the weight (in * multiplier, 1, k...) with
/// group = in. 'same' padding becomes explicit, possibly asymmetric pads; 'causal' (1-D) pads
/// only the start.
struct ConvSpec<Rank: SpatialRank>: KerasLayer {
    var kernel: ConvKernel
    var window: ConvWindow
    var useBias: Bool
    var activation: KerasActivation

    /// Conv1D / Conv2D / Conv3D.
    init(config: ConfigReader) throws {
        let filters = try config.int("filters")
        let groups = try config.int("groups", default: 1)
        try requirePositive([filters, groups], "filters and groups", config)
        guard filters % groups == 0 else { throw config.error("filters \(filters) is not a multiple of groups \(groups)") }
        try self.init(.regular(filters: filters, groups: groups), config)
    }

    /// DepthwiseConv1D / DepthwiseConv2D.
    init(depthwise config: ConfigReader) throws {
        let multiplier = try config.int("depth_multiplier", default: 1)
        try requirePositive([multiplier], "depth_multiplier", config)
        try self.init(.depthwise(multiplier: multiplier), config)
    }

    private init(_ kernel: ConvKernel, _ config: ConfigReader) throws {
        self.kernel = kernel
        window = try ConvWindow(config, rank: Rank.rank)
        useBias = try config.bool("use_bias", default: true)
        activation = try KerasActivation(config)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let (x, channels, pads) = try window.prepare(single(inputs, ctx), ctx)
        let kernelSpec: WeightSpec, group: Int, outChannels: Int, role: String
        let toIR: (String, Int, [Int]) -> PlacedWeight
        switch kernel {
        case let .regular(filters, groups):
            guard channels % groups == 0 else {
                throw ctx.error("input channels \(channels) are not a multiple of groups \(groups)")
            }
            kernelSpec = WeightSpec(role: "kernel", shape: window.kernelSize + [channels / groups, filters])
            (group, outChannels, toIR, role) = (groups, filters, convKernel, "conv")
        case let .depthwise(multiplier):
            kernelSpec = WeightSpec(role: "depthwise_kernel", shape: window.kernelSize + [channels, multiplier])
            (group, outChannels, toIR, role) = (channels, channels * multiplier, depthwiseKernel, "depthwise")
        }
        var specs = [kernelSpec]
        if useBias { specs.append(WeightSpec(role: "bias", shape: [outChannels])) }
        let w = try ctx.placedWeights(specs, kernelAndBias(specs, kernel: toIR(kernelSpec.role, 0, kernelSpec.shape),
                                                           useBias: useBias))
        let y = try ctx.emit(.conv(window.attributes(pads: pads, group: group)), [x, w[0]] + (useBias ? [w[1]] : []),
                             role: role)
        return [try ctx.activate(activation, KerasTensor(channelsFirst: y))]
    }
}

/// SeparableConv1D / SeparableConv2D: a depthwise conv (no bias) then a 1x1 pointwise conv
/// with the bias.
struct SeparableConvSpec<Rank: SpatialRank>: KerasLayer {
    var filters: Int
    var window: ConvWindow
    var multiplier: Int
    var useBias: Bool
    var activation: KerasActivation

    init(config: ConfigReader) throws {
        filters = try config.int("filters")
        window = try ConvWindow(config, rank: Rank.rank)
        multiplier = try config.int("depth_multiplier", default: 1)
        useBias = try config.bool("use_bias", default: true)
        activation = try KerasActivation(config)
        try requirePositive([filters, multiplier], "filters and depth_multiplier", config)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let (x, channels, pads) = try window.prepare(single(inputs, ctx), ctx)
        let ones = Array(repeating: 1, count: Rank.rank)
        var specs = [WeightSpec(role: "depthwise_kernel", shape: window.kernelSize + [channels, multiplier]),
                     WeightSpec(role: "pointwise_kernel", shape: ones + [channels * multiplier, filters])]
        if useBias { specs.append(WeightSpec(role: "bias", shape: [filters])) }
        let w = try ctx.placedWeights(specs, [depthwiseKernel("depthwise_kernel", weight: 0, stored: specs[0].shape)]
                                      + kernelAndBias(specs, kernel: convKernel("pointwise_kernel", weight: 1, stored: specs[1].shape),
                                                      useBias: useBias))
        let d = try ctx.emit(.conv(window.attributes(pads: pads, group: channels)), [x, w[0]], role: "depthwise")
        let y = try ctx.emit(.conv(ConvAttributes(kernelShape: ones)), [d, w[1]] + (useBias ? [w[2]] : []),
                             role: "pointwise")
        return [try ctx.activate(activation, KerasTensor(channelsFirst: y))]
    }
}

/// The number of spatial dimensions of a 1-D, 2-D or 3-D layer, as a type parameter.
protocol SpatialRank { static var rank: Int { get } }
enum Rank1: SpatialRank { static var rank: Int { 1 } }
enum Rank2: SpatialRank { static var rank: Int { 2 } }
enum Rank3: SpatialRank { static var rank: Int { 3 } }

/// Conv1DTranspose / Conv2DTranspose / Conv3DTranspose: Keras kernel (k..., out, in) becomes the
/// IR weight (in, out, k...). The output length is Keras's `deconv_output_length`: without
/// output_padding, (in - 1) * s + k' + max(s - k', 0) for 'valid' and in * s for 'same'; with
/// it, (in - 1) * s + k' - 2 * pad + output_padding (pad = k' / 2 for 'same', 0 for 'valid').
/// TensorFlow then pads as the forward convolution of that length would: the total
/// (in - 1) * s + k' - out, half of it (rounded down) at the start; cells the total leaves
/// short at the end become ONNX output padding.
struct ConvTransposeSpec<Rank: SpatialRank>: KerasLayer {
    var filters: Int
    var window: ConvWindow
    var outputPadding: [Int]?
    var useBias: Bool
    var activation: KerasActivation

    init(config: ConfigReader) throws {
        filters = try config.int("filters")
        window = try ConvWindow(config, rank: Rank.rank)
        useBias = try config.bool("use_bias", default: true)
        activation = try KerasActivation(config)
        try requirePositive([filters], "filters", config)
        if config.has("output_padding") {
            let padding = try config.ints("output_padding", count: Rank.rank)
            guard zip(padding, window.strides).allSatisfy({ $0 >= 0 && $0 < $1 }) else {
                throw config.error("output_padding \(padding) must be below the strides \(window.strides)")
            }
            outputPadding = padding
        }
        guard window.padding != .causal else { throw config.error("causal padding is for convolutions") }
        guard try config.int("groups", default: 1) == 1 else { throw config.error("grouped transposed convolution is not supported") }
    }

    /// Keras's output length along spatial axis i for an input of n cells.
    func outputLength(_ n: Int, axis i: Int) -> Int {
        let k = (window.kernelSize[i] - 1) * window.dilations[i] + 1, s = window.strides[i]
        guard let extra = outputPadding?[i] else {
            return window.padding == .same ? n * s : n * s + max(k - s, 0)
        }
        let pad = window.padding == .same ? k / 2 : 0
        return (n - 1) * s + k - 2 * pad + extra
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let n = Rank.rank
        let x = try ctx.channelsFirst(single(inputs, ctx))
        guard x.rank == n + 2 else { throw ctx.error("expects a \(n + 2)-D input, got \(x.shape) (channels first)") }
        guard let channels = x.shape[1].value else { throw ctx.error("needs a known channel count") }
        var begins: [Int] = [], ends: [Int] = [], extra: [Int] = []
        for i in 0..<n {
            guard let length = x.shape[i + 2].value else { throw ctx.error("needs known spatial sizes, the input is \(x.shape)") }
            let k = (window.kernelSize[i] - 1) * window.dilations[i] + 1
            let out = outputLength(length, axis: i)
            guard out >= 1 else { throw ctx.error("the output would have \(out) cells along spatial axis \(i)") }
            let total = (length - 1) * window.strides[i] + k - out
            let begin = max(total, 0) / 2
            begins.append(begin)
            ends.append(max(total - begin, 0))
            extra.append(max(begin - total, 0))
        }
        var specs = [WeightSpec(role: "kernel", shape: window.kernelSize + [filters, channels])]
        if useBias { specs.append(WeightSpec(role: "bias", shape: [filters])) }
        let w = try ctx.placedWeights(specs, kernelAndBias(specs, kernel: convKernel("kernel", weight: 0, stored: specs[0].shape),
                                                           useBias: useBias))
        let attributes = ConvTransposeAttributes(kernelShape: window.kernelSize, strides: window.strides,
                                                 pads: begins + ends, dilations: window.dilations,
                                                 outputPadding: extra)
        let y = try ctx.emit(.convTranspose(attributes), [x, w[0]] + (useBias ? [w[1]] : []), role: "conv_transpose")
        return [try ctx.activate(activation, KerasTensor(channelsFirst: y))]
    }
}
