import FerryIR
@testable import FerryRuntime
import Testing

/// Direct 2-D convolution by nested loops (no im2col, no BLAS).
func naiveConv2D(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ a: ConvAttributes) -> Tensor {
    let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (m, cg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
    let (sh, sw) = (a.strides[0], a.strides[1])
    let (dh, dw) = (a.dilations[0], a.dilations[1])
    let (pt, pl, pb, pr) = (a.pads[0], a.pads[1], a.pads[2], a.pads[3])
    let oh = (h + pt + pb - ((kh - 1) * dh + 1)) / sh + 1
    let ow = (wd + pl + pr - ((kw - 1) * dw + 1)) / sw + 1
    let mg = m / a.group
    let xv = x.floats, wv = w.floats
    var out = [Float](repeating: 0, count: n * m * oh * ow)
    for ni in 0..<n {
        for mi in 0..<m {
            let g = mi / mg
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var acc: Double = Double(b?.floats[mi] ?? 0)
                    for ci in 0..<cg {
                        let channel = g * cg + ci
                        for ky in 0..<kh {
                            for kx in 0..<kw {
                                let iy = oy * sh - pt + ky * dh
                                let ix = ox * sw - pl + kx * dw
                                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                acc += Double(xv[((ni * c + channel) * h + iy) * wd + ix])
                                    * Double(wv[((mi * cg + ci) * kh + ky) * kw + kx])
                            }
                        }
                    }
                    out[((ni * m + mi) * oh + oy) * ow + ox] = Float(acc)
                }
            }
        }
    }
    return Tensor(shape: [n, m, oh, ow], floats: out)
}

/// Direct 3-D convolution (no padding, groups or dilation beyond what the case uses).
func naiveConv3D(_ x: Tensor, _ w: Tensor, _ a: ConvAttributes) -> Tensor {
    let (n, c) = (x.shape[0], x.shape[1])
    let inS = Array(x.shape[2...]), k = Array(w.shape[2...])
    let m = w.shape[0], cg = w.shape[1], mg = m / a.group
    var outS: [Int] = []
    for i in 0..<3 {
        outS.append((inS[i] + a.pads[i] + a.pads[i + 3] - ((k[i] - 1) * a.dilations[i] + 1)) / a.strides[i] + 1)
    }
    let xv = x.floats, wv = w.floats
    var out = [Float](repeating: 0, count: n * m * outS.reduce(1, *))
    for ni in 0..<n { for mi in 0..<m {
        let g = mi / mg
        for od in 0..<outS[0] { for oh in 0..<outS[1] { for ow in 0..<outS[2] {
            var acc: Double = 0
            for ci in 0..<cg { for kd in 0..<k[0] { for kh in 0..<k[1] { for kw in 0..<k[2] {
                let id = od * a.strides[0] - a.pads[0] + kd * a.dilations[0]
                let ih = oh * a.strides[1] - a.pads[1] + kh * a.dilations[1]
                let iw = ow * a.strides[2] - a.pads[2] + kw * a.dilations[2]
                guard id >= 0, id < inS[0], ih >= 0, ih < inS[1], iw >= 0, iw < inS[2] else { continue }
                acc += Double(xv[ravel([ni, g * cg + ci, id, ih, iw], [n, c] + inS)])
                    * Double(wv[ravel([mi, ci, kd, kh, kw], [m, cg] + k)])
            }}}}
            out[ravel([ni, mi, od, oh, ow], [n, m] + outS)] = Float(acc)
        }}}
    }}
    return Tensor(shape: [n, m] + outS, floats: out)
}

struct ConvCase: CustomTestStringConvertible, Sendable {
    var x: [Int]
    var m: Int
    var kernel: [Int]
    var strides: [Int] = [1, 1]
    var pads: [Int] = [0, 0, 0, 0]
    var dilations: [Int] = [1, 1]
    var group = 1
    var bias = true
    var testDescription: String {
        "x\(x) m\(m) k\(kernel) s\(strides) p\(pads) d\(dilations) g\(group)\(bias ? "" : " no bias")"
    }
}

@Suite struct ConvolutionTests {
    static let cases: [ConvCase] = [
        ConvCase(x: [1, 3, 7, 7], m: 4, kernel: [3, 3]),
        ConvCase(x: [2, 3, 9, 8], m: 5, kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]),
        ConvCase(x: [2, 2, 8, 7], m: 3, kernel: [3, 2], strides: [2, 1], pads: [0, 1, 2, 0]),  // asymmetric
        ConvCase(x: [1, 3, 10, 9], m: 2, kernel: [3, 3], pads: [2, 1, 2, 1], dilations: [2, 2]),
        ConvCase(x: [2, 4, 6, 6], m: 6, kernel: [3, 3], pads: [1, 1, 1, 1], group: 2),
        ConvCase(x: [1, 4, 6, 5], m: 4, kernel: [3, 3], strides: [1, 2], pads: [1, 0, 1, 1], group: 4, bias: false), // depthwise
        ConvCase(x: [3, 6, 5, 5], m: 4, kernel: [1, 1], group: 2, bias: false),
        ConvCase(x: [1, 2, 5, 6], m: 3, kernel: [2, 3], strides: [3, 2], pads: [1, 2, 0, 1], dilations: [2, 1], bias: false),
        ConvCase(x: [1, 1, 2, 2], m: 1, kernel: [3, 3], pads: [1, 1, 1, 1]),  // kernel larger than the input
    ]

    @Test(arguments: cases)
    func matchesDirectConvolution(_ c: ConvCase) throws {
        let attr = ConvAttributes(kernelShape: c.kernel, strides: c.strides, pads: c.pads,
                                  dilations: c.dilations, group: c.group)
        let x = randomTensor(c.x, seed: 1)
        let w = randomTensor([c.m, c.x[1] / c.group] + c.kernel, seed: 2)
        let b = c.bias ? randomTensor([c.m], seed: 3) : nil
        let y = try ReferenceKernels.conv(x, w, b, attr)
        expectClose(y, naiveConv2D(x, w, b, attr))
    }

    @Test func conv1DEqualsConv2DWithUnitHeight() throws {
        let x = randomTensor([2, 4, 11], seed: 4)
        let w = randomTensor([6, 2, 3], seed: 5)
        let b = randomTensor([6], seed: 6)
        let y = try ReferenceKernels.conv(x, w, b, ConvAttributes(kernelShape: [3], strides: [2], pads: [2, 1],
                                                                  dilations: [2], group: 2))
        let attr2 = ConvAttributes(kernelShape: [1, 3], strides: [1, 2], pads: [0, 2, 0, 1], dilations: [1, 2], group: 2)
        let expected = naiveConv2D(x.reshaped([2, 4, 1, 11]), w.reshaped([6, 2, 1, 3]), b, attr2)
        expectClose(y, expected.reshaped([2, 6, expected.shape[3]]))
    }

    @Test func conv3D() throws {
        let attr = ConvAttributes(kernelShape: [2, 3, 2], strides: [1, 2, 1], pads: [1, 0, 1, 0, 1, 1],
                                  dilations: [1, 1, 2], group: 2)
        let x = randomTensor([2, 4, 4, 6, 5], seed: 7)
        let w = randomTensor([4, 2, 2, 3, 2], seed: 8)
        expectClose(try ReferenceKernels.conv(x, w, nil, attr), naiveConv3D(x, w, attr))
    }

    @Test func rejectsNonFloat() {
        let x = Tensor(shape: [1, 1, 2, 2], int64s: [1, 2, 3, 4])
        let w = Tensor(shape: [1, 1, 1, 1], floats: [1])
        #expect(throws: FerryError.self) { try ReferenceKernels.conv(x, w, nil, ConvAttributes(kernelShape: [1, 1])) }
    }
}
