import FerryIR
import Foundation

/// The inner kernels the plan calls: one function per kind, over raw buffers. The vectorized
/// versions live with the SIMD kernels; these seams are the only place the plan names them, so
/// swapping an implementation is a one-line change here.
enum InnerKernels {
    /// Conv epilogue over `channels` rows of `plane` elements: y = act(y + bias[c] + residual).
    @inline(__always)
    static func epilogue(_ y: UnsafeMutablePointer<Float>, channels: Int, plane: Int, bias: UnsafePointer<Float>?,
                         residual: UnsafePointer<Float>?, activation: FusedActivation?) {
        ScalarKernels.epilogue(y, channels: channels, plane: plane, bias: bias, residual: residual, activation: activation)
    }

    /// y[i] = act(x[i]) for i < count (x and y may be the same buffer).
    @inline(__always)
    static func activation(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, _ activation: FusedActivation) {
        ScalarKernels.activation(x, y, count: count, activation)
    }

    /// Depthwise 2-D convolution (one filter per channel) of `channels` planes, with the epilogue.
    @inline(__always)
    static func depthwiseConv2D(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                channels: Int, geometry g: Conv2DGeometry, bias: UnsafePointer<Float>?,
                                residual: UnsafePointer<Float>?, activation: FusedActivation?) {
        ScalarKernels.depthwiseConv2D(x, w, y, channels: channels, geometry: g, bias: bias, residual: residual,
                                      activation: activation)
    }
}

/// One 2-D convolution's sizes (a 1-D one has height 1).
struct Conv2DGeometry: Sendable, Hashable {
    var inHeight: Int, inWidth: Int
    var outHeight: Int, outWidth: Int
    var kernelHeight: Int, kernelWidth: Int
    var strideY: Int, strideX: Int
    var dilationY: Int, dilationX: Int
    var padTop: Int, padLeft: Int

    var inPlane: Int { inHeight * inWidth }
    var outPlane: Int { outHeight * outWidth }
    var kernelSize: Int { kernelHeight * kernelWidth }
}

/// Plain-loop versions of the inner kernels (the fallback until, and besides, the SIMD ones).
enum ScalarKernels {
    static func epilogue(_ y: UnsafeMutablePointer<Float>, channels: Int, plane: Int, bias: UnsafePointer<Float>?,
                         residual: UnsafePointer<Float>?, activation: FusedActivation?) {
        for c in 0..<channels {
            let row = y + c * plane
            if let bias {
                let b = bias[c]
                if let residual {
                    let r = residual + c * plane
                    for i in 0..<plane { row[i] = row[i] + b + r[i] }
                } else {
                    for i in 0..<plane { row[i] += b }
                }
            } else if let residual {
                let r = residual + c * plane
                for i in 0..<plane { row[i] += r[i] }
            }
            if let activation { self.activation(row, row, count: plane, activation) }
        }
    }

    /// The same functions as the reference activation kernels.
    static func activation(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int, _ a: FusedActivation) {
        switch a {
        case .relu:
            for i in 0..<n { let v = x[i]; y[i] = v > 0 ? v : 0 }
        case .clip(let lo, let hi):
            let lower = lo ?? -Float.infinity, upper = hi ?? Float.infinity
            for i in 0..<n { let v = x[i]; y[i] = v.isNaN ? v : Swift.min(Swift.max(v, lower), upper) }
        case .leakyRelu(let alpha):
            for i in 0..<n { let v = x[i]; y[i] = v >= 0 ? v : alpha * v }
        case .sigmoid:
            for i in 0..<n {
                let v = x[i]
                if v >= 0 { y[i] = 1 / (1 + Foundation.exp(-v)) } else { let e = Foundation.exp(v); y[i] = e / (1 + e) }
            }
        case .tanh:
            for i in 0..<n { y[i] = Foundation.tanh(x[i]) }
        case .hardSigmoid(let alpha, let beta):
            for i in 0..<n { y[i] = Swift.max(0, Swift.min(1, alpha * x[i] + beta)) }
        case .hardSwish:
            for i in 0..<n { let v = x[i]; y[i] = v * Swift.max(0, Swift.min(1, v / 6 + 0.5)) }
        case .elu(let alpha):
            for i in 0..<n { let v = x[i]; y[i] = v >= 0 ? v : alpha * Foundation.expm1(v) }
        case .gelu(let approximate):
            if approximate {
                let c = Float((2 / Double.pi).squareRoot())
                for i in 0..<n { let v = x[i]; y[i] = 0.5 * v * (1 + Foundation.tanh(c * (v + 0.044715 * v * v * v))) }
            } else {
                let invSqrt2 = Float(0.5.squareRoot())
                for i in 0..<n { let v = x[i]; y[i] = 0.5 * v * (1 + Foundation.erf(v * invSqrt2)) }
            }
        }
    }

    static func depthwiseConv2D(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                channels: Int, geometry g: Conv2DGeometry, bias: UnsafePointer<Float>?,
                                residual: UnsafePointer<Float>?, activation: FusedActivation?) {
        for c in 0..<channels {
            let xp = x + c * g.inPlane, wp = w + c * g.kernelSize, yp = y + c * g.outPlane
            let b = bias?[c] ?? 0
            for oy in 0..<g.outHeight {
                for ox in 0..<g.outWidth {
                    var acc: Float = 0
                    for ki in 0..<g.kernelHeight {
                        let iy = oy * g.strideY - g.padTop + ki * g.dilationY
                        guard iy >= 0 && iy < g.inHeight else { continue }
                        for kj in 0..<g.kernelWidth {
                            let ix = ox * g.strideX - g.padLeft + kj * g.dilationX
                            guard ix >= 0 && ix < g.inWidth else { continue }
                            acc += xp[iy * g.inWidth + ix] * wp[ki * g.kernelWidth + kj]
                        }
                    }
                    yp[oy * g.outWidth + ox] = acc + b
                }
            }
            epilogue(yp, channels: 1, plane: g.outPlane, bias: nil, residual: residual.map { $0 + c * g.outPlane },
                     activation: activation)
        }
    }
}
