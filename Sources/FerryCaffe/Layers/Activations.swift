import Foundation
import FerryIR

// Caffe activations the IR has no single op for yet, written with the ops it has. Each
// composition is exact or within a rounding of the direct formula; when the IR gains the op
// (PRelu, Clip, Pow, ...) the builder becomes that op.

/// |x| = relu(x) + relu(-x) (one of the two is zero, so the sum is exact).
func absolute(_ x: IRValue, _ ctx: CaffeContext, role: String) throws -> IRValue {
    let negated = try ctx.emit(.mul, [x, ctx.constant("\(role)_minus_one", shape: [1], [-1])], role: "\(role)_negated")
    let pos = try ctx.emit(.relu, [x], role: "\(role)_positive")
    let neg = try ctx.emit(.relu, [negated], role: "\(role)_negative")
    return try ctx.emit(.add, [pos, neg], role: role)
}

/// AbsVal: |x|.
func buildAbsVal(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    [try absolute(try single(inputs, ctx), ctx, role: "abs")]
}

/// Swish: x * sigmoid(beta * x).
func buildSwish(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let beta = ctx.layer.swishParam.beta
    let scaled = beta == 1 ? x : try ctx.emit(.mul, [x, ctx.constant("beta", shape: [1], [beta])], role: "scaled")
    let gate = try ctx.emit(.sigmoid, [scaled], role: "gate")
    return [try ctx.emit(.mul, [x, gate], role: "swish")]
}

/// PReLU: max(0, x) + slope * min(0, x), one slope per channel (axis 1) or one for all
/// (channel_shared, a blob of one value, possibly with no shape). Written relu(x) -
/// slope * relu(-x): exact, since one of the two terms is zero.
func buildPReLU(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let shared = ctx.layer.preluParam.channelShared
    let slopeShape: [Int]
    if shared {
        slopeShape = [1]
    } else {
        guard x.rank >= 2, let channels = x.size(1) else {
            throw ctx.error("expects an input (N, C, ...) with known channels, got \(x.shape)")
        }
        slopeShape = broadcastShape([channels], axis: 1, rank: x.rank)
    }
    let slope = try ctx.blob(0, role: "slope", shape: shared ? [1] : [slopeShape[0]])
    let negSlope = Tensor(shape: slopeShape, floats: slope.floats.map { -$0 })
    let negated = try ctx.emit(.mul, [x, ctx.constant("minus_one", shape: [1], [-1])], role: "negated")
    let pos = try ctx.emit(.relu, [x], role: "positive")
    let neg = try ctx.emit(.relu, [negated], role: "negative")
    let scaledNeg = try ctx.emit(.mul, [neg, ctx.constant("minus_slope", negSlope)], role: "negative_part")
    return [try ctx.emit(.add, [pos, scaledNeg], role: "prelu")]
}

/// min(max(x, lo), hi) = lo + relu(x - lo) - relu(x - hi) (hi >= lo).
func clipped(_ x: IRValue, lo: Float, hi: Float, _ ctx: CaffeContext) throws -> IRValue {
    guard lo <= hi, lo.isFinite, hi.isFinite else { throw ctx.error("clip bounds [\(lo), \(hi)] are not an interval") }
    let above = lo == 0 ? try ctx.emit(.relu, [x], role: "above_min")
        : try ctx.emit(.relu, [try ctx.emit(.sub, [x, ctx.constant("min", shape: [1], [lo])], role: "from_min")], role: "above_min")
    let over = try ctx.emit(.relu, [try ctx.emit(.sub, [x, ctx.constant("max", shape: [1], [hi])], role: "from_max")],
                            role: "above_max")
    var y = try ctx.emit(.sub, [above, over], role: lo == 0 ? "clip" : "clip_from_min")
    if lo != 0 { y = try ctx.emit(.add, [y, ctx.constant("min_offset", shape: [1], [lo])], role: "clip") }
    return y
}

/// Clip: min(max(x, min), max).
func buildClip(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let p = ctx.layer.clipParam
    guard p.hasMin, p.hasMax else { throw ctx.error("clip_param needs min and max") }
    return [try clipped(try single(inputs, ctx), lo: p.min, hi: p.max, ctx)]
}

/// ReLU6 (MobileNet forks): min(max(x, 0), 6).
func buildReLU6(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    [try clipped(try single(inputs, ctx), lo: 0, hi: 6, ctx)]
}

/// Power: (shift + scale * x) ^ power, for the powers the IR's ops express: 0 (ones), 1, 2.
func buildPower(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.powerParam
    var base = x
    if p.scale != 1 { base = try ctx.emit(.mul, [base, ctx.constant("scale", shape: [1], [p.scale])], role: "scaled") }
    if p.shift != 0 { base = try ctx.emit(.add, [base, ctx.constant("shift", shape: [1], [p.shift])], role: "shifted") }
    switch p.power {
    case 1:
        return [base]
    case 2:
        return [try ctx.emit(.mul, [base, base], role: "square")]
    case 0:
        // Caffe fills ones whatever the input.
        let zero = try ctx.emit(.mul, [x, ctx.constant("zero", shape: [1], [0])], role: "zeros")
        return [try ctx.emit(.add, [zero, ctx.constant("one", shape: [1], [1])], role: "ones")]
    default:
        throw ctx.error("power \(p.power) needs a Pow op the IR does not have yet (0, 1 and 2 are supported)")
    }
}

/// Reduction SUM / ASUM / SUMSQ / MEAN over every axis from `axis` on, times coeff: the
/// reduced input reshaped to (..., K) and multiplied by a vector of coeff (coeff / K for MEAN).
func buildReduction(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.reductionParam
    let axis = try caffeAxis(p.axis, rank: x.rank, ctx)
    var k = 1
    for a in axis..<x.rank {
        guard let n = x.size(a) else { throw ctx.error("dimension \(a) of \(x.shape) must be known") }
        k *= n
    }
    let operand: IRValue
    switch p.operation {
    case .sum, .mean: operand = x
    case .asum: operand = try absolute(x, ctx, role: "abs")
    case .sumsq: operand = try ctx.emit(.mul, [x, x], role: "square")
    }
    let weight = p.operation == .mean ? p.coeff / Float(k) : p.coeff
    let rows = try ctx.emit(.reshape(shape: Array(repeating: 0, count: axis) + [-1]), [operand], role: "rows")
    return [try ctx.emit(.matMul, [rows, ctx.constant("coeff", shape: [k], Array(repeating: weight, count: k))],
                         role: "reduce")]
}
