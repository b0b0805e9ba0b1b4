import CFerryCPU
import FerryOptimizer

public typealias InterfaceLayout = FerryOptimizer.InterfaceLayout

/// The graph with the interface layout asked for (`--layout`): `.nchw` turns a Keras model's
/// channels-last image inputs and outputs channels first (`Graph.movingInterfaceToChannelsFirst`).
public func applyingLayout(_ graph: Graph, _ layout: InterfaceLayout) -> Graph {
    switch layout {
    case .source: return graph
    case .nchw: return graph.movingInterfaceToChannelsFirst().graph
    }
}

/// Runs the standard optimizer pipeline (see FerryOptimizer.PassManager.standardPasses).
/// Pass the graph with `consume` when only the result is kept (weights are then held once).
public func optimizeModel(_ graph: consuming Graph) throws -> OptimizationResult {
    // The passes' freed intermediates (replaced weights below the mapping threshold, copies
    // of the graph) are given back before a plan is compiled.
    defer { ferry_return_free_heap_pages() }
    return try PassManager().optimize(consume graph)
}

extension OptimizationResult {
    /// `ferry inspect --passes`: each pass with what it changed, node counts before and after.
    public var text: String {
        var lines = ["optimizer: \(nodesBefore) nodes before, \(nodesAfter) after (\(rounds) rounds)"]
        let width = reports.map(\.pass.count).max() ?? 0
        for r in reports {
            lines.append("  " + r.pass.padding(toLength: width, withPad: " ", startingAt: 0) + "  \(r.changes) \(r.unit)")
        }
        return lines.joined(separator: "\n")
    }
}

/// The optimizer's record in `ferry inspect --passes --json`.
public struct OptimizerSummary: Codable, Sendable {
    public var nodesBefore: Int
    public var nodesAfter: Int
    public var passes: [PassReport]

    public init(_ result: OptimizationResult) {
        nodesBefore = result.nodesBefore
        nodesAfter = result.nodesAfter
        passes = result.reports
    }
}
