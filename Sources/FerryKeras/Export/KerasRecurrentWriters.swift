import Foundation
import FerryIR

/// The IR's recurrent ops as Keras layers: RNN -> SimpleRNN, LSTM -> LSTM, GRU -> GRU (one
/// direction; `reverse` is `go_backwards`), in the form the Keras importer writes them: batch
/// first (layout 1), the sequence output squeezed (and, running backwards, reversed in time as
/// Keras returns it), the final states squeezed, initial states unsqueezed from (batch, units).
/// The weights go back to Keras's gate order and bias rows bit for bit.
struct KerasRecurrentKind {
    var className: String
    /// The cell whose weights the layer holds (`<layer>/<cell>/kernel:0`).
    var cellName: String
    /// For each ONNX gate, the Keras gate it is: LSTM Keras (i, f, c, o) vs ONNX (i, o, f, c).
    var gateOrder: [Int]
    var stateCount: Int

    static func of(_ op: Op) -> (KerasRecurrentKind, RecurrentAttributes)? {
        switch op {
        case .rnn(let a): return (KerasRecurrentKind(className: "SimpleRNN", cellName: "simple_rnn_cell", gateOrder: [0], stateCount: 1), a)
        case .lstm(let a): return (KerasRecurrentKind(className: "LSTM", cellName: "lstm_cell", gateOrder: [0, 3, 1, 2], stateCount: 2), a)
        case .gru(let a): return (KerasRecurrentKind(className: "GRU", cellName: "gru_cell", gateOrder: [0, 1, 2], stateCount: 1), a)
        default: return nil
        }
    }
}

/// The Keras activation name computing an ONNX recurrent activation function exactly in both
/// Keras versions (hard_sigmoid is not: Keras 2 reads clip(0.2 x + 0.5), Keras 3 relu6(x + 3) / 6).
func kerasRecurrentActivationName(_ f: ActivationFunction) -> String? {
    switch f {
    case .sigmoid: return "sigmoid"
    case .tanh: return "tanh"
    case .relu: return "relu"
    case .affine(1, 0): return "linear"
    case .softsign: return "softsign"
    case .softplus: return "softplus"
    case .elu(1): return "elu"
    default: return nil
    }
}

extension KerasExportContext {
    /// The value an initial state of the recurrent node reads: the (batch, units) value the
    /// importer unsqueezed, by a node of the same source layer.
    func unsqueezedState(_ value: String) -> String? {
        guard let i = graph.nodes.firstIndex(where: { $0.outputs.contains(value) }) else { return nil }
        if case .unsqueeze([1]) = graph.nodes[i].op, graph.nodes[i].origins.first?.layer == node.origins.first?.layer {
            return graph.nodes[i].inputs[0]
        }
        // Another recurrent op's final state as it comes out (batch, 1, units), where the optimizer
        // cancelled the importer's Squeeze and Unsqueeze between them: that op's squeezed state.
        guard KerasRecurrentKind.of(graph.nodes[i].op) != nil else { return nil }
        return (consumers[value] ?? []).lazy.compactMap { r -> String? in
            if case .squeeze([1]) = self.graph.nodes[r].op { return self.graph.nodes[r].outputs[0] }
            return nil
        }.first
    }

    /// The readers of `value` (node indices), all later nodes of the current source layer, or nil.
    func sameLayerReaders(of value: String, besidesInitialStates: Bool = false) -> [Int]? {
        guard !value.isEmpty else { return [] }
        guard !isGraphOutput(value) else { return nil }
        var readers = consumers[value] ?? []
        if besidesInitialStates {
            // Later recurrent ops reading a final state as their initial state (an ONNX file's
            // form, the Squeeze and Unsqueeze between them cancelled) read the squeezed state.
            readers.removeAll { r in
                let n = graph.nodes[r]
                return KerasRecurrentKind.of(n.op) != nil && n.inputs.indices.allSatisfy { n.inputs[$0] != value || $0 >= 5 }
            }
        }
        guard readers.allSatisfy({ $0 > index && !absorbed.contains($0) && graph.nodes[$0].origins.first?.layer == node.origins.first?.layer })
        else { return nil }
        return readers
    }
}

/// An Unsqueeze of a recurrent layer's initial state is part of that layer (written with it);
/// the Keras importer's RepeatVector (an Unsqueeze of axis 1 and a Tile of one source layer) is
/// a RepeatVector.
func writeKerasUnsqueeze(_ ctx: inout KerasExportContext, _ node: Node) throws {
    if case .unsqueeze([1]) = node.op, try ctx.rank(node.inputs[0]) == 2, let t = ctx.soleSameLayerReader(of: node.outputs[0]),
       case .tile(let repeats) = t.node.op, repeats.count == 3, repeats[0] == 1, repeats[2] == 1 {
        let x = try ctx.input(node.inputs[0], layout: [0, 1])
        ctx.absorbed.insert(t.index)
        ctx.add("RepeatVector", config: ["n": repeats[1]], inbound: [x], output: t.node.outputs[0], layout: [0, 1, 2])
        return
    }
    let readers = ctx.consumers[node.outputs[0]] ?? []
    let isInitialState = !readers.isEmpty && !ctx.isGraphOutput(node.outputs[0]) && readers.allSatisfy { r in
        let reader = ctx.graph.nodes[r]
        guard KerasRecurrentKind.of(reader.op) != nil, reader.origins.first?.layer == node.origins.first?.layer else { return false }
        return reader.inputs.indices.filter { reader.inputs[$0] == node.outputs[0] }.allSatisfy { $0 >= 5 }
    }
    guard isInitialState else { throw ctx.error("Keras has no built-in layer for Unsqueeze") }
}

/// Keras (rows, gates * units) from ONNX (gates * units, rows), the gates back in Keras's order.
func kerasGatesMinor(_ onnx: ArraySlice<Float>, rows: Int, units: Int, gateOrder: [Int]) -> [Float] {
    let v = Array(onnx)
    let g = gateOrder.count
    var out = [Float](repeating: 0, count: v.count)
    for (j, k) in gateOrder.enumerated() {
        for i in 0..<units {
            for r in 0..<rows { out[r * g * units + k * units + i] = v[(j * units + i) * rows + r] }
        }
    }
    return out
}

/// One direction's Keras weights (kernel, recurrent_kernel, bias) from ONNX W, R, B, and
/// whether the bias takes two rows (GRU reset_after).
func kerasRecurrentWeights(_ ctx: KerasExportContext, kind: KerasRecurrentKind, units: Int, features: Int,
                           w: Tensor, r: Tensor, b: Tensor?, direction d: Int, resetAfter: Bool) throws -> [(String, Tensor)] {
    let g = kind.gateOrder.count * units
    let wf = w.floats, rf = r.floats
    var out: [(String, Tensor)] = [
        ("\(kind.cellName)/kernel", Tensor(shape: [features, g],
                                           floats: kerasGatesMinor(wf[(d * g * features)..<((d + 1) * g * features)], rows: features,
                                                                   units: units, gateOrder: kind.gateOrder))),
        ("\(kind.cellName)/recurrent_kernel", Tensor(shape: [units, g],
                                                     floats: kerasGatesMinor(rf[(d * g * units)..<((d + 1) * g * units)], rows: units,
                                                                             units: units, gateOrder: kind.gateOrder))),
    ]
    guard let b else { return out }
    let bf = Array(b.floats[(d * 2 * g)..<((d + 1) * 2 * g)])
    let inputBias = kerasGatesMinor(bf[0..<g], rows: 1, units: units, gateOrder: kind.gateOrder)
    let recurrentBias = kerasGatesMinor(bf[g..<(2 * g)], rows: 1, units: units, gateOrder: kind.gateOrder)
    if resetAfter {
        out.append(("\(kind.cellName)/bias", Tensor(shape: [2, g], floats: inputBias + recurrentBias)))
    } else {
        guard recurrentBias.allSatisfy({ $0 == 0 }) else {
            throw ctx.error("a recurrent bias (ONNX Rb) besides the input bias: Keras's \(kind.className) holds one bias row")
        }
        out.append(("\(kind.cellName)/bias", Tensor(shape: [g], floats: inputBias)))
    }
    return out
}

/// The Keras config of one recurrent layer of `kind`.
func kerasRecurrentConfig(_ ctx: KerasExportContext, kind: KerasRecurrentKind, _ a: RecurrentAttributes, activations: [ActivationFunction],
                          useBias: Bool, returnSequences: Bool, returnState: Bool, goBackwards: Bool) throws -> [String: Any] {
    let names = activations.map(kerasRecurrentActivationName)
    for (f, name) in zip(activations, names) where name == nil {
        if case .hardSigmoid = f {
            throw ctx.error("recurrent activation \(f): Keras's hard_sigmoid is clip(0.2 x + 0.5) in Keras 2 and relu6(x + 3) / 6 in Keras 3, "
                            + "so no file means it in both")
        }
        throw ctx.error("recurrent activation \(f) has no Keras name")
    }
    var config: [String: Any] = [
        "units": a.hiddenSize, "use_bias": useBias, "return_sequences": returnSequences, "return_state": returnState,
        "go_backwards": goBackwards, "stateful": false, "unroll": false,
    ]
    switch kind.className {
    case "LSTM":
        guard names[1] == names[2] else { throw ctx.error("LSTM cell and hidden activations differ; Keras's LSTM takes one activation") }
        config["recurrent_activation"] = names[0]
        config["activation"] = names[1]
        config["unit_forget_bias"] = true
    case "GRU":
        config["recurrent_activation"] = names[0]
        config["activation"] = names[1]
        config["reset_after"] = a.linearBeforeReset
    default:
        config["activation"] = names[0]
    }
    return config
}

/// The ONNX activation functions of one direction, ONNX's defaults spelled out.
func recurrentActivations(_ kind: KerasRecurrentKind, _ a: RecurrentAttributes, direction d: Int) -> [ActivationFunction] {
    let defaults: [ActivationFunction] = kind.className == "LSTM" ? [.sigmoid, .tanh, .tanh]
        : kind.className == "GRU" ? [.sigmoid, .tanh] : [.tanh]
    let n = defaults.count
    if a.activations.isEmpty { return defaults }
    if a.activations.count == n { return a.activations }
    return Array(a.activations[(d * n)..<((d + 1) * n)])
}

/// RNN / LSTM / GRU (forward or reverse, batch first) -> SimpleRNN / LSTM / GRU.
func writeKerasRecurrent(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard let (kind, a) = KerasRecurrentKind.of(node.op) else { return }
    guard a.direction != .bidirectional else { return try writeKerasBidirectional(&ctx, node, kind: kind, a) }
    let (w, r, b) = try kerasRecurrentOperands(ctx, node, a)
    let units = a.hiddenSize, features = w.shape[2]
    let goBackwards = a.direction == .reverse
    // The Keras outputs: the sequence (or the last step), then the states.
    let outputs = node.outputs + Array(repeating: "", count: max(0, 3 - node.outputs.count))
    guard let yReaders = ctx.sameLayerReaders(of: outputs[0]), let hReaders = ctx.sameLayerReaders(of: outputs[1], besidesInitialStates: true),
          let cReaders = ctx.sameLayerReaders(of: outputs[2], besidesInitialStates: true) else {
        throw ctx.error("the op's outputs are read outside its layer's squeezes; Keras's \(kind.className) returns (batch, ...) tensors")
    }
    func squeezes(_ readers: [Int], axis: Int) throws -> [Int] {
        for i in readers {
            guard case .squeeze([axis]) = ctx.graph.nodes[i].op else {
                throw ctx.error("an output read by \(ctx.graph.nodes[i].op.name); the importer's form squeezes it")
            }
        }
        return readers
    }
    let sequence = try squeezes(yReaders, axis: 2)
    let hs = try squeezes(hReaders, axis: 1), cs = try squeezes(cReaders, axis: 1)
    guard sequence.count <= 1 else { throw ctx.error("the sequence is squeezed twice") }
    let returnSequences = !sequence.isEmpty
    var absorbed = sequence + hs + cs
    var first: String
    var states: [[String]] = [[], []]
    if let s = sequence.first {
        first = ctx.graph.nodes[s].outputs[0]
        if goBackwards {
            // Keras returns a backward layer's sequence in processing order: the importer's reversal.
            guard let readers = ctx.sameLayerReaders(of: first), readers.count == 1,
                  case .slice(let sl) = ctx.graph.nodes[readers[0]].op, sl.axes == [1], sl.steps == [-1], sl.starts == [-1] else {
                throw ctx.error("a reverse sequence in time order: Keras's go_backwards returns it reversed")
            }
            absorbed.append(readers[0])
            first = ctx.graph.nodes[readers[0]].outputs[0]
        }
        states[0] = hs.map { ctx.graph.nodes[$0].outputs[0] }
    } else {
        guard let h = hs.first else { throw ctx.error("no output of the op is read") }
        first = ctx.graph.nodes[h].outputs[0]
        states[0] = hs.dropFirst().map { ctx.graph.nodes[$0].outputs[0] }
    }
    states[1] = cs.map { ctx.graph.nodes[$0].outputs[0] }
    let returnState = !states[0].isEmpty || !states[1].isEmpty
    // Inputs: the sequence, then the initial states as (batch, units).
    var inbound = [try ctx.input(node.inputs[0], layout: [0, 1, 2])]
    let initial = (5..<(5 + kind.stateCount)).map { node.inputs.count > $0 ? node.inputs[$0] : "" }
    if initial.contains(where: { !$0.isEmpty }) {
        guard initial.allSatisfy({ !$0.isEmpty }) else { throw ctx.error("Keras's \(kind.className) takes all its initial states or none") }
        for v in initial {
            guard let state = ctx.unsqueezedState(v) else { throw ctx.error("an initial state not of the importer's (batch, units) form") }
            inbound.append(try ctx.input(state, layout: [0, 1]))
        }
    }
    let config = try kerasRecurrentConfig(ctx, kind: kind, a, activations: recurrentActivations(kind, a, direction: 0), useBias: b != nil,
                                          returnSequences: returnSequences, returnState: returnState, goBackwards: goBackwards)
    let weights = try kerasRecurrentWeights(ctx, kind: kind, units: units, features: features, w: w, r: r, b: b, direction: 0,
                                            resetAfter: a.linearBeforeReset)
    for i in absorbed { ctx.absorbed.insert(i) }
    ctx.add(kind.className, config: config, inbound: inbound, weights: weights, output: first,
            layout: Array(0..<(returnSequences ? 3 : 2)))
    let ref = ctx.tensor[first]!
    for (s, values) in states.enumerated() {
        for v in values {
            ctx.tensor[v] = KerasTensorRef(layer: ref.layer, node: ref.node, tensor: s + 1)
            ctx.layout[v] = [0, 1]
        }
    }
}

/// The checks every recurrent op written as Keras passes: batch first, no clip, no coupled
/// gates, no sequence lengths, no peepholes, constant weights. Returns W, R and B.
func kerasRecurrentOperands(_ ctx: KerasExportContext, _ node: Node, _ a: RecurrentAttributes) throws -> (w: Tensor, r: Tensor, b: Tensor?) {
    guard a.layout == 1 else { throw ctx.error("a sequence-first recurrent op (layout 0): Keras's recurrent layers take (batch, time, features)") }
    guard a.clip == nil, !a.inputForget else { throw ctx.error("clip and input_forget have no Keras form") }
    guard node.inputs.count <= 4 || node.inputs[4].isEmpty else { throw ctx.error("sequence lengths have no Keras form (Keras masks instead)") }
    guard node.inputs.count <= 7 || node.inputs[7].isEmpty else { throw ctx.error("LSTM peepholes have no Keras form") }
    guard let w = ctx.constant(node.inputs[1]), let r = ctx.constant(node.inputs[2]) else { throw ctx.error("W and R must be constants") }
    let hasBias = node.inputs.count > 3 && !node.inputs[3].isEmpty
    let b = hasBias ? ctx.constant(node.inputs[3]) : nil
    if hasBias && b == nil { throw ctx.error("B must be a constant") }
    return (w, r, b)
}

/// Bidirectional RNN / LSTM / GRU (batch first) -> Bidirectional over SimpleRNN / LSTM / GRU, in
/// the importer's form: the merge (`concat` a Reshape, `sum` and `ave` a reduction over the
/// direction axis, `mul` a product of the two directions, None both), then each direction's
/// states sliced and squeezed. The inner layer takes the name the Keras source gave it
/// (`keras_wrapped_layers` metadata).
func writeKerasBidirectional(_ ctx: inout KerasExportContext, _ node: Node, kind: KerasRecurrentKind, _ a: RecurrentAttributes) throws {
    let (w, r, b) = try kerasRecurrentOperands(ctx, node, a)
    let units = a.hiddenSize, features = w.shape[2]
    let outputs = node.outputs + Array(repeating: "", count: max(0, 3 - node.outputs.count))
    guard let yReaders = ctx.sameLayerReaders(of: outputs[0]), let hReaders = ctx.sameLayerReaders(of: outputs[1], besidesInitialStates: true),
          let cReaders = ctx.sameLayerReaders(of: outputs[2], besidesInitialStates: true) else {
        throw ctx.error("the op's outputs are read outside its layer's merge and state slices")
    }
    let returnSequences = !yReaders.isEmpty
    let axis = returnSequences ? 2 : 1
    let graph = ctx.graph
    /// The direction a Slice of one direction along `axis` takes.
    func direction(_ i: Int, axis: Int) -> Int? {
        guard case .slice(let s) = graph.nodes[i].op, s.axes == [axis], s.starts.count == 1, (0...1).contains(s.starts[0]),
              s.ends == [s.starts[0] + 1], s.steps.allSatisfy({ $0 == 1 }) else { return nil }
        return s.starts[0]
    }
    /// The Squeeze of `axis` reading node i's output, its only reader in the layer.
    func squeeze(after i: Int, axis: Int) -> Int? {
        guard let readers = ctx.sameLayerReaders(of: graph.nodes[i].outputs[0]), readers.count == 1,
              case .squeeze([axis]) = graph.nodes[readers[0]].op else { return nil }
        return readers[0]
    }
    var remaining = (returnSequences ? yReaders : hReaders).sorted()
    guard let first = remaining.first else { throw ctx.error("no output of the op is read") }
    var absorbed: [Int] = []
    var merged: [String] = []
    var mergeMode: String?
    switch graph.nodes[first].op {
    case .reshape(let shape, _) where shape == (returnSequences ? [0, 0, 2 * units] : [0, 2 * units]):
        mergeMode = "concat"
    case .reduce(.sum, [axis]?, false):
        mergeMode = "sum"
    case .reduce(.mean, [axis]?, false):
        mergeMode = "ave"
    case .slice:
        guard remaining.count >= 2, direction(remaining[0], axis: axis) == 0, direction(remaining[1], axis: axis) == 1,
              let s0 = squeeze(after: remaining[0], axis: axis), let s1 = squeeze(after: remaining[1], axis: axis) else {
            throw ctx.error("the directions are sliced in a form Keras's Bidirectional does not merge")
        }
        absorbed += [remaining[0], remaining[1], s0, s1]
        let (v0, v1) = (graph.nodes[s0].outputs[0], graph.nodes[s1].outputs[0])
        if let m0 = ctx.sameLayerReaders(of: v0), let m1 = ctx.sameLayerReaders(of: v1), m0.count == 1, m0 == m1,
           case .mul = graph.nodes[m0[0]].op, Set(graph.nodes[m0[0]].inputs) == [v0, v1] {
            mergeMode = "mul"
            absorbed.append(m0[0])
            merged = [graph.nodes[m0[0]].outputs[0]]
        } else {
            merged = [v0, v1]
        }
        remaining.removeFirst(2)
    default:
        throw ctx.error("the directions are merged by \(graph.nodes[first].op.name), not one of Keras's merge modes")
    }
    if merged.isEmpty {
        absorbed.append(first)
        merged = [graph.nodes[first].outputs[0]]
        remaining.removeFirst()
    }
    // The states: direction d's state i is Keras output merged.count + d * stateCount + i.
    var states = Array(repeating: [String](), count: 2 * kind.stateCount)
    for (readers, i) in [(returnSequences ? hReaders : remaining, 0), (cReaders, 1)] {
        for reader in readers {
            guard let d = direction(reader, axis: 1), let s = squeeze(after: reader, axis: 1) else {
                throw ctx.error("a state read in a form other than the importer's slice of one direction")
            }
            absorbed += [reader, s]
            states[d * kind.stateCount + i].append(graph.nodes[s].outputs[0])
        }
    }
    let activations = recurrentActivations(kind, a, direction: 0)
    guard recurrentActivations(kind, a, direction: 1) == activations else {
        throw ctx.error("the two directions' activations differ; Keras's Bidirectional runs one layer's copy backwards")
    }
    let wrapped = (graph.metadata["keras_wrapped_layers"]?.data(using: .utf8))
        .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: String] } ?? [:]
    let inner = wrapped[node.origins.first?.layer ?? ""] ?? kind.className.lowercased()
    var innerConfig = try kerasRecurrentConfig(ctx, kind: kind, a, activations: activations, useBias: b != nil,
                                               returnSequences: returnSequences, returnState: states.contains { !$0.isEmpty },
                                               goBackwards: false)
    innerConfig["name"] = inner
    innerConfig["trainable"] = true
    innerConfig["dtype"] = "float32"
    var weights: [(String, Tensor)] = []
    for (d, prefix) in ["forward_", "backward_"].enumerated() {
        weights += try kerasRecurrentWeights(ctx, kind: kind, units: units, features: features, w: w, r: r, b: b, direction: d,
                                             resetAfter: a.linearBeforeReset).map { ("\(prefix)\(inner)/\($0.0)", $0.1) }
    }
    let x = try ctx.input(node.inputs[0], layout: [0, 1, 2])
    guard !node.inputs.indices.contains(5) || node.inputs[5...].allSatisfy({ $0.isEmpty }) else {
        throw ctx.error("initial states of a bidirectional layer are not written yet")
    }
    for i in absorbed { ctx.absorbed.insert(i) }
    let rank = returnSequences ? 3 : 2
    ctx.add("Bidirectional", config: [
        "layer": ["module": "keras.layers", "class_name": kind.className, "config": innerConfig, "registered_name": NSNull()] as [String: Any],
        "merge_mode": mergeMode.map { $0 as Any } ?? NSNull(),
    ], inbound: [x], weights: weights, output: merged[0], layout: Array(0..<rank))
    let ref = ctx.tensor[merged[0]]!
    for (k, values) in ([Array(merged.dropFirst())] + states).enumerated() {
        for v in values {
            ctx.tensor[v] = KerasTensorRef(layer: ref.layer, node: ref.node, tensor: k == 0 ? 1 : merged.count + k - 1)
            ctx.layout[v] = Array(0..<(k == 0 ? rank : 2))
        }
    }
}

extension Graph {
    /// The ONNX exporter's form of a batch-first recurrent op (Transposes to sequence-first
    /// around a layout-0 op: X and the initial states by [1, 0, 2], Y back by [2, 0, 1, 3], the
    /// final states by [1, 0, 2]) back as the batch-first op the Keras importer makes (layout 1),
    /// which the recurrent writers map to Keras layers. Other sequence-first ops stay as they are.
    func batchFirstRecurrentOps() -> Graph {
        var g = self
        let producers = g.producerIndices()
        let readers = g.consumerIndices()
        let graphOutputs = Set(g.outputs.map(\.name))
        var dropped = Set<Int>()
        var inputTransposes = Set<Int>()
        for i in g.nodes.indices {
            var n = g.nodes[i]
            guard let (_, a) = KerasRecurrentKind.of(n.op), a.layout == 0, n.inputs.count <= 4 || n.inputs[4].isEmpty else { continue }
            func transpose(_ v: String, _ perm: [Int]) -> Int? {
                guard let p = producers[v], case .transpose(let q) = g.nodes[p].op, q == perm else { return nil }
                return p
            }
            let states = [5, 6].filter { n.inputs.count > $0 && !n.inputs[$0].isEmpty }
            guard let x = transpose(n.inputs[0], [1, 0, 2]) else { continue }
            let stateTransposes = states.compactMap { transpose(n.inputs[$0], [1, 0, 2]) }
            guard stateTransposes.count == states.count else { continue }
            var outputTransposes: [Int?] = []
            for (k, o) in n.outputs.enumerated() {
                if o.isEmpty { outputTransposes.append(nil); continue }
                let r = readers[o] ?? []
                guard !graphOutputs.contains(o), r.count == 1, case .transpose(let q) = g.nodes[r[0]].op,
                      q == (k == 0 ? [2, 0, 1, 3] : [1, 0, 2]) else { break }
                outputTransposes.append(r[0])
            }
            guard outputTransposes.count == n.outputs.count else { continue }
            var batchFirst = a
            batchFirst.layout = 1
            switch n.op {
            case .rnn: n.op = .rnn(batchFirst)
            case .lstm: n.op = .lstm(batchFirst)
            default: n.op = .gru(batchFirst)
            }
            n.inputs[0] = g.nodes[x].inputs[0]
            for (j, t) in zip(states, stateTransposes) { n.inputs[j] = g.nodes[t].inputs[0] }
            for (k, t) in outputTransposes.enumerated() {
                guard let t else { continue }
                n.outputs[k] = g.nodes[t].outputs[0]
                dropped.insert(t)
            }
            g.nodes[i] = n
            inputTransposes.insert(x)
            inputTransposes.formUnion(stateTransposes)
        }
        if dropped.isEmpty { return self }
        g.nodes = g.nodes.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
        // The input Transposes no other node reads go too.
        let stillRead = g.consumerIndices()
        let unread = Set(inputTransposes.map { self.nodes[$0].outputs[0] }.filter { (stillRead[$0] ?? []).isEmpty && !graphOutputs.contains($0) })
        g.nodes.removeAll { n in
            if case .transpose = n.op { return unread.contains(n.outputs[0]) }
            return false
        }
        return g
    }
}
