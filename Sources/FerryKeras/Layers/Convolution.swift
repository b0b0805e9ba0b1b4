import FerryIR

/// Conv2D (channels_last): Keras kernel (kh, kw, in/groups, out) becomes the IR weight
/// (out, in/groups, kh, kw); 'same' padding becomes explicit, possibly asymmetric pads.
struct Conv2DSpec: KerasLayer {
    var filters: Int
    var kernelSize: [Int]
    var strides: [Int]
    var dilations: [Int]
    var padding: KerasPadding
    var groups: Int
    var useBias: Bool
    var activation: KerasActivation

    init(config: ConfigReader) throws {
        filters = try config.int("filters")
        kernelSize = try config.ints("kernel_size", count: 2)
        strides = try config.ints("strides", count: 2, default: [1, 1])
        dilations = try config.ints("dilation_rate", count: 2, default: [1, 1])
        padding = try KerasPadding(config)
        groups = try config.int("groups", default: 1)
        useBias = try config.bool("use_bias", default: true)
        activation = try KerasActivation(config)
        try requireChannelsLast(config)
        try requirePositive([filters, groups], "filters and groups", config)
        try requirePositive(kernelSize, "kernel_size", config)
        try requirePositive(strides, "strides", config)
        try requirePositive(dilations, "dilation_rate", config)
        guard filters % groups == 0 else { throw config.error("filters \(filters) is not a multiple of groups \(groups)") }
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try ctx.channelsFirst(single(inputs, ctx))
        guard x.rank == 4 else { throw ctx.error("Conv2D expects a 4-D input, got \(x.shape) (channels first)") }
        guard let channels = x.shape[1].value else { throw ctx.error("Conv2D needs a known channel count") }
        guard channels % groups == 0 else {
            throw ctx.error("input channels \(channels) are not a multiple of groups \(groups)")
        }
        let pads = try padding.pads(spatial: Array(x.shape.dims[2...]), kernel: kernelSize, strides: strides,
                                    dilations: dilations, ctx)
        var specs = [WeightSpec(role: "kernel", shape: kernelSize + [channels / groups, filters])]
        if useBias { specs.append(WeightSpec(role: "bias", shape: [filters])) }
        let w = try ctx.weights(specs) { i, t in i == 0 ? permuted(t, [3, 2, 0, 1]) : t }
        let attributes = ConvAttributes(kernelShape: kernelSize, strides: strides, pads: pads,
                                        dilations: dilations, group: groups)
        let y = try ctx.emit(.conv(attributes), [x, w[0]] + (useBias ? [w[1]] : []), role: "conv")
        return [try ctx.activate(activation, KerasTensor(channelsFirst: y))]
    }
}
