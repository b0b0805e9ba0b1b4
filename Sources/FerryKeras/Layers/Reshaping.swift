import FerryIR

/// Per-axis (begin, end) amounts of ZeroPadding / Cropping: an integer, one integer per axis,
/// or one (begin, end) pair per axis.
func beginEndAmounts(_ config: ConfigReader, key: String, rank: Int) throws -> (begin: [Int], end: [Int]) {
    let bad = config.error("'\(key)' should be an integer, \(rank) integers or \(rank) pairs")
    guard let value = config.raw(key) else { throw config.error("config has no '\(key)'") }
    func int(_ v: JSONValue) throws -> Int {
        let n = try JSONValue.int(v, orThrow: bad)
        guard n >= 0, n <= maxConfigSize else { throw bad }
        return n
    }
    var begin: [Int] = [], end: [Int] = []
    if let list = value.array {
        if rank == 1, list.count == 2, list[0].array == nil {
            return ([try int(list[0])], [try int(list[1])])
        }
        guard list.count == rank else { throw bad }
        for item in list {
            if let pair = item.array {
                guard pair.count == 2 else { throw bad }
                begin.append(try int(pair[0]))
                end.append(try int(pair[1]))
            } else {
                let n = try int(item)
                begin.append(n)
                end.append(n)
            }
        }
        return (begin, end)
    }
    let n = try int(value)
    return (Array(repeating: n, count: rank), Array(repeating: n, count: rank))
}

/// ZeroPadding1D / 2D / 3D: a constant Pad of the spatial axes of the channels-first tensor.
struct ZeroPaddingSpec<Rank: SpatialRank>: KerasLayer {
    var begin: [Int]
    var end: [Int]

    init(config: ConfigReader) throws {
        try requireChannelsLast(config)
        (begin, end) = try beginEndAmounts(config, key: "padding", rank: Rank.rank)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try ctx.channelsFirst(single(inputs, ctx))
        guard x.rank == Rank.rank + 2 else { throw ctx.error("expects a \(Rank.rank + 2)-D input, got \(x.shape)") }
        let pads = [0, 0] + begin + [0, 0] + end
        return [KerasTensor(channelsFirst: try ctx.emit(.pad(PadAttributes(pads: pads)), [x], role: "pad"))]
    }
}

/// Cropping1D / 2D / 3D: a Slice of the spatial axes of the channels-first tensor.
struct CroppingSpec<Rank: SpatialRank>: KerasLayer {
    var begin: [Int]
    var end: [Int]

    init(config: ConfigReader) throws {
        try requireChannelsLast(config)
        (begin, end) = try beginEndAmounts(config, key: "cropping", rank: Rank.rank)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try ctx.channelsFirst(single(inputs, ctx))
        guard x.rank == Rank.rank + 2 else { throw ctx.error("expects a \(Rank.rank + 2)-D input, got \(x.shape)") }
        let ends = end.map { $0 == 0 ? Int(Int64.max) : -$0 }
        let attributes = SliceAttributes(starts: begin, ends: ends, axes: Array(2..<(Rank.rank + 2)))
        return [KerasTensor(channelsFirst: try ctx.emit(.slice(attributes), [x], role: "crop"))]
    }
}

/// UpSampling1D / 2D / 3D, nearest neighbour: each cell repeated `size` times along its axis,
/// as Reshape (a unit axis after each spatial axis), Expand, Reshape. UpSampling2D's other
/// interpolations are `tf.image.resize` to size times the input.
struct UpSamplingSpec<Rank: SpatialRank>: KerasLayer {
    var size: [Int]
    var interpolation: KerasInterpolation

    init(config: ConfigReader) throws {
        let n = Rank.rank
        try requireChannelsLast(config)
        size = try config.ints("size", count: n, default: Array(repeating: 2, count: n))
        try requirePositive(size, "size", config)
        // Only UpSampling2D has interpolation.
        interpolation = try KerasInterpolation(config, default: "nearest")
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try ctx.channelsFirst(single(inputs, ctx))
        let n = Rank.rank
        guard x.rank == n + 2 else { throw ctx.error("expects a \(n + 2)-D input, got \(x.shape)") }
        if interpolation != .nearest {
            let spatial = try (0..<n).map { i -> Int in
                guard let d = x.shape[i + 2].value else { throw ctx.error("needs known sizes, the input is \(x.shape)") }
                return d * size[i]
            }
            return [KerasTensor(channelsFirst: try interpolation.resize(x, to: spatial, ctx))]
        }
        guard let c = x.shape[1].value else { throw ctx.error("needs known sizes, the input is \(x.shape)") }
        var split = [0, c], expanded = [1, 1], merged = [0, c]
        for i in 0..<n {
            guard let d = x.shape[i + 2].value else { throw ctx.error("needs known sizes, the input is \(x.shape)") }
            split += [d, 1]
            expanded += [1, size[i]]
            merged.append(d * size[i])
        }
        var y = try ctx.emit(.reshape(shape: split), [x], role: "split_axes")
        y = try ctx.emit(.expand(shape: expanded), [y], role: "repeat")
        y = try ctx.emit(.reshape(shape: merged), [y], role: "merge_axes")
        return [KerasTensor(channelsFirst: y)]
    }
}

/// RepeatVector: (N, F) to (N, n, F).
struct RepeatVectorSpec: KerasLayer {
    var n: Int

    init(config: ConfigReader) throws {
        n = try config.int("n")
        try requirePositive([n], "n", config)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try ctx.kerasLayout(single(inputs, ctx))
        guard x.rank == 2 else { throw ctx.error("expects a 2-D input, got \(x.shape)") }
        let u = try ctx.emit(.unsqueeze(axes: [1]), [x], role: "unsqueeze")
        return [KerasTensor(keras: try ctx.emit(.tile(repeats: [1, n, 1]), [u], role: "tile"))]
    }
}

/// Concatenate along a Keras axis, in whichever layout all inputs share.
struct ConcatenateSpec: KerasLayer {
    var axis: Int

    init(config: ConfigReader) throws {
        axis = try config.int("axis", default: -1)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        guard !inputs.isEmpty else { throw ctx.error("is called on no inputs") }
        let (values, channelsFirst) = try ctx.commonLayout(inputs)
        guard let a = kerasAxis(axis, rank: values[0].rank, channelsFirst: channelsFirst), a > 0 else {
            throw ctx.error("axis \(axis) is out of range for rank \(values[0].rank)")
        }
        let y = try ctx.emit(.concat(axis: a), values, role: "concat")
        return [channelsFirst ? KerasTensor(channelsFirst: y) : KerasTensor(keras: y)]
    }
}
