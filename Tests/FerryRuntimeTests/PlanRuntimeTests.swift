import FerryIR
@testable import FerryRuntime
import Testing

/// Runs `graph` in the plan runtime and in the reference runtime on the same inputs and expects
/// the same outputs; also checks the plan's arena (no two live blocks share memory). Returns the plan.
@discardableResult
func expectPlanMatchesReference(_ graph: Graph, _ inputs: [String: Tensor], threads: Int = 2, atol: Float = 1e-4,
                                rtol: Float = 1e-4, sourceLocation: SourceLocation = #_sourceLocation) throws -> ExecutionPlan {
    let expected = try ReferenceRuntime(graph: graph).run(inputs)
    let runtime = try PlanRuntime(graph: graph, threads: threads)
    let got = try runtime.run(inputs)
    #expect(Set(got.keys) == Set(expected.keys), sourceLocation: sourceLocation)
    for (name, t) in expected {
        guard let g = got[name] else { continue }
        if t.dtype == .float32 {
            expectClose(g, t, atol: atol, rtol: rtol, sourceLocation: sourceLocation)
        } else {
            #expect(g == t, "\(name)", sourceLocation: sourceLocation)
        }
    }
    let plan = try runtime.plan(forShapes: inputs.mapValues(\.shape))
    #expect(ArenaPlanner.conflicts(plan.blocks).isEmpty, "live blocks overlap", sourceLocation: sourceLocation)
    return plan
}

/// A graph of one node over inputs "x" (and "y"), weights as initializers.
func singleNodeGraph(_ op: Op, inputs: [(String, [Int])], weights: [(String, Tensor)] = [], extra: [String] = []) throws -> Graph {
    var b = GraphBuilder(name: "single")
    var names: [String] = []
    for (name, shape) in inputs { names.append(b.addInput(name, TensorType(.float32, Shape(shape)))) }
    for (name, t) in weights { names.append(name.isEmpty ? "" : b.addInitializer(name, t)) }
    names += extra
    let out = b.add(op, inputs: names, output: "out", origin: Origin(layer: "layer", type: op.name))
    b.addOutput(out)
    return try b.finish()
}

@Suite struct PlanConvolutionTests {
    struct ConvCase: CustomStringConvertible, Sendable {
        var batch = 1, channels = 3, height = 7, width = 9, outChannels = 4
        var kernel = [3, 3], strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], group = 1
        var bias = true, residual = false
        var activation: FusedActivation? = nil
        var threads = 2
        var description: String {
            "n\(batch) c\(channels) \(height)x\(width) m\(outChannels) k\(kernel) s\(strides) p\(pads) d\(dilations) g\(group)"
                + (residual ? " +res" : "") + (activation.map { " \($0)" } ?? "")
        }
    }

    static let cases: [ConvCase] = [
        ConvCase(),
        ConvCase(kernel: [1, 1], pads: [0, 0, 0, 0]),
        ConvCase(batch: 3, channels: 5, height: 6, width: 5, outChannels: 7, kernel: [1, 1], pads: [0, 0, 0, 0], activation: .relu),
        ConvCase(batch: 2, height: 11, width: 8, kernel: [1, 1], strides: [2, 2], pads: [0, 0, 0, 0], residual: true),
        ConvCase(batch: 2, channels: 4, height: 13, width: 10, outChannels: 6, kernel: [3, 5], strides: [2, 3], pads: [0, 2, 1, 1],
                 dilations: [1, 2], group: 2, activation: .clip(min: 0, max: 6)),
        ConvCase(channels: 6, height: 9, width: 9, outChannels: 9, kernel: [3, 3], strides: [1, 1], pads: [2, 2, 2, 2],
                 dilations: [2, 2], group: 3, bias: false, residual: true, activation: .leakyRelu(alpha: 0.1)),
        ConvCase(batch: 2, channels: 8, height: 10, width: 7, outChannels: 8, kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1],
                 group: 8, activation: .clip(min: 0, max: 6)),
        ConvCase(batch: 3, channels: 5, height: 9, width: 12, outChannels: 5, kernel: [5, 5], strides: [2, 2], pads: [1, 2, 2, 1],
                 group: 5, residual: true, activation: .sigmoid),
        ConvCase(channels: 4, height: 6, width: 6, outChannels: 8, kernel: [3, 3], pads: [0, 0, 0, 0], group: 4, activation: .hardSwish),
        ConvCase(channels: 3, height: 31, width: 29, outChannels: 8, kernel: [7, 7], strides: [2, 2], pads: [3, 3, 3, 3], activation: .relu),
        // Threads unfold and multiply their own column parts (cut inside output rows): stride 2
        // with padding, grouped with dilation and asymmetric pads, one thread.
        ConvCase(channels: 3, height: 40, width: 37, outChannels: 16, kernel: [3, 3], strides: [2, 2], activation: .swish(beta: 1)),
        ConvCase(batch: 2, channels: 6, height: 33, width: 35, outChannels: 10, kernel: [3, 3], strides: [2, 2], pads: [0, 1, 1, 0],
                 dilations: [2, 1], group: 2, residual: true, activation: .relu),
        ConvCase(channels: 3, height: 40, width: 37, outChannels: 7, kernel: [5, 5], strides: [1, 1], pads: [2, 2, 2, 2],
                 activation: .sigmoid, threads: 1),
        // Over the im2col tile budget: several column tiles per image.
        ConvCase(batch: 2, channels: 64, height: 30, width: 31, outChannels: 5, kernel: [3, 3], residual: true, activation: .relu),
        // Winograd F(4x4, 3x3): sizes not multiples of 4, asymmetric pads, batch > 1, epilogues.
        // (Threads split each block's channels; with one thread and 128 channels, whole blocks.)
        ConvCase(batch: 2, channels: 9, height: 18, width: 15, outChannels: 10, kernel: [3, 3], pads: [1, 0, 2, 1], residual: true,
                 activation: .relu),
        ConvCase(channels: 16, height: 21, width: 19, outChannels: 8, kernel: [3, 3], pads: [0, 0, 0, 0], activation: .swish(beta: 1)),
        ConvCase(channels: 128, height: 32, width: 30, outChannels: 128, kernel: [3, 3], residual: true, activation: .relu, threads: 1),
        // Depthwise with a channel multiplier.
        ConvCase(batch: 2, channels: 4, height: 9, width: 8, outChannels: 8, kernel: [3, 3], strides: [2, 2], group: 4,
                 residual: true, activation: .relu),
        // 1-D.
        ConvCase(batch: 2, channels: 3, height: 1, width: 17, outChannels: 4, kernel: [4], strides: [2], pads: [1, 2], dilations: [2],
                 activation: .tanh),
        ConvCase(batch: 1, channels: 4, height: 1, width: 10, outChannels: 4, kernel: [3], strides: [1], pads: [1, 1], dilations: [1],
                 group: 4, residual: true),
    ]

    @Test(arguments: cases)
    func convMatchesReference(_ c: ConvCase) throws {
        let oneD = c.kernel.count == 1
        let xShape = oneD ? [c.batch, c.channels, c.width] : [c.batch, c.channels, c.height, c.width]
        let attributes = ConvAttributes(kernelShape: c.kernel, strides: c.strides, pads: c.pads, dilations: c.dilations,
                                        group: c.group, activation: c.activation)
        // Weights scaled by fan-in as trained networks have them (outputs of order 1), so the
        // tolerance means the same for 27-term and 1152-term sums.
        let fanIn = Float(c.channels / c.group * c.kernel.reduce(1, *))
        let scale = 2 / fanIn.squareRoot()
        let w = randomTensor([c.outChannels, c.channels / c.group] + c.kernel, seed: 1, range: -scale...scale)
        var weights = [("w", w)]
        if c.bias || c.residual { weights.append((c.bias ? "b" : "", randomTensor([c.outChannels], seed: 2))) }
        let outType = try Op.conv(attributes).inferOutputTypes([TensorType(.float32, Shape(xShape)), w.type, nil])[0]
        let outShape = outType.shape.fixedSizes!
        var inputs: [(String, [Int])] = [("x", xShape)]
        if c.residual { inputs.append(("r", outShape)) }
        // Inputs come first in the builder: put the residual last through `extra`.
        var b = GraphBuilder(name: "conv")
        let x = b.addInput("x", TensorType(.float32, Shape(xShape)))
        var names = [x] + weights.map { $0.0.isEmpty ? "" : b.addInitializer($0.0, $0.1) }
        if c.residual { names.append(b.addInput("r", TensorType(.float32, Shape(outShape)))) }
        b.addOutput(b.add(.conv(attributes), inputs: names, output: "y", origin: nil))
        let graph = try b.finish()
        var feeds = ["x": randomTensor(xShape, seed: 3)]
        if c.residual { feeds["r"] = randomTensor(outShape, seed: 4) }
        let plan = try expectPlanMatchesReference(graph, feeds, threads: c.threads)
        #expect(plan.kernels.allSatisfy { $0.kernel.hasPrefix("conv.") }, "\(plan.kernels)")
        if c.channels >= 8 && c.outChannels >= 8 && c.kernel == [3, 3] && c.strides == [1, 1] && c.group == 1 && InnerKernels.simd {
            #expect(plan.kernels[0].kernel.hasPrefix("conv.winograd"))
            // The weights are transformed on each run: the plan keeps nothing but them.
            #expect(plan.pinnedBytes <= weights.reduce(0) { $0 + $1.1.count * 4 })
        }
    }

    /// Winograd's scratch (its transformed input, and per thread a chunk of transformed
    /// weights) must fit what the arena has room for at its step: beside a larger value live at
    /// another step it takes 1 MB chunks; alone, where the arena is just its input and output,
    /// smaller ones within the minimum scratch.
    @Test func winogradScratchFitsTheArena() throws {
        func plan(_ extraChannels: Int) throws -> ExecutionPlan {
            var b = GraphBuilder(name: "winograd")
            let x = b.addInput("x", TensorType(.float32, Shape([1, 256, 28, 28])))
            let w = b.addInitializer("w", randomTensor([256, 256, 3, 3], seed: 5, range: -0.05...0.05))
            var y = b.add(.conv(ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1])), inputs: [x, w], output: "y", origin: nil)
            if extraChannels > 0 {
                // A 1x1 convolution to a large value after the Winograd step.
                let w2 = b.addInitializer("w2", randomTensor([extraChannels, 256, 1, 1], seed: 6, range: -0.05...0.05))
                y = b.add(.conv(ConvAttributes(kernelShape: [1, 1])), inputs: [y, w2], output: "z", origin: nil)
            }
            b.addOutput(y)
            return try expectPlanMatchesReference(try b.finish(), ["x": randomTensor([1, 256, 28, 28], seed: 7)], threads: 2)
        }
        guard InnerKernels.simd else { return }
        let tight = try plan(0)
        #expect(tight.kernels[0].kernel.hasPrefix("conv.winograd"))
        #expect(tight.scratchBlocks[0].bytes <= PlanBuilder.minimumScratch * 4)
        let roomy = try plan(4096)
        #expect(roomy.kernels[0].kernel == "conv.winograd-chunks")
        // Within the room: its scratch and its step's input and output take no more than the
        // largest set of live intermediates (the 1x1 step's).
        let inputAndOutput = 2 * 256 * 28 * 28 * 4
        #expect(roomy.scratchBlocks[0].bytes + inputAndOutput <= roomy.peakLiveBytes)
        #expect(roomy.scratchBlocks[0].bytes > PlanBuilder.minimumScratch * 4)
    }

    @Test func im2colTileShrinksToTheRoom() throws {
        // ResNet50's stem at 96x96: 7x7 stride 2 over 3 channels, 147 x 2304 unfolded (1.35 MB),
        // beside 0.7 MB of input and output: the tile shrinks to the room the budget leaves, in
        // several tiles whose results match the reference.
        var b = GraphBuilder(name: "stem")
        let x = b.addInput("x", TensorType(.float32, Shape([1, 3, 96, 96])))
        let w = b.addInitializer("w", randomTensor([64, 3, 7, 7], seed: 8, range: -0.1...0.1))
        let y = b.add(.conv(ConvAttributes(kernelShape: [7, 7], strides: [2, 2], pads: [3, 3, 3, 3])), inputs: [x, w],
                      output: "y", origin: nil)
        b.addOutput(y)
        let plan = try expectPlanMatchesReference(try b.finish(), ["x": randomTensor([1, 3, 96, 96], seed: 9)], threads: 2)
        guard InnerKernels.simd else { return }
        #expect(plan.kernels[0].kernel == "conv.im2col-packed")
        #expect(plan.scratchBlocks[0].bytes < 147 * 2304 * 4)
    }

    @Test func kernelChoice() throws {
        func kernel(_ c: ConvCase) throws -> String {
            let g = try singleNodeGraph(.conv(ConvAttributes(kernelShape: c.kernel, strides: c.strides, pads: c.pads, group: c.group)),
                                        inputs: [("x", [1, c.channels, c.height, c.width])],
                                        weights: [("w", randomTensor([c.outChannels, c.channels / c.group] + c.kernel, seed: 1))])
            return try PlanRuntime(graph: g).plan(forShapes: ["x": [1, c.channels, c.height, c.width]]).kernels[0].kernel
        }
        // Constant weights go to PackedGemm (packed at compile time): the 16-wide kernel over
        // pixels, or over channels when the plane is small and the product deep (3x3 = 9 pixels of
        // depth 576; 4x5 = 20 of depth 144 stays wide, as the narrow kernel's transposing store
        // would cost more than its padding saves).
        let packed = InnerKernels.simd ? "-packed" : "-sgemm", narrow = InnerKernels.simd ? "-packed-narrow" : "-sgemm"
        #expect(try kernel(ConvCase(kernel: [1, 1], pads: [0, 0, 0, 0])) == "conv.1x1" + packed)
        #expect(try kernel(ConvCase()) == "conv.im2col" + packed)
        #expect(try kernel(ConvCase(channels: 64, height: 5, width: 5, outChannels: 16, strides: [2, 2])) == "conv.im2col" + narrow)
        #expect(try kernel(ConvCase(channels: 16, outChannels: 16, strides: [2, 2])) == "conv.im2col" + packed)
        // Too few tiles for Winograd to pay at batch 1; at batch 8 the products take every
        // image's tiles at once.
        #expect(try kernel(ConvCase(channels: 16, outChannels: 16)) == "conv.im2col" + packed)
        let batched = try singleNodeGraph(.conv(ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1])),
                                          inputs: [("x", [8, 16, 7, 7])], weights: [("w", randomTensor([16, 16, 3, 3], seed: 1))])
        #expect(try PlanRuntime(graph: batched).plan(forShapes: ["x": [8, 16, 7, 7]]).kernels[0].kernel
            == (InnerKernels.simd ? "conv.winograd-chunks" : "conv.im2col-sgemm"))
        #expect(try kernel(ConvCase(channels: 16, height: 17, width: 17, outChannels: 16)) == (InnerKernels.simd ? "conv.winograd-chunks" : "conv.im2col-sgemm"))
        // Depthwise: narrow output planes 8 channels at a time; wide ones, a multiplier above 1
        // or a fused residual, plane by plane.
        let interleaved = InnerKernels.simd ? "conv.depthwise-interleaved" : "conv.depthwise"
        #expect(try kernel(ConvCase(channels: 4, outChannels: 4, group: 4)) == interleaved)
        #expect(try kernel(ConvCase(channels: 4, width: 40, outChannels: 4, group: 4)) == "conv.depthwise")
        #expect(try kernel(ConvCase(channels: 4, width: 80, outChannels: 4, strides: [2, 2], group: 4)) == interleaved)
        #expect(try kernel(ConvCase(channels: 4, width: 160, outChannels: 4, strides: [2, 2], group: 4)) == "conv.depthwise")
        #expect(try kernel(ConvCase(channels: 4, outChannels: 8, group: 4)) == "conv.depthwise")
    }
}
