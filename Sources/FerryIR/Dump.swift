extension Graph {
    /// A readable listing: inputs, weights, one line per node with attributes and source layer,
    /// outputs. Types come from inference where it succeeds.
    public func dump() -> String {
        let types = (try? inferTypes()) ?? [:]
        func typed(_ name: String) -> String {
            types[name].map { "%\(name): \($0)" } ?? "%\(name)"
        }
        var lines = ["graph \(name)"]
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) { lines.append("  meta   \(k) = \(v)") }
        for v in inputs { lines.append("  input  %\(v.name): \(v.type)") }
        for name in initializerNamesInUseOrder {
            lines.append("  weight %\(name): \(initializers[name]!.type)")
        }
        for node in nodes {
            let args = node.inputs.map { $0.isEmpty ? "_" : "%\($0)" }.joined(separator: ", ")
            let attrs = node.op.attributeSummary.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
            var line = "  " + node.outputs.map(typed).joined(separator: ", ") + " = \(node.op.name)(\(args))"
            if !attrs.isEmpty { line += " {\(attrs)}" }
            if !node.origins.isEmpty { line += "  # " + node.origins.map(\.description).joined(separator: ", ") }
            lines.append(line)
        }
        for v in outputs { lines.append("  output %\(v.name): \(v.type)") }
        return lines.joined(separator: "\n") + "\n"
    }
}
