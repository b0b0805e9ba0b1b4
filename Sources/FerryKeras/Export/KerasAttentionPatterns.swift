import Foundation
import FerryIR

/// Keras's Attention layer found again in the ops the Keras importer makes for it, without its
/// record: in an ONNX file Ferry wrote (whose nodes the optimizer may have shared between two
/// layers computing the same scores, so the records no longer match), or any graph holding the
/// same sequence. Dot scores: softmax(query · keyᵀ (× scale) (+ causal mask)) · value; concat
/// scores: softmax(concat_score_weight × Σ tanh((query_i + key_j) (× scale))) · value. With
/// `mask=[query_mask, value_mask]` the importer hides keys by subtracting
/// 1e9 × float(not(value_mask rows (and the causal keep))) from the scores, and zeros hidden
/// queries' outputs by multiplying them by float(query_mask columns). Each pattern is written as
/// its own Attention layer; nodes two patterns share are computed by both.
struct AttentionPattern {
    var query: String
    var value: String
    var key: String
    var concat: Bool
    var scale: Tensor?
    var concatScoreWeight: Tensor?
    var causal: Bool
    /// The (batch, time) masks of `mask=[query_mask, value_mask]`, nil where that side is unmasked.
    var queryMask: String?
    var valueMask: String?
    /// The softmax output, when read outside the pattern (return_attention_scores).
    var weightsOut: String?
    var output: String
    var nodes: [Int]
}

/// The Attention patterns of `graph` outside `taken` nodes, by the index of their Softmax.
func attentionPatterns(_ graph: Graph, taken: Set<Int>, _ ctx: KerasExportContext) -> [Int: AttentionPattern] {
    let producers = graph.producerIndices()
    let readers = graph.consumerIndices()
    func made(_ v: String) -> (Int, Node)? {
        guard let i = producers[v], !taken.contains(i) else { return nil }
        return (i, graph.nodes[i])
    }
    func rank(_ v: String) -> Int? { ctx.types[v]?.shape.rank }
    /// A scalar float constant among a binary node's inputs, and the other input.
    func scalarOperand(_ n: Node) -> (other: String, constant: Tensor)? {
        for (a, b) in [(0, 1), (1, 0)] {
            if let c = ctx.constant(n.inputs[b]), c.count == 1, ctx.constant(n.inputs[a]) == nil { return (n.inputs[a], c) }
        }
        return nil
    }
    /// A mask as the importer reads it into the scores' axes: Unsqueeze(axis) of a (batch, time)
    /// tensor, cast to bool unless it is one; the mask and the nodes.
    func maskRead(_ v: String, axis: Int) -> (String, [Int])? {
        var v = v
        var nodes: [Int] = []
        if let (ci, cn) = made(v), case .cast(to: .bool) = cn.op {
            nodes.append(ci)
            v = cn.inputs[0]
        }
        guard let (ui, un) = made(v), case .unsqueeze(let axes) = un.op, axes == [axis], rank(un.inputs[0]) == 2,
              ctx.constant(un.inputs[0]) == nil else { return nil }
        return (un.inputs[0], nodes + [ui])
    }
    var found: [Int: AttentionPattern] = [:]
    for (s, node) in graph.nodes.enumerated() where !taken.contains(s) {
        guard case .softmax(let axis) = node.op, let r = rank(node.outputs[0]), r == 3, axis == -1 || axis == 2 else { continue }
        let weights = node.outputs[0]
        // The output: the one MatMul of the weights by the values.
        let out = (readers[weights] ?? []).filter { i in
            if case .matMul = graph.nodes[i].op { return graph.nodes[i].inputs[0] == weights && !taken.contains(i) }
            return false
        }
        guard out.count == 1, let value = Optional(graph.nodes[out[0]].inputs[1]), rank(value) == 3, ctx.constant(value) == nil else { continue }
        var nodes = [s, out[0]]
        var v = node.inputs[0]
        var causal = false
        var valueMask: String?
        if let (i, n) = made(v), case .add = n.op, let (other, mask) = causalMaskOperand(n, ctx) {
            causal = true
            nodes.append(i)
            v = other
            _ = mask
        } else if let (i, n) = made(v), case .sub = n.op, let (pi, pn) = made(n.inputs[1]), case .mul = pn.op,
                  let (hidden, large) = scalarOperand(pn), large.floats == [1e9],
                  let (fi, fn) = made(hidden), case .cast(to: .float32) = fn.op, let (ni, nn) = made(fn.inputs[0]), case .not = nn.op {
            // Keys hidden by the value mask: scores − 1e9 × float(not(keep)).
            var keep = nn.inputs[0]
            var extra = [i, pi, fi, ni]
            if let (ai, an) = made(keep), case .and = an.op, let other = causalKeepOperand(an, ctx) {
                causal = true
                keep = other
                extra.append(ai)
            }
            guard let (mask, maskNodes) = maskRead(keep, axis: 1) else { continue }
            valueMask = mask
            nodes += extra + maskNodes
            v = n.inputs[0]
        }
        var pattern: AttentionPattern?
        if let (i, n) = made(v), case .mul = n.op, let (other, c) = scalarOperand(n),
           let (ri, rn) = made(other), case .reduce(.sum, let axes, false) = rn.op, axes == [-1] || axes == [3],
           let (ti, tn) = made(rn.inputs[0]), case .tanh = tn.op {
            // Concat scores: concat_score_weight × Σ tanh((q_i + k_j) (× scale)).
            var sum = tn.inputs[0]
            var scale: Tensor?
            var extra = [i, ri, ti]
            if let (mi, mn) = made(sum), case .mul = mn.op, let (o, sc) = scalarOperand(mn) {
                scale = sc
                sum = o
                extra.append(mi)
            }
            guard let (ai, an) = made(sum), case .add = an.op,
                  let (qi, qn) = made(an.inputs[0]), case .unsqueeze([2]) = qn.op,
                  let (ki, kn) = made(an.inputs[1]), case .unsqueeze([1]) = kn.op else { continue }
            extra += [ai, qi, ki]
            pattern = AttentionPattern(query: qn.inputs[0], value: value, key: kn.inputs[0], concat: true, scale: scale,
                                       concatScoreWeight: c, causal: causal, weightsOut: nil, output: graph.nodes[out[0]].outputs[0],
                                       nodes: nodes + extra)
        } else {
            // Dot scores: query · keyᵀ (× scale).
            var scores = v
            var scale: Tensor?
            var extra: [Int] = []
            if let (i, n) = made(v), case .mul = n.op, let (other, c) = scalarOperand(n) {
                scale = c
                scores = other
                extra.append(i)
            }
            guard let (mi, mn) = made(scores), case .matMul = mn.op, let (ti, tn) = made(mn.inputs[1]), case .transpose([0, 2, 1]) = tn.op,
                  rank(mn.inputs[0]) == 3 else { continue }
            extra += [mi, ti]
            pattern = AttentionPattern(query: mn.inputs[0], value: value, key: tn.inputs[0], concat: false, scale: scale,
                                       concatScoreWeight: nil, causal: causal, weightsOut: nil, output: graph.nodes[out[0]].outputs[0],
                                       nodes: nodes + extra)
        }
        guard var p = pattern, ctx.constant(p.query) == nil, ctx.constant(p.key) == nil else { continue }
        p.valueMask = valueMask
        // Hidden queries' outputs zeroed: output × float(query_mask columns), the output's one reader.
        if let readOnce = readers[p.output], readOnce.count == 1, !ctx.isGraphOutput(p.output),
           let (mi, mn) = made(graph.nodes[readOnce[0]].outputs[0]), case .mul = mn.op {
            for (a, b) in [(0, 1), (1, 0)] where mn.inputs[a] == p.output {
                guard let (fi, fn) = made(mn.inputs[b]), case .cast(to: .float32) = fn.op,
                      let (mask, maskNodes) = maskRead(fn.inputs[0], axis: 2) else { continue }
                p.queryMask = mask
                p.output = mn.outputs[0]
                p.nodes += [mi, fi] + maskNodes
                break
            }
        }
        // The weights read elsewhere (or a model output) are the layer's second output.
        if ctx.isGraphOutput(weights) || (readers[weights] ?? []).count > 1 { p.weightsOut = weights }
        found[s] = p
    }
    // A pattern's inner values may be read only by nodes of patterns (shared scores), never by
    // another layer: else that reader would lose its input.
    let inside = Set(found.values.flatMap(\.nodes))
    return found.filter { _, p in
        let inner = p.nodes.flatMap { graph.nodes[$0].outputs }.filter { $0 != p.output && $0 != p.weightsOut }
        return inner.allSatisfy { v in !ctx.isGraphOutput(v) && (readers[v] ?? []).allSatisfy(inside.contains) }
    }
}

/// Keras's causal mask among an Add's inputs (0 where key <= query, -1e9 after), and the other input.
private func causalMaskOperand(_ n: Node, _ ctx: KerasExportContext) -> (String, Tensor)? {
    for (a, b) in [(0, 1), (1, 0)] {
        guard let c = ctx.constant(n.inputs[b]), ctx.constant(n.inputs[a]) == nil, c.rank == 2 else { continue }
        let (t, s) = (c.shape[0], c.shape[1])
        let f = c.floats
        let causal = (0..<t).allSatisfy { row in (0..<s).allSatisfy { col in f[row * s + col] == (col <= row ? 0 : -1e9) } }
        if causal { return (n.inputs[a], c) }
    }
    return nil
}

/// Keras's causal keep among an And's inputs (a bool constant, true where key <= query), and the other input.
private func causalKeepOperand(_ n: Node, _ ctx: KerasExportContext) -> String? {
    for (a, b) in [(0, 1), (1, 0)] {
        guard let c = ctx.graph.initializers[n.inputs[b]], c.rank == 2, case .bool(let keep) = c.storage,
              ctx.graph.initializers[n.inputs[a]] == nil else { continue }
        let (t, s) = (c.shape[0], c.shape[1])
        if (0..<t).allSatisfy({ row in (0..<s).allSatisfy { col in keep[row * s + col] == (col <= row) } }) { return n.inputs[a] }
    }
    return nil
}

extension KerasExportContext {
    /// Writes an Attention pattern as Attention([query, value(, key)]) with its scale and
    /// concat weight, `use_causal_mask` and `return_attention_scores` as call options.
    mutating func writeAttentionPattern(_ p: AttentionPattern) throws {
        var inbound = [try input(p.query, layout: [0, 1, 2]), try input(p.value, layout: [0, 1, 2])]
        if p.key != p.value { inbound.append(try input(p.key, layout: [0, 1, 2])) }
        var weights: [(String, Tensor)] = []
        if let s = p.scale { weights.append(("scale", s.reshaped([]))) }
        if let c = p.concatScoreWeight { weights.append(("concat_score_weight", c.reshaped([]))) }
        add("Attention", config: ["use_scale": p.scale != nil, "score_mode": p.concat ? "concat" : "dot", "dropout": 0.0],
            inbound: inbound, weights: weights, output: p.output, layout: [0, 1, 2])
        let out = tensor[p.output]!
        var arguments: [String: KerasCallArgument] = [:]
        if p.causal { arguments["use_causal_mask"] = .flag(true) }
        if p.queryMask != nil || p.valueMask != nil {
            arguments["mask"] = .tensors([try p.queryMask.map { try input($0, layout: [0, 1]) },
                                          try p.valueMask.map { try input($0, layout: [0, 1]) }])
        }
        if let w = p.weightsOut {
            arguments["return_attention_scores"] = .flag(true)
            tensor[w] = KerasTensorRef(layer: out.layer, node: out.node, tensor: 1)
            layout[w] = [0, 1, 2]
        }
        if !arguments.isEmpty, let i = layers.firstIndex(where: { $0.name == out.layer }) {
            while layers[i].callArguments.count < layers[i].calls.count { layers[i].callArguments.append([:]) }
            layers[i].callArguments[out.node] = arguments
        }
    }
}
