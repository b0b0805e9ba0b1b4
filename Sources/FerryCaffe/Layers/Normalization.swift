import FerryIR

/// MVN: x minus its mean over (H, W...) per channel, or over (C, H, W...) with across_channels;
/// with normalize_variance, divided by sqrt(variance) + eps (Caffe adds eps to the deviation,
/// not under the root). ReduceMean keeps the reduced dims so that the result broadcasts back.
func buildMVN(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.mvnParam
    guard x.rank >= 2 else { throw ctx.error("expects an input of rank >= 2, got \(x.shape)") }
    let axis = p.acrossChannels ? 1 : min(2, x.rank)
    guard axis < x.rank else { throw ctx.error("nothing to normalize over in \(x.shape)") }
    let axes = Array(axis..<x.rank)
    let mean = try ctx.emit(.reduce(.mean, axes: axes, keepDims: true), [x], role: "mean")
    let centered = try ctx.emit(.sub, [x, mean], role: "centered")
    guard p.normalizeVariance else { return [centered] }
    let squared = try ctx.emit(.mul, [centered, centered], role: "squared")
    let variance = try ctx.emit(.reduce(.mean, axes: axes, keepDims: true), [squared], role: "variance")
    let deviation = try ctx.emit(.add, [try ctx.emit(.sqrt, [variance], role: "deviation"),
                                        ctx.constant("eps", shape: [1], [p.eps])], role: "deviation_eps")
    return [try ctx.emit(.div, [centered, deviation], role: "mvn")]
}

/// Normalize (SSD): x / sqrt(sum of squares + eps) times a learned scale. The sum runs over
/// (C, H, W) per sample with across_spatial (the default), else over C at each position; the
/// scale is one value (channel_shared, the default) or one per channel.
func buildNormalize(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.normParam
    guard x.rank >= 2, let channels = x.size(1) else {
        throw ctx.error("expects an input (N, C, ...) with known channels, got \(x.shape)")
    }
    let axes = p.acrossSpatial ? Array(1..<x.rank) : [1]
    let sumOfSquares = try ctx.emit(.reduce(.sumSquare, axes: axes, keepDims: true), [x], role: "sum_of_squares")
    let withEps = try ctx.emit(.add, [sumOfSquares, ctx.constant("eps", shape: [1], [p.eps])], role: "sum_eps")
    let norm = try ctx.emit(.sqrt, [withEps], role: "norm")
    let normalized = try ctx.emit(.div, [x, norm], role: "normalized")
    let scale = p.channelShared
        ? try ctx.blob(0, role: "scale", shape: [1])
        : try ctx.blob(0, role: "scale", shape: [channels]).reshaped(broadcastShape([channels], axis: 1, rank: x.rank))
    return [try ctx.emit(.mul, [normalized, ctx.constant("scale", scale)], role: "scaled")]
}
