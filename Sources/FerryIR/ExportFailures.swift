/// The nodes an exporter could not write, gathered over the whole graph so that one error lists
/// them all; nodes downstream of a failure are skipped, not reported again.
public struct ExportFailures {
    private var failures: [(node: Node, why: String)] = []
    private var unwritten = Set<String>()

    public init() {}

    /// True (and the node's outputs marked unwritten) when the node reads a value that was not
    /// written: the caller skips it.
    public mutating func skipsDownstream(_ node: Node) -> Bool {
        guard node.inputs.contains(where: unwritten.contains) else { return false }
        unwritten.formUnion(node.outputs)
        return true
    }

    public mutating func record(_ node: Node, _ why: String) {
        failures.append((node, why))
        unwritten.formUnion(node.outputs)
    }

    /// Throws one error naming every failed node (the first as the error's layer), if any.
    /// `format` ends "<format> cannot express N node(s)"; `note` follows it.
    public func throwIfAny(format: String, note: String = "") throws {
        guard let first = failures.first?.node.sourceLayer else { return }
        let list = failures.map { "\($0.node.sourceLayer.name) (\($0.node.sourceLayer.type), \($0.node.op.name)): \($0.why)" }
        throw FerryError("\(format) cannot express \(failures.count) node(s)\(note): " + list.joined(separator: "; "),
                         layer: first.name, layerType: first.type)
    }
}
