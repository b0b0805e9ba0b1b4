import FerryIR

/// Removes Reshape, Flatten and Transpose nodes that leave the shape and element order as they
/// are (a reshape to the same shape, a transpose by the identity permutation).
public struct EliminateNoOpReshapes: NodeRewritePass {
    public let name = "eliminate-noop-reshapes"
    public let unit = "nodes removed"
    public init() {}

    public func rewrite(at i: Int, in graph: inout Graph) throws -> Bool {
        let node = graph.nodes[i]
        switch node.op {
        case .reshape, .flatten:
            let types = try graph.inferTypes()
            guard types[node.inputs[0]]?.shape == types[node.outputs[0]]?.shape else { return false }
        case .transpose(let perm):
            guard perm == Array(perm.indices) else { return false }
        default:
            return false
        }
        return graph.bypass(nodeAt: i, output: node.outputs[0], input: node.inputs[0])
    }
}
