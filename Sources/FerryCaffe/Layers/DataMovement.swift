import FerryIR

/// Flatten: dims [axis, end_axis] become one. The last-axis case is ONNX Flatten when axis is
/// 1; otherwise a Reshape keeping the other dims (0 copies a leading dim, -1 is the product).
func buildFlatten(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.flattenParam
    let axis = try caffeAxis(p.axis, rank: x.rank, ctx)
    let end = try caffeAxis(p.endAxis, rank: x.rank, ctx, "end_axis")
    guard end >= axis else { throw ctx.error("end_axis \(p.endAxis) is before axis \(p.axis)") }
    if axis == 1 && end == x.rank - 1 { return [try ctx.emit(.flatten(axis: 1), [x], role: "flatten")] }
    var target = Array(repeating: 0, count: axis) + [-1]
    for a in (end + 1)..<x.rank {
        guard let n = x.size(a) else { throw ctx.error("dimension \(a) of \(x.shape) must be known") }
        target.append(n)
    }
    return [try ctx.emit(.reshape(shape: target), [x], role: "flatten")]
}

/// Reshape: dims [axis, axis+num_axes) replaced by `shape` (0 copies the input dim at the same
/// place, -1 is inferred); the dims around them are kept.
func buildReshape(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.reshapeParam
    // Caffe's axis counts from rank + 1 when negative (-1 means "after the last dim").
    let axis = p.axis < 0 ? x.rank + 1 + Int(p.axis) : Int(p.axis)
    guard axis >= 0, axis <= x.rank else { throw ctx.error("axis \(p.axis) is out of range for \(x.shape)") }
    let numAxes = p.numAxes == -1 ? x.rank - axis : Int(p.numAxes)
    guard numAxes >= 0, axis + numAxes <= x.rank else {
        throw ctx.error("num_axes \(p.numAxes) from axis \(axis) exceeds the input rank \(x.rank)")
    }
    let shape = p.shape.dim.map { Int($0) }
    guard shape.allSatisfy({ $0 >= -1 }), shape.filter({ $0 == -1 }).count <= 1 else {
        throw ctx.error("shape \(shape) may hold one -1 and no other negative size")
    }
    var target = Array(repeating: 0, count: axis)
    for (i, d) in shape.enumerated() {
        if d == 0 {
            // Caffe copies input dim axis+i, which is where the IR's 0 copies from too.
            guard axis + i < x.rank else { throw ctx.error("shape \(shape): 0 at \(i) is beyond the input rank") }
            target.append(0)
        } else {
            target.append(d)
        }
    }
    for a in (axis + numAxes)..<x.rank {
        // A kept trailing dim is copied with 0 where it stays in place, else written out.
        if target.count == a { target.append(0); continue }
        guard let n = x.size(a) else { throw ctx.error("dimension \(a) of \(x.shape) must be known") }
        target.append(n)
    }
    return [try ctx.emit(.reshape(shape: target), [x], role: "reshape")]
}

/// Permute (SSD): `order` lists the new axis order; axes it leaves out follow in order.
func buildPermute(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    var order: [Int] = []
    for o in ctx.layer.permuteParam.order {
        let a = Int(o)
        guard a < x.rank, !order.contains(a) else { throw ctx.error("order \(ctx.layer.permuteParam.order) is not a permutation of rank \(x.rank)") }
        order.append(a)
    }
    for a in 0..<x.rank where !order.contains(a) { order.append(a) }
    if order == Array(0..<x.rank) { return [x] }
    return [try ctx.emit(.transpose(perm: order), [x], role: "transpose")]
}

/// Concat along `axis` (default 1), or the legacy `concat_dim` when that is what the layer sets.
func buildConcat(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    guard !inputs.isEmpty else { throw ctx.error("expects at least one bottom") }
    let p = ctx.layer.concatParam
    let raw = p.hasConcatDim && !p.hasAxis ? Int32(clamping: p.concatDim) : p.axis
    let axis = try caffeAxis(raw, rank: inputs[0].rank, ctx)
    if inputs.count == 1 { return inputs }
    return [try ctx.emit(.concat(axis: axis), inputs, role: "concat")]
}

/// Slice along `axis` (or the legacy `slice_dim`) at `slice_point`s, or into equal parts, one per
/// top -> Split.
func buildSlice(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.sliceParam
    let raw = p.hasSliceDim && !p.hasAxis ? Int32(clamping: p.sliceDim) : p.axis
    let axis = try caffeAxis(raw, rank: x.rank, ctx)
    guard let n = x.size(axis) else { throw ctx.error("the sliced axis \(axis) of \(x.shape) must be known") }
    let tops = ctx.layer.top.count
    var sizes: [Int]
    if p.slicePoint.isEmpty {
        guard tops > 0, n % tops == 0 else { throw ctx.error("\(n) cells on axis \(axis) do not split evenly into \(tops) tops") }
        sizes = Array(repeating: n / tops, count: tops)
    } else {
        let points = p.slicePoint.map { Int($0) }
        guard points.count == tops - 1, zip(points, points.dropFirst()).allSatisfy({ $0 < $1 }),
              let first = points.first, first > 0, let last = points.last, last < n else {
            throw ctx.error("slice_point \(points) should be \(tops - 1) increasing points inside 1..<\(n)")
        }
        sizes = zip([0] + points, points + [n]).map { $1 - $0 }
    }
    if tops == 1 { return [x] }
    return try ctx.emit(.split(axis: axis, sizes: sizes), [x], roles: (0..<tops).map { "part_\($0)" })
}

/// Crop: the first bottom cut to the second bottom's size on every axis from `axis` on, starting
/// at `offset` (one value for all those axes, or one per axis) -> Slice.
func buildCrop(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    guard inputs.count == 2 else { throw ctx.error("expects two bottoms (the blob, the reference), has \(inputs.count)") }
    let (x, reference) = (inputs[0], inputs[1])
    guard x.rank == reference.rank else { throw ctx.error("bottoms of ranks \(x.rank) and \(reference.rank)") }
    let p = ctx.layer.cropParam
    let axis = try caffeAxis(p.axis, rank: x.rank, ctx)
    let count = x.rank - axis
    let offsets = p.offset.map { Int($0) }
    guard offsets.count <= 1 || offsets.count == count else {
        throw ctx.error("\(offsets.count) offsets for \(count) cropped axes")
    }
    var starts: [Int] = [], ends: [Int] = []
    for i in 0..<count {
        let a = axis + i
        let offset = offsets.isEmpty ? 0 : offsets[offsets.count == 1 ? 0 : i]
        guard let size = reference.size(a), let n = x.size(a) else {
            throw ctx.error("axis \(a) of \(x.shape) and \(reference.shape) must be known to crop")
        }
        guard offset + size <= n else { throw ctx.error("crop of \(size) at offset \(offset) exceeds \(n) on axis \(a)") }
        starts.append(offset)
        ends.append(offset + size)
    }
    return [try ctx.emit(.slice(SliceAttributes(starts: starts, ends: ends, axes: Array(axis..<x.rank))), [x], role: "crop")]
}

/// Tile: the blob repeated `tiles` times along `axis`.
func buildTile(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.tileParam
    let axis = try caffeAxis(p.axis, rank: x.rank, ctx)
    guard p.hasTiles, p.tiles > 0 else { throw ctx.error("tiles must be given and positive") }
    var repeats = Array(repeating: 1, count: x.rank)
    repeats[axis] = Int(p.tiles)
    return [try ctx.emit(.tile(repeats: repeats), [x], role: "tile")]
}

/// ShuffleChannel (ShuffleNet): the channels seen as (group, C / group) are transposed to
/// (C / group, group) -> Reshape, Transpose, Reshape.
func buildShuffleChannel(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let group = Int(ctx.layer.shuffleChannelParam.group)
    guard x.rank >= 2, let channels = x.size(1) else {
        throw ctx.error("expects an input (N, C, ...) with known channels, got \(x.shape)")
    }
    guard group >= 1, channels % group == 0 else { throw ctx.error("group \(group) must divide the channels \(channels)") }
    if group == 1 || group == channels { return [x] }
    let spatial = try (2..<x.rank).map { a -> Int in
        guard let n = x.size(a) else { throw ctx.error("dimension \(a) of \(x.shape) must be known") }
        return n
    }
    let grouped = try ctx.emit(.reshape(shape: [0, group, channels / group, -1]), [x], role: "grouped")
    let swapped = try ctx.emit(.transpose(perm: [0, 2, 1, 3]), [grouped], role: "swapped")
    return [try ctx.emit(.reshape(shape: [0, channels] + spatial), [swapped], role: "shuffled")]
}

/// Embed: each input value, truncated to an integer index below input_dim, selects a row of
/// the (input_dim, num_output) weight (plus the bias with bias_term); the output is the input's
/// shape with num_output appended -> Cast to int64, Gather, Add.
func buildEmbed(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.embedParam
    let rows = Int(p.inputDim), outputs = Int(p.numOutput)
    guard rows > 0, outputs > 0 else { throw ctx.error("input_dim and num_output must be positive") }
    let weight = try ctx.weight(0, role: "weight", shape: [rows, outputs])
    let indices = try ctx.emit(.cast(to: .int64), [x], role: "indices")
    let rowsTaken = try ctx.emit(.gather(axis: 0), [weight, indices], role: "gather")
    guard p.biasTerm else { return [rowsTaken] }
    return [try ctx.emit(.add, [rowsTaken, try ctx.weight(1, role: "bias", shape: [outputs])], role: "bias")]
}
