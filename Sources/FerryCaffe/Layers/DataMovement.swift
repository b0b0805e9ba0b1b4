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
