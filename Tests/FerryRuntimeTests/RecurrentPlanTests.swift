import FerryIR
@testable import FerryRuntime
import Testing

/// The plan's LSTM / GRU / RNN kernels against the reference kernel: the equation tests' cases
/// (every direction, sequence_lens, initial states, peepholes, clip, input_forget,
/// linear_before_reset, unusual activations) in both layouts, plus odd and larger hidden sizes
/// that split units between threads, sequence_lens as a graph input, and unused outputs.
@Suite struct RecurrentPlanTests {
    static let cases: [RecurrentCase] = RecurrentCase.all + [
        RecurrentCase(name: "lstm_h130_threads", kind: .lstm, attributes: RecurrentAttributes(hiddenSize: 130),
                      seq: 4, batch: 1, input: 9, lengths: [3], initialState: true),
        RecurrentCase(name: "gru_h170_reset_before_threads", kind: .gru,
                      attributes: RecurrentAttributes(hiddenSize: 170, direction: .reverse), seq: 3, batch: 2, input: 5,
                      lengths: [3, 2], initialState: true),
        RecurrentCase(name: "gru_h37_linear_before_reset_clip", kind: .gru,
                      attributes: RecurrentAttributes(hiddenSize: 37, clip: 0.8, linearBeforeReset: true), seq: 6, batch: 2, input: 11),
        RecurrentCase(name: "rnn_h29_every_activation", kind: .rnn,
                      attributes: RecurrentAttributes(hiddenSize: 29, direction: .bidirectional,
                                                      activations: [.softplus, .scaledTanh(alpha: 0.7, beta: 1.3)]),
                      seq: 4, batch: 2, input: 3, lengths: [0, 4]),
        RecurrentCase(name: "lstm_h19_affine_elu_thresholded", kind: .lstm,
                      attributes: RecurrentAttributes(hiddenSize: 19, activations: [.sigmoid, .elu(alpha: 0.9), .thresholdedRelu(alpha: 0.1)]),
                      seq: 3, batch: 3, input: 7, initialState: true, peepholes: true),
        // Batches of 5 and 6 take the packed product's groups of 4, 2 and 1 rows; 37 and 40 units
        // end in a partial block of 16.
        RecurrentCase(name: "lstm_h37_batch5_bidirectional", kind: .lstm,
                      attributes: RecurrentAttributes(hiddenSize: 37, direction: .bidirectional, clip: 3),
                      seq: 4, batch: 5, input: 6, lengths: [4, 1, 3, 4, 2], initialState: true, peepholes: true),
        RecurrentCase(name: "gru_h40_batch6_reset_before", kind: .gru, attributes: RecurrentAttributes(hiddenSize: 40),
                      seq: 3, batch: 6, input: 5, initialState: true),
        RecurrentCase(name: "gru_h33_batch7_linear_before_reset_bidirectional", kind: .gru,
                      attributes: RecurrentAttributes(hiddenSize: 33, direction: .bidirectional, linearBeforeReset: true),
                      seq: 3, batch: 7, input: 4, lengths: [3, 3, 2, 3, 1, 3, 3]),
        RecurrentCase(name: "rnn_h48_batch3", kind: .rnn, attributes: RecurrentAttributes(hiddenSize: 48),
                      seq: 5, batch: 3, input: 8, initialState: true),
        // Long enough that X·Wᵀ is computed 32 steps at a time (the last chunk partial; rows
        // shorter than a chunk, and reverse rows whose times start mid-chunk).
        RecurrentCase(name: "lstm_h48_seq50_chunked_bidirectional", kind: .lstm,
                      attributes: RecurrentAttributes(hiddenSize: 48, direction: .bidirectional),
                      seq: 50, batch: 4, input: 7, lengths: [50, 17, 33, 1], initialState: true, recurrentRange: -0.15...0.15),
        RecurrentCase(name: "gru_h64_seq120_chunked_reset_before", kind: .gru,
                      attributes: RecurrentAttributes(hiddenSize: 64, direction: .reverse), seq: 120, batch: 3, input: 5,
                      recurrentRange: -0.15...0.15),
        RecurrentCase(name: "rnn_h11_affine_softsign", kind: .rnn,
                      attributes: RecurrentAttributes(hiddenSize: 11, direction: .bidirectional,
                                                      activations: [.affine(alpha: 0.5, beta: -0.1), .softsign])),
    ]

    /// The graph of one recurrent node: X (and initial states) as inputs, sequence_lens as an
    /// initializer or an int32 input, the other inputs initializers; `outputs` names the
    /// outputs ("" for unused ones).
    static func graph(_ c: RecurrentCase, lensAsInput: Bool, outputs: [String],
                      weightsAsInputs: Bool = false) throws -> (Graph, [String: Tensor]) {
        let list = try layoutInputs(c)
        var b = GraphBuilder(name: c.name)
        var feeds: [String: Tensor] = [:]
        var names: [String] = []
        for (i, t) in list.enumerated() {
            guard let t else { names.append(""); continue }
            let name = ["x", "w", "r", "b", "lens", "h0", "c0", "p"][i]
            if i == 0 || i == 5 || i == 6 || (i == 4 && lensAsInput) || (weightsAsInputs && (i == 1 || i == 2)) {
                names.append(b.addInput(name, TensorType(t.dtype, Shape(t.shape))))
                feeds[name] = t
            } else {
                names.append(b.addInitializer(name, t))
            }
        }
        while names.last == "" { names.removeLast() }
        let outs = b.add(c.op, inputs: names, outputs: outputs, origin: Origin(layer: c.name, type: c.op.name))
        for o in outs where !o.isEmpty { b.addOutput(o) }
        return (try b.finish(), feeds)
    }

    /// The case's inputs with X and the initial states batch first when its layout is 1.
    static func layoutInputs(_ c: RecurrentCase) throws -> [Tensor?] {
        var list = c.inputs()
        if c.attributes.layout == 1 {
            list[0] = try ReferenceKernels.transpose(list[0]!, perm: [1, 0, 2])
            for i in [5, 6] where i < list.count { list[i] = try list[i].map { try ReferenceKernels.transpose($0, perm: [1, 0, 2]) } }
        }
        return list
    }

    @Test(arguments: cases)
    func matchesReference(_ c: RecurrentCase) throws {
        let outputs = c.kind == .lstm ? ["y", "yh", "yc"] : ["y", "yh"]
        for layout in [0, 1] {
            var d = c
            d.attributes.layout = layout
            for lensAsInput in c.lengths == nil ? [false] : [false, true] {
                let (g, feeds) = try Self.graph(d, lensAsInput: lensAsInput, outputs: outputs)
                // Two threads run a bidirectional layer's directions side by side, one thread in turn.
                for threads in c.attributes.direction == .bidirectional ? [2, 1] : [2] {
                    let plan = try expectPlanMatchesReference(g, feeds, threads: threads, atol: 2e-5, rtol: 1e-4)
                    #expect(plan.kernels[0].kernel == "recurrent.\(c.kind.rawValue)", "\(c.name)")
                }
            }
        }
    }

    /// Y unused (Keras return_sequences=False), and Y alone.
    @Test func unusedOutputs() throws {
        for c in [Self.cases[1], Self.cases[5], Self.cases[7]] {
            for outputs in [["", "yh"], ["y"]] {
                let (g, feeds) = try Self.graph(c, lensAsInput: false, outputs: outputs)
                try expectPlanMatchesReference(g, feeds, atol: 2e-5, rtol: 1e-4)
            }
        }
    }

    /// W and R as values of the graph (R packed on every run instead of once).
    @Test func weightsAsInputs() throws {
        for c in Self.cases where ["lstm_bidirectional_full", "gru_reset_before", "gru_h40_batch6_reset_before",
                                    "lstm_h37_batch5_bidirectional", "rnn_h48_batch3"].contains(c.name) {
            let outputs = c.kind == .lstm ? ["y", "yh", "yc"] : ["y", "yh"]
            let (g, feeds) = try Self.graph(c, lensAsInput: false, outputs: outputs, weightsAsInputs: true)
            let plan = try expectPlanMatchesReference(g, feeds, threads: 2, atol: 2e-5, rtol: 1e-4)
            #expect(plan.kernels[0].kernel == "recurrent.\(c.kind.rawValue)", "\(c.name)")
        }
    }

    /// Long sequences compute X·Wᵀ a chunk of steps at a time, in less scratch than the whole.
    @Test func longSequencesProjectByChunks() throws {
        for c in Self.cases where c.name.contains("_chunked_") {
            let (g, feeds) = try Self.graph(c, lensAsInput: false, outputs: ["y"])
            let plan = try expectPlanMatchesReference(g, feeds, threads: 2, atol: 2e-5, rtol: 1e-4)
            guard InnerKernels.simd else { continue }
            let whole = c.seq * c.batch * c.attributes.direction.count * c.op.recurrentGateCount * c.attributes.hiddenSize * 4
            #expect(plan.scratchBlocks[0].bytes < whole, "\(c.name)")
        }
    }

    /// A runtime that may release weights holds a constant R only as its packed copy: results
    /// are those of a runtime that keeps it, bit for bit, and the store gives the original back
    /// (GRU without linear_before_reset packs its h gate apart).
    @Test func packedRecurrentWeightsReleaseTheOriginal() throws {
        for c in Self.cases where ["lstm_h37_batch5_bidirectional", "gru_h40_batch6_reset_before",
                                    "gru_h33_batch7_linear_before_reset_bidirectional", "rnn_h48_batch3"].contains(c.name) {
            let outputs = c.kind == .lstm ? ["y", "yh", "yc"] : ["y", "yh"]
            let (g, feeds) = try Self.graph(c, lensAsInput: false, outputs: outputs)
            let keeping = try PlanRuntime(graph: g, threads: 2)
            let releasing = try PlanRuntime(graph: g, threads: 2, releasesPackedWeights: true)
            let kept = try keeping.run(feeds), got = try releasing.run(feeds)
            for name in outputs { #expect(got[name] == kept[name], "\(c.name) \(name)") }
            guard InnerKernels.simd else { continue }
            #expect(releasing.releasedWeights == ["r"], "\(c.name)")
            let r = g.initializers["r"]!
            let store = PackedWeightStore()
            let packing = RecurrentPacking(directions: r.shape[0], gates: c.op.recurrentGateCount, hidden: c.attributes.hiddenSize,
                                           splitsLastGate: c.kind == .gru && !c.attributes.linearBeforeReset)
            #expect(store.packedRecurrent("r", weights: r, packing).count == packing.count)
            #expect(store.restore("r") == r, "\(c.name)")
        }
        // Gates of 200 x 200 floats give their pages back as they are packed: the same packed
        // copy, and a holder's shared weights are never given back.
        for (gates, split) in [(4, false), (3, true)] {
            let r = randomTensor([2, gates * 200, 200], seed: 70)
            let packing = RecurrentPacking(directions: 2, gates: gates, hidden: 200, splitsLastGate: split)
            let expected = PackedWeightStore().packedRecurrent("r", weights: r, packing)
            let kept = r.floats
            // (Compared first: a failing #expect on 480,000 floats spends minutes printing them.)
            let shared = PackedWeightStore().packedRecurrentTakingWeights("r", kept, shape: r.shape, packing) == expected
            #expect(shared, "gates \(gates)")
            let untouched = kept == randomTensor([2, gates * 200, 200], seed: 70).floats
            #expect(untouched, "the holder's weights were given back")
            let store = PackedWeightStore()
            let taken = store.packedRecurrentTakingWeights("r", randomTensor([2, gates * 200, 200], seed: 70).floats,
                                                           shape: r.shape, packing) == expected
            #expect(taken, "gates \(gates)")
            let restored = store.restore("r") == r
            #expect(restored, "gates \(gates)")
        }
    }

    /// Lengths outside 0...seq are refused at run time, as the reference kernel refuses them.
    @Test func badLengthsAreRefused() throws {
        let c = Self.cases[1]
        let (g, feeds) = try Self.graph(c, lensAsInput: true, outputs: ["y", "yh", "yc"])
        let runtime = try PlanRuntime(graph: g, threads: 2)
        var bad = feeds
        bad["lens"] = try Tensor(shape: [3], storage: .int32([2, 6, 1]))
        #expect(throws: FerryError.self) { try runtime.run(bad) }
        #expect(try runtime.plan(forShapes: feeds.mapValues(\.shape)).kernels[0].kernel == "recurrent.lstm")
    }
}
