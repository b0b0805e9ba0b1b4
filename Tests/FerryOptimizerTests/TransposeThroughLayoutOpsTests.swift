import Testing
@testable import FerryIR
@testable import FerryOptimizer
import FerryRuntime

/// push-transposes through reductions, pooling and a MatMul by a weight; pull-transposes-to-inputs.
@Suite struct TransposeThroughLayoutOpsTests {
    let layoutPasses: [any Pass] = [PushTransposes(), PullTransposesToInputs(), CancelTransposes(), EliminateNoOpReshapes(),
                                    EliminateDeadNodes()]

    func nchwInput(_ b: inout GraphBuilder) -> String {
        b.addInput("x", TensorType(.float32, Shape([batch, .fixed(3), .fixed(4), .fixed(5)])))
    }

    /// NCHW -> NHWC -> reduction over H (with and without keepdims) -> back: the reduction reads
    /// the NCHW value, and a Transpose is left only where the remaining axes need one.
    @Test(arguments: [true, false])
    func transposeMovesThroughAReduction(keepDims: Bool) throws {
        var b = GraphBuilder(name: "g")
        let x = nchwInput(&b)
        let t = b.add(.transpose(perm: [0, 2, 3, 1]), inputs: [x], output: "nhwc", origin: nil)
        let r = b.add(.reduce(.mean, axes: [1], keepDims: keepDims), inputs: [t], output: "r", origin: nil)
        // (N, 1, W, C) back to (N, C, 1, W), or (N, W, C) to (N, C, W).
        let back = b.add(.transpose(perm: keepDims ? [0, 3, 1, 2] : [0, 2, 1]), inputs: [r], output: "back", origin: nil)
        b.addOutput(b.add(.relu, inputs: [back], output: "y", origin: nil))
        let g = try checkEquivalent(try b.finish(), layoutPasses)
        #expect(g.nodes.map(\.op.name) == ["ReduceMean", "Relu"], "\(g.nodes.map(\.op))")
        #expect(g.nodes[0].op == .reduce(.mean, axes: [2], keepDims: keepDims))
    }

    @Test func reductionOverEveryAxisLeavesNoTranspose() throws {
        var b = GraphBuilder(name: "g")
        let t = b.add(.transpose(perm: [0, 2, 3, 1]), inputs: [nchwInput(&b)], output: "nhwc", origin: nil)
        b.addOutput(b.add(.reduce(.max, axes: nil, keepDims: false), inputs: [t], output: "y", origin: nil))
        let g = try checkEquivalent(try b.finish(), layoutPasses)
        #expect(g.nodes.map(\.op.name) == ["ReduceMax"])
    }

    /// A Transpose of the spatial axes only (H <-> W) passes pooling with its window permuted,
    /// and a global pooling drops it.
    @Test func spatialTransposeMovesThroughPooling() throws {
        var b = GraphBuilder(name: "g")
        let t = b.add(.transpose(perm: [0, 1, 3, 2]), inputs: [nchwInput(&b)], output: "hw", origin: nil)
        let pool = PoolAttributes(kernelShape: [3, 2], strides: [2, 1], pads: [1, 0, 0, 1])
        let m = b.add(.averagePool(pool), inputs: [t], output: "m", origin: nil)
        let back = b.add(.transpose(perm: [0, 1, 3, 2]), inputs: [m], output: "back", origin: nil)
        b.addOutput(b.add(.sigmoid, inputs: [back], output: "y", origin: nil))
        let t2 = b.add(.transpose(perm: [0, 1, 3, 2]), inputs: ["x"], output: "hw2", origin: nil)
        b.addOutput(b.add(.globalMaxPool, inputs: [t2], output: "g", origin: nil))
        let g = try checkEquivalent(try b.finish(), layoutPasses)
        #expect(g.nodes.map(\.op.name) == ["AveragePool", "Sigmoid", "GlobalMaxPool"], "\(g.nodes.map(\.op))")
        #expect(g.nodes[0].op == .averagePool(PoolAttributes(kernelShape: [2, 3], strides: [1, 2], pads: [0, 1, 1, 0])))
    }

    /// Keras Dense on a feature map: NCHW -> NHWC -> MatMul by (C, U) -> back to NCHW becomes a
    /// 1x1 Conv and no Transpose.
    @Test func matMulOnChannelsLastBecomesAOneByOneConv() throws {
        var b = GraphBuilder(name: "g")
        let t = b.add(.transpose(perm: [0, 2, 3, 1]), inputs: [nchwInput(&b)], output: "nhwc", origin: origin("dense"))
        let w = b.addInitializer("w", randomTensor([3, 6], seed: 60))
        let m = b.add(.matMul, inputs: [t, w], output: "m", origin: origin("dense"))
        let bias = b.addInitializer("bias", randomTensor([6], seed: 61))
        let a = b.add(.add, inputs: [m, bias], output: "a", origin: origin("dense"))
        let back = b.add(.transpose(perm: [0, 3, 1, 2]), inputs: [a], output: "back", origin: origin("conv"))
        b.addOutput(b.add(.tanh, inputs: [back], output: "y", origin: nil))
        let g = try checkEquivalent(try b.finish(), layoutPasses)
        #expect(g.nodes.map(\.op.name) == ["Conv", "Add", "Tanh"], "\(g.nodes.map(\.op))")
        #expect(g.initializers[g.nodes[0].inputs[1]]?.shape == [6, 3, 1, 1])
        // With the pipeline's folds, the bias joins the Conv.
        let full = try checkEquivalent(try b.finish(), PassManager.standardPasses)
        #expect(full.nodes.map(\.op.name) == ["Conv"])
    }

    /// Keras Rescaling (per channel, NHWC) on the input before the first Conv: the Transpose to
    /// NCHW moves onto the input, the constants transposed with it.
    @Test func transposeAfterInputElementwiseMovesOntoTheInput() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("image", TensorType(.float32, Shape([batch, .fixed(4), .fixed(5), .fixed(3)])))
        let s = b.addInitializer("s", randomTensor([3], seed: 62))
        let m = b.add(.mul, inputs: [x, s], output: "m", origin: origin("rescale"))
        let o = b.addInitializer("o", randomTensor([5, 3], seed: 63))
        let a = b.add(.add, inputs: [m, o], output: "a", origin: origin("rescale"))
        let t = b.add(.transpose(perm: [0, 3, 1, 2]), inputs: [a], output: "nchw", origin: origin("conv"))
        let w = b.addInitializer("w", randomTensor([2, 3, 3, 3], seed: 64))
        b.addOutput(b.add(.conv(ConvAttributes(kernelShape: [3, 3])), inputs: [t, w], output: "y", origin: origin("conv")))
        let g = try checkEquivalent(try b.finish(), layoutPasses)
        #expect(g.nodes.map(\.op.name) == ["Transpose", "Mul", "Add", "Conv"])
        #expect(g.nodes[0].inputs == ["image"])
    }

    /// A Transpose that would meet another one downstream is not pulled back (push-transposes
    /// takes it forward instead): the two passes never undo each other.
    @Test func pullAndPushDoNotFight() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("image", TensorType(.float32, Shape([batch, .fixed(4), .fixed(5), .fixed(3)])))
        let t = b.add(.transpose(perm: [0, 3, 1, 2]), inputs: [x], output: "nchw", origin: nil)
        let r = b.add(.relu, inputs: [t], output: "r", origin: nil)
        let back = b.add(.transpose(perm: [0, 2, 3, 1]), inputs: [r], output: "nhwc", origin: nil)
        b.addOutput(b.add(.exp, inputs: [back], output: "y", origin: nil))
        let result = try PassManager(passes: layoutPasses, verifyEachPass: true).optimize(try b.finish())
        #expect(result.graph.nodes.map(\.op.name) == ["Relu", "Exp"])
        #expect(result.rounds <= 3)
    }
}
