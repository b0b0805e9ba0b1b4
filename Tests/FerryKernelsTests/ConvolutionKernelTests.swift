import FerryIR
@testable import FerryKernels
import FerryRuntime
import Foundation
import Testing

/// A conv case: input [batch, channels, h, w], output channels, attributes.
struct ConvCase: CustomStringConvertible, Sendable {
    var batch = 1, channels: Int, height: Int, width: Int, outChannels: Int
    var attributes: ConvAttributes
    var description: String {
        "N\(batch) C\(channels) \(height)x\(width) M\(outChannels) k\(attributes.kernelShape) s\(attributes.strides) "
            + "d\(attributes.dilations) p\(attributes.pads) g\(attributes.group)"
    }
}

/// The reference runtime's result for Conv with bias, optional residual (input 3) and activation.
func referenceConv(_ c: ConvCase, x: Tensor, w: Tensor, b: Tensor, residual: Tensor?) throws -> Tensor {
    try ReferenceKernels.evaluate(.conv(c.attributes), [x, w, b, residual])[0]
}

struct DepthwiseKernelTests {
    static let cases: [ConvCase] = [
        // 3x3 and 5x5, stride 1 and 2, the padding MobileNet uses and asymmetric (TF 'same').
        ConvCase(channels: 3, height: 7, width: 9, outChannels: 3,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1], group: 3)),
        ConvCase(batch: 2, channels: 17, height: 21, width: 30, outChannels: 17,
                 attributes: ConvAttributes(kernelShape: [3, 3], strides: [2, 2], pads: [0, 0, 1, 1], group: 17)),
        ConvCase(channels: 4, height: 40, width: 37, outChannels: 4,
                 attributes: ConvAttributes(kernelShape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], group: 4)),
        ConvCase(channels: 5, height: 19, width: 26, outChannels: 5,
                 attributes: ConvAttributes(kernelShape: [5, 5], pads: [2, 2, 2, 2], group: 5)),
        ConvCase(channels: 3, height: 23, width: 41, outChannels: 3,
                 attributes: ConvAttributes(kernelShape: [5, 5], strides: [2, 2], pads: [1, 2, 2, 1], group: 3)),
        // Multiplier 2 and 3, no padding.
        ConvCase(channels: 3, height: 12, width: 20, outChannels: 6,
                 attributes: ConvAttributes(kernelShape: [3, 3], group: 3)),
        ConvCase(channels: 2, height: 9, width: 33, outChannels: 6,
                 attributes: ConvAttributes(kernelShape: [3, 3], strides: [1, 2], pads: [1, 0, 1, 2], group: 2)),
        // Dilation, other kernels and strides (generic path), tiny planes, large padding.
        ConvCase(channels: 3, height: 17, width: 29, outChannels: 3,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [2, 2, 2, 2], dilations: [2, 2], group: 3)),
        ConvCase(channels: 2, height: 20, width: 31, outChannels: 2,
                 attributes: ConvAttributes(kernelShape: [3, 3], strides: [2, 2], pads: [2, 3, 2, 3], dilations: [2, 3], group: 2)),
        ConvCase(channels: 3, height: 11, width: 14, outChannels: 3,
                 attributes: ConvAttributes(kernelShape: [2, 4], strides: [3, 3], pads: [1, 0, 0, 2], group: 3)),
        ConvCase(channels: 1, height: 1, width: 1, outChannels: 1,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1], group: 1)),
        ConvCase(channels: 2, height: 3, width: 2, outChannels: 2,
                 attributes: ConvAttributes(kernelShape: [5, 5], pads: [3, 3, 3, 3], group: 2)),
        ConvCase(channels: 3, height: 8, width: 64, outChannels: 3,
                 attributes: ConvAttributes(kernelShape: [7, 7], pads: [3, 3, 3, 3], group: 3)),
        // A 3x3 output plane: narrower than a vector and smaller than one (Caffe mobilenet_block).
        ConvCase(channels: 8, height: 5, width: 5, outChannels: 8,
                 attributes: ConvAttributes(kernelShape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], group: 8)),
        // Planes narrower than a vector, computed 8 channels at a time: channel counts that leave
        // a partial block, 5x5 (EfficientNet's late stages), multiplier 2, dilation, stride 2.
        ConvCase(batch: 2, channels: 13, height: 3, width: 3, outChannels: 13,
                 attributes: ConvAttributes(kernelShape: [5, 5], pads: [2, 2, 2, 2], group: 13)),
        ConvCase(channels: 19, height: 7, width: 7, outChannels: 19,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1], group: 19)),
        ConvCase(channels: 5, height: 6, width: 7, outChannels: 10,
                 attributes: ConvAttributes(kernelShape: [3, 3], strides: [2, 2], pads: [0, 0, 1, 1], group: 5)),
        ConvCase(channels: 9, height: 9, width: 6, outChannels: 9,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [2, 2, 2, 2], dilations: [2, 2], group: 9)),
        // Rows of 32 outputs and more: 3x3 stride 1 two rows at a time (odd and even heights),
        // four groups of 8 at a time for stride 2 and other windows.
        ConvCase(channels: 3, height: 9, width: 45, outChannels: 3,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1], group: 3)),
        ConvCase(channels: 2, height: 10, width: 70, outChannels: 2,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [0, 1, 1, 0], group: 2)),
        ConvCase(channels: 2, height: 11, width: 80, outChannels: 2,
                 attributes: ConvAttributes(kernelShape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], group: 2)),
        // Whole blocks of 8 channels (the transposes), planes of 7x7, 14x13 and 3x3 pixels, as
        // MobileNetV2's and EfficientNet's late stages have them.
        ConvCase(channels: 24, height: 7, width: 7, outChannels: 24,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1], group: 24)),
        ConvCase(channels: 16, height: 14, width: 13, outChannels: 16,
                 attributes: ConvAttributes(kernelShape: [5, 5], strides: [2, 2], pads: [1, 1, 2, 2], group: 16)),
        ConvCase(batch: 2, channels: 40, height: 3, width: 3, outChannels: 40,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1], group: 40)),
    ]

    /// Random input, weights and bias of a case, and its geometry.
    static func operands(_ c: ConvCase) throws -> (x: Tensor, w: Tensor, b: Tensor, geometry: Conv2DGeometry) {
        let kh = c.attributes.kernelShape[0], kw = c.attributes.kernelShape[1]
        let geometry = try #require(Conv2DGeometry(inHeight: c.height, inWidth: c.width, c.attributes))
        return (randomTensor([c.batch, c.channels, c.height, c.width], seed: 1), randomTensor([c.outChannels, 1, kh, kw], seed: 2),
                randomTensor([c.outChannels], seed: 3), geometry)
    }

    /// The reference runtime's output for the case with `activation` fused.
    static func reference(_ c: ConvCase, _ activation: FusedActivation?, _ x: Tensor, _ w: Tensor, _ b: Tensor,
                          residual: Tensor?) throws -> Tensor {
        var withActivation = c
        withActivation.attributes.activation = activation
        return try referenceConv(withActivation, x: x, w: w, b: b, residual: residual)
    }

    @Test(arguments: cases)
    func depthwiseMatchesReference(_ c: ConvCase) throws {
        let (x, w, b, geometry) = try Self.operands(c)
        let outShape = [c.batch, c.outChannels, geometry.outHeight, geometry.outWidth]
        let residual = randomTensor(outShape, seed: 4)
        for (activation, useResidual) in [(nil, false), (FusedActivation.clip(min: 0, max: 6), false), (.relu, true)] {
            let expected = try Self.reference(c, activation, x, w, b, residual: useResidual ? residual : nil)
            #expect(expected.shape == outShape)
            var out = [Float](repeating: .nan, count: outShape.reduce(1, *))
            var scratch = [Float](repeating: .nan, count: Kernels.depthwiseScratchCount(geometry))
            let inImage = c.channels * c.height * c.width, outImage = c.outChannels * geometry.outPlane
            x.floats.withUnsafeBufferPointer { xp in
                w.floats.withUnsafeBufferPointer { wp in
                    b.floats.withUnsafeBufferPointer { bp in
                        residual.floats.withUnsafeBufferPointer { rp in
                            out.withUnsafeMutableBufferPointer { op in
                                for n in 0..<c.batch {
                                    let epilogue = Epilogue(bias: bp.baseAddress!,
                                                            residual: useResidual ? rp.baseAddress! + n * outImage : nil,
                                                            activation: activation)
                                    // Two channel ranges, as two threads would split them; the later
                                    // range first, so a write past a range's own planes shows.
                                    let half = c.outChannels / 2
                                    for range in [half..<c.outChannels, 0..<half] {
                                        Kernels.depthwiseConv2D(input: xp.baseAddress! + n * inImage, weights: wp.baseAddress!,
                                                                output: op.baseAddress! + n * outImage,
                                                                multiplier: c.outChannels / c.channels,
                                                                outputChannels: range, geometry: geometry, epilogue: epilogue,
                                                                scratch: &scratch)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            expectClose(out, expected.floats, atol: 1e-5, rtol: 1e-5, "\(c) \(String(describing: activation))")
        }
    }
}

extension DepthwiseKernelTests {
    /// The 8-channels-at-a-time kernel on every multiplier-1 case: channel counts that leave a
    /// partial block, each window specialization (3x3 and 5x5, stride 1 and 2) and the generic
    /// one (dilation, other sizes and strides), planes narrower than a block of pixels.
    @Test(arguments: cases.filter { $0.outChannels == $0.channels })
    func interleavedMatchesReference(_ c: ConvCase) throws {
        let (x, w, b, geometry) = try Self.operands(c)
        let outShape = [c.batch, c.outChannels, geometry.outHeight, geometry.outWidth]
        let packed = w.floats.withUnsafeBufferPointer {
            Kernels.depthwiseInterleavedWeights($0.baseAddress!, channels: c.channels, taps: geometry.kernelHeight * geometry.kernelWidth)
        }
        let blocks = (c.channels + 7) / 8
        for activation in [nil, FusedActivation.clip(min: 0, max: 6), .swish(beta: 1)] {
            let expected = try Self.reference(c, activation, x, w, b, residual: nil)
            var out = [Float](repeating: .nan, count: outShape.reduce(1, *))
            var scratch = [Float](repeating: .nan, count: Kernels.depthwiseInterleavedScratchCount(geometry))
            let inImage = c.channels * c.height * c.width, outImage = c.outChannels * geometry.outPlane
            x.floats.withUnsafeBufferPointer { xp in
                b.floats.withUnsafeBufferPointer { bp in
                    packed.withUnsafeBufferPointer { pp in
                        out.withUnsafeMutableBufferPointer { op in
                            for n in 0..<c.batch {
                                // Two block ranges, the later first, as two threads would split them.
                                for range in [blocks / 2..<blocks, 0..<blocks / 2] {
                                    Kernels.depthwiseConv2DInterleaved(input: xp.baseAddress! + n * inImage,
                                                                       packedWeights: pp.baseAddress!,
                                                                       output: op.baseAddress! + n * outImage,
                                                                       channels: c.channels, blocks: range, geometry: geometry,
                                                                       bias: bp.baseAddress!, activation: activation,
                                                                       scratch: &scratch)
                                }
                            }
                        }
                    }
                }
            }
            expectClose(out, expected.floats, atol: 1e-5, rtol: 1e-5, "\(c) \(String(describing: activation))")
        }
    }
}

struct WinogradKernelTests {
    static let cases: [ConvCase] = [
        ConvCase(channels: 3, height: 7, width: 9, outChannels: 5,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1])),
        ConvCase(batch: 2, channels: 17, height: 13, width: 11, outChannels: 17,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1])),
        ConvCase(channels: 1, height: 1, width: 1, outChannels: 1,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1])),
        ConvCase(channels: 4, height: 5, width: 5, outChannels: 3,
                 attributes: ConvAttributes(kernelShape: [3, 3])),
        ConvCase(channels: 2, height: 10, width: 23, outChannels: 9,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [0, 2, 1, 0])),
        ConvCase(channels: 8, height: 16, width: 16, outChannels: 16,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [2, 0, 3, 1])),
        // Rows wide enough that the padding deinterleaves whole groups of columns in registers,
        // from 0 to 3 columns of left padding (the head before the first 4-aligned column).
        ConvCase(channels: 9, height: 6, width: 75, outChannels: 8,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1])),
        ConvCase(channels: 8, height: 5, width: 70, outChannels: 9,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [0, 0, 2, 3])),
        ConvCase(channels: 8, height: 5, width: 69, outChannels: 8,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [2, 3, 0, 0])),
        // Enough tiles x channels that the GEMMs go in chunks of output channels.
        ConvCase(channels: 256, height: 14, width: 14, outChannels: 250,
                 attributes: ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1])),
    ]

    @Test(arguments: cases, [nil, 1, 3])
    func winogradMatchesReference(_ c: ConvCase, tilesPerBlock: Int?) throws {
        let x = randomTensor([c.batch, c.channels, c.height, c.width], seed: 11)
        let w = randomTensor([c.outChannels, c.channels, 3, 3], seed: 12)
        let b = randomTensor([c.outChannels], seed: 13)
        let plan = try #require(Winograd3x3(inputChannels: c.channels, outputChannels: c.outChannels,
                                            inHeight: c.height, inWidth: c.width, c.attributes, tilesPerBlock: tilesPerBlock))
        let outShape = [c.batch, c.outChannels, plan.outHeight, plan.outWidth]
        let residual = randomTensor(outShape, seed: 14)
        var u = [Float](repeating: 0, count: plan.transformedWeightCount)
        w.floats.withUnsafeBufferPointer { wp in
            u.withUnsafeMutableBufferPointer {
                Winograd3x3.transformWeights(wp.baseAddress!, into: $0.baseAddress!, inputChannels: c.channels,
                                             outputChannels: c.outChannels)
            }
        }
        for (protocolChoice, (activation, useResidual)) in [(nil, false), (FusedActivation.relu, true), (.sigmoid, false)].enumerated() {
            var withActivation = c
            withActivation.attributes.activation = activation
            let expected = try referenceConv(withActivation, x: x, w: w, b: b, residual: useResidual ? residual : nil)
            #expect(expected.shape == outShape)
            var out = [Float](repeating: .nan, count: outShape.reduce(1, *))
            // One thread: `run` on each image, with the whole of U.
            var scratch = [Float](repeating: .nan, count: plan.scratchCount)
            let inImage = c.channels * c.height * c.width, outImage = c.outChannels * plan.outHeight * plan.outWidth
            x.floats.withUnsafeBufferPointer { xp in
                u.withUnsafeBufferPointer { up in
                    b.floats.withUnsafeBufferPointer { bp in
                        residual.floats.withUnsafeBufferPointer { rp in
                            out.withUnsafeMutableBufferPointer { op in
                                scratch.withUnsafeMutableBufferPointer { sp in
                                    for n in 0..<c.batch {
                                        let epilogue = Epilogue(bias: bp.baseAddress!,
                                                                residual: useResidual ? rp.baseAddress! + n * outImage : nil,
                                                                activation: activation)
                                        plan.run(input: xp.baseAddress! + n * inImage, transformedWeights: up.baseAddress!,
                                                 output: op.baseAddress! + n * outImage, epilogue: epilogue,
                                                 scratch: sp.baseAddress!)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let scale = try referenceConv(c, x: x, w: w, b: b, residual: useResidual ? residual : nil).floats.map(abs).max() ?? 1
            expectClose(out, expected.floats, atol: 2e-5 * scale, rtol: 1e-5, "\(c) \(String(describing: activation)) run")
            var taps = [Float](repeating: .nan, count: w.floats.count)
            let pairs = c.channels * c.outChannels
            w.floats.withUnsafeBufferPointer { wp in
                taps.withUnsafeMutableBufferPointer { tp in
                    // In two parts, as the store makes them.
                    Winograd3x3.tapMajor(wp.baseAddress!, pairs: (pairs / 3)..<pairs, of: pairs, into: tp.baseAddress!)
                    Winograd3x3.tapMajor(wp.baseAddress!, pairs: 0..<(pairs / 3), of: pairs, into: tp.baseAddress!)
                }
            }
            // Two (simulated) threads, the weights transformed on the run: tile blocks, and
            // output chunks of 1, 3 and the default number of channels.
            let (ways, chunkSizes): ([WinogradSchedule.Mode], [Int?]) = protocolChoice == 0 ? ([.tileBlocks], [nil])
                : ([.outputChunks], [1, 3, nil])
            for mode in ways {
                for chunk in chunkSizes {
                    let schedule = try #require(WinogradSchedule(
                        batch: c.batch, inputChannels: c.channels, outputChannels: c.outChannels, inHeight: c.height,
                        inWidth: c.width, c.attributes, threads: 2, mode: mode, tilesPerBlock: tilesPerBlock,
                        chunkFloats: chunk.map { $0 * 36 * c.channels } ?? WinogradSchedule.chunkFloats))
                    if let chunk { #expect(schedule.chunk == min(chunk, (c.outChannels + 1) / 2)) }
                    var scheduled = [Float](repeating: .nan, count: outShape.reduce(1, *))
                    var scheduleScratch = [Float](repeating: .nan, count: schedule.scratchCount)
                    x.floats.withUnsafeBufferPointer { xp in
                        taps.withUnsafeBufferPointer { wp in
                            b.floats.withUnsafeBufferPointer { bp in
                                residual.floats.withUnsafeBufferPointer { rp in
                                    scheduled.withUnsafeMutableBufferPointer { op in
                                        scheduleScratch.withUnsafeMutableBufferPointer { sp in
                                            // The second thread's range first: no step may rely on the order.
                                            schedule.run(input: xp.baseAddress!, taps: wp.baseAddress!, output: op.baseAddress!,
                                                         epilogue: Epilogue(bias: bp.baseAddress!,
                                                                            residual: useResidual ? rp.baseAddress! : nil,
                                                                            activation: activation),
                                                         scratch: sp.baseAddress!) { count, body in
                                                body(1, (count / 2)..<count)
                                                body(0, 0..<(count / 2))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    expectClose(scheduled, expected.floats, atol: 2e-5 * scale, rtol: 1e-5,
                                "\(c) \(String(describing: activation)) \(mode) chunk \(String(describing: chunk))")
                }
            }
        }
    }
    /// Realistic magnitudes (post-ReLU inputs in [0, 4], He-initialized weights, 64 channels):
    /// the error against a double-precision direct convolution stays within 1e-4 of the
    /// output's scale, and within a small factor of the float32 im2col + sgemm reference's own.
    @Test func winogradAccuracyAtRealisticMagnitudes() throws {
        let cin = 64, cout = 32, h = 20, wd = 20
        let attributes = ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1])
        let x = randomTensor([1, cin, h, wd], seed: 21, range: 0...4)
        let limit = Float((6.0 / Double(9 * cin)).squareRoot())
        let w = randomTensor([cout, cin, 3, 3], seed: 22, range: -limit...limit)
        let exact = directConvDouble(x: x.floats, w: w.floats, cin: cin, cout: cout, h: h, w: wd)
        let reference = try ReferenceKernels.conv(x, w, nil, attributes).floats
        let plan = try #require(Winograd3x3(inputChannels: cin, outputChannels: cout, inHeight: h, inWidth: wd, attributes))
        var u = [Float](repeating: 0, count: plan.transformedWeightCount)
        var out = [Float](repeating: 0, count: cout * h * wd)
        var scratch = [Float](repeating: 0, count: plan.scratchCount)
        w.floats.withUnsafeBufferPointer { wp in
            u.withUnsafeMutableBufferPointer { Winograd3x3.transformWeights(wp.baseAddress!, into: $0.baseAddress!, inputChannels: cin, outputChannels: cout) }
        }
        x.floats.withUnsafeBufferPointer { xp in
            u.withUnsafeBufferPointer { up in
                out.withUnsafeMutableBufferPointer { op in
                    scratch.withUnsafeMutableBufferPointer { sp in
                        plan.run(input: xp.baseAddress!, transformedWeights: up.baseAddress!, output: op.baseAddress!,
                                 epilogue: Epilogue(), scratch: sp.baseAddress!)
                    }
                }
            }
        }
        let scale = exact.map(abs).max()!
        let winogradError = zip(out, exact).map { abs(Double($0) - $1) }.max()! / scale
        let referenceError = zip(reference, exact).map { abs(Double($0) - $1) }.max()! / scale
        print("Winograd F(4x4,3x3) max error / max |output|: \(winogradError); im2col+sgemm: \(referenceError)")
        #expect(winogradError < 1e-4)
    }
}

/// Direct 3x3 pad-1 convolution in double precision (the accurate reference).
func directConvDouble(x: [Float], w: [Float], cin: Int, cout: Int, h: Int, w width: Int) -> [Double] {
    var out = [Double](repeating: 0, count: cout * h * width)
    for co in 0..<cout {
        for ci in 0..<cin {
            for ky in 0..<3 {
                for kx in 0..<3 {
                    let weight = Double(w[((co * cin + ci) * 3 + ky) * 3 + kx])
                    for y in 0..<h {
                        let iy = y + ky - 1
                        guard iy >= 0, iy < h else { continue }
                        for xx in 0..<width {
                            let ix = xx + kx - 1
                            guard ix >= 0, ix < width else { continue }
                            out[(co * h + y) * width + xx] += weight * Double(x[(ci * h + iy) * width + ix])
                        }
                    }
                }
            }
        }
    }
    return out
}

struct Im2colKernelTests {
    /// Every row (c, ky, kx) and output position against the definition, on the depthwise
    /// shapes (pads, strides 1-3, dilations, odd and tiny sizes), for a split channel range.
    @Test(arguments: DepthwiseKernelTests.cases)
    func im2colMatchesDefinition(_ c: ConvCase) throws {
        let g = try #require(Conv2DGeometry(inHeight: c.height, inWidth: c.width, c.attributes))
        let x = randomFloats(c.channels * c.height * c.width, seed: 31)
        let rows = c.channels * g.kernelHeight * g.kernelWidth
        var expected = [Float](repeating: 0, count: rows * g.outPlane)
        for ch in 0..<c.channels {
            for ky in 0..<g.kernelHeight {
                for kx in 0..<g.kernelWidth {
                    let row = (ch * g.kernelHeight + ky) * g.kernelWidth + kx
                    for oy in 0..<g.outHeight {
                        for ox in 0..<g.outWidth {
                            let iy = oy * g.strideY - g.padTop + ky * g.dilationY
                            let ix = ox * g.strideX - g.padLeft + kx * g.dilationX
                            guard iy >= 0, iy < c.height, ix >= 0, ix < c.width else { continue }
                            expected[row * g.outPlane + oy * g.outWidth + ox] = x[(ch * c.height + iy) * c.width + ix]
                        }
                    }
                }
            }
        }
        var columns = [Float](repeating: .nan, count: rows * g.outPlane)
        x.withUnsafeBufferPointer { xp in
            columns.withUnsafeMutableBufferPointer { cp in
                let half = c.channels / 2
                Kernels.im2col(xp.baseAddress!, channels: half..<c.channels, geometry: g, into: cp.baseAddress!)
                Kernels.im2col(xp.baseAddress!, channels: 0..<half, geometry: g, into: cp.baseAddress!)
            }
        }
        #expect(columns == expected, "\(c)")
        // Column ranges that start and end inside output rows, as threads unfold their parts.
        let cuts = [0, g.outPlane / 3, Swift.min(g.outPlane, 2 * g.outPlane / 3 + 1), g.outPlane]
        for (first, end) in zip(cuts, cuts.dropFirst()) where first < end {
            var part = [Float](repeating: .nan, count: rows * (end - first))
            x.withUnsafeBufferPointer { xp in
                part.withUnsafeMutableBufferPointer {
                    Kernels.im2col(xp.baseAddress!, channels: 0..<c.channels, geometry: g, columns: first..<end, into: $0.baseAddress!)
                }
            }
            let expectedPart = (0..<rows).flatMap { r in expected[(r * g.outPlane + first)..<(r * g.outPlane + end)] }
            #expect(part == expectedPart, "\(c) columns \(first)..<\(end)")
        }
    }
}
