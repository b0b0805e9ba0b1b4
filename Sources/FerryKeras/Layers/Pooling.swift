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

/// Max/Average pooling 1D, 2D, 3D (channels_last): strides default to pool_size, Keras rounds
/// the output size down, 'same' pads like TF.
struct PoolingSpec<Kind: PoolingKind, Rank: SpatialRank>: KerasLayer {
    var poolSize: [Int]
    var strides: [Int]
    var padding: KerasPadding

    init(config: ConfigReader) throws {
        let n = Rank.rank
        poolSize = try config.ints("pool_size", count: n, default: Array(repeating: 2, count: n))
        strides = try config.ints("strides", count: n, default: poolSize)
        padding = try KerasPadding(config)
        try requireChannelsLast(config)
        try requirePositive(poolSize, "pool_size", config)
        try requirePositive(strides, "strides", config)
        guard padding != .causal else { throw config.error("causal padding is for convolutions") }
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let n = Rank.rank
        let x = try ctx.channelsFirst(single(inputs, ctx))
        guard x.rank == n + 2 else { throw ctx.error("expects a \(n + 2)-D input, got \(x.shape) (channels first)") }
        let pads = try padding.pads(spatial: Array(x.shape.dims[2...]), kernel: poolSize, strides: strides,
                                    dilations: Array(repeating: 1, count: n), ctx)
        let attributes = PoolAttributes(kernelShape: poolSize, strides: strides, pads: pads,
                                        ceilMode: false, countIncludePad: false)
        return [KerasTensor(channelsFirst: try ctx.emit(Kind.op(attributes), [x], role: Kind.role))]
    }
}

/// GlobalAverage/GlobalMax pooling 1D, 2D, 3D: (N, C) in Keras layout, or with keepdims the
/// channels-first (N, C, 1, ...), i.e. Keras's (N, 1, ..., C).
struct GlobalPoolingSpec<Kind: PoolingKind, Rank: SpatialRank>: KerasLayer {
    var keepDims: Bool
    /// Over time (1-D), Keras leaves masked steps out.
    var maskEffect: KerasMaskEffect { Rank.rank == 1 ? .reads : .carries }

    init(config: ConfigReader) throws {
        try requireChannelsLast(config)
        keepDims = try config.bool("keepdims", default: false)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try ctx.channelsFirst(single(inputs, ctx))
        guard x.rank == Rank.rank + 2 else {
            throw ctx.error("expects a \(Rank.rank + 2)-D input, got \(x.shape) (channels first)")
        }
        let pooled = try ctx.emit(Kind.globalOp, [x], role: "global_" + Kind.role)
        if keepDims { return [KerasTensor(channelsFirst: pooled)] }
        return [KerasTensor(keras: try ctx.emit(.flatten(axis: 1), [pooled], role: "flatten"))]
    }
}
