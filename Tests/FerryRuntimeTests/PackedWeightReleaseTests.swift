import FerryIR
import FerryKernels
@testable import FerryRuntime
import Testing

/// A runtime that releases packed weights holds each convolution's weights once (packed) and
/// unpacks them when a plan for new shapes needs them: results must not change either way.
@Suite struct PackedWeightReleaseTests {
    @Test(arguments: [(rows: 13, depth: 7, group: 1), (rows: 6, depth: 36, group: 2), (rows: 17, depth: 1, group: 3)])
    func restoreGivesBackTheOriginal(_ c: (rows: Int, depth: Int, group: Int)) {
        let weights = randomTensor([c.rows * c.group, c.depth], seed: 41)
        for narrow in [false, true] {
            let store = PackedWeightStore()
            let entry = store.packed("w", weights: weights, narrow: narrow, group: c.group, rows: c.rows, depth: c.depth)
            #expect(entry.values.count == entry.step * c.group)
            #expect(store.restore("w") == weights, "narrow \(narrow)")
        }
        #expect(PackedWeightStore().restore("w") == nil)
    }

    /// Winograd's tap-major copy: tap j of every channel pair together, and the original back
    /// from it; taken weights give their pages back, shared ones are copied first.
    @Test func tapMajorWeightsRestore() {
        let (outputChannels, inputChannels) = (70, 1100)
        let weights = randomTensor([outputChannels, inputChannels, 3, 3], seed: 45)
        let pairs = outputChannels * inputChannels
        let store = PackedWeightStore()
        let entry = store.packed("w", weights: weights, layout: .winogradTaps, group: 1, rows: outputChannels, depth: inputChannels * 9)
        #expect(entry.values.count == weights.floats.count)
        for (pair, j) in [(0, 0), (1, 4), (pairs - 1, 8), (777, 3)] {
            #expect(entry.values[j * pairs + pair] == weights.floats[pair * 9 + j])
        }
        #expect(store.restore("w") == weights)
        let kept = weights.floats
        let taken = PackedWeightStore().packedTakingWeights("w", kept, shape: weights.shape, layout: .winogradTaps, group: 1,
                                                            rows: outputChannels, depth: inputChannels * 9)
        #expect(taken.values == entry.values)
        #expect(kept == weights.floats, "the holder's weights were given back")
    }

    /// Packing weights the store takes gives their pages back as it goes: the packed copy is the
    /// same, and weights another holder still shares are copied first, never given back.
    @Test(arguments: [false, true])
    func packingTakenWeightsSparesSharedOnes(narrow: Bool) {
        // Panels of 6 or 16 rows of 4100 floats: each spans more than the 16 pages given back at once.
        let rows = 70, depth = 4100, group = 2
        let weights = randomTensor([rows * group, depth], seed: 50)
        let expected = PackedWeightStore().packed("w", weights: weights, narrow: narrow, group: group, rows: rows, depth: depth)
        let kept = weights.floats
        let store = PackedWeightStore()
        let shared = store.packedTakingWeights("w", kept, shape: weights.shape, narrow: narrow, group: group, rows: rows, depth: depth)
        #expect(shared.values == expected.values)
        #expect(kept == randomTensor([rows * group, depth], seed: 50).floats, "the holder's weights were given back")
        #expect(store.restore("w") == weights)
        let unique = PackedWeightStore().packedTakingWeights("w", randomTensor([rows * group, depth], seed: 50).floats,
                                                             shape: weights.shape, narrow: narrow, group: group, rows: rows, depth: depth)
        #expect(unique.values == expected.values)
    }

    /// A 3x3 convolution (4 input channels: below Winograd's minimum) over an open batch: a
    /// plan for a second batch size packs from the original, which the first plan released.
    func convolution(sharedWeights: Bool) throws -> Graph {
        var b = GraphBuilder(name: "release")
        let x = b.addInput("x", TensorType(.float32, Shape([.symbolic("n"), .fixed(4), .fixed(20), .fixed(20)])))
        let w = b.addInitializer("w", randomTensor([8, 4, 3, 3], seed: 42))
        let bias = b.addInitializer("b", randomTensor([8], seed: 43))
        let attributes = ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1])
        let y = b.add(.conv(attributes), inputs: [x, w, bias], output: "y", origin: Origin(layer: "conv", type: "Conv"))
        if sharedWeights {
            let w2 = b.addInitializer("w2", randomTensor([4, 8, 1, 1], seed: 44))
            let z = b.add(.conv(ConvAttributes(kernelShape: [1, 1])), inputs: [y, w2], output: "z", origin: Origin(layer: "squeeze", type: "Conv"))
            // "w" read by two nodes: never released.
            let again = b.add(.conv(attributes), inputs: [z, w], output: "again", origin: Origin(layer: "conv_again", type: "Conv"))
            b.addOutput(again)
        } else {
            b.addOutput(y)
        }
        return try b.finish()
    }

    @Test(arguments: [false, true])
    func plansForNewShapesUnpackReleasedWeights(sharedWeights: Bool) throws {
        let graph = try convolution(sharedWeights: sharedWeights)
        let reference = try ReferenceRuntime(graph: graph)
        let runtime = try PlanRuntime(graph: graph, threads: 2, releasesPackedWeights: true)
        let one = ["x": randomTensor([1, 4, 20, 20], seed: 45)], three = ["x": randomTensor([3, 4, 20, 20], seed: 46)]
        for inputs in [one, three, one, three] {
            let expected = try reference.run(inputs), got = try runtime.run(inputs)
            for (name, t) in expected { expectClose(got[name]!, t) }
            guard InnerKernels.simd else { continue }
            let kernels = try runtime.plan(forShapes: inputs.mapValues(\.shape)).kernels.map(\.kernel)
            #expect(kernels.first == "conv.im2col-packed")
            #expect(runtime.releasedWeights == (sharedWeights ? ["w2"] : ["w"]))
        }
    }

    /// A depthwise 3x3 convolution on a narrow plane (the interleaved kernel) over an open
    /// batch: its interleaved copy is the only one held, plans for other batch sizes share it,
    /// and the results are those of a runtime that keeps the original, bit for bit. The store
    /// gives the original back from the interleaved copy.
    @Test func depthwiseWeightsAreHeldOnceInterleaved() throws {
        var b = GraphBuilder(name: "depthwise")
        let x = b.addInput("x", TensorType(.float32, Shape([.symbolic("n"), .fixed(12), .fixed(9), .fixed(10)])))
        let w = b.addInitializer("dw", randomTensor([12, 1, 3, 3], seed: 60))
        let bias = b.addInitializer("b", randomTensor([12], seed: 61))
        let attributes = ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1], group: 12)
        b.addOutput(b.add(.conv(attributes), inputs: [x, w, bias], output: "y", origin: Origin(layer: "dw", type: "Conv")))
        let graph = try b.finish()
        let reference = try ReferenceRuntime(graph: graph)
        let keeping = try PlanRuntime(graph: graph, threads: 2)
        let runtime = try PlanRuntime(graph: graph, threads: 2, releasesPackedWeights: true)
        for inputs in [["x": randomTensor([1, 12, 9, 10], seed: 62)], ["x": randomTensor([3, 12, 9, 10], seed: 63)]] {
            let got = try runtime.run(inputs)["y"]!
            expectClose(got, try reference.run(inputs)["y"]!)
            #expect(got == (try keeping.run(inputs)["y"]!))
            guard InnerKernels.simd else { continue }
            #expect(try runtime.plan(forShapes: inputs.mapValues(\.shape)).kernels.map(\.kernel) == ["conv.depthwise-interleaved"])
            #expect(runtime.releasedWeights == ["dw"])
            #expect(keeping.releasedWeights.isEmpty)
        }
        let store = PackedWeightStore()
        let weights = randomTensor([13, 1, 5, 5], seed: 64)
        #expect(store.interleavedDepthwise("w", weights: weights, channels: 13, taps: 25).count == 2 * 25 * 8)
        #expect(store.restore("w") == weights)
    }

    @Test func keepingWeightsReleasesNothing() throws {
        let runtime = try PlanRuntime(graph: try convolution(sharedWeights: false), threads: 1)
        _ = try runtime.run(["x": randomTensor([1, 4, 20, 20], seed: 47)])
        #expect(runtime.releasedWeights.isEmpty)
    }
}

/// `ferry bench --profile`: one time per step, in step order, named by node and kernel, and the
/// profiled runs compute what plain runs do.
@Suite struct PlanProfileTests {
    @Test func profileNamesEveryStep() throws {
        let graph = try PackedWeightReleaseTests().convolution(sharedWeights: true)
        let runtime = try PlanRuntime(graph: graph, threads: 2)
        let inputs = ["x": randomTensor([1, 4, 20, 20], seed: 48)]
        let plan = try runtime.plan(forShapes: inputs.mapValues(\.shape))
        let steps = try plan.profile(inputs, runs: 3)
        #expect(steps.map(\.node) == graph.nodes.map(\.name))
        #expect(steps.map(\.kernel) == plan.kernels.map(\.kernel))
        #expect(steps.allSatisfy { $0.nanoseconds > 0 && $0.nanoseconds < 10_000_000_000 })
        expectClose(try plan.run(inputs)["again"]!, try ReferenceRuntime(graph: graph).run(inputs)["again"]!)
    }
}
