import FerryIR

/// Removes Identity nodes (Keras Dropout and other inference no-ops import as Identity).
public struct EliminateIdentity: Pass {
    public let name = "eliminate-identity"
    public let unit = "nodes removed"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var removed = 0
        var i = 0
        while i < graph.nodes.count {
            let node = graph.nodes[i]
            if case .identity = node.op, graph.bypass(nodeAt: i, output: node.outputs[0], input: node.inputs[0]) {
                removed += 1
            } else {
                i += 1
            }
        }
        return removed
    }
}
