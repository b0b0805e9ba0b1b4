import FerryIR
import Foundation

/// Elementwise activations and Softmax, float32.
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

    /// Softmax along one axis (ONNX opset 13+): exp(x - max) / sum, per slice along `axis`.
    public static func softmax(_ x: Tensor, axis: Int) throws -> Tensor {
        let values = try x.requireFloats("Softmax", "X")
        guard let a = normalizeAxis(axis, rank: x.rank) else {
            throw FerryError("Softmax axis \(axis) out of range for shape \(x.shape)")
        }
        if x.rank == 0 { return Tensor(shape: [], floats: [1]) }
        let outer = elementCount(x.shape[..<a])
        let n = x.shape[a]
        let inner = elementCount(x.shape[(a + 1)...])
        let out = values.withUnsafeBufferPointer { xp in
            makeFloats(xp.count) { o in
                for p in 0..<outer {
                    for q in 0..<inner {
                        let base = p * n * inner + q
                        var m = -Float.infinity
                        for i in 0..<n { m = max(m, xp[base + i * inner]) }
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
            }
        }
        return Tensor(shape: x.shape, floats: out)
    }
}
