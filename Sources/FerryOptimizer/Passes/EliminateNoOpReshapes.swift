import FerryIR

/// Removes Reshape, Flatten and Transpose nodes that leave the shape and element order as they
/// are (a reshape to the same shape, a transpose by the identity permutation).
public struct EliminateNoOpReshapes: Pass {
    public let name = "eliminate-noop-reshapes"
    public let unit = "nodes removed"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var removed = 0
        var types = try graph.inferTypes()
        var i = 0
        while i < graph.nodes.count {
            let node = graph.nodes[i]
            let isNoOp: Bool
            switch node.op {
            case .reshape, .flatten:
                isNoOp = types[node.inputs[0]]?.shape == types[node.outputs[0]]?.shape
            case .transpose(let perm):
                isNoOp = perm == Array(perm.indices)
            default:
                isNoOp = false
            }
            if isNoOp, graph.bypass(nodeAt: i, output: node.outputs[0], input: node.inputs[0]) {
                removed += 1
                types = try graph.inferTypes()
            } else {
                i += 1
            }
        }
        return removed
    }
}
