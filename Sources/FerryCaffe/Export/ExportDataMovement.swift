import FerryIR

func writeConcat(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .concat(let axis) = node.op else { return }
    let a = try exportAxis(axis, of: node.inputs[0], ctx)
    let bottoms = try node.inputs.map { try ctx.bottom($0) }
    ctx.addLayer("Concat", bottoms: bottoms, outputs: node.outputs) { l in
        if a != 1 { l.concatParam.axis = Int32(a) }
    }
}

/// Flatten at axis 1 is Caffe's Flatten (axis 1 to the end); other axes are a Reshape.
func writeFlatten(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .flatten(let axis) = node.op else { return }
    let rank = try ctx.rank(node.inputs[0])
    // InnerProduct flattens from axis 1 itself: a Flatten read only by InnerProducts is no layer,
    // unless it is a Caffe Flatten layer of its own (not the InnerProduct's flattening).
    let readers = ctx.readers(node.outputs[0])
    let ownCaffeLayer = ctx.graph.metadata["source_format"] == "caffe" && node.origins.first?.type == "Flatten"
    if normalizeAxis(axis, rank: rank) == 1, !ownCaffeLayer, !readers.isEmpty, !ctx.isGraphOutput(node.outputs[0]), readers.allSatisfy({
        if case .gemm(let g) = ctx.graph.nodes[$0].op { return !g.transA && ctx.graph.nodes[$0].inputs[0] == node.outputs[0]
            && !ctx.graph.nodes[$0].inputs.dropFirst().contains(node.outputs[0]) }
        return false
    }) {
        ctx.blobs[node.outputs[0]] = try dataBottom(ctx, node)
        return
    }
    if normalizeAxis(axis, rank: rank) == 1 {
        ctx.addLayer("Flatten", bottoms: [try dataBottom(ctx, node)], outputs: node.outputs)
        return
    }
    try writeReshapeToOutputShape(&ctx, node)
}

/// Reshape, Squeeze, Unsqueeze and other flattenings -> Reshape to the output's shape, the
/// batch axis copied (0) when it stays in front.
func writeReshapeToOutputShape(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard let inType = ctx.type(node.inputs[0]), let outType = ctx.type(node.outputs[0]) else {
        throw ctx.error("the input and output types must be known")
    }
    var dims: [Int64] = []
    for (i, d) in outType.shape.dims.enumerated() {
        if let v = d.value { dims.append(Int64(v)); continue }
        guard i == 0, inType.shape.rank > 0, inType.shape.dims[0] == d else {
            throw ctx.error("output size \(d) at axis \(i) is not the batch kept in place")
        }
        dims.append(0)
    }
    // An open batch dimension: the fixed sizes of the rest must account for every element.
    ctx.addLayer("Reshape", bottoms: [try dataBottom(ctx, node)], outputs: node.outputs) { l in
        l.reshapeParam.shape.dim = dims
    }
}

/// Reshape -> Reshape to the output's shape; the importer's ShuffleChannel (a Reshape to
/// (N, group, C / group, -1), a Transpose of those two axes and a Reshape back, of one source
/// layer) -> ShuffleChannel with its group, as it was.
func writeReshape(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    if case .reshape(let grouped, _) = node.op, grouped.count == 4, grouped[0] == 0, grouped[3] == -1,
       let dims = ctx.type(node.inputs[0])?.shape.dims, dims.count >= 2, let channels = dims[1].value,
       grouped[1] > 1, grouped[1] * grouped[2] == channels,
       let t = ctx.soleSameLayerReader(of: node.outputs[0]), case .transpose([0, 2, 1, 3]) = t.node.op {
        ctx.absorbed.insert(t.index)
        if let back = ctx.soleSameLayerReader(of: t.node.outputs[0]), case .reshape = back.node.op,
           ctx.type(back.node.outputs[0])?.shape == ctx.type(node.inputs[0])?.shape {
            ctx.absorbed.insert(back.index)
            ctx.addLayer("ShuffleChannel", bottoms: [try dataBottom(ctx, node)], outputs: back.node.outputs) { l in
                l.shuffleChannelParam.group = UInt32(grouped[1])
            }
            return
        }
        ctx.absorbed.remove(t.index)
    }
    try writeReshapeToOutputShape(&ctx, node)
}

/// Transpose -> Permute (the SSD layer; OpenCV reads it).
func writePermute(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .transpose(let perm) = node.op else { return }
    ctx.addLayer("Permute", bottoms: [try dataBottom(ctx, node)], outputs: node.outputs) { l in
        l.permuteParam.order = perm.map { UInt32($0) }
    }
}

/// Split -> Slice at the running sums of the sizes.
func writeSplit(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .split(let axis, let sizes) = node.op else { return }
    let a = try exportAxis(axis, of: node.inputs[0], ctx)
    var points: [UInt32] = []
    var at = 0
    for s in sizes.dropLast() { at += s; points.append(UInt32(at)) }
    ctx.addLayer("Slice", bottoms: [try dataBottom(ctx, node)], outputs: node.outputs) { l in
        if a != 1 { l.sliceParam.axis = Int32(a) }
        l.sliceParam.slicePoint = points
    }
}

/// Slice with unit steps -> one Caffe Slice per cut axis, keeping the middle part (the parts
/// before and after are tops nothing reads).
func writeSlice(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .slice(let s) = node.op else { return }
    if s.steps != Array(repeating: 1, count: s.steps.count), try writeReversedTopKAsArgMax(&ctx, node) { return }
    guard s.steps.allSatisfy({ $0 == 1 }) else { throw ctx.error("steps \(s.steps): Caffe slices with step 1 only") }
    guard let inType = ctx.type(node.inputs[0]) else { throw ctx.error("the input type must be known") }
    let rank = inType.shape.rank
    var cuts: [(axis: Int, start: Int, end: Int, size: Int)] = []
    for (i, rawAxis) in s.axes.enumerated() {
        guard let axis = normalizeAxis(rawAxis, rank: rank), axis > 0, let n = inType.shape.dims[axis].value else {
            throw ctx.error("slicing axis \(rawAxis) (the batch, or of unknown size) has no Caffe form")
        }
        var start = s.starts[i] < 0 ? s.starts[i] + n : s.starts[i]
        var end = s.ends[i] < 0 ? s.ends[i] + n : s.ends[i]
        start = min(max(start, 0), n)
        end = min(max(end, 0), n)
        guard end > start else { throw ctx.error("an empty slice has no Caffe form") }
        if start == 0 && end == n { continue }
        cuts.append((axis, start, end, n))
    }
    var current = try dataBottom(ctx, node)
    if cuts.isEmpty {
        ctx.addLayer("Split", bottoms: [current], outputs: node.outputs)
        return
    }
    let base = ctx.mainLayerName(producing: cuts.count == 1 ? node.outputs : [])
    for (k, cut) in cuts.enumerated() {
        let last = k == cuts.count - 1
        let kept = last ? ctx.topBlob(node.outputs[0]) : ctx.intermediateBlob("\(node.outputs[0])/axis\(cut.axis)")
        var tops: [String] = []
        var points: [UInt32] = []
        if cut.start > 0 {
            tops.append(ctx.unusedTop("\(node.outputs[0])/unused_before_\(cut.axis)"))
            points.append(UInt32(cut.start))
        }
        tops.append(kept)
        if cut.end < cut.size {
            tops.append(ctx.unusedTop("\(node.outputs[0])/unused_after_\(cut.axis)"))
            points.append(UInt32(cut.end))
        }
        let name = k == 0 ? base : ctx.uniqueLayerName("\(base)/axis\(cut.axis)")
        ctx.addRawLayer("Slice", name: name, bottoms: [current], tops: tops) { l in
            if cut.axis != 1 { l.sliceParam.axis = Int32(cut.axis) }
            l.sliceParam.slicePoint = points
        }
        current = kept
    }
}

/// An Identity left in the graph (a graph output copying an input or another output) -> Split.
func writeIdentity(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    ctx.addLayer("Split", bottoms: [try dataBottom(ctx, node)], outputs: node.outputs)
}

/// Tile -> one Caffe Tile layer per repeated axis.
func writeTile(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .tile(let repeats) = node.op else { return }
    guard repeats.first == 1 else { throw ctx.error("repeating the batch axis has no Caffe form") }
    let axes = repeats.indices.filter { repeats[$0] != 1 }
    var current = try dataBottom(ctx, node)
    if axes.isEmpty {
        ctx.addLayer("Split", bottoms: [current], outputs: node.outputs)
        return
    }
    let base = ctx.mainLayerName(producing: axes.count == 1 ? node.outputs : [])
    for (k, axis) in axes.enumerated() {
        let last = k == axes.count - 1
        let top = last ? ctx.topBlob(node.outputs[0]) : ctx.intermediateBlob("\(node.outputs[0])/axis\(axis)")
        ctx.addRawLayer("Tile", name: k == 0 ? base : ctx.uniqueLayerName("\(base)/axis\(axis)"), bottoms: [current], tops: [top]) { l in
            if axis != 1 { l.tileParam.axis = Int32(axis) }
            l.tileParam.tiles = Int32(repeats[axis])
        }
        current = top
    }
}
