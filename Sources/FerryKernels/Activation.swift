import FerryIR

/// Vectorized activations, and the epilogue every convolution / GEMM kernel ends with.
///
/// Each activation is a small struct applying itself to a vector; `visitActivation` turns the
/// IR's `FusedActivation` into one of them once per call, so the loops are specialized per
/// activation (no switch per element).

protocol VectorActivation {
    func callAsFunction(_ v: FloatVector) -> FloatVector
    /// The activation on 16 lanes (the AVX-512 GEMM tile's vectors): by default each half in
    /// turn; Swish and Sigmoid have their own 16-lane code, one instruction stream for both
    /// halves (written for SIMD16 itself: math generic over the lane count runs lane by lane).
    func wide(_ v: SIMD16<Float>) -> SIMD16<Float>
}

extension VectorActivation {
    @inline(__always) func wide(_ v: SIMD16<Float>) -> SIMD16<Float> {
        SIMD16(lowHalf: self(v.lowHalf), highHalf: self(v.highHalf))
    }
}

/// Receives the specialized activation (generic closures do not exist in Swift; this does).
protocol ActivationVisitor {
    func visit<A: VectorActivation>(_ activation: A)
}

struct IdentityActivation: VectorActivation {
    @inline(__always) func callAsFunction(_ v: FloatVector) -> FloatVector { v }
}

/// x > 0 ? x : 0 (NaN gives 0, as the reference's comparison does).
struct ReluActivation: VectorActivation {
    @inline(__always) func callAsFunction(_ v: FloatVector) -> FloatVector {
        v.replacing(with: 0, where: .!(v .> 0))
    }
}

/// min(max(x, lo), hi); NaN passes through; lo > hi gives hi everywhere (ONNX Clip).
struct ClipActivation: VectorActivation {
    let lower: FloatVector, upper: FloatVector
    init(lower: Float?, upper: Float?) {
        self.lower = splat(lower ?? -.infinity)
        self.upper = splat(upper ?? .infinity)
    }
    @inline(__always) func callAsFunction(_ v: FloatVector) -> FloatVector { vmin(vmax(v, lower), upper) }
}

struct LeakyReluActivation: VectorActivation {
    let alpha: Float
    @inline(__always) func callAsFunction(_ v: FloatVector) -> FloatVector {
        v.replacing(with: v * alpha, where: v .< 0)
    }
}

struct SigmoidActivation: VectorActivation {
    @inline(__always) func callAsFunction(_ v: FloatVector) -> FloatVector { vsigmoid(v) }
    @inline(__always) func wide(_ v: SIMD16<Float>) -> SIMD16<Float> { vsigmoid16(v) }
}

struct TanhActivation: VectorActivation {
    @inline(__always) func callAsFunction(_ v: FloatVector) -> FloatVector { vtanh(v) }
}

/// max(0, min(1, alpha·x + beta)).
struct HardSigmoidActivation: VectorActivation {
    let alpha: Float, beta: Float
    @inline(__always) func callAsFunction(_ v: FloatVector) -> FloatVector {
        vmax(vmin(splat(beta).addingProduct(v, alpha), splat(1)), splat(0))
    }
}

/// x · max(0, min(1, x/6 + 1/2)).
struct HardSwishActivation: VectorActivation {
    @inline(__always) func callAsFunction(_ v: FloatVector) -> FloatVector {
        v * vmax(vmin(v / 6 + 0.5, splat(1)), splat(0))
    }
}

struct EluActivation: VectorActivation {
    let alpha: Float
    @inline(__always) func callAsFunction(_ v: FloatVector) -> FloatVector {
        v.replacing(with: alpha * vexpm1NonPositive(vmin(v, splat(0))), where: v .< 0)
    }
}

/// 0.5·x·(1 + erf(x/√2)); 1 + erf(z) is computed as 2 - erfc(z) or erfc(-z), so the negative
/// side keeps its relative accuracy.
struct GeluErfActivation: VectorActivation {
    @inline(__always) func callAsFunction(_ v: FloatVector) -> FloatVector {
        let z = v * Float(0.5.squareRoot())
        let negative = z .< 0
        let c = verfcNonNegative(z.replacing(with: -z, where: negative))
        let onePlusErf = c.replacing(with: 2 - c, where: .!negative)
        return 0.5 * v * onePlusErf
    }
}

/// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
struct GeluTanhActivation: VectorActivation {
    @inline(__always) func callAsFunction(_ v: FloatVector) -> FloatVector {
        let c = Float((2 / Double.pi).squareRoot())
        let inner = (v * c).addingProduct(v * v * v, 0.044715 * c)
        return 0.5 * v * (1 + vtanh(inner))
    }
}

struct ExpActivation: VectorActivation {
    @inline(__always) func callAsFunction(_ v: FloatVector) -> FloatVector { vexp(v) }
}

/// x · sigmoid(beta·x) (Swish / SiLU with beta 1, what Mul(x, Sigmoid(x)) computes).
struct SwishActivation: VectorActivation {
    let beta: Float
    @inline(__always) func callAsFunction(_ v: FloatVector) -> FloatVector { v * vsigmoid(v * beta) }
    @inline(__always) func wide(_ v: SIMD16<Float>) -> SIMD16<Float> { v * vsigmoid16(v * beta) }
}

@inline(__always)
func visitActivation<V: ActivationVisitor>(_ activation: FusedActivation?, _ visitor: V) {
    switch activation {
    case nil: visitor.visit(IdentityActivation())
    case .relu: visitor.visit(ReluActivation())
    case .sigmoid: visitor.visit(SigmoidActivation())
    case .tanh: visitor.visit(TanhActivation())
    case .leakyRelu(let alpha): visitor.visit(LeakyReluActivation(alpha: alpha))
    case .clip(let lo, let hi): visitor.visit(ClipActivation(lower: lo, upper: hi))
    case .hardSigmoid(let alpha, let beta): visitor.visit(HardSigmoidActivation(alpha: alpha, beta: beta))
    case .hardSwish: visitor.visit(HardSwishActivation())
    case .elu(let alpha): visitor.visit(EluActivation(alpha: alpha))
    case .gelu(let approximate):
        if approximate { visitor.visit(GeluTanhActivation()) } else { visitor.visit(GeluErfActivation()) }
    case .swish(let beta): visitor.visit(SwishActivation(beta: beta))
    }
}

/// y[i] = f(x[i]) for i < count; x and y may be the same buffer.
/// 8 lanes even with AVX-512: the 16-lane Sigmoid (`vsigmoid16`, which pays inside the GEMM
/// tile) ran slower here on this machine's EPYC, which splits 512-bit operations in two
/// (ferry-bench-kernels --min, 3 alternated rounds: act_sigmoid 3.45 -> 3.95 ns per 8 floats,
/// act_swish 4.04 -> 4.36; the depthwise plane kernel's Swish epilogue on 16 lanes,
/// dw3x3_144_56_s1_swish 0.423 -> 0.475 ms, dw3x3_480_14_s1_swish 0.127 -> 0.147).
@inline(__always)
func mapFloats<A: VectorActivation>(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int, _ f: A) {
    var i = 0
    while i + 2 * lanes <= count {
        let a = f(x.vector(at: i)), b = f(x.vector(at: i + lanes))
        y.store(a, at: i)
        y.store(b, at: i + lanes)
        i += 2 * lanes
    }
    while i + lanes <= count {
        y.store(f(x.vector(at: i)), at: i)
        i += lanes
    }
    if i < count { storePartial(f(loadPartial(x + i, count - i)), y + i, count - i) }
}

/// out[i] = act(out[i] + bias (+ residual[i])) over one row of `count` floats.
@inline(__always)
func epilogueRow<A: VectorActivation>(_ out: UnsafeMutablePointer<Float>, _ residual: UnsafePointer<Float>?,
                                      _ count: Int, bias: Float, _ f: A) {
    let b = splat(bias)
    var i = 0
    if let residual {
        while i + lanes <= count {
            out.store(f(out.vector(at: i) + b + residual.vector(at: i)), at: i)
            i += lanes
        }
        if i < count {
            let v = loadPartial(UnsafePointer(out + i), count - i) + b + loadPartial(residual + i, count - i)
            storePartial(f(v), out + i, count - i)
        }
    } else {
        while i + lanes <= count {
            out.store(f(out.vector(at: i) + b), at: i)
            i += lanes
        }
        if i < count { storePartial(f(loadPartial(UnsafePointer(out + i), count - i) + b), out + i, count - i) }
    }
}

/// What a convolution or GEMM does to its raw result before storing it, in the reference's
/// order: add the per-channel bias, add the residual (a fused Add, ConvAttributes input 3), then
/// apply the activation.
public struct Epilogue: @unchecked Sendable {
    /// One value per output channel (indexed by the absolute channel number), or nil.
    public var bias: UnsafePointer<Float>?
    /// Same layout and offsets as the output (NCHW, same image), or nil.
    public var residual: UnsafePointer<Float>?
    public var activation: FusedActivation?

    public init(bias: UnsafePointer<Float>? = nil, residual: UnsafePointer<Float>? = nil,
                activation: FusedActivation? = nil) {
        self.bias = bias
        self.residual = residual
        self.activation = activation
    }

    /// True when applying it changes nothing (no bias, residual or activation).
    public var isIdentity: Bool { bias == nil && residual == nil && activation == nil }
}

struct EpiloguePlanes: ActivationVisitor {
    let output: UnsafeMutablePointer<Float>
    let residual: UnsafePointer<Float>?
    let bias: UnsafePointer<Float>?
    let channels: Range<Int>
    let planeStride: Int
    let offset: Int
    let count: Int

    func visit<A: VectorActivation>(_ f: A) {
        for c in channels {
            let at = c * planeStride + offset
            epilogueRow(output + at, residual.map { $0 + at }, count, bias: bias?[c] ?? 0, f)
        }
    }
}

extension Kernels {
    /// The epilogue over NCHW planes of one image, in place:
    /// `output[c·planeSize + i] = act(output[...] + bias[c] + residual[c·planeSize + i])` for
    /// c in `channels`, i < planeSize. `output` and `epilogue.residual` point at channel 0 of
    /// the image. Run it right after the `cblas_sgemm` of a convolution or Gemm (whose bias
    /// and activation it replaces; give the GEMM beta 0). Split `channels` to use threads.
    public static func applyEpilogue(_ output: UnsafeMutablePointer<Float>, channels: Range<Int>,
                                     planeSize: Int, _ epilogue: Epilogue) {
        guard !epilogue.isIdentity, planeSize > 0 else { return }
        visitActivation(epilogue.activation,
                        EpiloguePlanes(output: output, residual: epilogue.residual, bias: epilogue.bias,
                                       channels: channels, planeStride: planeSize, offset: 0, count: planeSize))
    }

    /// The epilogue over part of each plane: elements [offset, offset + count) of planes
    /// `channels` (plane c starting at c·planeStride). For kernels that finish a band of rows
    /// at a time and want to apply the epilogue while the band is still in cache.
    public static func applyEpilogue(_ output: UnsafeMutablePointer<Float>, channels: Range<Int>,
                                     planeStride: Int, offset: Int, count: Int, _ epilogue: Epilogue) {
        guard !epilogue.isIdentity, count > 0 else { return }
        visitActivation(epilogue.activation,
                        EpiloguePlanes(output: output, residual: epilogue.residual, bias: epilogue.bias,
                                       channels: channels, planeStride: planeStride, offset: offset, count: count))
    }
}

struct MapVisitor: ActivationVisitor {
    let x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int
    func visit<A: VectorActivation>(_ f: A) { mapFloats(x, y, count, f) }
}

extension Kernels {
    /// y[i] = activation(x[i]) for i < count (Relu, Clip/Relu6, LeakyRelu, Sigmoid, Tanh,
    /// HardSigmoid, HardSwish, Elu, Gelu erf and tanh, Swish). x and y may be the same buffer (in place)
    /// or must not overlap. Accuracy: exp, sigmoid, tanh within a few ulp (about 1e-6 relative).
    public static func activate(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
                                _ activation: FusedActivation) {
        visitActivation(activation, MapVisitor(x: x, y: y, count: count))
    }

    /// y[i] = e^x[i] (ONNX Exp); same buffer rules as `activate`.
    public static func exp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        mapFloats(x, y, count, ExpActivation())
    }

    /// y[i] = x[i] · sigmoid(beta · x[i]) (Swish / SiLU, the Mul(x, Sigmoid(x)) pattern).
    public static func swish(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, beta: Float = 1) {
        mapFloats(x, y, count, SwishActivation(beta: beta))
    }
}
