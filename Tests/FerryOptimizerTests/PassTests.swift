import Testing
@testable import FerryIR
@testable import FerryOptimizer
import FerryRuntime

/// Deterministic pseudo-random floats (no global RNG state in tests).
func randomFloats(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var state = seed &* 6364136223846793005 &+ 1442695040888963407
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * scale
    }
}

func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    Tensor(shape: shape, floats: randomFloats(shape.reduce(1, *), seed: seed, scale: scale))
}

/// Runs a pass alone until it settles, then checks the rewritten graph verifies and computes
/// the same outputs as the original on random inputs (batch 2).
@discardableResult
func checkEquivalent(_ graph: Graph, _ passes: [any Pass], expectChanges: Bool = true) throws -> Graph {
    let result = try PassManager(passes: passes, verifyEachPass: true).optimize(graph)
    if expectChanges { #expect(result.reports.reduce(0) { $0 + $1.changes } > 0, "no pass changed anything") }
    try result.graph.verify()
    var feeds: [String: Tensor] = [:]
    for (k, input) in graph.inputs.enumerated() {
        let shape = input.type.shape.dims.map { $0.value ?? 2 }
        feeds[input.name] = randomTensor(shape, seed: UInt64(100 + k))
    }
    let before = try ReferenceRuntime(graph: graph).run(feeds)
    let after = try ReferenceRuntime(graph: result.graph).run(feeds)
    #expect(Set(before.keys) == Set(after.keys))
    for (name, ref) in before {
        let got = after[name]!
        #expect(got.shape == ref.shape, "\(name)")
        let bound = 1e-5 * max(1, ref.floats.map(abs).max() ?? 0)
        let diff = zip(got.floats, ref.floats).map { abs($0 - $1) }.max() ?? 0
        #expect(diff <= bound, "\(name): max diff \(diff)")
    }
    return result.graph
}

let batch = Dim.symbolic("N")
func origin(_ layer: String) -> Origin { Origin(layer: layer, type: "Test") }

@Suite struct PassTests {
    /// NHWC input -> Transpose -> Conv -> (Mul, Add per channel) -> Relu -> Transpose -> Flatten -> Gemm, with an Identity.
    func kerasLikeGraph() -> Graph {
        var b = GraphBuilder(name: "keraslike")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(7), .fixed(6), .fixed(3)])))
        let t = b.add(.transpose(perm: [0, 3, 1, 2]), inputs: [x], output: "to_nchw", origin: origin("conv"))
        let w = b.addInitializer("w", randomTensor([4, 3, 3, 3], seed: 1))
        let bias = b.addInitializer("b", randomTensor([4], seed: 2))
        let c = b.add(.conv(ConvAttributes(kernelShape: [3, 3], pads: [1, 0, 1, 2])), inputs: [t, w, bias], output: "conv", origin: origin("conv"))
        let scale = b.addInitializer("scale", randomTensor([4, 1, 1], seed: 3))
        let m = b.add(.mul, inputs: [scale, c], output: "scaled", origin: origin("bn"))
        let shift = b.addInitializer("shift", randomTensor([1, 4, 1, 1], seed: 4))
        let a = b.add(.add, inputs: [m, shift], output: "shifted", origin: origin("bn"))
        let r = b.add(.relu, inputs: [a], output: "relu", origin: origin("relu"))
        let i = b.add(.identity, inputs: [r], output: "dropout", origin: origin("dropout"))
        let back = b.add(.transpose(perm: [0, 2, 3, 1]), inputs: [i], output: "to_nhwc", origin: origin("flatten"))
        let f = b.add(.flatten(axis: 1), inputs: [back], output: "flat", origin: origin("flatten"))
        let dw = b.addInitializer("dense_w", randomTensor([7 * 6 * 4, 5], seed: 5, scale: 0.1))
        let db = b.addInitializer("dense_b", randomTensor([5], seed: 6))
        let g = b.add(.gemm(GemmAttributes()), inputs: [f, dw, db], output: "logits", origin: origin("dense"))
        b.addOutput(g)
        return try! b.finish()
    }

    @Test func standardPipelineKeepsOutputsAndLeavesOneTranspose() throws {
        let optimized = try checkEquivalent(kerasLikeGraph(), PassManager.standardPasses)
        let ops = optimized.nodes.map(\.op.name)
        #expect(ops == ["Transpose", "Conv", "Gemm"], "\(ops)")
        // The fused Conv names every layer it absorbed.
        let conv = optimized.nodes[1]
        #expect(conv.origins.map(\.layer) == ["conv", "bn", "relu"])
        #expect(conv.op.fusedActivation == .relu)
        // The Dense reads the feature map through its fused Flatten, the Transpose folded into its weights.
        #expect(optimized.nodes[2].op == .gemm(GemmAttributes(flattensA: true)))
        #expect(optimized.nodes[2].origins.map(\.layer) == ["flatten", "dense"])
        // Weights nothing reads are gone.
        #expect(Set(optimized.initializers.keys).count == 4)
    }

    @Test func eliminateIdentityKeepsGraphOutputNames() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(3)])))
        let s = b.add(.sigmoid, inputs: [x], output: "s", origin: nil)
        let out = b.add(.identity, inputs: [s], output: "out", origin: nil)
        b.addOutput(out)
        let g = try checkEquivalent(try b.finish(), [EliminateIdentity()])
        #expect(g.nodes.map(\.op.name) == ["Sigmoid"])
        #expect(g.outputs.map(\.name) == ["out"] && g.nodes[0].outputs == ["out"])
    }

    @Test func identityFromInputToOutputStays() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(3)])))
        b.addOutput(b.add(.identity, inputs: [x], output: "out", origin: nil))
        try checkEquivalent(try b.finish(), [EliminateIdentity()], expectChanges: false)
    }

    @Test func transposesCancelAndCompose() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(2), .fixed(3), .fixed(4)])))
        let t1 = b.add(.transpose(perm: [0, 3, 1, 2]), inputs: [x], output: "t1", origin: nil)
        let t2 = b.add(.transpose(perm: [0, 2, 3, 1]), inputs: [t1], output: "t2", origin: nil)
        let e = b.add(.tanh, inputs: [t2], output: "e", origin: nil)
        let t3 = b.add(.transpose(perm: [0, 2, 1, 3]), inputs: [e], output: "t3", origin: nil)
        let t4 = b.add(.transpose(perm: [3, 0, 2, 1]), inputs: [t3], output: "t4", origin: nil)
        b.addOutput(t4)
        let g = try checkEquivalent(try b.finish(), [CancelTransposes(), EliminateNoOpReshapes(), EliminateDeadNodes()])
        #expect(g.nodes.map(\.op.name) == ["Tanh", "Transpose"])
    }

    @Test func noOpReshapesGo() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(6)])))
        let r = b.add(.reshape(shape: [0, 6]), inputs: [x], output: "r", origin: nil)
        let f = b.add(.flatten(axis: 1), inputs: [r], output: "f", origin: nil)
        b.addOutput(b.add(.tanh, inputs: [f], output: "y", origin: nil))
        let g = try checkEquivalent(try b.finish(), [EliminateNoOpReshapes()])
        #expect(g.nodes.map(\.op.name) == ["Tanh"])
    }

    @Test func constantSubgraphsFold() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(4)])))
        let w = b.addInitializer("w", randomTensor([5, 4], seed: 9))
        let wt = b.add(.transpose(perm: [1, 0]), inputs: [w], output: "wt", origin: nil)
        let two = b.addInitializer("two", Tensor(shape: [1], floats: [2]))
        let w2 = b.add(.mul, inputs: [wt, two], output: "w2", origin: nil)
        b.addOutput(b.add(.matMul, inputs: [x, w2], output: "y", origin: nil))
        let g = try checkEquivalent(try b.finish(), [FoldConstants(), EliminateDeadNodes()])
        #expect(g.nodes.map(\.op.name) == ["MatMul"])
        #expect(g.initializers.count == 1)
    }

    @Test func matMulAddBecomesGemm() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(4)])))
        let w = b.addInitializer("w", randomTensor([4, 3], seed: 10))
        let bias = b.addInitializer("bias", randomTensor([1, 3], seed: 11))
        let m = b.add(.matMul, inputs: [x, w], output: "m", origin: origin("dense"))
        b.addOutput(b.add(.add, inputs: [bias, m], output: "y", origin: origin("dense")))
        let g = try checkEquivalent(try b.finish(), [FuseMatMulAdd()])
        #expect(g.nodes.map(\.op.name) == ["Gemm"])
    }

    @Test func affineFoldsIntoGemmBothLayouts() throws {
        for transB in [false, true] {
            var b = GraphBuilder(name: "g")
            let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(4)])))
            let w = b.addInitializer("w", randomTensor(transB ? [3, 4] : [4, 3], seed: 12))
            let gm = b.add(.gemm(GemmAttributes(transB: transB)), inputs: [x, w], output: "g", origin: nil)
            let d = b.addInitializer("d", randomTensor([3], seed: 13, scale: 2))
            let div = b.add(.div, inputs: [gm, d], output: "div", origin: nil)
            let s = b.addInitializer("s", Tensor(shape: [1], floats: [0.5]))
            b.addOutput(b.add(.sub, inputs: [div, s], output: "y", origin: nil))
            let g = try checkEquivalent(try b.finish(), [FoldAffineIntoConv()])
            #expect(g.nodes.map(\.op.name) == ["Gemm"])
        }
    }

    @Test func affineAfterActivationOrSharedValueDoesNotFold() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(2), .fixed(5), .fixed(5)])))
        let w = b.addInitializer("w", randomTensor([3, 2, 1, 1], seed: 14))
        let c = b.add(.conv(ConvAttributes(kernelShape: [1, 1], activation: .relu)), inputs: [x, w], output: "c", origin: nil)
        let s = b.addInitializer("s", randomTensor([3, 1, 1], seed: 15))
        let m = b.add(.mul, inputs: [c, s], output: "m", origin: nil)
        b.addOutput(m)
        b.addOutput(c)
        try checkEquivalent(try b.finish(), [FoldAffineIntoConv()], expectChanges: false)
    }

    @Test func transposeBeforeFlattenFoldsIntoDenseWeights() throws {
        for transB in [false, true] {
            var b = GraphBuilder(name: "g")
            let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(3), .fixed(4), .fixed(5)])))
            let t = b.add(.transpose(perm: [0, 2, 3, 1]), inputs: [x], output: "t", origin: nil)
            let f = b.add(.flatten(axis: 1), inputs: [t], output: "f", origin: nil)
            let w = b.addInitializer("w", randomTensor(transB ? [2, 60] : [60, 2], seed: 16))
            b.addOutput(b.add(.gemm(GemmAttributes(transB: transB)), inputs: [f, w], output: "y", origin: nil))
            let g = try checkEquivalent(try b.finish(), [FoldTransposeIntoGemm(), EliminateDeadNodes()])
            #expect(g.nodes.map(\.op.name) == ["Flatten", "Gemm"])
        }
    }

    @Test func activationsFuseIntoConvAndGemmAndSplitBackForExport() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(2), .fixed(4), .fixed(4)])))
        let w = b.addInitializer("w", randomTensor([3, 2, 3, 3], seed: 17))
        let c = b.add(.conv(ConvAttributes(kernelShape: [3, 3])), inputs: [x, w], output: "c", origin: origin("conv"))
        let l = b.add(.leakyRelu(alpha: 0.2), inputs: [c], output: "l", origin: origin("act"))
        let f = b.add(.flatten(axis: 1), inputs: [l], output: "f", origin: nil)
        let gw = b.addInitializer("gw", randomTensor([12, 2], seed: 18))
        let gm = b.add(.gemm(GemmAttributes()), inputs: [f, gw], output: "g", origin: nil)
        b.addOutput(b.add(.sigmoid, inputs: [gm], output: "y", origin: nil))
        let g = try checkEquivalent(try b.finish(), [FuseActivation()])
        #expect(g.nodes.map(\.op.name) == ["Conv", "Flatten", "Gemm"])
        let split = g.splittingFusedActivations()
        #expect(split.nodes.map(\.op.name) == ["Conv", "LeakyRelu", "Flatten", "Gemm", "Sigmoid"])
        try split.verify()
        #expect(split.outputs.map(\.name) == ["y"])
    }

    @Test func deadNodesAndWeightsGo() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(3)])))
        let unused = b.addInitializer("unused", randomTensor([3], seed: 19))
        _ = b.add(.add, inputs: [x, unused], output: "dead", origin: nil)
        b.addOutput(b.add(.relu, inputs: [x], output: "y", origin: nil))
        let g = try checkEquivalent(try b.finish(), [EliminateDeadNodes()])
        #expect(g.nodes.count == 1 && g.initializers.isEmpty)
    }
}

@Suite struct FoldAffineEdgeTests {
    @Test func affineAfterAnOpWithoutWeightsIsLeftAlone() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(3)])))
        let s = b.add(.sigmoid, inputs: [x], output: "s", origin: nil)
        let k = b.addInitializer("k", randomTensor([3], seed: 20))
        b.addOutput(b.add(.mul, inputs: [s, k], output: "y", origin: nil))
        try checkEquivalent(try b.finish(), [FoldAffineIntoConv()], expectChanges: false)
    }
}

@Suite struct BatchNormTests {
    func bnInputs(_ b: inout GraphBuilder, channels: Int, seed: UInt64) -> [String] {
        let gamma = b.addInitializer("gamma", randomTensor([channels], seed: seed))
        let beta = b.addInitializer("beta", randomTensor([channels], seed: seed + 1))
        let mean = b.addInitializer("mean", randomTensor([channels], seed: seed + 2))
        let variance = b.addInitializer("var", Tensor(shape: [channels], floats: randomFloats(channels, seed: seed + 3).map { abs($0) + 0.1 }))
        return [gamma, beta, mean, variance]
    }

    @Test func foldsIntoConvWithAndWithoutBias() throws {
        for withBias in [false, true] {
            var b = GraphBuilder(name: "g")
            let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(3), .fixed(6), .fixed(6)])))
            let w = b.addInitializer("w", randomTensor([5, 3, 3, 3], seed: 30))
            var inputs = [x, w]
            if withBias { inputs.append(b.addInitializer("b", randomTensor([5], seed: 31))) }
            let c = b.add(.conv(ConvAttributes(kernelShape: [3, 3], strides: [2, 2])), inputs: inputs, output: "c", origin: origin("conv"))
            let bn = b.add(.batchNormalization(epsilon: 1e-3), inputs: [c] + bnInputs(&b, channels: 5, seed: 32), output: "bn", origin: origin("bn"))
            b.addOutput(b.add(.clip(min: 0, max: 6), inputs: [bn], output: "relu6", origin: origin("relu6")))
            let g = try checkEquivalent(try b.finish(), PassManager.standardPasses)
            #expect(g.nodes.map(\.op.name) == ["Conv"])
            #expect(g.nodes[0].op.fusedActivation == .clip(min: 0, max: 6))
            #expect(g.nodes[0].origins.map(\.layer) == ["conv", "bn", "relu6"])
        }
    }

    /// x -> Conv(w) -> BatchNormalization, and with `shared` a second Conv reading the same w.
    func convBatchNorm(shared: Bool) throws -> Graph {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(3), .fixed(5), .fixed(5)])))
        let w = b.addInitializer("w", randomTensor([4, 3, 3, 3], seed: 50))
        let c = b.add(.conv(ConvAttributes(kernelShape: [3, 3])), inputs: [x, w], output: "c", origin: origin("conv"))
        b.addOutput(b.add(.batchNormalization(epsilon: 1e-3), inputs: [c] + bnInputs(&b, channels: 4, seed: 51), output: "bn", origin: origin("bn")))
        if shared { b.addOutput(b.add(.conv(ConvAttributes(kernelShape: [3, 3])), inputs: [x, w], output: "c2", origin: origin("conv2"))) }
        return try b.finish()
    }

    /// The address of a float32 tensor's elements, to tell whether a pass rewrote them in place.
    func elementAddress(_ t: Tensor?) -> Int? {
        guard case .float32(let values)? = t?.storage else { return nil }
        return values.withUnsafeBufferPointer { Int(bitPattern: $0.baseAddress) }
    }

    @Test func foldScalesAnUnsharedWeightInPlace() throws {
        // A copy would hold the weight twice for a moment (ResNet50's 9.4 MB kernels).
        var graph = try convBatchNorm(shared: false)
        let before = elementAddress(graph.initializers["w"])
        let bn = graph.nodes.firstIndex { $0.op.name == "BatchNormalization" }!
        #expect(try FoldBatchNorm().rewrite(at: bn, in: &graph))
        #expect(graph.nodes.map(\.op.name) == ["Conv"])
        #expect(elementAddress(graph.initializers[graph.nodes[0].inputs[1]]) == before)
        try checkEquivalent(try convBatchNorm(shared: false), [FoldBatchNorm()])
        // Read by another Conv too, the weight is scaled in a copy and the original stays.
        let folded = try checkEquivalent(try convBatchNorm(shared: true), [FoldBatchNorm()])
        #expect(folded.nodes.map(\.op.name) == ["Conv", "Conv"])
        #expect(Set(folded.nodes.map { $0.inputs[1] }).count == 2)
    }

    @Test func foldsIntoGemmAndBecomesMulAddElsewhere() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(4)])))
        let w = b.addInitializer("w", randomTensor([4, 3], seed: 40))
        let gm = b.add(.gemm(GemmAttributes()), inputs: [x, w], output: "g", origin: nil)
        b.addOutput(b.add(.batchNormalization(epsilon: 1e-5), inputs: [gm] + bnInputs(&b, channels: 3, seed: 41), output: "y", origin: nil))
        #expect(try checkEquivalent(try b.finish(), [FoldBatchNorm()]).nodes.map(\.op.name) == ["Gemm"])

        var s = GraphBuilder(name: "standalone")
        let x2 = s.addInput("x", TensorType(.float32, Shape([batch, .fixed(3), .fixed(4), .fixed(2)])))
        s.addOutput(s.add(.batchNormalization(epsilon: 1e-5), inputs: [x2] + bnInputs(&s, channels: 3, seed: 42), output: "y", origin: nil))
        #expect(try checkEquivalent(try s.finish(), [FoldBatchNorm()]).nodes.map(\.op.name) == ["Mul", "Add"])
    }

    @Test func newerActivationsFuseAndSplitBack() throws {
        let activations: [Op] = [.hardSigmoid(alpha: 0.2, beta: 0.5), .hardSwish, .elu(alpha: 0.7), .gelu(approximate: false), .gelu(approximate: true)]
        for act in activations {
            var b = GraphBuilder(name: "g")
            let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(2), .fixed(4), .fixed(4)])))
            let w = b.addInitializer("w", randomTensor([3, 2, 1, 1], seed: 50, scale: 3))
            let c = b.add(.conv(ConvAttributes(kernelShape: [1, 1])), inputs: [x, w], output: "c", origin: nil)
            b.addOutput(b.add(act, inputs: [c], output: "y", origin: nil))
            let g = try checkEquivalent(try b.finish(), [FuseActivation()])
            #expect(g.nodes.count == 1 && g.nodes[0].op.fusedActivation?.op == act)
            #expect(g.splittingFusedActivations().nodes.map(\.op) == [.conv(ConvAttributes(kernelShape: [1, 1])), act])
        }
    }
}

@Suite struct ResidualTests {
    /// ResNet's tail of a block: conv -> BN -> add(shortcut) -> relu, the shortcut computed after the conv.
    @Test func residualAddAndReluFuseIntoTheConv() throws {
        var b = GraphBuilder(name: "block")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(4), .fixed(5), .fixed(5)])))
        let w = b.addInitializer("w", randomTensor([4, 4, 3, 3], seed: 60))
        let c = b.add(.conv(ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1])), inputs: [x, w], output: "c", origin: origin("conv"))
        let k = b.addInitializer("k", randomTensor([4, 1, 1], seed: 61))
        let shortcut = b.add(.mul, inputs: [x, k], output: "shortcut", origin: origin("shortcut"))
        let sum = b.add(.add, inputs: [shortcut, c], output: "sum", origin: origin("add"))
        b.addOutput(b.add(.relu, inputs: [sum], output: "y", origin: origin("relu")))
        let g = try checkEquivalent(try b.finish(), PassManager.standardPasses)
        #expect(g.nodes.map(\.op.name) == ["Mul", "Conv"])
        #expect(g.nodes[1].inputs.count == 4 && g.nodes[1].op.fusedActivation == .relu)
        #expect(g.nodes[1].origins.map(\.layer) == ["conv", "add", "relu"])
        let split = g.splittingFusedActivations()
        try split.verify()
        #expect(split.nodes.map(\.op.name) == ["Mul", "Conv", "Add", "Relu"])
        // Scaling after a residual Conv must not fold (the residual would not be scaled).
        var h = g
        let s = h.addInitializer("s", randomTensor([4, 1, 1], seed: 62))
        h.nodes[1].op = h.nodes[1].op.withoutFusedActivation
        h.nodes.append(Node(name: "scale", op: .mul, inputs: ["y", s], outputs: ["z"]))
        h.outputs = [Value(name: "z", type: h.outputs[0].type)]
        try checkEquivalent(h, [FoldAffineIntoConv()], expectChanges: false)
    }
}

@Suite struct PadTests {
    @Test func zeroSpatialPadFoldsIntoConv() throws {
        var b = GraphBuilder(name: "stem")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(2), .fixed(7), .fixed(6)])))
        let p = b.add(.pad(PadAttributes(pads: [0, 0, 3, 1, 0, 0, 2, 0])), inputs: [x], output: "p", origin: origin("pad"))
        let w = b.addInitializer("w", randomTensor([3, 2, 3, 3], seed: 70))
        b.addOutput(b.add(.conv(ConvAttributes(kernelShape: [3, 3], strides: [2, 2], pads: [1, 0, 0, 1])), inputs: [p, w], output: "y", origin: origin("conv")))
        let g = try checkEquivalent(try b.finish(), [FoldPadIntoConv(), EliminateDeadNodes()])
        #expect(g.nodes.map(\.op.name) == ["Conv"])
        if case .conv(let a) = g.nodes[0].op { #expect(a.pads == [4, 1, 2, 1]) }
    }

    @Test func nonZeroOrChannelPadsStay() throws {
        for pad in [PadAttributes(pads: [0, 0, 1, 1, 0, 0, 1, 1], value: 1), PadAttributes(pads: [0, 1, 0, 0, 0, 0, 0, 0]),
                    PadAttributes(pads: [0, 0, 1, 1, 0, 0, 1, 1], mode: .edge)] {
            var b = GraphBuilder(name: "g")
            let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(2), .fixed(5), .fixed(5)])))
            let p = b.add(.pad(pad), inputs: [x], output: "p", origin: nil)
            let channels = 2 + pad.pads[1] + pad.pads[5]
            let w = b.addInitializer("w", randomTensor([3, channels, 3, 3], seed: 71))
            b.addOutput(b.add(.conv(ConvAttributes(kernelShape: [3, 3])), inputs: [p, w], output: "y", origin: nil))
            try checkEquivalent(try b.finish(), [FoldPadIntoConv()], expectChanges: false)
        }
    }
}
