import FerryIR

/// The element order a model's image-like inputs and outputs are given in.
public enum InterfaceLayout: String, Sendable, CaseIterable {
    /// As the source model has it (Keras: channels last).
    case source
    /// Channels first (N, C, spatial...), like the graph inside: a converted Keras model then
    /// needs no Transpose at all.
    case nchw
}

extension Graph {
    /// The graph with every channels-last input and output turned channels first. An input is
    /// channels last when, through layout-blind ops, it reaches a Transpose moving its last
    /// axis to position 1 (the Keras importer's edge transpose); an output when it comes from
    /// the inverse Transpose the same way. Each such input is now read as (N, C, spatial...)
    /// and transposed back in the graph, each output transposed to (N, C, spatial...): the
    /// optimizer's push-transposes and cancel-transposes then remove every pair. Other inputs
    /// and outputs (sequences, vectors, models already channels first) stay as they are.
    /// Returns the graph and the names of the inputs and outputs it changed. (Unlike the
    /// exporters' `withChannelsFirstInterface`, which removes edge Transposes that read an input
    /// directly, this reaches past elementwise layers such as Keras's Rescaling.)
    public func movingInterfaceToChannelsFirst() -> (graph: Graph, changed: [String]) {
        var g = self
        var changed: [String] = []
        let producers = producers(), consumers = consumers()
        for (k, input) in inputs.enumerated() {
            let rank = input.type.shape.rank
            guard rank >= 3, reachesTranspose(from: input.name, perm: channelsFirstPermutation(rank: rank), consumers) else { continue }
            let lastInternal = g.freshName("\(input.name)/channels_last")
            g.replaceUses(of: input.name, with: lastInternal)
            let perm = channelsLastPermutation(rank: rank)
            g.nodes.insert(Node(name: "\(input.name)/to_channels_last", op: .transpose(perm: perm), inputs: [input.name],
                                outputs: [lastInternal]), at: 0)
            let d = input.type.shape.dims
            g.inputs[k].type = TensorType(input.type.dtype, Shape(channelsFirstPermutation(rank: rank).map { d[$0] }))
            changed.append(input.name)
        }
        for output in outputs {
            let rank = output.type.shape.rank
            guard rank >= 3, comesFromTranspose(output.name, perm: channelsLastPermutation(rank: rank), producers) else { continue }
            // The producer now writes an internal name; a Transpose writes the output's name.
            let lastInternal = g.freshName("\(output.name)/channels_last")
            for i in g.nodes.indices { g.nodes[i].outputs = g.nodes[i].outputs.map { $0 == output.name ? lastInternal : $0 } }
            g.replaceUses(of: output.name, with: lastInternal)
            g.nodes.append(Node(name: "\(output.name)/to_channels_first", op: .transpose(perm: channelsFirstPermutation(rank: rank)),
                                inputs: [lastInternal], outputs: [output.name]))
            changed.append(output.name)
        }
        if !changed.isEmpty {
            g.metadata["layout"] = "nchw"
            // The outputs' types follow the new Transposes.
            if let types = try? g.inferTypes() {
                for i in g.outputs.indices { if let t = types[g.outputs[i].name] { g.outputs[i].type = t } }
            }
        }
        return (g, changed)
    }

    /// Whether every path from `value` through single-input layout-blind ops ends in a Transpose by `perm`.
    func reachesTranspose(from value: String, perm: [Int], _ consumers: [String: [Int]]) -> Bool {
        guard let readers = consumers[value], !readers.isEmpty, !outputNames.contains(value) else { return false }
        return readers.allSatisfy { r in
            let node = nodes[r]
            if case .transpose(let p) = node.op { return p == perm }
            guard isLayoutBlindOnOneValue(node), node.outputs.count == 1 else { return false }
            return reachesTranspose(from: node.outputs[0], perm: perm, consumers)
        }
    }

    /// Whether `value` is a Transpose by `perm`, possibly followed by single-input layout-blind ops.
    func comesFromTranspose(_ value: String, perm: [Int], _ producers: [String: Int]) -> Bool {
        guard let p = producers[value] else { return false }
        let node = nodes[p]
        if case .transpose(let q) = node.op { return q == perm }
        guard isLayoutBlindOnOneValue(node) else { return false }
        return comesFromTranspose(node.inputs.first { constant($0) == nil } ?? "", perm: perm, producers)
    }

    /// An elementwise op whose only non-constant input is one value (constants broadcast along
    /// whole axes, which push-transposes permutes).
    func isLayoutBlindOnOneValue(_ node: Node) -> Bool {
        switch node.op {
        case .relu, .sigmoid, .tanh, .leakyRelu, .gelu, .elu, .selu, .hardSigmoid, .thresholdedRelu, .clip,
             .softplus, .softsign, .hardSwish, .mish, .abs, .neg, .exp, .log, .sqrt, .reciprocal, .floor, .ceil,
             .erf, .identity, .cast, .add, .sub, .mul, .div, .pow, .max, .min, .prelu, .softmax, .logSoftmax:
            return node.inputs.filter { !$0.isEmpty && constant($0) == nil }.count == 1
        default:
            return false
        }
    }
}
