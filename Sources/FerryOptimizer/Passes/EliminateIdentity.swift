import FerryIR

/// Removes Identity nodes (Keras Dropout and other inference no-ops import as Identity).
public struct EliminateIdentity: NodeRewritePass {
    public let name = "eliminate-identity"
    public let unit = "nodes removed"
    public init() {}

    public func rewrite(at i: Int, in graph: inout Graph) throws -> Bool {
        let node = graph.nodes[i]
        guard case .identity = node.op else { return false }
        return graph.bypass(nodeAt: i, output: node.outputs[0], input: node.inputs[0])
    }
}
