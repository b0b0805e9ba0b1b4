import FerryIR
import Foundation

/// Elementwise ops in a plan: activations, Add/Sub/Mul/Div with the broadcasting patterns
/// networks use (same shape, scalar, per channel, per row), inference BatchNormalization as a
/// per-channel multiply-add, and Softmax. Other broadcasts use the reference kernels.
extension PlanBuilder {
    func planActivation(_ node: Node, _ activation: FusedActivation) -> PlannedKernel? {
        let n = count(node.outputs[0]), threads = self.threads
        return PlannedKernel(name: "activation") { b in
            let x = b.pointer(node.inputs[0]), y = b.pointer(node.outputs[0])
            return {
                parallelChunks(n, threads: threads, grain: 1 << 14) { r in
                    InnerKernels.activation(x + r.lowerBound, y + r.lowerBound, count: r.count, activation)
                }
            }
        }
    }

    /// How an operand of a broadcast is read: element (i / inner) % period of the result's
    /// element i. The result itself is (inner 1, period count).
    struct BroadcastPattern: Equatable {
        var inner: Int
        var period: Int
    }

    /// The pattern of an operand whose axes of size > 1 form one run of the result's axes.
    func broadcastPattern(_ operand: [Int], result: [Int]) -> BroadcastPattern? {
        let padded = Array(repeating: 1, count: result.count - operand.count) + operand
        let varying = padded.indices.filter { padded[$0] != 1 }
        guard let first = varying.first, let last = varying.last else { return BroadcastPattern(inner: 1, period: 1) }
        for i in first...last where padded[i] != result[i] { return nil }
        return BroadcastPattern(inner: elementCount(result[(last + 1)...]), period: elementCount(result[first...last]))
    }

    func planBinary(_ node: Node) -> PlannedKernel? {
        let yShape = shape(node.outputs[0]), n = elementCount(yShape)
        // An empty result (a dimension of 0) has patterns of period or block 0 to divide by: the
        // reference kernel does nothing for it instead.
        guard n > 0, let pa = broadcastPattern(shape(node.inputs[0]), result: yShape),
              let pb = broadcastPattern(shape(node.inputs[1]), result: yShape) else { return nil }
        let full = BroadcastPattern(inner: 1, period: n)
        // One full operand, the other broadcast (swapped: the full one is B).
        let swapped: Bool, other: BroadcastPattern
        if pa == full { swapped = false; other = pb } else if pb == full { swapped = true; other = pa } else { return nil }
        let op = node.op, threads = self.threads
        let kind = other == full ? "same-shape" : other.period == 1 ? "scalar" : other.inner == 1 ? "per-row" : "per-channel"
        return PlannedKernel(name: "binary.\(kind)") { b in
            let a = b.pointer(node.inputs[0]), bb = b.pointer(node.inputs[1]), y = b.pointer(node.outputs[0])
            let (fullOperand, broadcast) = swapped ? (bb, a) : (a, bb)
            let multiply = op == .mul
            if op == .add || op == .mul {
                if other == full {
                    return {
                        parallelChunks(n, threads: threads, grain: 1 << 14) { r in
                            InnerKernels.sameShape(fullOperand + r.lowerBound, broadcast + r.lowerBound, y + r.lowerBound,
                                                   count: r.count, multiply: multiply)
                        }
                    }
                }
                if other.inner > 1 && other.period > 1 {
                    let inner = other.inner, period = other.period
                    return {
                        parallelChunks(n / inner, threads: threads, grain: max(1, (1 << 14) / inner)) { blocks in
                            forEachImageSegment(blocks, period: period) { image, channels in
                                let at = image * period * inner
                                InnerKernels.perChannel(fullOperand + at, broadcast, y + at, channels: channels, plane: inner,
                                                        multiply: multiply)
                            }
                        }
                    }
                }
            }
            return {
                switch (op, swapped) {
                case (.add, _): broadcastLoop(fullOperand, broadcast, y, n, other, threads) { $0 + $1 }
                case (.mul, _): broadcastLoop(fullOperand, broadcast, y, n, other, threads) { $0 * $1 }
                case (.sub, false): broadcastLoop(fullOperand, broadcast, y, n, other, threads) { $0 - $1 }
                case (.sub, true): broadcastLoop(fullOperand, broadcast, y, n, other, threads) { $1 - $0 }
                case (.div, false): broadcastLoop(fullOperand, broadcast, y, n, other, threads) { $0 / $1 }
                default: broadcastLoop(fullOperand, broadcast, y, n, other, threads) { $1 / $0 }
                }
            }
        }
    }

    /// Inference BatchNormalization with constant statistics: y = x * s[c] + t[c] per channel.
    func planBatchNormalization(_ node: Node, epsilon: Float) -> PlannedKernel? {
        let xShape = shape(node.inputs[0])
        guard xShape.count >= 2, let scale = constant(node.inputs[1]), let bias = constant(node.inputs[2]),
              let mean = constant(node.inputs[3]), let variance = constant(node.inputs[4]) else { return nil }
        let channels = xShape[1], plane = elementCount(xShape[2...]), batch = xShape[0]
        let sv = scale.floats, bv = bias.floats, mv = mean.floats, vv = variance.floats
        guard [sv, bv, mv, vv].allSatisfy({ $0.count == channels }) else { return nil }
        let factors = (0..<channels).map { sv[$0] / (vv[$0] + epsilon).squareRoot() }
        let shifts = (0..<channels).map { bv[$0] - mv[$0] * factors[$0] }
        let threads = self.threads
        return PlannedKernel(name: "batchnorm.per-channel") { b in
            let x = b.pointer(node.inputs[0]), y = b.pointer(node.outputs[0])
            let scale = b.pin(factors), shift = b.pin(shifts)
            return {
                parallelChunks(batch * channels, threads: threads) { planes in
                    forEachImageSegment(planes, period: channels) { image, cs in
                        let at = image * channels * plane
                        InnerKernels.scaleShift(x + at, scale: scale, shift: shift, y + at, channels: cs, plane: plane)
                    }
                }
            }
        }
    }

    func planSoftmax(_ node: Node, axis: Int) -> PlannedKernel? {
        let xShape = shape(node.inputs[0])
        guard !xShape.isEmpty, let a = normalizeAxis(axis, rank: xShape.count) else { return nil }
        let outer = elementCount(xShape[..<a]), n = xShape[a], inner = elementCount(xShape[(a + 1)...])
        let threads = self.threads
        return PlannedKernel(name: inner == 1 ? "softmax.rows" : "softmax.strided") { b in
            let x = b.pointer(node.inputs[0]), y = b.pointer(node.outputs[0])
            return {
                parallelChunks(outer * inner, threads: threads, grain: max(1, 4096 / max(n, 1))) { slices in
                    for sl in slices {
                        let base = (sl / inner) * n * inner + sl % inner
                        let xs = x + base, ys = y + base
                        var m = -Float.infinity
                        for i in 0..<n { m = Swift.max(m, xs[i * inner]) }
                        var sum: Float = 0
                        for i in 0..<n {
                            let e = Foundation.exp(xs[i * inner] - m)
                            ys[i * inner] = e
                            sum += e
                        }
                        let scale = 1 / sum
                        for i in 0..<n { ys[i * inner] *= scale }
                    }
                }
            }
        }
    }
}

/// y[i] = f(full[i], broadcast[(i / inner) % period]), split over threads by blocks of `inner`.
@inline(__always)
func broadcastLoop(_ full: UnsafePointer<Float>, _ broadcast: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                   _ n: Int, _ pattern: PlanBuilder.BroadcastPattern, _ threads: Int, _ f: (Float, Float) -> Float) {
    let inner = pattern.inner, period = pattern.period
    if period == n && inner == 1 {
        parallelChunks(n, threads: threads, grain: 1 << 14) { r in
            for i in r { y[i] = f(full[i], broadcast[i]) }
        }
    } else if period == 1 {
        let v = broadcast[0]
        parallelChunks(n, threads: threads, grain: 1 << 14) { r in
            for i in r { y[i] = f(full[i], v) }
        }
    } else if inner == 1 {
        // The operand is a row repeated down the result.
        parallelChunks(n / period, threads: threads, grain: max(1, (1 << 14) / period)) { rows in
            for r in rows {
                let base = r * period
                for j in 0..<period { y[base + j] = f(full[base + j], broadcast[j]) }
            }
        }
    } else {
        // One value per block of `inner` elements (per channel).
        parallelChunks(n / inner, threads: threads, grain: max(1, (1 << 14) / inner)) { blocks in
            for q in blocks {
                let v = broadcast[q % period], base = q * inner
                for i in 0..<inner { y[base + i] = f(full[base + i], v) }
            }
        }
    }
}

/// Splits a range of (image, channel) planes, numbered image · period + channel, into runs of
/// channels within one image.
@inline(__always)
func forEachImageSegment(_ planes: Range<Int>, period: Int, _ body: (Int, Range<Int>) -> Void) {
    var q = planes.lowerBound
    while q < planes.upperBound {
        let image = q / period, c = q % period
        let run = Swift.min(period - c, planes.upperBound - q)
        body(image, c..<(c + run))
        q += run
    }
}
