/// Where a node came from: the source layer's name and type (e.g. "conv1", "Conv2D").
/// A node that absorbed others (fusions, folded BatchNorms) lists every source layer.
public struct Origin: Sendable, Hashable, CustomStringConvertible {
    public var layer: String
    public var type: String

    public init(layer: String, type: String) {
        self.layer = layer
        self.type = type
    }

    public var description: String { "\(layer) (\(type))" }
}

/// A named value with its static type: a graph input or output.
public struct Value: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var type: TensorType

    public init(name: String, type: TensorType) {
        self.name = name
        self.type = type
    }

    public var description: String { "\(name): \(type)" }
}

/// One operation. Inputs and outputs name values; "" marks an absent optional input.
public struct Node: Sendable, Hashable {
    public var name: String
    public var op: Op
    public var inputs: [String]
    public var outputs: [String]
    public var origins: [Origin]

    public init(name: String, op: Op, inputs: [String], outputs: [String], origins: [Origin] = []) {
        self.name = name
        self.op = op
        self.inputs = inputs
        self.outputs = outputs
        self.origins = origins
    }

    /// The source layer named in errors: the first origin, else the node itself.
    public var sourceLayer: (name: String, type: String) {
        if let o = origins.first { return (o.layer, o.type) }
        return (name, op.name)
    }
}

/// A dataflow graph in single-assignment form. Nodes are kept in a topological order.
public struct Graph: Sendable {
    public var name: String
    public var inputs: [Value]
    public var outputs: [Value]
    /// Constant tensors (weights), by value name.
    public var initializers: [String: Tensor]
    public var nodes: [Node]
    /// Free-form facts about the model: source format, producer, version.
    public var metadata: [String: String]

    public init(name: String, inputs: [Value] = [], outputs: [Value] = [],
                initializers: [String: Tensor] = [:], nodes: [Node] = [], metadata: [String: String] = [:]) {
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.initializers = initializers
        self.nodes = nodes
        self.metadata = metadata
    }

    /// Total number of weight elements and their bytes.
    public var parameterCount: Int { initializers.values.reduce(0) { $0 + $1.count } }
    public var parameterBytes: Int { initializers.values.reduce(0) { $0 + $1.byteCount } }

    /// Node counts by op type name, sorted by name.
    public var opCounts: [(op: String, count: Int)] {
        var counts: [String: Int] = [:]
        for n in nodes { counts[n.op.name, default: 0] += 1 }
        return counts.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Initializer names in order of first use by the nodes (stable order for exporters).
    public var initializerNamesInUseOrder: [String] {
        var seen = Set<String>()
        var order: [String] = []
        for n in nodes {
            for i in n.inputs where initializers[i] != nil && !seen.contains(i) {
                seen.insert(i)
                order.append(i)
            }
        }
        for name in initializers.keys.sorted() where !seen.contains(name) { order.append(name) }
        return order
    }

    /// A value name not used yet, built from a wanted name.
    public func freshName(_ base: String, avoiding taken: Set<String> = []) -> String {
        var names = ValueNames(self, also: taken)
        return names.fresh(base)
    }
}

/// The value names a graph uses (its inputs, initializers and node outputs), handing out new
/// ones for a pass that adds values: the wanted name, else `name_1`, `name_2`, ...
public struct ValueNames {
    private var taken: Set<String>

    public init(_ graph: Graph, also: Set<String> = []) {
        taken = also.union(graph.inputs.map(\.name)).union(graph.initializers.keys)
        for n in graph.nodes { taken.formUnion(n.outputs) }
    }

    /// A name no value has yet, then taken.
    public mutating func fresh(_ base: String) -> String {
        var name = base
        var k = 1
        while taken.contains(name) { name = "\(base)_\(k)"; k += 1 }
        taken.insert(name)
        return name
    }
}
