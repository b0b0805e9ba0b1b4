import FerryIR

/// Small graph surgery shared by the passes.
extension Graph {
    /// For each value, the indices of the nodes reading it.
    func consumers() -> [String: [Int]] {
        var map: [String: [Int]] = [:]
        for (i, node) in nodes.enumerated() {
            for name in node.inputs where !name.isEmpty { map[name, default: []].append(i) }
        }
        return map
    }

    /// Index of the node producing each value.
    func producers() -> [String: Int] {
        var map: [String: Int] = [:]
        for (i, node) in nodes.enumerated() {
            for name in node.outputs { map[name] = i }
        }
        return map
    }

    var outputNames: Set<String> { Set(outputs.map(\.name)) }
    var inputNames: Set<String> { Set(inputs.map(\.name)) }

    /// Makes every reader of `old` read `new` instead.
    mutating func replaceUses(of old: String, with new: String) {
        for i in nodes.indices {
            for j in nodes[i].inputs.indices where nodes[i].inputs[j] == old { nodes[i].inputs[j] = new }
        }
    }

    /// Removes a node whose output `output` duplicates its input `input` (same values), keeping
    /// names visible outside: when the output is a graph output, the input's producer takes the
    /// output's name instead. Returns false when neither rewrite is possible (input is a graph
    /// input or weight feeding a graph output directly).
    mutating func bypass(nodeAt index: Int, output: String, input: String) -> Bool {
        if outputNames.contains(output) {
            guard let p = producers()[input], !outputNames.contains(input) else { return false }
            nodes[p].outputs = nodes[p].outputs.map { $0 == input ? output : $0 }
            replaceUses(of: input, with: output)
            nodes.remove(at: index)
            return true
        }
        replaceUses(of: output, with: input)
        nodes.remove(at: index)
        return true
    }

    /// A constant value: an initializer's tensor.
    func constant(_ name: String) -> Tensor? {
        name.isEmpty ? nil : initializers[name]
    }

    /// Removes the named initializers that no node reads and no graph output is: a pass that
    /// replaced a weight by a rewritten copy drops the original at once, so that a pass over
    /// every Conv of a model holds its weights about once, not twice, until dead-code removal.
    mutating func dropUnreadInitializers(_ names: [String]) {
        let candidates = Set(names.filter { !$0.isEmpty && initializers[$0] != nil }).subtracting(outputNames)
        guard !candidates.isEmpty else { return }
        var read = Set<String>()
        for node in nodes { for input in node.inputs where candidates.contains(input) { read.insert(input) } }
        for name in candidates.subtracting(read) { initializers[name] = nil }
    }

    /// Adds a weight under a fresh name derived from `base`.
    mutating func addInitializer(_ base: String, _ tensor: Tensor) -> String {
        let name = freshName(base)
        initializers[name] = tensor
        return name
    }
}

extension Graph {
    /// Whether `value` is read by exactly `readers` nodes and is no graph output: a pattern
    /// that absorbs its producer leaves nothing else without it.
    func isPrivate(_ value: String, readers: Int = 1) -> Bool {
        consumers()[value]?.count == readers && !outputNames.contains(value)
    }

    /// Replaces a matched pattern by one node: `fused` (usually the pattern's first node with
    /// a new op) computes the result of `pattern`'s last node, so it takes that node's outputs
    /// and place (where every input of the pattern is defined) and the origins of every node
    /// in `pattern`. `pattern` lists node indices in graph order; the others are removed.
    mutating func replace(pattern: [Int], with fused: Node) {
        guard let last = pattern.last else { return }
        var node = fused
        node.outputs = nodes[last].outputs
        for i in pattern { mergeOrigins(&node, nodes[i]) }
        nodes[last] = node
        for i in pattern.dropLast().sorted(by: >) { nodes.remove(at: i) }
    }
}

extension Graph {
    /// Node `c` takes over what its producer `p` did (its op already changed to match): it reads
    /// p's first input in place of p's result and names p's layers too. p is left for
    /// eliminate-dead-nodes, since others may read it.
    mutating func absorb(producer p: Int, into c: Int) {
        nodes[c].inputs[0] = nodes[p].inputs[0]
        mergeOrigins(&nodes[c], nodes[p])
    }
}

/// The operand positions of a binary op to try as (pattern operand, other operand): both
/// orders for a commutative op, only (0, 1) otherwise.
func operandOrders(commutative: Bool = true) -> [(Int, Int)] {
    commutative ? [(0, 1), (1, 0)] : [(0, 1)]
}

extension Graph {
    /// The start of most fusions: for binary node `i`, each operand made by a node that
    /// `accepts` and read by nothing else, as (producer index, that operand's position, the
    /// other operand's position), in the order to try.
    func fusableProducers(ofOperandsOf i: Int, commutative: Bool = true,
                          where accepts: (Node) -> Bool) -> [(producer: Int, operand: Int, other: Int)] {
        let node = nodes[i]
        guard node.inputs.count == 2 else { return [] }
        let producers = producers()
        return operandOrders(commutative: commutative).compactMap { v, o in
            guard let p = producers[node.inputs[v]], accepts(nodes[p]), isPrivate(node.inputs[v]) else { return nil }
            return (p, v, o)
        }
    }
}

extension Op {
    /// The Conv or Gemm with `activation` as its epilogue; nil for other ops.
    func withFusedActivation(_ activation: FusedActivation) -> Op? {
        switch self {
        case .conv(var a): a.activation = activation; return .conv(a)
        case .gemm(var a): a.activation = activation; return .gemm(a)
        default: return nil
        }
    }
}

/// Origins of `absorbed` appended to `node`'s, without repeats: a fused node names every layer.
func mergeOrigins(_ node: inout Node, _ absorbed: Node) {
    for o in absorbed.origins where !node.origins.contains(o) { node.origins.append(o) }
}
