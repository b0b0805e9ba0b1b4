import Foundation

/// Graphviz drawings of a graph: one box per node (op, source layers, output shapes), inputs
/// and outputs as ovals, edges labelled with the shapes they carry. Fused nodes (more than one
/// source layer) have a double border. With a second graph, nodes are colored by difference.
public enum GraphDrawing {
    /// How a node of a compared drawing differs from the other graph.
    enum Difference {
        case same, onlyHere, changedAttributes, changedWeights

        var color: String? {
            switch self {
            case .same: return nil
            case .onlyHere: return "#f4a6a6"
            case .changedAttributes: return "#f7c873"
            case .changedWeights: return "#f7e58a"
            }
        }

        var label: String? {
            switch self {
            case .same: return nil
            case .onlyHere: return "only in this model"
            case .changedAttributes: return "attributes differ"
            case .changedWeights: return "weights differ"
            }
        }
    }

    /// DOT text for one graph.
    public static func dot(_ graph: Graph) -> String {
        render([(graph, "", [:])])
    }

    /// DOT text for two graphs side by side, nodes colored where they differ: only in one model
    /// (red), same node with other attributes (orange), other weights (yellow). Nodes match by name.
    public static func diffDot(_ a: Graph, _ b: Graph, labels: (String, String)) -> String {
        render([(a, labels.0, differences(a, against: b)), (b, labels.1, differences(b, against: a))])
    }

    static func differences(_ graph: Graph, against other: Graph) -> [String: Difference] {
        let others = Dictionary(other.nodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var result: [String: Difference] = [:]
        for node in graph.nodes {
            guard let twin = others[node.name] else {
                result[node.name] = .onlyHere
                continue
            }
            if twin.op != node.op || twin.inputs.count != node.inputs.count {
                result[node.name] = .changedAttributes
            } else if zip(node.inputs, twin.inputs).contains(where: { graph.initializers[$0] != other.initializers[$1] }) {
                result[node.name] = .changedWeights
            } else {
                result[node.name] = .same
            }
        }
        return result
    }

    static func render(_ parts: [(graph: Graph, label: String, differences: [String: Difference])]) -> String {
        var lines = ["digraph ferry {", "  rankdir=TB;", "  node [fontname=\"Helvetica\", fontsize=10];",
                     "  edge [fontname=\"Helvetica\", fontsize=8, color=\"#555555\"];"]
        for (index, part) in parts.enumerated() {
            let prefix = parts.count > 1 ? "g\(index)_" : ""
            let types = (try? part.graph.inferTypes()) ?? [:]
            func id(_ name: String) -> String { quote(prefix + name) }
            func shape(_ value: String) -> String { types[value].map(\.description) ?? "" }
            if parts.count > 1 {
                lines.append("  subgraph cluster_\(index) {")
                lines.append("    label=\(quote(part.label));")
            }
            var producer: [String: String] = [:]
            for v in part.graph.inputs {
                lines.append("  \(id("input:" + v.name)) [shape=oval, style=filled, fillcolor=\"#d5e8f7\", label=\(quote("\(v.name)\n\(v.type)"))];")
                producer[v.name] = "input:" + v.name
            }
            for node in part.graph.nodes {
                var label = node.op.name
                let attributes = node.op.attributeSummary.map { "\($0.0)=\($0.1)" }
                if !attributes.isEmpty { label += "\n" + attributes.joined(separator: " ") }
                if !node.origins.isEmpty { label += "\n" + node.origins.map(\.description).joined(separator: " + ") }
                let weights = node.inputs.filter { part.graph.initializers[$0] != nil }
                if !weights.isEmpty {
                    label += "\n" + weights.map { "\($0): \(part.graph.initializers[$0]!.shape)" }.joined(separator: "\n")
                }
                var style = ["shape=box"]
                if node.origins.count > 1 { style.append("peripheries=2") }
                let difference = part.differences[node.name] ?? .same
                if let color = difference.color {
                    style += ["style=filled", "fillcolor=\"\(color)\""]
                    label += "\n(\(difference.label!))"
                }
                lines.append("  \(id("node:" + node.name)) [\(style.joined(separator: ", ")), label=\(quote(label))];")
                for input in node.inputs where !input.isEmpty {
                    guard let from = producer[input] else { continue }
                    lines.append("  \(id(from)) -> \(id("node:" + node.name)) [label=\(quote(shape(input)))];")
                }
                for out in node.outputs { producer[out] = "node:" + node.name }
            }
            for v in part.graph.outputs {
                lines.append("  \(id("output:" + v.name)) [shape=oval, style=filled, fillcolor=\"#d9f2d0\", label=\(quote("\(v.name)\n\(v.type)"))];")
                if let from = producer[v.name] {
                    lines.append("  \(id(from)) -> \(id("output:" + v.name));")
                }
            }
            if parts.count > 1 { lines.append("  }") }
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    static func quote(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }

    /// Writes DOT, or SVG through Graphviz's `dot` when the path ends in .svg.
    public static func write(_ dotText: String, to path: String) throws {
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        switch ext {
        case "dot", "gv":
            try writeFileAtomically(Data(dotText.utf8), to: path)
        case "svg":
            let svg = try runDot(dotText)
            try writeFileAtomically(svg, to: path)
        default:
            throw FerryError("the drawing is written as .dot or .svg, not .\(ext)", file: path)
        }
    }

    static func runDot(_ dotText: String) throws -> Data {
        let candidates = ["/usr/bin/dot", "/usr/local/bin/dot"]
        guard let dot = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw FerryError("Graphviz's `dot` is needed for .svg (tools/setup.sh installs it; or write .dot)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: dot)
        process.arguments = ["-Tsvg"]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Read while writing so a large drawing cannot fill a pipe and stall both sides.
        let writeHandle = input.fileHandleForWriting
        DispatchQueue.global().async {
            writeHandle.write(Data(dotText.utf8))
            try? writeHandle.close()
        }
        let svg = output.fileHandleForReading.readDataToEndOfFile()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FerryError("dot failed: \(String(decoding: message, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return svg
    }
}
