import Testing
@testable import Ferry

@Suite struct CheckTests {
    @Test func integerInputsFeedingAGatherGetValidIndices() throws {
        var b = GraphBuilder(name: "embedding")
        let ids = b.addInput("ids", TensorType(.int64, Shape([.symbolic("N"), .fixed(50)])))
        let table = b.addInitializer("table", Tensor(shape: [7, 3], floats: (0..<21).map(Float.init)))
        b.addOutput(b.add(.gather(axis: 0), inputs: [table, ids], output: "vectors", origin: nil))
        let graph = try b.finish()
        var options = CheckOptions()
        options.defaultRange = -1000...1000
        options.batch = 4
        for sample in 0..<5 {
            let feeds = try randomInputs(for: graph, options: options, sample: sample)
            let values = feeds["ids"]!.int64s!
            #expect(values.count == 200)
            #expect(values.allSatisfy { (0..<7).contains($0) })
            #expect(Set(values).count > 3)
        }
        let report = try checkModels(reference: graph, candidate: graph, referenceName: "a", candidateName: "b", options: options)
        #expect(report.passed)
    }

    @Test func anElementFailsOnlyBeyondBothTolerances() {
        let reference = Tensor(shape: [3], floats: [1000, 1, 0])
        // 0.05 off 1000 is within rtol 1e-4 (0.1) though beyond atol; 1e-6 off 0 is within atol.
        let close = Tensor(shape: [3], floats: [1000.05, 1, 1e-6])
        let c = compare(close, reference: reference, name: "y", sample: 0, tolerance: Tolerance(atol: 1e-5, rtol: 1e-4))
        #expect(c.passed && c.fractionOutside == 0)
        let far = Tensor(shape: [3], floats: [1000, 1.01, 0])
        let d = compare(far, reference: reference, name: "y", sample: 0, tolerance: Tolerance(atol: 1e-5, rtol: 1e-4))
        #expect(!d.passed && abs(d.fractionOutside - 1.0 / 3) < 1e-9)
        #expect(abs(d.passingAtol - 0.01) < 1e-6 && abs(d.passingRtol - 0.01) < 1e-6)
        let shape = compare(Tensor(shape: [1, 3], floats: [1, 1, 1]), reference: reference, name: "y", sample: 0, tolerance: Tolerance())
        #expect(!shape.passed && shape.shapeMismatch != nil)
    }
}
