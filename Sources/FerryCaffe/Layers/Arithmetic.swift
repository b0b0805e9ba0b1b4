import Foundation
import FerryIR

/// ReLU -> Relu, or LeakyRelu when negative_slope is not 0.
func buildReLU(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let slope = ctx.layer.reluParam.negativeSlope
    if slope == 0 { return [try ctx.emit(.relu, [x], role: "relu")] }
    return [try ctx.emit(.leakyRelu(alpha: slope), [x], role: "leaky_relu")]
}

/// Softmax along `axis` (default 1, the channels).
func buildSoftmax(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let axis = try caffeAxis(ctx.layer.softmaxParam.axis, rank: x.rank, ctx)
    return [try ctx.emit(.softmax(axis: axis), [x], role: "softmax")]
}

/// BatchNorm with stored statistics -> BatchNormalization with scale 1 and bias 0 (Caffe's
/// BatchNorm only normalizes; a following Scale layer applies gamma and beta). Caffe stores mean
/// and variance multiplied by a scale factor (the third blob): they are divided by it, a factor
/// of 0 meaning zero statistics.
func buildBatchNorm(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.batchNormParam
    if p.hasUseGlobalStats && !p.useGlobalStats {
        throw ctx.error("use_global_stats: false normalizes with the batch's own statistics; only stored statistics are supported")
    }
    guard x.rank >= 2, let channels = x.size(1) else {
        throw ctx.error("expects an input (N, C, ...) with known channels, got \(x.shape)")
    }
    let mean = try ctx.blob(0, role: "mean", shape: [channels]).floats
    let variance = try ctx.blob(1, role: "variance", shape: [channels]).floats
    let factor = try ctx.blob(2, role: "scale_factor", shape: [1]).floats[0]
    let unscale: Float = factor == 0 ? 0 : 1 / factor
    let ones = ctx.constant("gamma", shape: [channels], Array(repeating: 1, count: channels))
    let zeros = ctx.constant("beta", shape: [channels], Array(repeating: 0, count: channels))
    let m = ctx.constant("mean", shape: [channels], factor == 1 ? mean : mean.map { $0 * unscale })
    let v = ctx.constant("variance", shape: [channels], factor == 1 ? variance : variance.map { $0 * unscale })
    return [try ctx.emit(.batchNormalization(epsilon: p.eps), [x, ones, zeros, m, v], role: "batchnorm")]
}

/// BN, the SegNet / ENet forks' batch normalization with its own scale and shift (blobs scale
/// and shift, each (1, C, 1, 1); bn_layer.cpp). bn_mode INFERENCE, the forks' deploy form with
/// the statistics folded in: scale * x + shift per channel. LEARN (the default) normalizes by
/// the statistics of the batch being run, as the fork does at any phase: mean and E(x^2) -
/// mean^2 over N, H and W, the deviation sqrt(variance + 1e-9); then scale and shift.
func buildBN(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    guard x.rank == 4, let channels = x.size(1) else {
        throw ctx.error("expects a 4-D input (N, C, H, W) with known channels, got \(x.shape)")
    }
    let scale = try ctx.weight(0, role: "scale", shape: [channels, 1, 1])
    let shift = try ctx.weight(1, role: "shift", shape: [channels, 1, 1])
    var normalized = x
    if ctx.layer.bnParam.bnMode == .learn {
        let mean = try ctx.emit(.reduce(.mean, axes: [0, 2, 3], keepDims: true), [x], role: "batch_mean")
        let square = try ctx.emit(.mul, [x, x], role: "square")
        let meanSquare = try ctx.emit(.reduce(.mean, axes: [0, 2, 3], keepDims: true), [square], role: "batch_mean_square")
        let variance = try ctx.emit(.sub, [meanSquare, try ctx.emit(.mul, [mean, mean], role: "mean_squared")],
                                    role: "batch_variance")
        let deviation = try ctx.emit(.sqrt, [try ctx.emit(.add, [variance, ctx.constant("eps", shape: [], [1e-9])],
                                                          role: "variance_eps")], role: "deviation")
        normalized = try ctx.emit(.div, [try ctx.emit(.sub, [x, mean], role: "centered"), deviation], role: "normalized")
    }
    let scaled = try ctx.emit(.mul, [normalized, scale], role: "scaled")
    return [try ctx.emit(.add, [scaled, shift], role: "shifted")]
}

/// The dims a Scale or Bias operand covers: `num_axes` dims of the first bottom from `axis`
/// (-1: all the rest; 0: a scalar).
func operandDims(_ x: IRValue, axis rawAxis: Int32, numAxes: Int32, _ ctx: CaffeContext) throws -> (axis: Int, dims: [Int]) {
    let axis = try caffeAxis(rawAxis, rank: x.rank, ctx)
    let count: Int
    if numAxes == -1 { count = x.rank - axis } else {
        guard numAxes >= 0, axis + Int(numAxes) <= x.rank else {
            throw ctx.error("num_axes \(numAxes) from axis \(axis) exceeds the input rank \(x.rank)")
        }
        count = Int(numAxes)
    }
    var dims: [Int] = []
    for a in axis..<(axis + count) {
        guard let n = x.size(a) else { throw ctx.error("dimension \(a) of \(x.shape) must be known") }
        dims.append(n)
    }
    return (axis, dims)
}

/// A second bottom reshaped to broadcast against the first from `axis`: trailing 1s appended.
func alignedOperand(_ y: IRValue, to x: IRValue, axis: Int, _ ctx: CaffeContext) throws -> IRValue {
    let trailing = x.rank - axis - y.rank
    guard trailing >= 0 else {
        throw ctx.error("the second bottom \(y.shape) does not fit the first \(x.shape) from axis \(axis)")
    }
    for i in 0..<y.rank {
        let a = y.shape[i], b = x.shape[axis + i]
        if let a = a.value, let b = b.value, a != b {
            throw ctx.error("the second bottom \(y.shape) does not match the first \(x.shape) from axis \(axis)")
        }
    }
    if trailing == 0 { return y }
    return try ctx.emit(.reshape(shape: Array(repeating: 0, count: y.rank) + Array(repeating: 1, count: trailing)),
                        [y], role: "align")
}

/// Scale: x * gamma (+ beta with bias_term), gamma a weight covering dims [axis, axis+num_axes)
/// or, with two bottoms, the second bottom. Caffe's two-bottom form takes its shape from the
/// second bottom and ignores num_axes.
func buildScale(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let p = ctx.layer.scaleParam
    guard inputs.count == 1 || inputs.count == 2 else { throw ctx.error("expects one or two bottoms, has \(inputs.count)") }
    let x = inputs[0]
    let axis: Int, dims: [Int]
    let factor: IRValue
    var biasIndex = 1
    if inputs.count == 2 {
        axis = try caffeAxis(p.axis, rank: x.rank, ctx)
        factor = try alignedOperand(inputs[1], to: x, axis: axis, ctx)
        dims = inputs[1].shape.dims.map { $0.value ?? 1 }
        biasIndex = 0
    } else {
        (axis, dims) = try operandDims(x, axis: p.axis, numAxes: p.numAxes, ctx)
        let gamma = try ctx.blob(0, role: "scale", shape: dims)
        factor = ctx.constant("scale", gamma.reshaped(broadcastShape(dims, axis: axis, rank: x.rank)))
    }
    var y = try ctx.emit(.mul, [x, factor], role: "scale")
    if p.biasTerm {
        let beta = try ctx.blob(biasIndex, role: "bias", shape: dims)
        y = try ctx.emit(.add, [y, ctx.constant("bias", beta.reshaped(broadcastShape(dims, axis: axis, rank: x.rank)))],
                         role: "bias")
    }
    return [y]
}

/// Bias: x + b, b a weight covering dims [axis, axis+num_axes) or the second bottom.
func buildBias(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let p = ctx.layer.biasParam
    guard inputs.count == 1 || inputs.count == 2 else { throw ctx.error("expects one or two bottoms, has \(inputs.count)") }
    let x = inputs[0]
    if inputs.count == 2 {
        let axis = try caffeAxis(p.axis, rank: x.rank, ctx)
        return [try ctx.emit(.add, [x, try alignedOperand(inputs[1], to: x, axis: axis, ctx)], role: "bias")]
    }
    let (axis, dims) = try operandDims(x, axis: p.axis, numAxes: p.numAxes, ctx)
    let b = try ctx.blob(0, role: "bias", shape: dims)
    return [try ctx.emit(.add, [x, ctx.constant("bias", b.reshaped(broadcastShape(dims, axis: axis, rank: x.rank)))],
                         role: "bias")]
}

/// Eltwise SUM (each bottom times its coeff, default 1), PROD, MAX over two or more bottoms of
/// one shape (SUM and PROD folded left to right).
func buildEltwise(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let p = ctx.layer.eltwiseParam
    guard inputs.count >= 2 else { throw ctx.error("expects at least two bottoms, has \(inputs.count)") }
    for v in inputs.dropFirst() where v.shape != inputs[0].shape {
        throw ctx.error("bottoms have different shapes: \(inputs.map(\.shape.description).joined(separator: ", "))")
    }
    switch p.operation {
    case .sum:
        guard p.coeff.isEmpty || p.coeff.count == inputs.count else {
            throw ctx.error("\(p.coeff.count) coeff values for \(inputs.count) bottoms")
        }
        let terms = try inputs.enumerated().map { i, v -> IRValue in
            let c = p.coeff.isEmpty ? 1 : p.coeff[i]
            if c == 1 { return v }
            return try ctx.emit(.mul, [v, ctx.constant("coeff_\(i)", shape: [1], [c])], role: "term_\(i)")
        }
        var y = terms[0]
        for (i, t) in terms.enumerated().dropFirst() { y = try ctx.emit(.add, [y, t], role: "sum_\(i)") }
        return [y]
    case .prod:
        var y = inputs[0]
        for (i, t) in inputs.enumerated().dropFirst() { y = try ctx.emit(.mul, [y, t], role: "prod_\(i)") }
        return [y]
    case .max:
        return [try ctx.emit(.max, inputs, role: "max")]
    }
}
