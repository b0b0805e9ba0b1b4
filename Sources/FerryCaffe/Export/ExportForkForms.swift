import FerryIR

/// ArgMax with top_k > 1 as the Caffe importer reads it: the axis reversed (a Slice with step
/// -1), TopK of the largest, and the indices mapped back (last index - reversed index, as
/// floats), which lists equal values from the larger index first as Caffe does -> ArgMax
/// {axis, top_k} for the indices and ArgMax {axis, top_k, out_max_val} for the values, each
/// written when something reads it. Returns false when `node` is not such a Slice.
func writeReversedTopKAsArgMax(_ ctx: inout CaffeExportContext, _ node: Node) throws -> Bool {
    guard case .slice(let s) = node.op, s.axes.count == 1, s.steps == [-1], s.starts == [-1], s.ends == [Int.min],
          let top = ctx.soleSameLayerReader(of: node.outputs[0]), case .topK(let topAxis, let k, true) = top.node.op else {
        return false
    }
    let rank = try ctx.rank(node.inputs[0])
    let axis = try exportAxis(s.axes[0], of: node.inputs[0], ctx)
    guard normalizeAxis(topAxis, rank: rank) == axis, let n = ctx.type(node.inputs[0])?.shape.dims[axis].value else { return false }
    // The indices: Cast to float32, then (n - 1) - reversed index.
    guard let cast = ctx.readers(top.node.outputs[1]).first.map({ (index: $0, node: ctx.graph.nodes[$0]) }),
          ctx.readers(top.node.outputs[1]).count == 1, case .cast(to: .float32) = cast.node.op,
          ctx.readers(cast.node.outputs[0]).count == 1, let subIndex = ctx.readers(cast.node.outputs[0]).first,
          case .sub = ctx.graph.nodes[subIndex].op, ctx.graph.nodes[subIndex].inputs[1] == cast.node.outputs[0],
          let last = ctx.constant(ctx.graph.nodes[subIndex].inputs[0]), last.floats == [Float(n - 1)] else { return false }
    let sub = ctx.graph.nodes[subIndex]
    ctx.absorbed.formUnion([top.index, cast.index, subIndex])
    let x = try dataBottom(ctx, node)
    let readers = ctx.consumers, outputs = Set(ctx.graph.outputs.map(\.name))
    let isRead = { (value: String) in !(readers[value] ?? []).isEmpty || outputs.contains(value) }
    if isRead(sub.outputs[0]) {
        ctx.addLayer("ArgMax", bottoms: [x], outputs: sub.outputs) { l in
            l.argmaxParam.axis = Int32(axis)
            l.argmaxParam.topK = UInt32(k)
        }
    }
    if isRead(top.node.outputs[0]) {
        ctx.addLayer("ArgMax", bottoms: [x], outputs: [top.node.outputs[0]]) { l in
            l.argmaxParam.axis = Int32(axis)
            l.argmaxParam.topK = UInt32(k)
            l.argmaxParam.outMaxVal = true
        }
    }
    return true
}

/// The SegNet / ENet forks' BN in LEARN mode as the Caffe importer reads it: the batch's mean
/// and E(x^2) - mean^2 over N, H and W, the deviation sqrt(variance + 1e-9), then a scale and a
/// shift per channel -> BN (bn_mode LEARN, the fork's default) with its scale and shift blobs
/// (1, C, 1, 1). Any other mean is a reduction Caffe has no layer for.
func writeBatchStatisticsBN(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    let noLayer = ctx.error("Caffe has no layer for ReduceMean")
    guard node.origins.first?.type == "BN", case .reduce(.mean, [0, 2, 3]?, true) = node.op, let layer = node.origins.first?.layer else {
        throw noLayer
    }
    let x = node.inputs[0]
    let members = ctx.graph.nodes.indices.filter { $0 > ctx.index && ctx.graph.nodes[$0].origins.first?.layer == layer }
    let n = members.map { ctx.graph.nodes[$0] }
    guard n.map(\.op.name) == ["Mul", "ReduceMean", "Mul", "Sub", "Add", "Sqrt", "Sub", "Div", "Mul", "Add"] else { throw noLayer }
    let mean = node.outputs[0]
    let o = n.map { $0.outputs[0] }
    // square, mean of squares, mean squared, variance, + eps, deviation, centered, normalized, scaled, shifted
    let wiring: [[String]] = [[x, x], [o[0]], [mean, mean], [o[1], o[2]], [o[3]], [o[4]], [x, mean], [o[6], o[5]], [o[7]], [o[8]]]
    for (i, want) in wiring.enumerated() where Array(n[i].inputs.prefix(want.count)) != want { throw noLayer }
    guard case .reduce(.mean, [0, 2, 3]?, true) = n[1].op,
          let eps = ctx.constant(n[4].inputs[1]), eps.floats == [1e-9],
          let scale = ctx.constant(n[8].inputs[1]), let shift = ctx.constant(n[9].inputs[1]),
          let c = ctx.type(x)?.shape.dims[1].value, scale.count == c, shift.count == c else { throw noLayer }
    // Nothing outside the layer reads its intermediate values.
    let inside = Set(members)
    guard ([mean] + o.dropLast()).allSatisfy({ v in ctx.readers(v).allSatisfy(inside.contains) && !ctx.isGraphOutput(v) }) else { throw noLayer }
    ctx.absorbed.formUnion(members)
    ctx.addLayer("BN", bottoms: [try ctx.bottom(x)], outputs: [o[9]],
                 blobs: [scale.reshaped([1, c, 1, 1]), shift.reshaped([1, c, 1, 1])])
}
