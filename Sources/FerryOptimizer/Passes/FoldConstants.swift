import FerryIR
import FerryRuntime

/// Evaluates nodes whose inputs are all weights once, at optimization time, and keeps the
/// result as a weight (shape computations, weight transposes, constant arithmetic).
public struct FoldConstants: Pass {
    public let name = "fold-constants"
    public let unit = "nodes folded"
    /// Results larger than this many elements stay computed at run time.
    public var maxElements = 1 << 26
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var folded = 0
        var i = 0
        let outputs = graph.outputNames
        while i < graph.nodes.count {
            let node = graph.nodes[i]
            let inputs = node.inputs.map(graph.constant)
            let allConstant = zip(node.inputs, inputs).allSatisfy { $0.0.isEmpty || $0.1 != nil }
            guard allConstant, !node.inputs.allSatisfy(\.isEmpty), !node.outputs.contains(where: outputs.contains),
                  ReferenceKernels.supports(node.op, inputTypes: inputs.map { $0?.dtype }),
                  let results = try? ReferenceKernels.evaluate(node.op, inputs),
                  results.allSatisfy({ $0.count <= maxElements }) else {
                i += 1
                continue
            }
            for (name, t) in zip(node.outputs, results) { graph.initializers[name] = t }
            graph.nodes.remove(at: i)
            folded += 1
        }
        return folded
    }
}
