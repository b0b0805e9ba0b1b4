import FerryIR
@testable import FerryRuntime
import Testing

/// Direct 2-D pooling over every window cell. The output size follows the ONNX formula with
/// ceil/floor, dropping a last window that would start in the end padding.
func naivePool2D(_ x: Tensor, _ a: PoolAttributes, average: Bool) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (kh, kw, sh, sw) = (a.kernelShape[0], a.kernelShape[1], a.strides[0], a.strides[1])
    let (pt, pl, pb, pr) = (a.pads[0], a.pads[1], a.pads[2], a.pads[3])
    func outLen(_ size: Int, _ k: Int, _ s: Int, _ p0: Int, _ p1: Int) -> Int {
        let span = Double(size + p0 + p1 - k) / Double(s)
        var o = Int(a.ceilMode ? span.rounded(.up) : span.rounded(.down)) + 1
        if a.ceilMode && (o - 1) * s >= size + p0 { o -= 1 }
        return o
    }
    let oh = outLen(h, kh, sh, pt, pb), ow = outLen(w, kw, sw, pl, pr)
    let xv = x.floats
    var out = [Float](repeating: 0, count: n * c * oh * ow)
    for plane in 0..<(n * c) {
        for oy in 0..<oh {
            for ox in 0..<ow {
                var best = -Float.infinity
                var sum: Double = 0
                var inside = 0, inPadded = 0
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        let iy = oy * sh - pt + ky, ix = ox * sw - pl + kx
                        if iy >= -pt && iy < h + pb && ix >= -pl && ix < w + pr { inPadded += 1 }
                        guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                        let v = xv[(plane * h + iy) * w + ix]
                        inside += 1
                        best = max(best, v)
                        sum += Double(v)
                    }
                }
                let divisor = a.countIncludePad ? inPadded : inside
                out[(plane * oh + oy) * ow + ox] = average ? Float(sum / Double(divisor)) : best
            }
        }
    }
    return Tensor(shape: [n, c, oh, ow], floats: out)
}

struct PoolCase: CustomTestStringConvertible, Sendable {
    var x: [Int]
    var kernel: [Int]
    var strides: [Int]
    var pads: [Int] = [0, 0, 0, 0]
    var ceil = false
    var testDescription: String { "x\(x) k\(kernel) s\(strides) p\(pads)\(ceil ? " ceil" : "")" }
}

@Suite struct PoolingTests {
    static let cases: [PoolCase] = [
        PoolCase(x: [1, 2, 6, 6], kernel: [2, 2], strides: [2, 2]),
        PoolCase(x: [2, 3, 7, 7], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]),
        PoolCase(x: [1, 2, 7, 8], kernel: [3, 3], strides: [2, 2], ceil: true),
        PoolCase(x: [2, 2, 9, 6], kernel: [3, 2], strides: [2, 2], pads: [0, 1, 2, 0], ceil: true), // asymmetric
        PoolCase(x: [1, 3, 5, 8], kernel: [2, 3], strides: [1, 3], pads: [1, 0, 0, 2]),
        PoolCase(x: [1, 1, 6, 6], kernel: [3, 3], strides: [3, 3], pads: [1, 1, 1, 1], ceil: true),
        PoolCase(x: [1, 2, 5, 5], kernel: [2, 2], strides: [2, 2], pads: [0, 0, 1, 1], ceil: true),
    ]

    @Test(arguments: cases)
    func maxPool(_ c: PoolCase) throws {
        let attr = PoolAttributes(kernelShape: c.kernel, strides: c.strides, pads: c.pads, ceilMode: c.ceil)
        let x = randomTensor(c.x, seed: 20)
        expectClose(try ReferenceKernels.maxPool(x, attr), naivePool2D(x, attr, average: false), atol: 0, rtol: 0)
    }

    @Test(arguments: cases, [false, true])
    func averagePool(_ c: PoolCase, _ includePad: Bool) throws {
        let attr = PoolAttributes(kernelShape: c.kernel, strides: c.strides, pads: c.pads, ceilMode: c.ceil,
                                  countIncludePad: includePad)
        let x = randomTensor(c.x, seed: 21)
        expectClose(try ReferenceKernels.averagePool(x, attr), naivePool2D(x, attr, average: true))
    }

    @Test func paddingNeverWinsMax() throws {
        let x = Tensor(shape: [1, 1, 2, 2], floats: [-5, -4, -3, -2])
        let y = try ReferenceKernels.maxPool(x, PoolAttributes(kernelShape: [2, 2], strides: [1, 1], pads: [1, 1, 1, 1]))
        #expect(y.floats == [-5, -4, -4, -3, -2, -2, -3, -2, -2])
    }

    /// ONNX node tests maxpool_2d_ceil / averagepool_2d_ceil, and a hand-worked padded case.
    @Test func onnxNodeCases() throws {
        let x = Tensor(shape: [1, 1, 4, 4], floats: (1...16).map(Float.init))
        let ceil = PoolAttributes(kernelShape: [3, 3], strides: [2, 2], ceilMode: true)
        #expect(try ReferenceKernels.maxPool(x, ceil).floats == [11, 12, 15, 16])
        #expect(try ReferenceKernels.averagePool(x, ceil).floats == [6, 7.5, 12, 13.5])

        let ones = Tensor(shape: [1, 1, 3, 3], floats: Array(repeating: 1, count: 9))
        var attr = PoolAttributes(kernelShape: [2, 2], strides: [2, 2], pads: [0, 0, 1, 1])
        attr.countIncludePad = true
        #expect(try ReferenceKernels.averagePool(ones, attr).floats == [1, 0.5, 0.5, 0.25])
        attr.countIncludePad = false
        #expect(try ReferenceKernels.averagePool(ones, attr).floats == [1, 1, 1, 1])
        // ceil_mode window sticking out past the end padding: only cells inside the padded input count.
        attr = PoolAttributes(kernelShape: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], ceilMode: true, countIncludePad: true)
        #expect(try ReferenceKernels.averagePool(ones, attr).floats == [1, 1, 1, 1])
    }

    @Test func pool1DAnd3D() throws {
        let x1 = randomTensor([2, 3, 9], seed: 22)
        let a1 = PoolAttributes(kernelShape: [3], strides: [2], pads: [1, 2], ceilMode: true, countIncludePad: false)
        let a2 = PoolAttributes(kernelShape: [1, 3], strides: [1, 2], pads: [0, 1, 0, 2], ceilMode: true, countIncludePad: false)
        let e1 = naivePool2D(x1.reshaped([2, 3, 1, 9]), a2, average: true)
        expectClose(try ReferenceKernels.averagePool(x1, a1), e1.reshaped([2, 3, e1.shape[3]]))

        // 3-D pooling with a depth-1 window equals 2-D pooling of each depth slice.
        let x3 = randomTensor([1, 2, 3, 5, 5], seed: 23)
        let a3 = PoolAttributes(kernelShape: [1, 3, 3], strides: [1, 2, 2], pads: [0, 1, 1, 0, 1, 1])
        let y3 = try ReferenceKernels.maxPool(x3, a3)
        #expect(y3.shape == [1, 2, 3, 3, 3])
        let slices = x3.floats
        for c in 0..<2 {
            for d in 0..<3 {
                let start = (c * 3 + d) * 25
                let slice = Tensor(shape: [1, 1, 5, 5], floats: Array(slices[start..<(start + 25)]))
                let e = naivePool2D(slice, PoolAttributes(kernelShape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]), average: false)
                let got = Array(y3.floats[((c * 3 + d) * 9)..<((c * 3 + d) * 9 + 9)])
                #expect(got == e.floats)
            }
        }
    }

    @Test func globalPools() throws {
        let x = randomTensor([2, 3, 4, 5], seed: 24)
        let avg = try ReferenceKernels.globalAveragePool(x)
        let mx = try ReferenceKernels.globalMaxPool(x)
        #expect(avg.shape == [2, 3, 1, 1])
        #expect(mx.shape == [2, 3, 1, 1])
        for p in 0..<6 {
            let plane = x.floats[(p * 20)..<(p * 20 + 20)]
            #expect(abs(avg.floats[p] - plane.reduce(0, +) / 20) < 1e-5)
            #expect(mx.floats[p] == plane.max())
        }
    }
}
