/// The vector type every kernel computes with, and vector versions of exp, tanh, erfc.
///
/// Swift's SIMD types lower to LLVM vectors; with this target compiled for AVX2 + FMA
/// (Package.swift) `addingProduct` becomes one vfmadd on a ymm register. Avoid `pointwiseMin`,
/// `pointwiseMax` and `clamped` here: they stay generic per-lane code; `max`/`min` below use a
/// compare and a blend instead.

/// 8 lanes: one AVX2 register. (Changing the width means changing the three aliases together.)
typealias FloatVector = SIMD8<Float>
/// Integers of the same width, for exponent bit tricks.
typealias IntVector = SIMD8<Int32>
/// Twice as many lanes: stride-2 loads keep its even half.
typealias DoubleWidthVector = SIMD16<Float>
/// Four times as many lanes: a row deinterleaved by 4 (Winograd's padded input).
typealias QuadWidthVector = SIMD32<Float>
let lanes = FloatVector.scalarCount

extension UnsafePointer where Pointee == Float {
    @inline(__always) func vector(at offset: Int = 0) -> FloatVector {
        UnsafeRawPointer(self + offset).loadUnaligned(as: FloatVector.self)
    }
}

extension UnsafeMutablePointer where Pointee == Float {
    @inline(__always) func vector(at offset: Int = 0) -> FloatVector {
        UnsafeRawPointer(self + offset).loadUnaligned(as: FloatVector.self)
    }

    @inline(__always) func store(_ v: FloatVector, at offset: Int = 0) {
        UnsafeMutableRawPointer(self + offset).storeBytes(of: v, as: FloatVector.self)
    }
}

/// Lane-wise max; a NaN in `a` is kept (as the reference's `a > b ? a : b` keeps... `b`; callers
/// that care about NaN say so).
@inline(__always) func vmax(_ a: FloatVector, _ b: FloatVector) -> FloatVector {
    a.replacing(with: b, where: a .< b)
}

@inline(__always) func vmin(_ a: FloatVector, _ b: FloatVector) -> FloatVector {
    a.replacing(with: b, where: a .> b)
}

@inline(__always) func splat(_ x: Float) -> FloatVector { FloatVector(repeating: x) }

@inline(__always) func bits(_ v: FloatVector) -> IntVector { unsafeBitCast(v, to: IntVector.self) }
@inline(__always) func float(bits v: IntVector) -> FloatVector { unsafeBitCast(v, to: FloatVector.self) }

/// e^x, within about 2 ulp over the float range: x = n·ln2 + r with |r| ≤ ln2/2, a degree-6
/// polynomial (Cephes expf coefficients) for e^r, and 2^n built in the exponent bits in two
/// halves so that n up to 128 and down to gradual underflow both work. +inf above 88.7228, 0
/// below -104.
@inline(__always) func vexp(_ x: FloatVector) -> FloatVector {
    let (er, ni) = expParts(vmin(vmax(x, splat(-104)), splat(88.72283)))
    let half = ni &>> 1
    let scale1 = float(bits: (half &+ 127) &<< 23)
    let scale2 = float(bits: (ni &- half &+ 127) &<< 23)
    return (er * scale1 * scale2).replacing(with: .infinity, where: x .> splat(88.72283))
}

/// e^x = e^r · 2^n: e^r (|r| ≤ ln2/2) and the integer n, for x already clamped to where the
/// caller builds 2^n.
@inline(__always) func expParts(_ x: FloatVector) -> (er: FloatVector, n: IntVector) {
    // Round x·log2(e) to the nearest integer with the 1.5·2^23 trick; the low bits of the sum
    // then hold n as an integer too.
    let magic = splat(12_582_912)
    let shifted = magic.addingProduct(x, splat(1.442_695_04))
    let n = shifted - magic
    // r = x - n·ln2, ln2 split in two so that n·ln2_hi is exact.
    var r = x.addingProduct(n, splat(-0.693_359_375))
    r = r.addingProduct(n, splat(2.121_944_4e-4))
    var p = splat(1.398_199_95e-3).addingProduct(splat(1.987_569_15e-4), r)
    p = splat(8.333_451_9e-3).addingProduct(p, r)
    p = splat(4.166_579_59e-2).addingProduct(p, r)
    p = splat(1.666_666_55e-1).addingProduct(p, r)
    p = splat(5.000_000_12e-1).addingProduct(p, r)
    return ((r + 1).addingProduct(p, r * r), bits(shifted) &- bits(magic))
}

/// 1 / (1 + e^-x), the way that never overflows: e^-|x| is at most 1. Built for the epilogues'
/// speed (EfficientNet's Swish runs on every expanded activation): -|x| is one OR of the sign
/// bit, and since e^-|x| ≤ 1 it needs neither `vexp`'s overflow test nor its two-step scale for
/// gradual underflow; -|x| is clamped at -87.34 (e^-87.34 = 2^-126, the smallest normal float),
/// and outputs below that are 0.
@inline(__always) func vsigmoid(_ x: FloatVector) -> FloatVector {
    let (er, n) = expParts(vmax(float(bits: bits(x) | IntVector(repeating: Int32(bitPattern: 0x8000_0000))), splat(-87.336_54)))
    // n is in [-126, 0], so 2^n is one normal float built in the exponent bits.
    let e = er * float(bits: (n &+ 127) &<< 23)
    let positive = 1 / (1 + e)
    return positive.replacing(with: e * positive, where: x .< 0).replacing(with: 0, where: x .< splat(-87.336_54))
}

/// `vsigmoid` on 16 lanes, the same operations in the same order (so the same results lane for
/// lane): the AVX-512 GEMM tile's epilogue runs it on whole 16-lane registers.
@inline(__always) func vsigmoid16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    typealias Lanes = SIMD16<Float>
    let signBit = SIMD16<Int32>(repeating: Int32(bitPattern: 0x8000_0000))
    var y = unsafeBitCast(unsafeBitCast(x, to: SIMD16<Int32>.self) | signBit, to: Lanes.self)
    let lowest = Lanes(repeating: -87.336_54)
    y = y.replacing(with: lowest, where: y .< lowest)
    let magic = Lanes(repeating: 12_582_912)
    let shifted = magic.addingProduct(y, Lanes(repeating: 1.442_695_04))
    let n = shifted - magic
    var r = y.addingProduct(n, Lanes(repeating: -0.693_359_375))
    r = r.addingProduct(n, Lanes(repeating: 2.121_944_4e-4))
    var p = Lanes(repeating: 1.398_199_95e-3).addingProduct(Lanes(repeating: 1.987_569_15e-4), r)
    p = Lanes(repeating: 8.333_451_9e-3).addingProduct(p, r)
    p = Lanes(repeating: 4.166_579_59e-2).addingProduct(p, r)
    p = Lanes(repeating: 1.666_666_55e-1).addingProduct(p, r)
    p = Lanes(repeating: 5.000_000_12e-1).addingProduct(p, r)
    let er = (r + 1).addingProduct(p, r * r)
    let ni = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- unsafeBitCast(magic, to: SIMD16<Int32>.self)
    let e = er * unsafeBitCast((ni &+ 127) &<< 23, to: Lanes.self)
    let positive = 1 / (1 + e)
    return positive.replacing(with: e * positive, where: x .< 0).replacing(with: 0, where: x .< lowest)
}

/// tanh: a polynomial for |x| < 0.625 (Cephes tanhf), 1 - 2 / (e^2|x| + 1) beyond, sign restored.
@inline(__always) func vtanh(_ x: FloatVector) -> FloatVector {
    let negative = x .< 0
    let absX = x.replacing(with: -x, where: negative)
    let z = x * x
    var p = splat(-5.704_988_727_45e-3)
    p = splat(2.063_908_879_54e-2).addingProduct(p, z)
    p = splat(-5.373_971_555_31e-2).addingProduct(p, z)
    p = splat(1.333_144_220_36e-1).addingProduct(p, z)
    p = splat(-3.333_328_194_22e-1).addingProduct(p, z)
    let small = x.addingProduct(p * z, x)
    let e = vexp(vmin(absX * 2, splat(40)))
    var large = 1 - 2 / (e + 1)
    large = large.replacing(with: -large, where: negative)
    return large.replacing(with: small, where: absX .< splat(0.625))
}

/// erfc(x) for x ≥ 0: t·exp(-x² + P(t)) with t = 1 / (1 + x/2) (Numerical Recipes' erfcc,
/// fractional error below 1.2e-7 everywhere, so 1 - erfc keeps erf's small values and erfc keeps
/// its tail).
@inline(__always) func verfcNonNegative(_ x: FloatVector) -> FloatVector {
    let t = 1 / splat(1).addingProduct(x, 0.5)
    var p = splat(0.170_872_77)
    p = splat(-0.822_152_23).addingProduct(p, t)
    p = splat(1.488_515_87).addingProduct(p, t)
    p = splat(-1.135_203_98).addingProduct(p, t)
    p = splat(0.278_868_07).addingProduct(p, t)
    p = splat(-0.186_288_06).addingProduct(p, t)
    p = splat(0.096_784_18).addingProduct(p, t)
    p = splat(0.374_091_96).addingProduct(p, t)
    p = splat(1.000_023_68).addingProduct(p, t)
    p = splat(-1.265_512_23).addingProduct(p, t)
    return t * vexp(p - x * x)
}

/// e^x - 1 for -87 ≤ x ≤ 0 (Elu's negative side), without the cancellation of exp(x) - 1
/// near 0: with e^x = 2^n·e^r, e^x - 1 = 2^n·(e^r - 1) + (2^n - 1) and e^r - 1 = r + r²·P(r).
@inline(__always) func vexpm1NonPositive(_ x: FloatVector) -> FloatVector {
    let clampedX = vmax(x, splat(-87))
    let magic = splat(12_582_912)
    let shifted = magic.addingProduct(clampedX, splat(1.442_695_04))
    let n = shifted - magic
    var r = clampedX.addingProduct(n, splat(-0.693_359_375))
    r = r.addingProduct(n, splat(2.121_944_4e-4))
    var p = splat(1.398_199_95e-3).addingProduct(splat(1.987_569_15e-4), r)
    p = splat(8.333_451_9e-3).addingProduct(p, r)
    p = splat(4.166_579_59e-2).addingProduct(p, r)
    p = splat(1.666_666_55e-1).addingProduct(p, r)
    p = splat(5.000_000_12e-1).addingProduct(p, r)
    let erMinus1 = r.addingProduct(p, r * r)
    let scale = float(bits: ((bits(shifted) &- bits(magic)) &+ 127) &<< 23)
    return (scale - 1).addingProduct(scale, erMinus1)
}

/// The 8x8 transpose of `r` (row i, lane j) -> (row j, lane i): three rounds of splitting each
/// pair of rows into even and odd lanes (each round rotates the 6 bits of the element's
/// (row, lane) index right by one; three rotate row and lane).
@inline(__always)
func transposed(_ r: (FloatVector, FloatVector, FloatVector, FloatVector,
                              FloatVector, FloatVector, FloatVector, FloatVector))
    -> (FloatVector, FloatVector, FloatVector, FloatVector, FloatVector, FloatVector, FloatVector, FloatVector) {
    @inline(__always) func split(_ a: FloatVector, _ b: FloatVector) -> (FloatVector, FloatVector) {
        let joined = DoubleWidthVector(lowHalf: a, highHalf: b)
        return (joined.evenHalf, joined.oddHalf)
    }
    var v = r
    for _ in 0..<3 {
        let (e0, o0) = split(v.0, v.1), (e1, o1) = split(v.2, v.3)
        let (e2, o2) = split(v.4, v.5), (e3, o3) = split(v.6, v.7)
        v = (e0, e1, e2, e3, o0, o1, o2, o3)
    }
    return v
}

/// The first `count` (< lanes) floats at `p` in a vector, the other lanes 0.
@inline(__always) func loadPartial(_ p: UnsafePointer<Float>, _ count: Int) -> FloatVector {
    var v = FloatVector()
    for i in 0..<count { v[i] = p[i] }
    return v
}

@inline(__always) func storePartial(_ v: FloatVector, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    for i in 0..<count { p[i] = v[i] }
}
