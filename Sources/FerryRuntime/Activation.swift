import FerryIR
import Foundation

/// Elementwise activations, Softmax and LogSoftmax, float32.
extension ReferenceKernels {
    public static func relu(_ x: Tensor) throws -> Tensor {
        try unary(x, "Relu") { $0 > 0 ? $0 : 0 }
    }

    /// Logistic sigmoid, evaluated so that exp never overflows.
    public static func sigmoid(_ x: Tensor) throws -> Tensor {
        try unary(x, "Sigmoid") { v in
            if v >= 0 {
                return 1 / (1 + Foundation.exp(-v))
            }
            let e = Foundation.exp(v)
            return e / (1 + e)
        }
    }

    public static func tanh(_ x: Tensor) throws -> Tensor {
        try unary(x, "Tanh") { Foundation.tanh($0) }
    }

    public static func leakyRelu(_ x: Tensor, alpha: Float) throws -> Tensor {
        try unary(x, "LeakyRelu") { $0 >= 0 ? $0 : alpha * $0 }
    }

    /// Softplus log(1 + exp(x)), evaluated so that exp never overflows.
    @inline(__always)
    static func softplusValue(_ v: Float) -> Float {
        v > 0 ? v + Foundation.log1p(Foundation.exp(-v)) : Foundation.log1p(Foundation.exp(v))
    }

    public static func softplus(_ x: Tensor) throws -> Tensor {
        try unary(x, "Softplus") { softplusValue($0) }
    }

    public static func softsign(_ x: Tensor) throws -> Tensor {
        try unary(x, "Softsign") { $0 / (1 + Swift.abs($0)) }
    }

    /// x * HardSigmoid(x) with alpha 1/6, beta 1/2 (ONNX HardSwish).
    public static func hardSwish(_ x: Tensor) throws -> Tensor {
        try unary(x, "HardSwish") { v in v * Swift.max(0, Swift.min(1, v / 6 + 0.5)) }
    }

    public static func mish(_ x: Tensor) throws -> Tensor {
        try unary(x, "Mish") { v in v * Foundation.tanh(softplusValue(v)) }
    }

    /// Gelu: exact (erf) form, or the tanh approximation.
    public static func gelu(_ x: Tensor, approximate: Bool) throws -> Tensor {
        if approximate {
            let c = Float((2 / Double.pi).squareRoot())
            return try unary(x, "Gelu") { v in 0.5 * v * (1 + Foundation.tanh(c * (v + 0.044715 * v * v * v))) }
        }
        let invSqrt2 = Float(0.5.squareRoot())
        return try unary(x, "Gelu") { v in 0.5 * v * (1 + Foundation.erf(v * invSqrt2)) }
    }

    public static func elu(_ x: Tensor, alpha: Float) throws -> Tensor {
        try unary(x, "Elu") { v in v >= 0 ? v : alpha * Foundation.expm1(v) }
    }

    public static func selu(_ x: Tensor, alpha: Float, gamma: Float) throws -> Tensor {
        try unary(x, "Selu") { v in v > 0 ? gamma * v : gamma * alpha * Foundation.expm1(v) }
    }

    public static func hardSigmoid(_ x: Tensor, alpha: Float, beta: Float) throws -> Tensor {
        try unary(x, "HardSigmoid") { v in Swift.max(0, Swift.min(1, alpha * v + beta)) }
    }

    public static func thresholdedRelu(_ x: Tensor, alpha: Float) throws -> Tensor {
        try unary(x, "ThresholdedRelu") { v in v > alpha ? v : 0 }
    }

    /// min(max(x, lo), hi): when lo > hi every element becomes hi (as ONNX says).
    public static func clip(_ x: Tensor, min lo: Float?, max hi: Float?) throws -> Tensor {
        let lower = lo ?? -Float.infinity, upper = hi ?? Float.infinity
        if allInteger([x]), let v = x.int64s {
            // Integer bounds arrive as floats; they hold the type's values exactly.
            let low = lo.map { Int64(exactly: $0.rounded(.up)) ?? Int64.min } ?? Int64.min
            let high = hi.map { Int64(exactly: $0.rounded(.down)) ?? Int64.max } ?? Int64.max
            return try integerTensor(v.map { Swift.min(Swift.max($0, low), high) }, shape: x.shape, dtype: x.dtype)
        }
        return try unary(x, "Clip") { v in
            // NaN passes through unchanged.
            v.isNaN ? v : Swift.min(Swift.max(v, lower), upper)
        }
    }

    /// x < 0 ? slope * x : x, slope broadcast to X.
    public static func prelu(_ x: Tensor, slope: Tensor) throws -> Tensor {
        guard try broadcastSizes(x.shape, slope.shape) == x.shape else {
            throw FerryError("PRelu slope \(slope.shape) does not broadcast to X \(x.shape)")
        }
        return try binary(x, slope, "PRelu") { v, s in v < 0 ? s * v : v }
    }

    @inline(__always)
    static func unary(_ x: Tensor, _ name: String, _ f: (Float) -> Float) throws -> Tensor {
        let values = try x.requireFloats(name, "X")
        let out = values.withUnsafeBufferPointer { xp in
            makeFloats(xp.count) { o in
                for i in 0..<xp.count { o[i] = f(xp[i]) }
            }
        }
        return Tensor(shape: x.shape, floats: out)
    }

    /// LogSoftmax along one axis (ONNX opset 13+): x - max - log(sum(exp(x - max))) per slice.
    public static func logSoftmax(_ x: Tensor, axis: Int) throws -> Tensor {
        try alongAxis(x, axis: axis, name: "LogSoftmax", scalar: 0) { xp, o, base, n, inner in
            var m = -Float.infinity
            for i in 0..<n { m = Swift.max(m, xp[base + i * inner]) }
            var sum: Float = 0
            for i in 0..<n { sum += Foundation.exp(xp[base + i * inner] - m) }
            let shift = m + Foundation.log(sum)
            for i in 0..<n { o[base + i * inner] = xp[base + i * inner] - shift }
        }
    }

    /// Softmax along one axis (ONNX opset 13+): exp(x - max) / sum, per slice along `axis`.
    public static func softmax(_ x: Tensor, axis: Int) throws -> Tensor {
        try alongAxis(x, axis: axis, name: "Softmax", scalar: 1) { xp, o, base, n, inner in
            var m = -Float.infinity
            for i in 0..<n { m = Swift.max(m, xp[base + i * inner]) }
            var sum: Float = 0
            for i in 0..<n {
                let e = Foundation.exp(xp[base + i * inner] - m)
                o[base + i * inner] = e
                sum += e
            }
            let scale = 1 / sum
            for i in 0..<n { o[base + i * inner] *= scale }
        }
    }

    /// Runs `slice` once per 1-D slice along `axis` (its elements at base + i * inner, i < n);
    /// a scalar input gives `scalar`.
    static func alongAxis(_ x: Tensor, axis: Int, name: String, scalar: Float,
                          _ slice: (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>, Int, Int, Int) -> Void) throws -> Tensor {
        let values = try x.requireFloats(name, "X")
        guard let a = normalizeAxis(axis, rank: x.rank) else {
            throw FerryError("\(name) axis \(axis) out of range for shape \(x.shape)")
        }
        if x.rank == 0 { return Tensor(shape: [], floats: [scalar]) }
        let outer = elementCount(x.shape[..<a])
        let n = x.shape[a]
        let inner = elementCount(x.shape[(a + 1)...])
        let out = values.withUnsafeBufferPointer { xp in
            makeFloats(xp.count) { o in
                for p in 0..<outer {
                    for q in 0..<inner { slice(xp, o, p * n * inner + q, n, inner) }
                }
            }
        }
        return Tensor(shape: x.shape, floats: out)
    }
}
