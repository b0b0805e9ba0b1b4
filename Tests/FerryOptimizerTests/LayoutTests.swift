import Testing
@testable import FerryIR
@testable import FerryOptimizer
import FerryRuntime

@Suite struct PushTransposesTests {
    let layoutPasses: [any Pass] = [PushTransposes(), CancelTransposes(), EliminateNoOpReshapes(), EliminateDeadNodes()]

    /// NCHW -> NHWC, elementwise and axis ops in NHWC, back to NCHW: the pair meets and cancels.
    @Test func transposeSinksThroughLayoutBlindOpsAndCancels() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(3), .fixed(4), .fixed(5)])))
        let t = b.add(.transpose(perm: [0, 2, 3, 1]), inputs: [x], output: "nhwc", origin: origin("to_nhwc"))
        let s = b.addInitializer("s", randomTensor([3], seed: 90))
        let m = b.add(.mul, inputs: [s, t], output: "m", origin: origin("scale"))
        let k = b.addInitializer("k", randomTensor([4, 1, 3], seed: 91))
        let a = b.add(.add, inputs: [m, k], output: "a", origin: origin("shift"))
        let r = b.add(.leakyRelu(alpha: 0.1), inputs: [a], output: "r", origin: nil)
        let sm = b.add(.softmax(axis: -1), inputs: [r], output: "sm", origin: nil)
        let p = b.add(.pad(PadAttributes(pads: [0, 1, 0, 0, 0, 0, 2, 0])), inputs: [sm], output: "p", origin: nil)
        let back = b.add(.transpose(perm: [0, 3, 1, 2]), inputs: [p], output: "nchw", origin: origin("to_nchw"))
        b.addOutput(b.add(.tanh, inputs: [back], output: "y", origin: nil))
        let g = try checkEquivalent(try b.finish(), layoutPasses)
        #expect(g.nodes.map(\.op.name) == ["Mul", "Add", "LeakyRelu", "Softmax", "Pad", "Tanh"])
        #expect(g.nodes[3].op == .softmax(axis: 1))
    }

    @Test func transposedOperandsMergeIntoOneTransposeAfterTheOp() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(3), .fixed(4), .fixed(5)])))
        let y = b.addInput("y", TensorType(.float32, Shape([batch, .fixed(3), .fixed(4), .fixed(5)])))
        let tx = b.add(.transpose(perm: [0, 2, 3, 1]), inputs: [x], output: "tx", origin: nil)
        let ty = b.add(.transpose(perm: [0, 2, 3, 1]), inputs: [y], output: "ty", origin: nil)
        let sum = b.add(.add, inputs: [tx, ty], output: "sum", origin: nil)
        let tz = b.add(.transpose(perm: [0, 2, 3, 1]), inputs: [y], output: "tz", origin: nil)
        let cat = b.add(.concat(axis: -1), inputs: [sum, tz], output: "cat", origin: nil)
        b.addOutput(b.add(.relu, inputs: [cat], output: "out", origin: nil))
        let g = try checkEquivalent(try b.finish(), layoutPasses)
        #expect(g.nodes.map(\.op.name) == ["Add", "Concat", "Relu", "Transpose"])
        #expect(g.nodes[1].op == .concat(axis: 1))
        // The graph output keeps its name, now on the Transpose.
        #expect(g.nodes[3].outputs == ["out"] && g.outputs.map(\.name) == ["out"])
    }

    @Test func transposeStaysBeforeLayoutOpsAndUntransposedOperands() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(3), .fixed(4), .fixed(5)])))
        let y = b.addInput("y", TensorType(.float32, Shape([batch, .fixed(4), .fixed(5), .fixed(3)])))
        let tx = b.add(.transpose(perm: [0, 2, 3, 1]), inputs: [x], output: "tx", origin: nil)
        b.addOutput(b.add(.add, inputs: [tx, y], output: "sum", origin: nil))
        let t2 = b.add(.transpose(perm: [0, 2, 3, 1]), inputs: [x], output: "t2", origin: nil)
        b.addOutput(b.add(.maxPool(PoolAttributes(kernelShape: [2, 2])), inputs: [t2], output: "pool", origin: nil))
        try checkEquivalent(try b.finish(), [PushTransposes()], expectChanges: false)
    }
}

@Suite struct MergeReshapesTests {
    /// Keras squeeze-and-excitation: the pooled (N, C, 1, 1) value goes through Flatten,
    /// Reshape to (N, 1, 1, C) and Transpose back to (N, C, 1, 1): all of it vanishes.
    @Test func squeezeExcitationReshapesVanish() throws {
        var b = GraphBuilder(name: "se")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(6), .fixed(4), .fixed(4)])))
        let gap = b.add(.globalAveragePool, inputs: [x], output: "gap", origin: nil)
        let f = b.add(.flatten(axis: 1), inputs: [gap], output: "f", origin: origin("squeeze"))
        let r = b.add(.reshape(shape: [0, 1, 1, 6]), inputs: [f], output: "r", origin: origin("reshape"))
        let t = b.add(.transpose(perm: [0, 3, 1, 2]), inputs: [r], output: "t", origin: origin("reduce"))
        let w = b.addInitializer("w", randomTensor([2, 6, 1, 1], seed: 92))
        b.addOutput(b.add(.conv(ConvAttributes(kernelShape: [1, 1])), inputs: [t, w], output: "y", origin: origin("reduce")))
        let g = try checkEquivalent(try b.finish(), [MergeReshapes(), EliminateNoOpReshapes(), EliminateDeadNodes()])
        #expect(g.nodes.map(\.op.name) == ["GlobalAveragePool", "Conv"])
    }

    @Test func realTransposesAndLoneFlattensStay() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(2), .fixed(3), .fixed(1)])))
        let t = b.add(.transpose(perm: [0, 2, 1, 3]), inputs: [x], output: "t", origin: nil)
        b.addOutput(b.add(.flatten(axis: 1), inputs: [t], output: "f", origin: nil))
        try checkEquivalent(try b.finish(), [MergeReshapes()], expectChanges: false)
        // Moving only the size-1 axis is a reshape; the Flatten after it then reads x.
        var c = GraphBuilder(name: "g2")
        let u = c.addInput("x", TensorType(.float32, Shape([batch, .fixed(2), .fixed(3), .fixed(1)])))
        let t2 = c.add(.transpose(perm: [0, 3, 1, 2]), inputs: [u], output: "t", origin: nil)
        c.addOutput(c.add(.flatten(axis: 1), inputs: [t2], output: "f", origin: nil))
        let g = try checkEquivalent(try c.finish(), [MergeReshapes(), EliminateDeadNodes()])
        #expect(g.nodes.map(\.op) == [.reshape(shape: [0, 6])])
    }
}

@Suite struct ChannelsFirstInterfaceTests {
    /// A Keras-like graph: NHWC input, Rescaling (Mul by a per-channel constant) in NHWC,
    /// Transpose to NCHW, Conv, Transpose back to an NHWC output; a vector input stays.
    func kerasImageGraph() -> Graph {
        var b = GraphBuilder(name: "keras")
        let x = b.addInput("image", TensorType(.float32, Shape([batch, .fixed(5), .fixed(6), .fixed(3)])))
        let v = b.addInput("vector", TensorType(.float32, Shape([batch, .fixed(4)])))
        let s = b.addInitializer("s", randomTensor([3], seed: 120))
        let m = b.add(.mul, inputs: [x, s], output: "rescaled", origin: origin("rescaling"))
        let t = b.add(.transpose(perm: [0, 3, 1, 2]), inputs: [m], output: "to_nchw", origin: origin("conv"))
        let w = b.addInitializer("w", randomTensor([2, 3, 3, 3], seed: 121))
        let c = b.add(.conv(ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1])), inputs: [t, w], output: "c", origin: origin("conv"))
        let back = b.add(.transpose(perm: [0, 2, 3, 1]), inputs: [c], output: "to_nhwc", origin: origin("conv"))
        b.addOutput(b.add(.sigmoid, inputs: [back], output: "map", origin: origin("act")))
        b.addOutput(b.add(.tanh, inputs: [v], output: "vec", origin: nil))
        return try! b.finish()
    }

    @Test func nchwInterfaceLeavesNoTransposeAndComputesTheSame() throws {
        let graph = kerasImageGraph()
        let (nchw, changed) = graph.movingInterfaceToChannelsFirst()
        #expect(changed == ["image", "map"])
        #expect(nchw.inputs.map(\.type.shape) == [Shape([batch, .fixed(3), .fixed(5), .fixed(6)]), Shape([batch, .fixed(4)])])
        #expect(nchw.outputs.map(\.type.shape) == [Shape([batch, .fixed(2), .fixed(5), .fixed(6)]), Shape([batch, .fixed(4)])])
        let optimized = try PassManager(verifyEachPass: true).optimize(nchw).graph
        #expect(!optimized.nodes.contains { $0.op.name == "Transpose" }, "\(optimized.nodes.map(\.op.name))")
        let image = randomTensor([2, 5, 6, 3], seed: 122), vector = randomTensor([2, 4], seed: 123)
        let before = try ReferenceRuntime(graph: graph).run(["image": image, "vector": vector])
        let after = try ReferenceRuntime(graph: optimized).run(["image": try ReferenceKernels.transpose(image, perm: [0, 3, 1, 2]), "vector": vector])
        let expectedMap = try ReferenceKernels.transpose(before["map"]!, perm: [0, 3, 1, 2])
        #expect(after["map"]!.shape == expectedMap.shape)
        #expect(zip(after["map"]!.floats, expectedMap.floats).allSatisfy { abs($0 - $1) <= 1e-5 })
        #expect(after["vec"] == before["vec"])
    }

    @Test func modelsWithoutEdgeTransposesAreUnchanged() throws {
        var b = GraphBuilder(name: "caffe")
        let x = b.addInput("data", TensorType(.float32, Shape([batch, .fixed(3), .fixed(5), .fixed(5)])))
        let w = b.addInitializer("w", randomTensor([2, 3, 1, 1], seed: 124))
        b.addOutput(b.add(.conv(ConvAttributes(kernelShape: [1, 1])), inputs: [x, w], output: "y", origin: nil))
        let (g, changed) = try b.finish().movingInterfaceToChannelsFirst()
        #expect(changed.isEmpty && g.nodes.count == 1 && g.metadata["layout"] == nil)
    }
}
