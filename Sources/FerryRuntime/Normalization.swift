import FerryIR
import Foundation

/// Normalization over channels, instances, layers and groups, float32.
extension ReferenceKernels {
    /// BatchNormalization, inference form: per channel c of X (N, C, ...),
    /// (x - mean[c]) / sqrt(var[c] + epsilon) * scale[c] + B[c].
    public static func batchNormalization(_ x: Tensor, scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor,
                                          epsilon: Float) throws -> Tensor {
        let values = try x.requireFloats("BatchNormalization", "X")
        guard x.rank >= 2 else { throw FerryError("BatchNormalization expects X of rank >= 2, got \(x.shape)") }
        let channels = x.shape[1]
        var params: [[Float]] = []
        for (t, what) in [(scale, "scale"), (bias, "B"), (mean, "mean"), (variance, "var")] {
            guard t.shape == [channels] else {
                throw FerryError("BatchNormalization \(what) has shape \(t.shape), expected [\(channels)]")
            }
            params.append(try t.requireFloats("BatchNormalization", what))
        }
        // Folded to y = x * a + b per channel.
        var a = [Float](repeating: 0, count: channels), b = a
        for c in 0..<channels {
            a[c] = params[0][c] / (params[3][c] + epsilon).squareRoot()
            b[c] = params[1][c] - params[2][c] * a[c]
        }
        let inner = elementCount(x.shape[2...])
        let out = values.withUnsafeBufferPointer { xp in
            makeFloats(xp.count) { o in
                var i = 0
                for _ in 0..<x.shape[0] {
                    for c in 0..<channels {
                        let ac = a[c], bc = b[c]
                        for _ in 0..<inner {
                            o[i] = xp[i] * ac + bc
                            i += 1
                        }
                    }
                }
            }
        }
        return Tensor(shape: x.shape, floats: out)
    }

    /// BatchNormalization, training form: per channel c, the batch mean m[c] and population
    /// variance v[c] of X over every axis but 1 (accumulated in Double); Y as the inference form
    /// with m and v; the running statistics mean[c] x momentum + m[c] x (1 - momentum), likewise var.
    public static func batchNormalizationTraining(_ x: Tensor, scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor,
                                                  epsilon: Float, momentum: Float)
        throws -> (y: Tensor, runningMean: Tensor, runningVariance: Tensor) {
        let values = try x.requireFloats("BatchNormalization", "X")
        guard x.rank >= 2 else { throw FerryError("BatchNormalization expects X of rank >= 2, got \(x.shape)") }
        let channels = x.shape[1], inner = elementCount(x.shape[2...])
        var params: [[Float]] = []
        for (t, what) in [(mean, "mean"), (variance, "var")] {
            guard t.shape == [channels] else {
                throw FerryError("BatchNormalization \(what) has shape \(t.shape), expected [\(channels)]")
            }
            params.append(try t.requireFloats("BatchNormalization", what))
        }
        var sums = [Double](repeating: 0, count: channels), squares = sums
        for n in 0..<x.shape[0] {
            for c in 0..<channels {
                let start = (n * channels + c) * inner
                for i in start..<(start + inner) { sums[c] += Double(values[i]) }
            }
        }
        let perChannel = Double(x.shape[0] * inner)
        let batchMean = sums.map { perChannel > 0 ? $0 / perChannel : 0 }
        for n in 0..<x.shape[0] {
            for c in 0..<channels {
                let start = (n * channels + c) * inner
                for i in start..<(start + inner) {
                    let d = Double(values[i]) - batchMean[c]
                    squares[c] += d * d
                }
            }
        }
        let batchVariance = squares.map { perChannel > 0 ? $0 / perChannel : 0 }
        let statistics = { (v: [Double]) in Tensor(shape: [channels], floats: v.map { Float($0) }) }
        let y = try batchNormalization(x, scale: scale, bias: bias, mean: statistics(batchMean),
                                       variance: statistics(batchVariance), epsilon: epsilon)
        let keep = Double(momentum)
        let runningMean = (0..<channels).map { Float(Double(params[0][$0]) * keep + batchMean[$0] * (1 - keep)) }
        let runningVariance = (0..<channels).map { Float(Double(params[1][$0]) * keep + batchVariance[$0] * (1 - keep)) }
        return (y, Tensor(shape: [channels], floats: runningMean), Tensor(shape: [channels], floats: runningVariance))
    }

    /// Each contiguous block of `blockSize` elements as (x - mean) / sqrt(variance + epsilon),
    /// population variance, accumulated in Double.
    static func normalizedBlocks(_ values: [Float], blockSize: Int, epsilon: Float) -> [Float] {
        guard blockSize > 0 else { return values }
        return values.withUnsafeBufferPointer { xp in
            makeFloats(xp.count) { o in
                var start = 0
                while start < xp.count {
                    var sum = 0.0
                    for i in start..<(start + blockSize) { sum += Double(xp[i]) }
                    let mean = sum / Double(blockSize)
                    var squares = 0.0
                    for i in start..<(start + blockSize) {
                        let d = Double(xp[i]) - mean
                        squares += d * d
                    }
                    let inverse = 1 / (squares / Double(blockSize) + Double(epsilon)).squareRoot()
                    for i in start..<(start + blockSize) { o[i] = Float((Double(xp[i]) - mean) * inverse) }
                    start += blockSize
                }
            }
        }
    }

    /// y * scale[c] + bias[c] for channel c = dimension 1 of `shape`.
    static func scaleAndShiftChannels(_ y: [Float], shape: [Int], scale: [Float], bias: [Float]) -> [Float] {
        let channels = shape[1], inner = elementCount(shape[2...])
        return y.withUnsafeBufferPointer { yp in
            makeFloats(yp.count) { o in
                for i in 0..<yp.count {
                    let c = (i / Swift.max(inner, 1)) % channels
                    o[i] = yp[i] * scale[c] + bias[c]
                }
            }
        }
    }

    /// The float32 elements of a per-channel vector [C], or an error naming it.
    static func channelVector(_ t: Tensor, channels: Int, _ op: String, _ what: String) throws -> [Float] {
        guard t.shape == [channels] else {
            throw FerryError("\(op) \(what) has shape \(t.shape), expected [\(channels)]")
        }
        return try t.requireFloats(op, what)
    }

    /// InstanceNormalization: each (n, c) slice normalized over its spatial elements.
    public static func instanceNormalization(_ x: Tensor, scale: Tensor, bias: Tensor, epsilon: Float) throws -> Tensor {
        let values = try x.requireFloats("InstanceNormalization", "X")
        guard x.rank >= 3 else { throw FerryError("InstanceNormalization expects X of rank >= 3, got \(x.shape)") }
        let s = try channelVector(scale, channels: x.shape[1], "InstanceNormalization", "scale")
        let b = try channelVector(bias, channels: x.shape[1], "InstanceNormalization", "B")
        let y = normalizedBlocks(values, blockSize: elementCount(x.shape[2...]), epsilon: epsilon)
        return Tensor(shape: x.shape, floats: scaleAndShiftChannels(y, shape: x.shape, scale: s, bias: b))
    }

    /// GroupNormalization: each (n, group of C / numGroups channels) normalized over its
    /// channels' elements, then per-channel scale and bias.
    public static func groupNormalization(_ x: Tensor, scale: Tensor, bias: Tensor, numGroups: Int, epsilon: Float) throws -> Tensor {
        let values = try x.requireFloats("GroupNormalization", "X")
        guard x.rank >= 3 else { throw FerryError("GroupNormalization expects X of rank >= 3, got \(x.shape)") }
        let channels = x.shape[1]
        guard numGroups >= 1, channels % numGroups == 0 else {
            throw FerryError("GroupNormalization: \(channels) channels do not split into \(numGroups) groups")
        }
        let s = try channelVector(scale, channels: channels, "GroupNormalization", "scale")
        let b = try channelVector(bias, channels: channels, "GroupNormalization", "bias")
        let y = normalizedBlocks(values, blockSize: channels / numGroups * elementCount(x.shape[2...]), epsilon: epsilon)
        return Tensor(shape: x.shape, floats: scaleAndShiftChannels(y, shape: x.shape, scale: s, bias: b))
    }

    /// LayerNormalization: normalized over axes axis..<rank, times Scale plus B (broadcast to X).
    public static func layerNormalization(_ x: Tensor, scale: Tensor, bias: Tensor?, axis: Int, epsilon: Float) throws -> Tensor {
        let values = try x.requireFloats("LayerNormalization", "X")
        guard x.rank > 0, let a = normalizeAxis(axis, rank: x.rank) else {
            throw FerryError("LayerNormalization axis \(axis) out of range for shape \(x.shape)")
        }
        for t in [scale, bias].compactMap({ $0 }) where try broadcastSizes(x.shape, t.shape) != x.shape {
            throw FerryError("LayerNormalization Scale or B \(t.shape) does not broadcast to X \(x.shape)")
        }
        let normalized = Tensor(shape: x.shape, floats: normalizedBlocks(values, blockSize: elementCount(x.shape[a...]), epsilon: epsilon))
        let scaled = try binary(normalized, scale, "LayerNormalization") { $0 * $1 }
        guard let bias else { return scaled }
        return try binary(scaled, bias, "LayerNormalization") { $0 + $1 }
    }

    /// LRN across channels: x / (bias + alpha / size * sum of squares over the channel window)^beta.
    public static func lrn(_ x: Tensor, size: Int, alpha: Float, beta: Float, bias: Float) throws -> Tensor {
        let values = try x.requireFloats("LRN", "X")
        guard x.rank >= 3, size >= 1 else { throw FerryError("LRN expects X of rank >= 3 and size >= 1, got \(x.shape), size \(size)") }
        let channels = x.shape[1], inner = elementCount(x.shape[2...])
        let before = (size - 1) / 2, after = size - 1 - before
        let out = values.withUnsafeBufferPointer { xp in
            makeFloats(xp.count) { o in
                for n in 0..<x.shape[0] {
                    for c in 0..<channels {
                        let lo = Swift.max(0, c - before), hi = Swift.min(channels - 1, c + after)
                        for i in 0..<inner {
                            var squares: Float = 0
                            for k in lo...hi {
                                let v = xp[(n * channels + k) * inner + i]
                                squares += v * v
                            }
                            let at = (n * channels + c) * inner + i
                            o[at] = xp[at] / Foundation.pow(bias + alpha / Float(size) * squares, beta)
                        }
                    }
                }
            }
        }
        return Tensor(shape: x.shape, floats: out)
    }

    /// LpNormalization: x / ||x||_p along `axis` (p 1 or 2); a slice of zeros stays zero.
    public static func lpNormalization(_ x: Tensor, axis: Int, p: Int) throws -> Tensor {
        let values = try x.requireFloats("LpNormalization", "X")
        guard x.rank > 0, let a = normalizeAxis(axis, rank: x.rank) else {
            throw FerryError("LpNormalization axis \(axis) out of range for shape \(x.shape)")
        }
        guard p == 1 || p == 2 else { throw FerryError("LpNormalization p must be 1 or 2, got \(p)") }
        let outer = elementCount(x.shape[..<a]), n = x.shape[a], inner = elementCount(x.shape[(a + 1)...])
        let out = values.withUnsafeBufferPointer { xp in
            makeFloats(xp.count) { o in
                for q in 0..<outer {
                    for r in 0..<inner {
                        let base = q * n * inner + r
                        var norm: Float = 0
                        for i in 0..<n {
                            let v = xp[base + i * inner]
                            norm += p == 1 ? Swift.abs(v) : v * v
                        }
                        if p == 2 { norm = norm.squareRoot() }
                        for i in 0..<n { o[base + i * inner] = norm == 0 ? 0 : xp[base + i * inner] / norm }
                    }
                }
            }
        }
        return Tensor(shape: x.shape, floats: out)
    }
}
