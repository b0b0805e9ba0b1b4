import FerryIR

/// Removes nodes none of whose outputs is read or is a graph output, then weights nothing reads.
public struct EliminateDeadNodes: Pass {
    public let name = "eliminate-dead-nodes"
    public let unit = "nodes and weights removed"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var live = graph.outputNames
        var keep = Array(repeating: false, count: graph.nodes.count)
        for i in graph.nodes.indices.reversed() where graph.nodes[i].outputs.contains(where: live.contains) {
            keep[i] = true
            live.formUnion(graph.nodes[i].inputs)
        }
        let before = graph.nodes.count + graph.initializers.count
        graph.nodes = zip(graph.nodes, keep).filter(\.1).map(\.0)
        graph.initializers = graph.initializers.filter { live.contains($0.key) }
        return before - graph.nodes.count - graph.initializers.count
    }
}
