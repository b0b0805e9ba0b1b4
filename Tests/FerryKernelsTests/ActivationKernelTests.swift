import FerryIR
@testable import FerryKernels
@testable import FerryRuntime
import Foundation
import Testing

/// The vectorized activations and the epilogue against the reference kernels.
struct ActivationKernelTests {
    /// Values over the interesting ranges of every function, an odd count (vector tail), and a
    /// few special values.
    static let inputs: [Float] = randomFloats(1037, seed: 7, range: -12...12)
        + [0, -0.0, 1e-7, -1e-7, 1e-3, -1e-3, 88, -88, 100, -100, .infinity, -.infinity]

    @Test(arguments: allActivations.compactMap { $0 })
    func activationMatchesReference(_ activation: FusedActivation) throws {
        let x = Self.inputs
        let expected = try ReferenceKernels.applying(activation, Tensor(shape: [x.count], floats: x))[0].floats
        var y = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { Kernels.activate(xp.baseAddress!, $0.baseAddress!, count: x.count, activation) }
        }
        expectClose(y, expected, atol: 2e-7, rtol: 2e-6, "\(activation)")
        // In place gives the same.
        var z = x
        z.withUnsafeMutableBufferPointer { Kernels.activate($0.baseAddress!, $0.baseAddress!, count: x.count, activation) }
        #expect(zip(z, y).allSatisfy { $0.bitPattern == $1.bitPattern }, "in place differs")
    }

    /// Every activation's 16-lane form (the AVX-512 GEMM tile's epilogue) gives the 8-lane
    /// form's results bit for bit, NaN included.
    @Test(arguments: allActivations.compactMap { $0 })
    func wideActivationMatchesEightLanes(_ activation: FusedActivation) {
        struct Compare: ActivationVisitor {
            let x: [Float]
            func visit<A: VectorActivation>(_ f: A) {
                for start in stride(from: 0, to: x.count - 15, by: 16) {
                    let v = SIMD16<Float>(x[start..<(start + 16)])
                    let wide = f.wide(v), halves = SIMD16(lowHalf: f(v.lowHalf), highHalf: f(v.highHalf))
                    for i in 0..<16 {
                        #expect(wide[i].bitPattern == halves[i].bitPattern || (wide[i].isNaN && halves[i].isNaN),
                                "\(f) at \(v[i])")
                    }
                }
            }
        }
        visitActivation(activation, Compare(x: Self.inputs + [.nan, -.nan, 87.3, -87.3, -87.4, 87.4]))
    }

    @Test func expIsAccurateOverTheFloatRange() {
        let x = randomFloats(4099, seed: 11, range: -103...88.7) + [0, 1, -1, 88.72, 88.73, -87.4, -103.9, -110, 1e-8]
        var y = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { Kernels.exp(xp.baseAddress!, $0.baseAddress!, count: x.count) } }
        var worst: Double = 0
        for (a, v) in zip(x, y) {
            let exact = Foundation.exp(Double(a))
            if exact < Double(Float.leastNormalMagnitude) {
                #expect(abs(Double(v) - exact) <= Double(Float.leastNormalMagnitude) * 1e-6 + 1e-45 * 4, "exp(\(a)) = \(v)")
                continue
            }
            if exact > Double(Float.greatestFiniteMagnitude) { #expect(v == .infinity); continue }
            worst = max(worst, abs(Double(v) - exact) / exact)
        }
        #expect(worst < 1e-6, "max relative error \(worst)")
    }

    @Test func sigmoidTanhAndSwishAreAccurate() {
        let x = randomFloats(2001, seed: 5, range: -20...20)
        var s = [Float](repeating: 0, count: x.count), t = s, w = s
        x.withUnsafeBufferPointer { xp in
            s.withUnsafeMutableBufferPointer { Kernels.activate(xp.baseAddress!, $0.baseAddress!, count: x.count, .sigmoid) }
            t.withUnsafeMutableBufferPointer { Kernels.activate(xp.baseAddress!, $0.baseAddress!, count: x.count, .tanh) }
            w.withUnsafeMutableBufferPointer { Kernels.swish(xp.baseAddress!, $0.baseAddress!, count: x.count) }
        }
        var worstS = 0.0, worstT = 0.0, worstW = 0.0
        for i in 0..<x.count {
            let v = Double(x[i])
            let sig = 1 / (1 + Foundation.exp(-v)), th = Foundation.tanh(v)
            worstS = max(worstS, abs(Double(s[i]) - sig) / sig)
            worstT = max(worstT, abs(Double(t[i]) - th) / abs(th))
            worstW = max(worstW, abs(Double(w[i]) - v * sig) / abs(v * sig))
        }
        #expect(worstS < 1e-6, "sigmoid \(worstS)")
        #expect(worstT < 1e-6, "tanh \(worstT)")
        #expect(worstW < 1e-6, "swish \(worstW)")
    }

    /// Where sigmoid's e^-|x| leaves the normal floats (|x| near 87.34, 2^-126) and beyond, and
    /// the special values: within 1e-6 relative while the result is normal, 0 or 1 at the ends.
    @Test func sigmoidTails() {
        var x = randomFloats(999, seed: 6, range: -104...104)
        x += [-87.4, -87.336_54, -87.3, 87.4, 0, -0.0, .infinity, -.infinity, .nan, -Float.greatestFiniteMagnitude]
        var s = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { xp in
            s.withUnsafeMutableBufferPointer { Kernels.activate(xp.baseAddress!, $0.baseAddress!, count: x.count, .sigmoid) }
        }
        for (v, got) in zip(x, s) {
            if v.isNaN { #expect(got.isNaN); continue }
            let exact = 1 / (1 + Foundation.exp(-Double(v)))
            if exact < Double(Float.leastNormalMagnitude) {
                #expect(got >= 0 && Double(got) < Double(Float.leastNormalMagnitude), "sigmoid(\(v)) = \(got)")
            } else {
                #expect(abs(Double(got) - exact) / exact < 1e-6, "sigmoid(\(v)) = \(got), exact \(exact)")
            }
        }
    }

    /// bias, then residual, then activation, as the reference runtime does for a fused Conv.
    @Test(arguments: allActivations)
    func epilogueMatchesReferenceOrder(_ activation: FusedActivation?) throws {
        let channels = 5, plane = 19
        let raw = randomFloats(channels * plane, seed: 3, range: -4...4)
        let bias = randomFloats(channels, seed: 4, range: -2...2)
        let residual = randomFloats(channels * plane, seed: 6, range: -3...3)
        for useResidual in [false, true] {
            var expected = Tensor(shape: [channels, plane], floats: raw)
            expected = try ReferenceKernels.add(expected, Tensor(shape: [channels, 1], floats: bias))
            if useResidual { expected = try ReferenceKernels.add(expected, Tensor(shape: [channels, plane], floats: residual)) }
            expected = try ReferenceKernels.applying(activation, expected)[0]
            var out = raw
            bias.withUnsafeBufferPointer { bp in
                residual.withUnsafeBufferPointer { rp in
                    out.withUnsafeMutableBufferPointer { op in
                        let epilogue = Epilogue(bias: bp.baseAddress, residual: useResidual ? rp.baseAddress : nil,
                                                activation: activation)
                        // Two calls over a split channel range cover every channel once.
                        Kernels.applyEpilogue(op.baseAddress!, channels: 0..<2, planeSize: plane, epilogue)
                        Kernels.applyEpilogue(op.baseAddress!, channels: 2..<channels, planeSize: plane, epilogue)
                    }
                }
            }
            expectClose(out, expected.floats, atol: 2e-7, rtol: 2e-6, "\(String(describing: activation)) residual \(useResidual)")
        }
    }

    @Test func binaryAndPerChannelOperations() throws {
        let channels = 3, plane = 23, count = channels * plane
        let a = randomFloats(count, seed: 1), b = randomFloats(count, seed: 2)
        let perChannel = randomFloats(channels, seed: 8), shift = randomFloats(channels, seed: 9)
        var sum = [Float](repeating: 0, count: count), product = sum, channelSum = sum, channelProduct = sum, affine = sum
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                perChannel.withUnsafeBufferPointer { cp in
                    shift.withUnsafeBufferPointer { sp in
                        let (x, y, c) = (ap.baseAddress!, bp.baseAddress!, cp.baseAddress!)
                        sum.withUnsafeMutableBufferPointer { Kernels.add(x, y, $0.baseAddress!, count: count) }
                        product.withUnsafeMutableBufferPointer { Kernels.multiply(x, y, $0.baseAddress!, count: count) }
                        channelSum.withUnsafeMutableBufferPointer {
                            Kernels.addPerChannel(x, c, $0.baseAddress!, channels: 0..<channels, planeSize: plane)
                        }
                        channelProduct.withUnsafeMutableBufferPointer {
                            Kernels.multiplyPerChannel(x, c, $0.baseAddress!, channels: 0..<channels, planeSize: plane)
                        }
                        affine.withUnsafeMutableBufferPointer {
                            Kernels.scaleShiftPerChannel(x, scale: c, shift: sp.baseAddress!, $0.baseAddress!,
                                                         channels: 0..<channels, planeSize: plane)
                        }
                    }
                }
            }
        }
        let ta = Tensor(shape: [channels, plane], floats: a), tb = Tensor(shape: [channels, plane], floats: b)
        let tc = Tensor(shape: [channels, 1], floats: perChannel), ts = Tensor(shape: [channels, 1], floats: shift)
        #expect(sum == (try ReferenceKernels.add(ta, tb)).floats)
        #expect(product == (try ReferenceKernels.mul(ta, tb)).floats)
        #expect(channelSum == (try ReferenceKernels.add(ta, tc)).floats)
        #expect(channelProduct == (try ReferenceKernels.mul(ta, tc)).floats)
        expectClose(affine, try ReferenceKernels.add(try ReferenceKernels.mul(ta, tc), ts).floats, atol: 1e-7, rtol: 1e-6)
    }
}
