/// Builds a graph node by node for importers: hands out unique value names, records
/// weights and origins, and keeps nodes in the order they are added (a topological order
/// when importers add layers in dependency order).
public struct GraphBuilder: Sendable {
    public private(set) var graph: Graph
    private var usedNames = Set<String>()

    public init(name: String, metadata: [String: String] = [:]) {
        graph = Graph(name: name, metadata: metadata)
    }

    /// A value name based on `base` that no value has yet; reserves it.
    public mutating func uniqueName(_ base: String) -> String {
        var name = base.isEmpty ? "v" : base
        if usedNames.contains(name) {
            var i = 1
            while usedNames.contains("\(base)_\(i)") { i += 1 }
            name = "\(base)_\(i)"
        }
        usedNames.insert(name)
        return name
    }

    @discardableResult
    public mutating func addInput(_ name: String, _ type: TensorType) -> String {
        let n = uniqueName(name)
        graph.inputs.append(Value(name: n, type: type))
        return n
    }

    /// Adds a weight tensor under a unique name based on `name`; returns the name used.
    @discardableResult
    public mutating func addInitializer(_ name: String, _ tensor: Tensor) -> String {
        let n = uniqueName(name)
        graph.initializers[n] = tensor
        return n
    }

    /// Adds a node with one output named after `output`; returns the output's name.
    @discardableResult
    public mutating func add(_ op: Op, inputs: [String], output: String, origin: Origin?, nodeName: String? = nil) -> String {
        add(op, inputs: inputs, outputs: [output], origin: origin, nodeName: nodeName)[0]
    }

    /// Adds a node; returns its outputs' unique names.
    @discardableResult
    public mutating func add(_ op: Op, inputs: [String], outputs: [String], origin: Origin?, nodeName: String? = nil) -> [String] {
        // "" stays "": an unused optional output (recurrent layers).
        let outs = outputs.map { $0.isEmpty && op.hasOptionalOutputs ? "" : uniqueName($0) }
        let name = nodeName ?? outs.first { !$0.isEmpty } ?? uniqueName(op.name)
        graph.nodes.append(Node(name: name, op: op, inputs: inputs, outputs: outs, origins: origin.map { [$0] } ?? []))
        return outs
    }

    /// Declares a graph output (type filled in by `finish`).
    public mutating func addOutput(_ name: String) {
        graph.outputs.append(Value(name: name, type: TensorType(.float32, Shape([Int]()))))
    }

    /// The finished graph: output types inferred, invariants verified.
    public func finish() throws -> Graph {
        let g = try graph.withInferredOutputTypes()
        try g.verify()
        return g
    }
}
