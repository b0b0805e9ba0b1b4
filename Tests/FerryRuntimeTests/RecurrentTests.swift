import Foundation
import FerryIR
@testable import FerryRuntime
import Testing

enum RecurrentKind: String, Sendable { case lstm, gru, rnn }

/// The recurrent layers element by element from the ONNX equations, in Double, layout 0:
/// named gate matrices, one hidden unit at a time, no matrix products.
func naiveRecurrent(_ kind: RecurrentKind, _ a: RecurrentAttributes, x: Tensor, w: Tensor, r: Tensor, b: Tensor?,
                    lens: [Int]?, h0: Tensor?, c0: Tensor?, p: Tensor?) -> [Tensor] {
    let (seq, batch, inSize) = (x.shape[0], x.shape[1], x.shape[2])
    let h = a.hiddenSize, dirs = a.direction == .bidirectional ? 2 : 1
    let gates = kind == .lstm ? 4 : kind == .gru ? 3 : 1
    let perDirection: [ActivationFunction] = kind == .lstm ? [.sigmoid, .tanh, .tanh] : kind == .gru ? [.sigmoid, .tanh] : [.tanh]
    let acts = a.activations.isEmpty ? perDirection + perDirection
        : (a.activations.count == perDirection.count ? a.activations + a.activations : a.activations)
    func act(_ f: ActivationFunction, _ v: Double) -> Double {
        let v = a.clip.map { min(max(v, -Double($0)), Double($0)) } ?? v
        switch f {
        case .sigmoid: return 1 / (1 + exp(-v))
        case .tanh: return tanh(v)
        case .relu: return max(v, 0)
        case .hardSigmoid(let al, let be): return min(max(Double(al) * v + Double(be), 0), 1)
        case .leakyRelu(let al): return v >= 0 ? v : Double(al) * v
        case .affine(let al, let be): return Double(al) * v + Double(be)
        case .scaledTanh(let al, let be): return Double(al) * tanh(Double(be) * v)
        case .thresholdedRelu(let al): return v >= Double(al) ? v : 0
        case .elu(let al): return v >= 0 ? v : Double(al) * (exp(v) - 1)
        case .softsign: return v / (1 + abs(v))
        case .softplus: return log(1 + exp(v))
        }
    }
    func xAt(_ t: Int, _ bi: Int, _ k: Int) -> Double { Double(x.floats[(t * batch + bi) * inSize + k]) }
    // Gate `gate`'s row `j` of W / R in direction d.
    func wAt(_ d: Int, _ gate: Int, _ j: Int, _ k: Int) -> Double { Double(w.floats[(d * gates * h + gate * h + j) * inSize + k]) }
    func rAt(_ d: Int, _ gate: Int, _ j: Int, _ k: Int) -> Double { Double(r.floats[(d * gates * h + gate * h + j) * h + k]) }
    func wb(_ d: Int, _ gate: Int, _ j: Int) -> Double { b.map { Double($0.floats[d * 2 * gates * h + gate * h + j]) } ?? 0 }
    func rb(_ d: Int, _ gate: Int, _ j: Int) -> Double { b.map { Double($0.floats[d * 2 * gates * h + gates * h + gate * h + j]) } ?? 0 }

    var y = [Double](repeating: 0, count: seq * dirs * batch * h)
    var yh = [Double](repeating: 0, count: dirs * batch * h), yc = yh
    for d in 0..<dirs {
        let (f, g, hh) = (acts[d * perDirection.count], perDirection.count > 1 ? acts[d * perDirection.count + 1] : .tanh,
                          perDirection.count > 2 ? acts[d * perDirection.count + 2] : .tanh)
        let reverse = a.direction == .reverse || d == 1
        for bi in 0..<batch {
            let len = lens?[bi] ?? seq
            var hPrev = (0..<h).map { j in h0.map { Double($0.floats[(d * batch + bi) * h + j]) } ?? 0 }
            var cPrev = (0..<h).map { j in c0.map { Double($0.floats[(d * batch + bi) * h + j]) } ?? 0 }
            let steps = reverse ? Array((0..<len).reversed()) : Array(0..<len)
            for t in steps {
                // Pre-activation of gate `gate`, unit j, with the recurrent term over `state`.
                func pre(_ gate: Int, _ j: Int, _ state: [Double]) -> Double {
                    var s = wb(d, gate, j) + rb(d, gate, j)
                    for k in 0..<inSize { s += xAt(t, bi, k) * wAt(d, gate, j, k) }
                    for k in 0..<h { s += state[k] * rAt(d, gate, j, k) }
                    return s
                }
                var hNew = [Double](repeating: 0, count: h)
                switch kind {
                case .lstm:
                    func peep(_ which: Int, _ j: Int) -> Double { p.map { Double($0.floats[d * 3 * h + which * h + j]) } ?? 0 }
                    var cNew = cPrev
                    for j in 0..<h {
                        let i = act(f, pre(0, j, hPrev) + peep(0, j) * cPrev[j])
                        let fg = a.inputForget ? 1 - i : act(f, pre(2, j, hPrev) + peep(2, j) * cPrev[j])
                        let c = act(g, pre(3, j, hPrev))
                        cNew[j] = fg * cPrev[j] + i * c
                        let o = act(f, pre(1, j, hPrev) + peep(1, j) * cNew[j])
                        hNew[j] = o * act(hh, cNew[j])
                    }
                    cPrev = cNew
                case .gru:
                    let z = (0..<h).map { act(f, pre(0, $0, hPrev)) }
                    let rg = (0..<h).map { act(f, pre(1, $0, hPrev)) }
                    for j in 0..<h {
                        var xPart = wb(d, 2, j)
                        for k in 0..<inSize { xPart += xAt(t, bi, k) * wAt(d, 2, j, k) }
                        var hPart = 0.0
                        if a.linearBeforeReset {
                            for k in 0..<h { hPart += hPrev[k] * rAt(d, 2, j, k) }
                            hPart = rg[j] * (hPart + rb(d, 2, j))
                        } else {
                            for k in 0..<h { hPart += rg[k] * hPrev[k] * rAt(d, 2, j, k) }
                            hPart += rb(d, 2, j)
                        }
                        let candidate = act(g, xPart + hPart)
                        hNew[j] = (1 - z[j]) * candidate + z[j] * hPrev[j]
                    }
                case .rnn:
                    for j in 0..<h { hNew[j] = act(f, pre(0, j, hPrev)) }
                }
                hPrev = hNew
                for j in 0..<h { y[((t * dirs + d) * batch + bi) * h + j] = hNew[j] }
            }
            for j in 0..<h {
                yh[(d * batch + bi) * h + j] = hPrev[j]
                yc[(d * batch + bi) * h + j] = cPrev[j]
            }
        }
    }
    var out = [Tensor(shape: [seq, dirs, batch, h], floats: y.map(Float.init)), Tensor(shape: [dirs, batch, h], floats: yh.map(Float.init))]
    if kind == .lstm { out.append(Tensor(shape: [dirs, batch, h], floats: yc.map(Float.init))) }
    return out
}

struct RecurrentCase: Sendable, CustomStringConvertible {
    var name: String
    var kind: RecurrentKind
    var attributes: RecurrentAttributes
    var seq = 5, batch = 3, input = 4
    var bias = true, lengths: [Int]? = nil, initialState = false, peepholes = false
    /// R's values: long sequences need a contracting recurrence (as trained ones are), or the
    /// rounding of two summation orders grows step by step into different results.
    var recurrentRange: ClosedRange<Float> = -1...1

    var description: String { name }

    var op: Op {
        switch kind {
        case .lstm: return .lstm(attributes)
        case .gru: return .gru(attributes)
        case .rnn: return .rnn(attributes)
        }
    }

    /// Inputs in ONNX order (layout 0), seeded.
    func inputs() -> [Tensor?] {
        let h = attributes.hiddenSize, dirs = attributes.direction.count, g = op.recurrentGateCount
        let x = randomTensor([seq, batch, input], seed: 140, range: -2...2)
        let w = randomTensor([dirs, g * h, input], seed: 141)
        let r = randomTensor([dirs, g * h, h], seed: 142, range: recurrentRange)
        let b: Tensor? = bias ? randomTensor([dirs, 2 * g * h], seed: 143) : nil
        let lens: Tensor? = lengths.map { try! Tensor(shape: [$0.count], storage: .int32($0.map(Int32.init))) }
        let h0: Tensor? = initialState ? randomTensor([dirs, batch, h], seed: 144) : nil
        var list: [Tensor?] = [x, w, r, b, lens, h0]
        if kind == .lstm {
            list.append(initialState ? randomTensor([dirs, batch, h], seed: 145) : nil)
            list.append(peepholes ? randomTensor([dirs, 3 * h], seed: 146) : nil)
        }
        return list
    }

    static let all: [RecurrentCase] = [
        RecurrentCase(name: "lstm_forward_defaults", kind: .lstm, attributes: RecurrentAttributes(hiddenSize: 3), bias: false),
        RecurrentCase(name: "lstm_bidirectional_full", kind: .lstm, attributes: RecurrentAttributes(hiddenSize: 4, direction: .bidirectional),
                      lengths: [5, 2, 4], initialState: true, peepholes: true),
        RecurrentCase(name: "lstm_reverse_hard_sigmoid_clip", kind: .lstm,
                      attributes: RecurrentAttributes(hiddenSize: 3, direction: .reverse, activations: [.hardSigmoid(alpha: 0.2, beta: 0.5), .tanh, .relu], clip: 1.5),
                      lengths: [3, 5, 1], initialState: true),
        RecurrentCase(name: "lstm_input_forget", kind: .lstm, attributes: RecurrentAttributes(hiddenSize: 2, inputForget: true), peepholes: true),
        RecurrentCase(name: "gru_reset_before", kind: .gru, attributes: RecurrentAttributes(hiddenSize: 4), initialState: true),
        RecurrentCase(name: "gru_linear_before_reset_bidirectional", kind: .gru,
                      attributes: RecurrentAttributes(hiddenSize: 3, direction: .bidirectional, linearBeforeReset: true), lengths: [1, 5, 3]),
        RecurrentCase(name: "gru_reverse_custom", kind: .gru,
                      attributes: RecurrentAttributes(hiddenSize: 2, direction: .reverse, activations: [.hardSigmoid(alpha: 1.0 / 6, beta: 0.5), .softsign])),
        RecurrentCase(name: "rnn_forward", kind: .rnn, attributes: RecurrentAttributes(hiddenSize: 5), initialState: true),
        RecurrentCase(name: "rnn_bidirectional_relu_clip", kind: .rnn,
                      attributes: RecurrentAttributes(hiddenSize: 3, direction: .bidirectional, activations: [.relu, .leakyRelu(alpha: 0.1)], clip: 2),
                      lengths: [4, 5, 2], initialState: true),
    ]
}

@Suite struct RecurrentTests {
    @Test(arguments: RecurrentCase.all)
    func matchesEquations(_ c: RecurrentCase) throws {
        let inputs = c.inputs()
        let got = try ReferenceKernels.evaluate(c.op, inputs)
        let lens = c.lengths
        let want = naiveRecurrent(c.kind, c.attributes, x: inputs[0]!, w: inputs[1]!, r: inputs[2]!, b: inputs[3],
                                  lens: lens, h0: inputs[5], c0: inputs.count > 6 ? inputs[6] : nil, p: inputs.count > 7 ? inputs[7] : nil)
        #expect(got.count == want.count)
        for (g, w) in zip(got, want) { expectClose(g, w, atol: 1e-5) }
        let types = try c.op.inferOutputTypes(inputs.map { $0?.type })
        #expect(types.map { $0.shape.fixedSizes! } == got.map(\.shape))
    }

    /// layout 1 is layout 0 with the batch axis first in X, Y and the states.
    @Test(arguments: RecurrentCase.all.filter { $0.initialState })
    func batchFirstLayout(_ c: RecurrentCase) throws {
        let inputs = c.inputs()
        let seqFirst = try ReferenceKernels.evaluate(c.op, inputs)
        var b = c
        b.attributes.layout = 1
        var moved = inputs
        moved[0] = try ReferenceKernels.transpose(inputs[0]!, perm: [1, 0, 2])
        for i in [5, 6] where i < moved.count { moved[i] = try moved[i].map { try ReferenceKernels.transpose($0, perm: [1, 0, 2]) } }
        let batchFirst = try ReferenceKernels.evaluate(b.op, moved)
        #expect(batchFirst[0] == (try ReferenceKernels.transpose(seqFirst[0], perm: [2, 0, 1, 3])))
        for i in 1..<seqFirst.count { #expect(batchFirst[i] == (try ReferenceKernels.transpose(seqFirst[i], perm: [1, 0, 2]))) }
    }

    @Test func unusedOutputsInAGraph() throws {
        // Y unused (""), only Y_h read: the ONNX convention Keras return_sequences=False exports use.
        var b = GraphBuilder(name: "gru")
        let x = b.addInput("x", TensorType(.float32, Shape([.fixed(5), .symbolic("N"), .fixed(4)])))
        let w = b.addInitializer("W", randomTensor([1, 9, 4], seed: 1))
        let r = b.addInitializer("R", randomTensor([1, 9, 3], seed: 2))
        let outs = b.add(.gru(RecurrentAttributes(hiddenSize: 3, linearBeforeReset: true)), inputs: [x, w, r], outputs: ["", "h"],
                         origin: Origin(layer: "gru", type: "GRU"))
        b.addOutput(outs[1])
        let g = try b.finish()
        #expect(g.outputs[0].type.shape == Shape([.fixed(1), .symbolic("N"), .fixed(3)]))
        #expect(g.estimatedFLOPs(batch: 2) != nil)
        let input = randomTensor([5, 2, 4], seed: 3)
        let result = try ReferenceRuntime(graph: g).run(["x": input])
        let full = try ReferenceKernels.evaluate(g.nodes[0].op, [input, g.initializers["W"], g.initializers["R"]])
        #expect(result["h"] == full[1])
        // Non-recurrent ops may not leave outputs unnamed.
        var bad = g
        bad.nodes.append(Node(name: "t", op: .transpose(perm: [1, 0, 2]), inputs: ["h"], outputs: [""]))
        #expect(throws: FerryError.self) { try bad.verify() }
    }

    @Test func rejectsBadShapesAndLengths() throws {
        let c = RecurrentCase.all[1]
        var inputs = c.inputs()
        inputs[4] = try Tensor(shape: [3], storage: .int32([6, 1, 1]))
        #expect(throws: FerryError.self) { try ReferenceKernels.evaluate(c.op, inputs) }
        inputs = c.inputs()
        inputs[2] = randomTensor([2, 16, 3], seed: 1)
        #expect(throws: FerryError.self) { try ReferenceKernels.evaluate(c.op, inputs) }
        #expect(throws: FerryError.self) {
            try Op.lstm(RecurrentAttributes(hiddenSize: 4, activations: [.tanh, .tanh])).inferOutputTypes(c.inputs().map { $0?.type })
        }
        #expect(throws: FerryError.self) {
            try Op.rnn(RecurrentAttributes(hiddenSize: 4, linearBeforeReset: true)).inferOutputTypes(c.inputs().map { $0?.type })
        }
    }
}
