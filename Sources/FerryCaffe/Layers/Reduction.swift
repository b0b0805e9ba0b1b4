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

/// ArgMax: the indices (floats, as Caffe stores them) of the top_k largest values along
/// `axis`, best first, or over all of (C, H, W...) per sample when no axis is given;
/// out_max_val gives the values instead (with an axis) or indices and values (without: shape
/// (N, 2, top_k, 1...), indices in channel 0). Caffe sorts (value, index) pairs descending,
/// so among equal values the larger index comes first: ArgMax with select_last_index for
/// top_k 1, TopK over the reversed axis for more.
func buildArgMax(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.argmaxParam
    let k = Int(p.topK)
    guard k >= 1 else { throw ctx.error("top_k \(p.topK) must be at least 1") }
    if p.hasAxis {
        let axis = try caffeAxis(p.axis, rank: x.rank, ctx)
        if p.outMaxVal {
            if k == 1 { return [try ctx.emit(.reduce(.max, axes: [axis], keepDims: true), [x], role: "max")] }
            return [try topKLastIndexFirst(ctx, x, axis: axis, k: k).values]
        }
        if k == 1 {
            let index = try ctx.emit(.argMax(axis: axis, keepDims: true, selectLastIndex: true), [x], role: "argmax")
            return [try ctx.emit(.cast(to: .float32), [index], role: "index")]
        }
        return [try topKLastIndexFirst(ctx, x, axis: axis, k: k).indices]
    }
    guard x.rank >= 2 else { throw ctx.error("expects an input of rank >= 2, got \(x.shape)") }
    // Caffe's top: (N, 1 or 2, top_k, 1...) of rank max(rank, 3).
    let outputShape = [0, p.outMaxVal ? 2 : 1, k] + Array(repeating: 1, count: max(x.rank, 3) - 3)
    let rows = x.rank == 2 ? x : try ctx.emit(.flatten(axis: 1), [x], role: "rows")
    var index: IRValue, value: IRValue?
    if k == 1 {
        let argmax = try ctx.emit(.argMax(axis: 1, keepDims: true, selectLastIndex: true), [rows], role: "argmax")
        index = try ctx.emit(.cast(to: .float32), [argmax], role: "index")
        value = p.outMaxVal ? try ctx.emit(.reduce(.max, axes: [1], keepDims: true), [rows], role: "max") : nil
    } else {
        (value, index) = try topKLastIndexFirst(ctx, rows, axis: 1, k: k)
        if !p.outMaxVal { value = nil }
    }
    let result = try value.map { try ctx.emit(.concat(axis: 1), [index, $0], role: "index_value") } ?? index
    return [try ctx.emit(.reshape(shape: outputShape), [result], role: "shaped")]
}

/// The k largest values of `x` along `axis` and their indices as floats, equal values listed
/// from the larger index (Caffe's order): TopK over the axis reversed, indices mapped back.
private func topKLastIndexFirst(_ ctx: CaffeContext, _ x: IRValue, axis: Int, k: Int) throws -> (values: IRValue, indices: IRValue) {
    guard let n = x.size(axis) else { throw ctx.error("top_k needs axis \(axis) of \(x.shape) to have a known size") }
    guard k <= n else { throw ctx.error("top_k \(k) is larger than axis \(axis) of \(x.shape)") }
    let reversed = try ctx.emit(.slice(SliceAttributes(starts: [-1], ends: [Int.min], axes: [axis], steps: [-1])), [x],
                                role: "reversed")
    let top = try ctx.emit(.topK(axis: axis, k: k, largest: true), [reversed], roles: ["top_values", "top_reversed_indices"])
    let reversedIndex = try ctx.emit(.cast(to: .float32), [top[1]], role: "reversed_index")
    let index = try ctx.emit(.sub, [ctx.constant("last_index", shape: [], [Float(n - 1)]), reversedIndex], role: "index")
    return (top[0], index)
}
