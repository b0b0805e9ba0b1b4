import Testing
@testable import FerryIR
@testable import FerryOptimizer

@Suite struct ActivationCompositionTests {
    func convThen(_ ops: [Op]) -> Graph {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(2), .fixed(4), .fixed(4)])))
        let w = b.addInitializer("w", randomTensor([3, 2, 1, 1], seed: 95, scale: 8))
        var v = b.add(.conv(ConvAttributes(kernelShape: [1, 1])), inputs: [x, w], output: "c", origin: origin("conv"))
        for (k, op) in ops.enumerated() { v = b.add(op, inputs: [v], output: "a\(k)", origin: origin("act\(k)")) }
        b.addOutput(v)
        return try! b.finish()
    }

    /// Keras ReLU(max_value=6) imports as Relu then Clip(0, 6): one Clip(0, 6) epilogue.
    @Test func clampsAfterAFusedReluJoinIt() throws {
        let cases: [([Op], FusedActivation)] = [
            ([.relu, .clip(min: 0, max: 6)], .clip(min: 0, max: 6)),
            ([.relu, .clip(min: -1, max: nil)], .relu),
            ([.clip(min: -2, max: 3), .clip(min: -1, max: 5)], .clip(min: -1, max: 3)),
            ([.clip(min: nil, max: 4), .relu], .clip(min: 0, max: 4)),
        ]
        for (ops, expected) in cases {
            let g = try checkEquivalent(convThen(ops), [FuseActivation()])
            #expect(g.nodes.count == 1 && g.nodes[0].op.fusedActivation == expected, "\(ops)")
            #expect(g.nodes[0].origins.map(\.layer) == ["conv", "act0", "act1"])
        }
    }

    @Test func otherActivationsAfterAFusedOneStay() throws {
        let g = try checkEquivalent(convThen([.relu, .sigmoid]), [FuseActivation()])
        #expect(g.nodes.map(\.op.name) == ["Conv", "Sigmoid"])
        // Disjoint clamps (a constant result) are left alone.
        let h = try checkEquivalent(convThen([.clip(min: 0, max: 1), .clip(min: 2, max: 3)]), [FuseActivation()])
        #expect(h.nodes.map(\.op.name) == ["Conv", "Clip"])
    }
}
