import Testing
@testable import FerryIR
@testable import FerryOptimizer
import FerryRuntime

@Suite struct FuseFlattenGemmTests {
    /// Conv -> Flatten (or a Reshape to (N, rest)) -> Gemm, with a fused activation on the Gemm.
    func flattenDense(reshape: Bool, transB: Bool) -> Graph {
        var b = GraphBuilder(name: "flatten_dense")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(3), .fixed(4), .fixed(5)])))
        let w = b.addInitializer("w", randomTensor([2, 3, 3, 3], seed: 40))
        let c = b.add(.conv(ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1])), inputs: [x, w], output: "c", origin: origin("conv"))
        let flatOp: Op = reshape ? .reshape(shape: [0, 40]) : .flatten(axis: 1)
        let f = b.add(flatOp, inputs: [c], output: "f", origin: origin("flatten"))
        let dw = b.addInitializer("dw", randomTensor(transB ? [6, 40] : [40, 6], seed: 41, scale: 0.2))
        let db = b.addInitializer("db", randomTensor([6], seed: 42))
        let d = b.add(.gemm(GemmAttributes(transB: transB)), inputs: [f, dw, db], output: "d", origin: origin("dense"))
        b.addOutput(b.add(.tanh, inputs: [d], output: "y", origin: origin("dense")))
        return try! b.finish()
    }

    @Test(arguments: [(false, false), (false, true), (true, false)])
    func flattenFusesIntoGemmAndComputesTheSame(reshape: Bool, transB: Bool) throws {
        let g = try checkEquivalent(flattenDense(reshape: reshape, transB: transB), [FuseFlattenGemm(), FuseActivation()])
        #expect(g.nodes.map(\.op.name) == ["Conv", "Gemm"])
        let gemm = g.nodes[1]
        #expect(gemm.op == .gemm(GemmAttributes(transB: transB, activation: .tanh, flattensA: true)))
        #expect(gemm.inputs[0] == "c")
        // The fused node names the layers it absorbed.
        #expect(gemm.origins.map(\.layer) == ["flatten", "dense"])
    }

    @Test func exportersGetTheFlattenBack() throws {
        let fused = try checkEquivalent(flattenDense(reshape: false, transB: false), [FuseFlattenGemm()])
        let split = fused.splittingFusedActivations()
        try split.verify()
        #expect(split.nodes.map(\.op.name) == ["Conv", "Flatten", "Gemm", "Tanh"])
        #expect(split.nodes[2].op == .gemm(GemmAttributes()))
        // Each node names its layer again: the Flatten the first the Gemm absorbed.
        #expect(split.nodes[1].origins.map(\.layer) == ["flatten"] && split.nodes[2].origins.last?.layer == "dense")
        let x = randomTensor([2, 3, 4, 5], seed: 43)
        let a = try ReferenceRuntime(graph: fused).run(["x": x])["y"]!
        let b = try ReferenceRuntime(graph: split).run(["x": x])["y"]!
        #expect(a.floats == b.floats)
    }

    @Test func flattenWithOtherReadersOrOtherAxesStays() throws {
        // A Flatten another node reads, a Flatten at axis 2, and a Reshape that moves the batch.
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([.fixed(2), .fixed(3), .fixed(4)])))
        let f = b.add(.flatten(axis: 1), inputs: [x], output: "f", origin: nil)
        let w = b.addInitializer("w", randomTensor([12, 2], seed: 44))
        b.addOutput(b.add(.gemm(GemmAttributes()), inputs: [f, w], output: "y", origin: nil))
        b.addOutput(b.add(.relu, inputs: [f], output: "r", origin: nil))
        let f2 = b.add(.flatten(axis: 2), inputs: [x], output: "f2", origin: nil)
        let w2 = b.addInitializer("w2", randomTensor([4, 2], seed: 45))
        b.addOutput(b.add(.gemm(GemmAttributes()), inputs: [f2, w2], output: "y2", origin: nil))
        let r = b.add(.reshape(shape: [3, 8]), inputs: [x], output: "moved", origin: nil)
        let w3 = b.addInitializer("w3", randomTensor([8, 2], seed: 46))
        b.addOutput(b.add(.gemm(GemmAttributes()), inputs: [r, w3], output: "y3", origin: nil))
        try checkEquivalent(try b.finish(), [FuseFlattenGemm()], expectChanges: false)
    }

    /// The fast runtime's plan reads the fused Gemm's N-D input as the flattened matrix.
    @Test func executionPlanRunsTheFusedGemm() throws {
        let fused = try checkEquivalent(flattenDense(reshape: false, transB: true), [FuseFlattenGemm(), FuseActivation()])
        let x = randomTensor([2, 3, 4, 5], seed: 47)
        let reference = try ReferenceRuntime(graph: fused).run(["x": x])["y"]!
        let runtime = try PlanRuntime(graph: fused, threads: 1)
        let fast = try runtime.run(["x": x])["y"]!
        let plan = try runtime.plan(forShapes: ["x": [2, 3, 4, 5]])
        #expect(plan.kernels.contains { $0.node == fused.nodes[1].name && $0.kernel == "gemm.sgemm" }, "\(plan.kernels)")
        #expect(fast.shape == reference.shape)
        let diff = zip(fast.floats, reference.floats).map { abs($0 - $1) }.max() ?? 0
        #expect(diff <= 1e-5)
    }
}
