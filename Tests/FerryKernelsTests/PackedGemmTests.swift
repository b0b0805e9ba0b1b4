import FerryIR
@testable import FerryKernels
import Testing

/// PackedGemm against a plain triple loop in Double: odd sizes (edge panels of rows and
/// columns), depths over one K block, column ranges over one column block, strides wider than
/// the matrices, accumulation, and row panels or columns split as threads would split them.
struct PackedGemmTests {
    struct Case: CustomStringConvertible, Sendable {
        var m: Int, n: Int, k: Int
        var lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil
        var description: String { "M\(m) N\(n) K\(k)" }
    }

    static let cases: [Case] = [
        Case(m: 1, n: 1, k: 1), Case(m: 6, n: 16, k: 8), Case(m: 7, n: 17, k: 3), Case(m: 5, n: 9, k: 300),
        Case(m: 64, n: 49, k: 576), Case(m: 13, n: 400, k: 40, lda: 45, ldb: 410, ldc: 403),
        Case(m: 30, n: 800, k: 513), Case(m: 2, n: 3, k: 0), Case(m: 40, n: 30, k: 5000),
    ]

    static func naive(_ a: [Float], _ b: [Float], _ c: Case, initial: [Float], accumulate: Bool) -> [Float] {
        let lda = c.lda ?? c.k, ldb = c.ldb ?? c.n, ldc = c.ldc ?? c.n
        var out = initial
        for i in 0..<c.m {
            for j in 0..<c.n {
                var s = accumulate ? Double(initial[i * ldc + j]) : 0
                for p in 0..<c.k { s += Double(a[i * lda + p]) * Double(b[p * ldb + j]) }
                out[i * ldc + j] = Float(s)
            }
        }
        return out
    }

    @Test(arguments: cases, [false, true])
    func matchesNaiveProduct(_ c: Case, accumulate: Bool) {
        check(c, accumulate: accumulate, narrow: false)
    }

    @Test(arguments: cases, [false, true])
    func narrowMatchesNaiveProduct(_ c: Case, accumulate: Bool) {
        check(c, accumulate: accumulate, narrow: true)
    }

    /// Bias, residual and activation applied as tiles are stored, against the plain product
    /// followed by the reference epilogue (`Kernels.applyEpilogue` over the rows).
    @Test(arguments: [Case(m: 7, n: 17, k: 3), Case(m: 64, n: 49, k: 576), Case(m: 13, n: 400, k: 300, lda: 301, ldb: 410, ldc: 403),
                      Case(m: 2, n: 3, k: 0)],
          [FusedActivation?.none, .relu, .swish(beta: 1), .clip(min: 0, max: 6)])
    func epilogueMatchesSeparatePass(_ c: Case, activation: FusedActivation?) {
        for narrow in [false, true] {
            for accumulate in [false, true] {
                let ldc = c.ldc ?? c.n
                let bias = randomFloats(c.m, seed: 7), residual = randomFloats(c.m * ldc, seed: 8)
                var expected = product(c, accumulate: accumulate, narrow: narrow, epilogue: nil, bias: bias, residual: residual)
                expected.withUnsafeMutableBufferPointer { e in
                    bias.withUnsafeBufferPointer { bp in
                        residual.withUnsafeBufferPointer { rp in
                            Kernels.applyEpilogue(e.baseAddress!, channels: 0..<c.m, planeStride: ldc, offset: 0, count: c.n,
                                                  Epilogue(bias: bp.baseAddress, residual: rp.baseAddress, activation: activation))
                        }
                    }
                }
                let fused = product(c, accumulate: accumulate, narrow: narrow, epilogue: activation, bias: bias, residual: residual)
                expectClose(fused, expected, atol: 1e-5, rtol: 1e-5, "\(c) narrow \(narrow) accumulate \(accumulate)")
            }
        }
    }

    /// C from `initial` (seed 3) after one product, optionally with the fused epilogue.
    func product(_ c: Case, accumulate: Bool, narrow: Bool, epilogue activation: FusedActivation??, bias: [Float],
                 residual: [Float]) -> [Float] {
        let lda = c.lda ?? c.k, ldb = c.ldb ?? c.n, ldc = c.ldc ?? c.n
        let a = randomFloats(max(c.m * lda, 1), seed: 1), b = randomFloats(max(c.k * ldb, 1), seed: 2)
        var out = randomFloats(c.m * ldc, seed: 3)
        let count = narrow ? PackedGemm.narrowPackedCount(rows: c.m, depth: c.k) : PackedGemm.packedCount(rows: c.m, depth: c.k)
        var packed = [Float](repeating: 0, count: max(count, 1)), scratch = [Float](repeating: 0, count: PackedGemm.scratchCount)
        a.withUnsafeBufferPointer { ap in
            packed.withUnsafeMutableBufferPointer {
                if narrow {
                    PackedGemm.packNarrowA(ap.baseAddress!, rows: c.m, depth: c.k, lda: lda, into: $0.baseAddress!)
                } else {
                    PackedGemm.packA(ap.baseAddress!, rows: c.m, depth: c.k, lda: lda, into: $0.baseAddress!)
                }
            }
        }
        let panels = narrow ? PackedGemm.narrowPanelCount(rows: c.m) : PackedGemm.panelCount(rows: c.m)
        packed.withUnsafeBufferPointer { pp in
            b.withUnsafeBufferPointer { bp in
                out.withUnsafeMutableBufferPointer { op in
                    scratch.withUnsafeMutableBufferPointer { sp in
                        bias.withUnsafeBufferPointer { biasp in
                            residual.withUnsafeBufferPointer { rp in
                                let e = activation.map { Epilogue(bias: biasp.baseAddress, residual: rp.baseAddress, activation: $0) }
                                    ?? Epilogue()
                                if narrow {
                                    PackedGemm.multiplyNarrow(packedA: pp.baseAddress!, rows: c.m, depth: c.k, panels: 0..<panels,
                                                              b: bp.baseAddress!, ldb: ldb, columns: 0..<c.n, c: op.baseAddress!,
                                                              ldc: ldc, accumulate: accumulate, epilogue: e, scratch: sp.baseAddress!)
                                } else {
                                    PackedGemm.multiply(packedA: pp.baseAddress!, rows: c.m, depth: c.k, panels: 0..<panels,
                                                        b: bp.baseAddress!, ldb: ldb, columns: 0..<c.n, c: op.baseAddress!,
                                                        ldc: ldc, accumulate: accumulate, epilogue: e, scratch: sp.baseAddress!)
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    func check(_ c: Case, accumulate: Bool, narrow: Bool) {
        let lda = c.lda ?? c.k, ldb = c.ldb ?? c.n, ldc = c.ldc ?? c.n
        let a = randomFloats(max(c.m * lda, 1), seed: 1), b = randomFloats(max(c.k * ldb, 1), seed: 2)
        let initial = randomFloats(c.m * ldc, seed: 3)
        let expected = Self.naive(a, b, c, initial: initial, accumulate: accumulate)
        let count = narrow ? PackedGemm.narrowPackedCount(rows: c.m, depth: c.k) : PackedGemm.packedCount(rows: c.m, depth: c.k)
        var packed = [Float](repeating: .nan, count: max(count, 1))
        a.withUnsafeBufferPointer { ap in
            packed.withUnsafeMutableBufferPointer {
                if narrow {
                    PackedGemm.packNarrowA(ap.baseAddress!, rows: c.m, depth: c.k, lda: lda, into: $0.baseAddress!)
                } else {
                    PackedGemm.packA(ap.baseAddress!, rows: c.m, depth: c.k, lda: lda, into: $0.baseAddress!)
                }
            }
        }
        var scratch = [Float](repeating: .nan, count: PackedGemm.scratchCount)
        let panels = narrow ? PackedGemm.narrowPanelCount(rows: c.m) : PackedGemm.panelCount(rows: c.m)
        // Whole, then split by row panels, then split by columns (at a point that is not a
        // multiple of the panel width): each must give the same bits.
        var results: [[Float]] = []
        for split in 0..<3 {
            var out = initial
            out.withUnsafeMutableBufferPointer { op in
                packed.withUnsafeBufferPointer { pp in
                    b.withUnsafeBufferPointer { bp in
                        scratch.withUnsafeMutableBufferPointer { sp in
                            func run(_ p: Range<Int>, _ cols: Range<Int>) {
                                if narrow {
                                    PackedGemm.multiplyNarrow(packedA: pp.baseAddress!, rows: c.m, depth: c.k, panels: p,
                                                              b: bp.baseAddress!, ldb: ldb, columns: cols, c: op.baseAddress!,
                                                              ldc: ldc, accumulate: accumulate, scratch: sp.baseAddress!)
                                } else {
                                    PackedGemm.multiply(packedA: pp.baseAddress!, rows: c.m, depth: c.k, panels: p,
                                                        b: bp.baseAddress!, ldb: ldb, columns: cols, c: op.baseAddress!, ldc: ldc,
                                                        accumulate: accumulate, scratch: sp.baseAddress!)
                                }
                            }
                            switch split {
                            case 0: run(0..<panels, 0..<c.n)
                            case 1: run(0..<(panels / 2), 0..<c.n); run((panels / 2)..<panels, 0..<c.n)
                            default: let mid = c.n * 2 / 5; run(0..<panels, 0..<mid); run(0..<panels, mid..<c.n)
                            }
                        }
                    }
                }
            }
            expectClose(out, expected, atol: 1e-4, rtol: 1e-4, "\(c) narrow \(narrow) split \(split)")
            results.append(out)
        }
        #expect(results[0] == results[1] && results[0] == results[2], "\(c): splits changed the bits")
        // Padding between rows of C (ldc > n) is never written.
        if ldc > c.n {
            for i in 0..<c.m { for j in c.n..<ldc { #expect(results[0][i * ldc + j] == initial[i * ldc + j]) } }
        }
    }
}
