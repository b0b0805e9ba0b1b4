import Testing
@testable import FerryIR
@testable import FerryOptimizer
import FerryRuntime

@Suite struct FuseSwishTests {
    /// conv -> x * sigmoid(beta * x) (beta 1: no scaling Mul), optionally with the operands swapped.
    func swishAfterConv(beta: Float, swapped: Bool) -> Graph {
        var b = GraphBuilder(name: "swish")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(2), .fixed(5), .fixed(5)])))
        let w = b.addInitializer("w", randomTensor([3, 2, 3, 3], seed: 80, scale: 2))
        let c = b.add(.conv(ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1])), inputs: [x, w], output: "c", origin: origin("conv"))
        var gateInput = c
        if beta != 1 {
            let k = b.addInitializer("beta", Tensor(shape: [1], floats: [beta]))
            gateInput = b.add(.mul, inputs: swapped ? [k, c] : [c, k], output: "scaled", origin: origin("swish"))
        }
        let s = b.add(.sigmoid, inputs: [gateInput], output: "gate", origin: origin("swish"))
        b.addOutput(b.add(.mul, inputs: swapped ? [s, c] : [c, s], output: "y", origin: origin("swish")))
        return try! b.finish()
    }

    @Test func swishFusesIntoConvAndSplitsBack() throws {
        for (beta, swapped) in [(Float(1), false), (1, true), (1.702, false), (0.5, true)] {
            let g = try checkEquivalent(swishAfterConv(beta: beta, swapped: swapped), [FuseSwish(), EliminateDeadNodes()])
            #expect(g.nodes.map(\.op.name) == ["Conv"])
            #expect(g.nodes[0].op.fusedActivation == .swish(beta: beta))
            #expect(g.nodes[0].origins.map(\.layer) == ["conv", "swish"])
            #expect(g.initializers.count == 1, "the beta constant is gone")
            let split = g.splittingFusedActivations()
            try split.verify()
            #expect(split.nodes.map(\.op.name) == (beta == 1 ? ["Conv", "Sigmoid", "Mul"] : ["Conv", "Mul", "Sigmoid", "Mul"]))
            #expect(split.outputs.map(\.name) == ["y"])
            // The split graph computes what the fused one does.
            let feeds = ["x": randomTensor([2, 2, 5, 5], seed: 81)]
            let fused = try ReferenceRuntime(graph: g).run(feeds)["y"]!.floats
            let unfused = try ReferenceRuntime(graph: split).run(feeds)["y"]!.floats
            #expect(zip(fused, unfused).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) })
        }
    }

    @Test func swishFusesIntoGemm() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(4)])))
        let w = b.addInitializer("w", randomTensor([4, 3], seed: 82, scale: 2))
        let gm = b.add(.gemm(GemmAttributes()), inputs: [x, w], output: "g", origin: origin("dense"))
        let s = b.add(.sigmoid, inputs: [gm], output: "s", origin: origin("dense"))
        b.addOutput(b.add(.mul, inputs: [gm, s], output: "y", origin: origin("dense")))
        let g = try checkEquivalent(try b.finish(), PassManager.standardPasses)
        #expect(g.nodes.map(\.op.name) == ["Gemm"] && g.nodes[0].op.fusedActivation == .swish(beta: 1))
    }

    @Test func swishWhoseInputIsReadElsewhereStays() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(4)])))
        let w = b.addInitializer("w", randomTensor([4, 3], seed: 83))
        let gm = b.add(.gemm(GemmAttributes()), inputs: [x, w], output: "g", origin: nil)
        let s = b.add(.sigmoid, inputs: [gm], output: "s", origin: nil)
        b.addOutput(b.add(.mul, inputs: [gm, s], output: "y", origin: nil))
        b.addOutput(b.add(.tanh, inputs: [gm], output: "z", origin: nil))
        try checkEquivalent(try b.finish(), [FuseSwish()], expectChanges: false)
        // x * sigmoid(y) with y another value is not swish.
        var c = GraphBuilder(name: "gated")
        let u = c.addInput("u", TensorType(.float32, Shape([batch, .fixed(4)])))
        let v = c.addInput("v", TensorType(.float32, Shape([batch, .fixed(3)])))
        let w2 = c.addInitializer("w", randomTensor([4, 3], seed: 84))
        let g2 = c.add(.gemm(GemmAttributes()), inputs: [u, w2], output: "g", origin: nil)
        let s2 = c.add(.sigmoid, inputs: [v], output: "s", origin: nil)
        c.addOutput(c.add(.mul, inputs: [g2, s2], output: "y", origin: nil))
        try checkEquivalent(try c.finish(), [FuseSwish()], expectChanges: false)
    }
}
