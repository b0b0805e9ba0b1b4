import Foundation
import FerryIR

/// AbsVal: |x|.
func buildAbsVal(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    [try ctx.emit(.abs, [try single(inputs, ctx)], role: "abs")]
}

/// ELU: x > 0 ? x : alpha * (exp(x) - 1).
func buildELU(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    [try ctx.emit(.elu(alpha: ctx.layer.eluParam.alpha), [try single(inputs, ctx)], role: "elu")]
}

/// BNLL: log(1 + exp(x)), i.e. Softplus.
func buildBNLL(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    [try ctx.emit(.softplus, [try single(inputs, ctx)], role: "softplus")]
}

/// Swish: x * sigmoid(beta * x).
func buildSwish(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let beta = ctx.layer.swishParam.beta
    let scaled = beta == 1 ? x : try ctx.emit(.mul, [x, ctx.constant("beta", shape: [1], [beta])], role: "scaled")
    let gate = try ctx.emit(.sigmoid, [scaled], role: "gate")
    return [try ctx.emit(.mul, [x, gate], role: "swish")]
}

/// PReLU -> PRelu with one slope per channel (axis 1), shaped (C, 1, ...) to broadcast, or one
/// for all (channel_shared: a blob of one value, which Caffe writes with no shape).
func buildPReLU(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    if ctx.layer.preluParam.channelShared {
        let slope = try ctx.blob(0, role: "slope", shape: [1])
        return [try ctx.emit(.prelu, [x, ctx.constant("slope", slope)], role: "prelu")]
    }
    guard x.rank >= 2, let channels = x.size(1) else {
        throw ctx.error("expects an input (N, C, ...) with known channels, got \(x.shape)")
    }
    let slope = try ctx.blob(0, role: "slope", shape: [channels])
    let shaped = slope.reshaped(broadcastShape([channels], axis: 1, rank: x.rank))
    return [try ctx.emit(.prelu, [x, ctx.constant("slope", shaped)], role: "prelu")]
}

/// Clip: min(max(x, min), max).
func buildClip(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let p = ctx.layer.clipParam
    guard p.hasMin, p.hasMax, p.min <= p.max else { throw ctx.error("clip_param needs min <= max") }
    return [try ctx.emit(.clip(min: p.min, max: p.max), [try single(inputs, ctx)], role: "clip")]
}

/// ReLU6 (MobileNet forks): min(max(x, 0), 6).
func buildReLU6(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    [try ctx.emit(.clip(min: 0, max: 6), [try single(inputs, ctx)], role: "relu6")]
}

/// shift + scale * x, leaving out the identity parts.
func affine(_ x: IRValue, scale: Float, shift: Float, _ ctx: CaffeContext) throws -> IRValue {
    var y = x
    if scale != 1 { y = try ctx.emit(.mul, [y, ctx.constant("scale", shape: [1], [scale])], role: "scaled") }
    if shift != 0 { y = try ctx.emit(.add, [y, ctx.constant("shift", shape: [1], [shift])], role: "shifted") }
    return y
}

/// Power: (shift + scale * x) ^ power (a square as a product; power 0 gives ones, as in Caffe).
func buildPower(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.powerParam
    if p.power == 0 {
        let zero = try ctx.emit(.mul, [x, ctx.constant("zero", shape: [1], [0])], role: "zeros")
        return [try ctx.emit(.add, [zero, ctx.constant("one", shape: [1], [1])], role: "ones")]
    }
    let base = try affine(x, scale: p.scale, shift: p.shift, ctx)
    switch p.power {
    case 1: return [base]
    case 2: return [try ctx.emit(.mul, [base, base], role: "square")]
    default: return [try ctx.emit(.pow, [base, ctx.constant("power", shape: [1], [p.power])], role: "power")]
    }
}

/// ln of a Caffe `base` (-1 meaning e), checked positive.
func naturalLog(ofBase base: Float, _ ctx: CaffeContext) throws -> Float? {
    if base == -1 { return nil }
    guard base > 0 else { throw ctx.error("base \(base) must be positive (or -1 for e)") }
    return Float(Foundation.log(Double(base)))
}

/// Exp: base ^ (shift + scale * x), base -1 meaning e: exp(ln(base) * (shift + scale * x)).
func buildExp(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.expParam
    let lnBase = try naturalLog(ofBase: p.base, ctx) ?? 1
    let inner = try affine(x, scale: p.scale * lnBase, shift: p.shift * lnBase, ctx)
    return [try ctx.emit(.exp, [inner], role: "exp")]
}

/// Log: log_base(shift + scale * x), base -1 meaning e: ln(shift + scale * x) / ln(base).
func buildLog(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.logParam
    let lnBase = try naturalLog(ofBase: p.base, ctx)
    let y = try ctx.emit(.log, [try affine(x, scale: p.scale, shift: p.shift, ctx)], role: "log")
    guard let lnBase, lnBase != 1 else { return [y] }
    return [try ctx.emit(.mul, [y, ctx.constant("inverse_ln_base", shape: [1], [1 / lnBase])], role: "change_base")]
}

/// LRN. ACROSS_CHANNELS: x / (k + alpha / n * sum of squares over n neighbouring channels)^beta,
/// which is ONNX's LRN(size: n, alpha, beta, bias: k) (Caffe's window of n channels centred on
/// the channel, n odd, the channels past either end left out of the sum, as ONNX's), one IR
/// node that the plan runs as one kernel.
/// WITHIN_CHANNEL: x * (1 + alpha * mean of squares over an n x n window, padding counted)^-beta
/// (Mul, AveragePool, Pow, Mul: the IR has no LRN within a channel).
func buildLRN(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.lrnParam
    let n = Int(p.localSize)
    guard n >= 1, n % 2 == 1, n <= 1 << 12 else { throw ctx.error("local_size \(n) must be odd and positive") }
    guard x.rank == 4, x.size(1) != nil, x.size(2) != nil, x.size(3) != nil else {
        throw ctx.error("expects a 4-D input (N, C, H, W) with known C, H, W, got \(x.shape)")
    }
    switch p.normRegion {
    case .acrossChannels:
        return [try ctx.emit(.lrn(size: n, alpha: p.alpha, beta: p.beta, bias: p.k), [x], role: "lrn")]
    case .withinChannel:
        let squares = try ctx.emit(.mul, [x, x], role: "squares")
        let pad = (n - 1) / 2
        let pooled = try ctx.emit(.averagePool(PoolAttributes(kernelShape: [n, n], pads: [pad, pad, pad, pad],
                                                             ceilMode: true, countIncludePad: true)),
                                  [squares], role: "window_mean")
        let base = try affine(pooled, scale: p.alpha, shift: 1, ctx)
        let factor = try ctx.emit(.pow, [base, ctx.constant("minus_beta", shape: [1], [-p.beta])], role: "factor")
        return [try ctx.emit(.mul, [x, factor], role: "lrn")]
    }
}

/// Threshold: 1 where x > threshold, else 0 -> Greater, Cast to float.
func buildThreshold(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let above = try ctx.emit(.greater, [x, ctx.constant("threshold", shape: [1], [ctx.layer.thresholdParam.threshold])],
                             role: "above")
    return [try ctx.emit(.cast(to: .float32), [above], role: "threshold")]
}
