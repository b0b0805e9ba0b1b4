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
}
