import FerryIR

/// Reduction SUM / ASUM / SUMSQ / MEAN over every axis from `axis` on, times coeff ->
/// ReduceSum / ReduceL1 / ReduceSumSquare / ReduceMean over those axes (then Mul by coeff).
func buildReduction(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.reductionParam
    let axis = try caffeAxis(p.axis, rank: x.rank, ctx)
    let operation: ReduceOperation
    switch p.operation {
    case .sum: operation = .sum
    case .asum: operation = .l1
    case .sumsq: operation = .sumSquare
    case .mean: operation = .mean
    }
    let reduced = try ctx.emit(.reduce(operation, axes: Array(axis..<x.rank), keepDims: false), [x], role: "reduce")
    if p.coeff == 1 { return [reduced] }
    return [try ctx.emit(.mul, [reduced, ctx.constant("coeff", shape: [], [p.coeff])], role: "coeff")]
}

/// ArgMax: the index (a float, as Caffe stores it) of the largest value along `axis`, or over
/// all of (C, H, W...) per sample when no axis is given; out_max_val gives the value instead
/// (with an axis) or the (index, value) pair (without: shape (N, 2, 1, ...)). Caffe sorts
/// (value, index) pairs descending, so among equal values the last index wins.
func buildArgMax(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.argmaxParam
    guard p.topK == 1 else { throw ctx.error("top_k \(p.topK) is not supported (only 1)") }
    if p.hasAxis {
        let axis = try caffeAxis(p.axis, rank: x.rank, ctx)
        if p.outMaxVal {
            return [try ctx.emit(.reduce(.max, axes: [axis], keepDims: true), [x], role: "max")]
        }
        let index = try ctx.emit(.argMax(axis: axis, keepDims: true, selectLastIndex: true), [x], role: "argmax")
        return [try ctx.emit(.cast(to: .float32), [index], role: "index")]
    }
    guard x.rank >= 2 else { throw ctx.error("expects an input of rank >= 2, got \(x.shape)") }
    // Caffe's top: (N, 1 or 2, top_k, 1...) of rank max(rank, 3).
    let outputShape = [0, p.outMaxVal ? 2 : 1, 1] + Array(repeating: 1, count: max(x.rank, 3) - 3)
    let rows = x.rank == 2 ? x : try ctx.emit(.flatten(axis: 1), [x], role: "rows")
    let index = try ctx.emit(.argMax(axis: 1, keepDims: true, selectLastIndex: true), [rows], role: "argmax")
    var result = try ctx.emit(.cast(to: .float32), [index], role: "index")
    if p.outMaxVal {
        let value = try ctx.emit(.reduce(.max, axes: [1], keepDims: true), [rows], role: "max")
        result = try ctx.emit(.concat(axis: 1), [result, value], role: "index_value")
    }
    return [try ctx.emit(.reshape(shape: outputShape), [result], role: "shaped")]
}
