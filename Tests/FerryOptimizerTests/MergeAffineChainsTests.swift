import Testing
@testable import FerryIR
@testable import FerryOptimizer

@Suite struct MergeAffineChainsTests {
    /// Keras Rescaling (x / 255 written as Mul, + 0) then Normalization ((x - mean) / std as
    /// Mul and Add) on an NHWC input: one Mul and one Add.
    @Test func rescalingThenNormalizationBecomeOneMulAndOneAdd() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(4), .fixed(5), .fixed(3)])))
        let r = b.addInitializer("r", Tensor(shape: [], floats: [1 / 255]))
        let z = b.addInitializer("z", Tensor(shape: [], floats: [0.5]))
        let s = b.addInitializer("s", randomTensor([3], seed: 130))
        let t = b.addInitializer("t", randomTensor([1, 1, 1, 3], seed: 131))
        let m1 = b.add(.mul, inputs: [x, r], output: "m1", origin: origin("rescaling"))
        let a1 = b.add(.add, inputs: [z, m1], output: "a1", origin: origin("rescaling"))
        let d = b.add(.div, inputs: [a1, s], output: "d", origin: origin("normalization"))
        let a2 = b.add(.sub, inputs: [d, t], output: "a2", origin: origin("normalization"))
        b.addOutput(b.add(.relu, inputs: [a2], output: "y", origin: nil))
        let g = try checkEquivalent(try b.finish(), [MergeAffineChains(), EliminateDeadNodes()])
        #expect(g.nodes.map(\.op.name) == ["Mul", "Add", "Relu"])
        #expect(Set(g.nodes[0].origins.map(\.layer)) == ["rescaling", "normalization"])
    }

    @Test func sharedOrCanonicalStepsStay() throws {
        // The middle value is read twice.
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(3)])))
        let k = b.addInitializer("k", randomTensor([3], seed: 132))
        let m = b.add(.mul, inputs: [x, k], output: "m", origin: nil)
        b.addOutput(b.add(.mul, inputs: [m, k], output: "y", origin: nil))
        b.addOutput(b.add(.tanh, inputs: [m], output: "z", origin: nil))
        try checkEquivalent(try b.finish(), [MergeAffineChains()], expectChanges: false)
        // Already one Mul then one Add.
        var c = GraphBuilder(name: "g2")
        let u = c.addInput("x", TensorType(.float32, Shape([batch, .fixed(3)])))
        let m2 = c.add(.mul, inputs: [u, c.addInitializer("k", randomTensor([3], seed: 133))], output: "m", origin: nil)
        c.addOutput(c.add(.add, inputs: [m2, c.addInitializer("j", randomTensor([3], seed: 134))], output: "y", origin: nil))
        try checkEquivalent(try c.finish(), [MergeAffineChains()], expectChanges: false)
    }
}
