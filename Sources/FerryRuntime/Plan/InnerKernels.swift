import CFerryCPU
import FerryIR
import FerryKernels
import Foundation

/// The inner kernels the plan calls, one function per kind, over raw buffers: the SIMD ones of
/// FerryKernels when this CPU runs them (they are built for AVX2 + FMA), else the plain loops
/// below. The plan names inner kernels only here.
enum InnerKernels {
    /// Whether this CPU has the instructions FerryKernels was compiled for.
    static let simd: Bool = ferry_kernels_unsupported_cpu() == nil

    /// Conv/Gemm epilogue over planes `channels` of one image (`y`, `bias` and `residual` point at
    /// channel 0): y = act(y + bias[c] + residual).
    @inline(__always)
    static func epilogue(_ y: UnsafeMutablePointer<Float>, channels: Range<Int>, plane: Int, bias: UnsafePointer<Float>?,
                         residual: UnsafePointer<Float>?, activation: FusedActivation?) {
        if simd {
            Kernels.applyEpilogue(y, channels: channels, planeSize: plane,
                                  Epilogue(bias: bias, residual: residual, activation: activation))
        } else {
            ScalarKernels.epilogue(y, channels: channels, plane: plane, bias: bias, residual: residual, activation: activation)
        }
    }

    /// y[i] = act(x[i]) for i < count (x and y may be the same buffer).
    @inline(__always)
    static func activation(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, _ activation: FusedActivation) {
        if simd { Kernels.activate(x, y, count: count, activation) } else { ScalarKernels.activation(x, y, count: count, activation) }
    }

    /// Floats of scratch one concurrent `depthwiseConv2D` call needs.
    static func depthwiseScratchCount(_ g: Conv2DGeometry) -> Int {
        simd ? Kernels.depthwiseScratchCount(g) : 0
    }

    /// Depthwise 2-D convolution of one image (output channel oc reads input channel
    /// oc / multiplier), output channels `channels`, with the epilogue.
    @inline(__always)
    static func depthwiseConv2D(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                multiplier: Int, channels: Range<Int>, geometry g: Conv2DGeometry, bias: UnsafePointer<Float>?,
                                residual: UnsafePointer<Float>?, activation: FusedActivation?, scratch: UnsafeMutablePointer<Float>) {
        if simd {
            Kernels.depthwiseConv2D(input: x, weights: w, output: y, multiplier: multiplier, outputChannels: channels, geometry: g,
                                    epilogue: Epilogue(bias: bias, residual: residual, activation: activation), scratch: scratch)
        } else {
            ScalarKernels.depthwiseConv2D(x, w, y, multiplier: multiplier, channels: channels, geometry: g, bias: bias,
                                          residual: residual, activation: activation)
        }
    }

    /// y[c, i] = f(x[c, i], perChannel[c]) for planes `channels` of `plane` elements, f add or multiply.
    @inline(__always)
    static func perChannel(_ x: UnsafePointer<Float>, _ perChannel: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                           channels: Range<Int>, plane: Int, multiply: Bool) {
        if simd {
            if multiply {
                Kernels.multiplyPerChannel(x, perChannel, y, channels: channels, planeSize: plane)
            } else {
                Kernels.addPerChannel(x, perChannel, y, channels: channels, planeSize: plane)
            }
            return
        }
        for c in channels {
            let v = perChannel[c], xp = x + c * plane, yp = y + c * plane
            if multiply { for i in 0..<plane { yp[i] = xp[i] * v } } else { for i in 0..<plane { yp[i] = xp[i] + v } }
        }
    }

    /// The sum of x[0..<count] (vector partial sums, or in order without the SIMD kernels).
    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        if simd { return Kernels.sum(x, count: count) }
        var acc: Float = 0
        for i in 0..<count { acc += x[i] }
        return acc
    }

    /// y[i] = f(a[i], b[i]) for i < count, f add or multiply.
    @inline(__always)
    static func sameShape(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
                          multiply: Bool) {
        if simd {
            if multiply { Kernels.multiply(a, b, y, count: count) } else { Kernels.add(a, b, y, count: count) }
            return
        }
        if multiply { for i in 0..<count { y[i] = a[i] * b[i] } } else { for i in 0..<count { y[i] = a[i] + b[i] } }
    }

    /// y[c, i] = x[c, i] · scale[c] + shift[c] for planes `channels`.
    @inline(__always)
    static func scaleShift(_ x: UnsafePointer<Float>, scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
                           _ y: UnsafeMutablePointer<Float>, channels: Range<Int>, plane: Int) {
        if simd {
            Kernels.scaleShiftPerChannel(x, scale: scale, shift: shift, y, channels: channels, planeSize: plane)
            return
        }
        for c in channels {
            let s = scale[c], t = shift[c], xp = x + c * plane, yp = y + c * plane
            for i in 0..<plane { yp[i] = xp[i] * s + t }
        }
    }
}

/// Plain-loop versions of the inner kernels, for CPUs without AVX2 + FMA.
enum ScalarKernels {
    static func epilogue(_ y: UnsafeMutablePointer<Float>, channels: Range<Int>, plane: Int, bias: UnsafePointer<Float>?,
                         residual: UnsafePointer<Float>?, activation: FusedActivation?) {
        for c in channels {
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

    @inline(__always)
    static func sigmoid(_ v: Float) -> Float {
        if v >= 0 { return 1 / (1 + Foundation.exp(-v)) }
        let e = Foundation.exp(v)
        return e / (1 + e)
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
            for i in 0..<n { y[i] = sigmoid(x[i]) }
        case .swish(let beta):
            for i in 0..<n { let v = x[i]; y[i] = v * sigmoid(beta * v) }
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
                                multiplier: Int, channels: Range<Int>, geometry g: Conv2DGeometry, bias: UnsafePointer<Float>?,
                                residual: UnsafePointer<Float>?, activation: FusedActivation?) {
        let taps = g.kernelHeight * g.kernelWidth
        for c in channels {
            let xp = x + (c / multiplier) * g.inPlane, wp = w + c * taps, yp = y + c * g.outPlane
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
                    yp[oy * g.outWidth + ox] = acc
                }
            }
        }
        epilogue(y, channels: channels, plane: g.outPlane, bias: bias, residual: residual, activation: activation)
    }
}
