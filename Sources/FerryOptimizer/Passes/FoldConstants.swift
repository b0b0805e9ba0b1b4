import FerryIR
import FerryRuntime

/// Evaluates nodes whose inputs are all weights once, at optimization time, and keeps the
/// result as a weight (shape computations, weight transposes, constant arithmetic).
public struct FoldConstants: NodeRewritePass {
    public let name = "fold-constants"
    public let unit = "nodes folded"
    /// Results larger than this many elements stay computed at run time.
    public var maxElements = 1 << 26
    public init() {}

    public func rewrite(at i: Int, in graph: inout Graph) throws -> Bool {
        let node = graph.nodes[i]
        let inputs = node.inputs.map(graph.constant)
        let allConstant = zip(node.inputs, inputs).allSatisfy { $0.0.isEmpty || $0.1 != nil }
        guard allConstant, !node.inputs.allSatisfy(\.isEmpty), !node.outputs.contains(where: graph.outputNames.contains),
              ReferenceKernels.supports(node.op, inputTypes: inputs.map { $0?.dtype }),
              let results = try? ReferenceKernels.evaluate(node.op, inputs),
              results.allSatisfy({ $0.count <= maxElements }) else { return false }
        for (name, t) in zip(node.outputs, results) { graph.initializers[name] = t }
        graph.nodes.remove(at: i)
        return true
    }
}
