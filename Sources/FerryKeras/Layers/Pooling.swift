import FerryIR

/// The two pooling kinds, as a type parameter of the pooling layers.
protocol PoolingKind {
    static func op(_ attributes: PoolAttributes) -> Op
    static var globalOp: Op { get }
    static var role: String { get }
}

enum MaxPooling: PoolingKind {
    static func op(_ attributes: PoolAttributes) -> Op { .maxPool(attributes) }
    static var globalOp: Op { .globalMaxPool }
    static var role: String { "maxpool" }
}

/// Keras averages over the real (non-pad) cells only: count_include_pad = false.
enum AveragePooling: PoolingKind {
    static func op(_ attributes: PoolAttributes) -> Op { .averagePool(attributes) }
    static var globalOp: Op { .globalAveragePool }
    static var role: String { "avgpool" }
}

/// MaxPooling2D / AveragePooling2D (channels_last): strides default to pool_size, Keras
/// rounds the output size down, 'same' pads like TF.
struct Pooling2DSpec<Kind: PoolingKind>: KerasLayer {
    var poolSize: [Int]
    var strides: [Int]
    var padding: KerasPadding

    init(config: ConfigReader) throws {
        poolSize = try config.ints("pool_size", count: 2, default: [2, 2])
        strides = try config.ints("strides", count: 2, default: poolSize)
        padding = try KerasPadding(config)
        try requireChannelsLast(config)
        try requirePositive(poolSize, "pool_size", config)
        try requirePositive(strides, "strides", config)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try ctx.channelsFirst(single(inputs, ctx))
        guard x.rank == 4 else { throw ctx.error("expects a 4-D input, got \(x.shape) (channels first)") }
        let pads = try padding.pads(spatial: Array(x.shape.dims[2...]), kernel: poolSize, strides: strides,
                                    dilations: [1, 1], ctx)
        let attributes = PoolAttributes(kernelShape: poolSize, strides: strides, pads: pads,
                                        ceilMode: false, countIncludePad: false)
        return [KerasTensor(channelsFirst: try ctx.emit(Kind.op(attributes), [x], role: Kind.role))]
    }
}

/// GlobalAveragePooling2D / GlobalMaxPooling2D: (N, C) in Keras layout, or with keepdims the
/// channels-first (N, C, 1, 1), i.e. Keras's (N, 1, 1, C).
struct GlobalPooling2DSpec<Kind: PoolingKind>: KerasLayer {
    var keepDims: Bool

    init(config: ConfigReader) throws {
        try requireChannelsLast(config)
        keepDims = try config.bool("keepdims", default: false)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try ctx.channelsFirst(single(inputs, ctx))
        guard x.rank == 4 else { throw ctx.error("expects a 4-D input, got \(x.shape) (channels first)") }
        let pooled = try ctx.emit(Kind.globalOp, [x], role: "global_" + Kind.role)
        if keepDims { return [KerasTensor(channelsFirst: pooled)] }
        return [KerasTensor(keras: try ctx.emit(.flatten(axis: 1), [pooled], role: "flatten"))]
    }
}
