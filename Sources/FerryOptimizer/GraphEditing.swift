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

    /// Adds a weight under a fresh name derived from `base`.
    mutating func addInitializer(_ base: String, _ tensor: Tensor) -> String {
        let name = freshName(base)
        initializers[name] = tensor
        return name
    }
}

/// Origins of `absorbed` appended to `node`'s, without repeats: a fused node names every layer.
func mergeOrigins(_ node: inout Node, _ absorbed: Node) {
    for o in absorbed.origins where !node.origins.contains(o) { node.origins.append(o) }
}
