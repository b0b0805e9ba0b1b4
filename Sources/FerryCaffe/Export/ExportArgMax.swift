import FerryIR

/// ArgMax keeping its axis, equal values resolved to the larger index (Caffe's order), then a
/// Cast to float32 of the same source layer (Caffe writes indices as floats) -> ArgMax {axis}.
/// Caffe's ArgMax without an axis (over the flattened sample) comes back as Flatten + ArgMax
/// along axis 1 + Reshape, which compute the same; top_k > 1 (TopK over the reversed axis) has
/// no form here (Caffe slices with step 1 only).
func writeArgMax(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .argMax(let axis, let keepDims, let selectLastIndex) = node.op else { return }
    guard keepDims, selectLastIndex else {
        throw ctx.error("Caffe's ArgMax keeps the axis and takes the last of equal values; this one "
                        + (keepDims ? "takes the first" : "drops the axis"))
    }
    guard let cast = ctx.soleSameLayerReader(of: node.outputs[0]), case .cast(to: .float32) = cast.node.op else {
        throw ctx.error("Caffe's ArgMax writes its indices as floats: it needs a Cast to float32 of the same layer after it")
    }
    ctx.absorbed.insert(cast.index)
    let a = try exportAxis(axis, of: node.inputs[0], ctx)
    ctx.addLayer("ArgMax", bottoms: [try dataBottom(ctx, node)], outputs: cast.node.outputs) { $0.argmaxParam.axis = Int32(a) }
}

/// The largest value along one axis, kept -> ArgMax {axis, out_max_val}: Caffe's ArgMax with
/// top_k 1 then writes the maximum itself.
func writeReduceMaxAsArgMax(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .reduce(.max, let axes, let keepDims) = node.op else { return }
    guard keepDims, let axes, axes.count == 1, node.inputs.dropFirst().allSatisfy(\.isEmpty) else {
        throw ctx.error("Caffe has a maximum over one kept axis only (ArgMax with out_max_val)")
    }
    let a = try exportAxis(axes[0], of: node.inputs[0], ctx)
    ctx.addLayer("ArgMax", bottoms: [try dataBottom(ctx, node)], outputs: node.outputs) { l in
        l.argmaxParam.axis = Int32(a)
        l.argmaxParam.outMaxVal = true
    }
}
