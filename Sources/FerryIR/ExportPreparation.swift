/// Graph rewrites the Caffe and Keras exporters share: finding consumers and constants, and
/// moving a model's interface between channels-first (NCHW, the IR's and Caffe's layout) and
/// channels-last (NHWC, Keras's) by removing the Transposes an importer put at the edges.
extension Graph {
    /// For each value, the indices of the nodes reading it (in node order).
    public func consumerIndices() -> [String: [Int]] {
        var result: [String: [Int]] = [:]
        for (i, n) in nodes.enumerated() {
            for input in Set(n.inputs) where !input.isEmpty { result[input, default: []].append(i) }
        }
        return result
    }

    /// The node index producing each value.
    public func producerIndices() -> [String: Int] {
        var result: [String: Int] = [:]
        for (i, n) in nodes.enumerated() { for o in n.outputs where !o.isEmpty { result[o] = i } }
        return result
    }

    /// Replaces every use of value `old` by `new` in node inputs and graph outputs.
    public mutating func renameUses(of old: String, to new: String) {
        for i in nodes.indices { nodes[i].inputs = nodes[i].inputs.map { $0 == old ? new : $0 } }
        for i in outputs.indices where outputs[i].name == old { outputs[i].name = new }
    }

    /// Renames a value everywhere: its producer's output, its uses and graph outputs.
    public mutating func renameValue(_ old: String, to new: String) {
        for i in nodes.indices {
            nodes[i].outputs = nodes[i].outputs.map { $0 == old ? new : $0 }
            nodes[i].inputs = nodes[i].inputs.map { $0 == old ? new : $0 }
        }
        for i in outputs.indices where outputs[i].name == old { outputs[i].name = new }
        for i in inputs.indices where inputs[i].name == old { inputs[i].name = new }
    }

    /// Identity nodes removed (their readers read the source); an Identity that makes a graph
    /// output from a node's value renames that value instead, unless the value is a graph input
    /// or output itself (then the Identity stays). Identities `keeping` names stay too (a Caffe
    /// PriorBox, whose record the Caffe exporter writes back).
    public func removingIdentities(keeping: (Node) -> Bool = { _ in false }) -> Graph {
        var g = self
        var i = 0
        while i < g.nodes.count {
            let n = g.nodes[i]
            guard case .identity = n.op, !keeping(n), let source = n.inputs.first, let out = n.outputs.first else { i += 1; continue }
            let isOutput = g.outputs.contains { $0.name == out }
            if !isOutput {
                g.nodes.remove(at: i)
                g.renameUses(of: out, to: source)
                continue
            }
            let sourceIsInterface = g.inputs.contains { $0.name == source } || g.outputs.contains { $0.name == source }
                || g.initializers[source] != nil
            if sourceIsInterface { i += 1; continue }
            g.nodes.remove(at: i)
            g.renameValue(source, to: out)
        }
        return g
    }
}

/// How a graph input or output changed layout on export, for the converter's report.
public struct LayoutChange: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var isInput: Bool
    /// The interface's shape before and after.
    public var before: Shape
    public var after: Shape
    public var fromLayout: String
    public var toLayout: String

    public init(name: String, isInput: Bool, before: Shape, after: Shape, fromLayout: String, toLayout: String) {
        self.name = name
        self.isInput = isInput
        self.before = before
        self.after = after
        self.fromLayout = fromLayout
        self.toLayout = toLayout
    }

    public var description: String {
        "\(isInput ? "input" : "output") \(name): \(fromLayout) \(before) in the source, \(toLayout) \(after) in the export"
    }
}

/// The permutation taking channels-last (N, spatial..., C) to channels-first (N, C, spatial...).
public func channelsFirstPermutation(rank: Int) -> [Int] { [0, rank - 1] + Array(1..<(rank - 1)) }
/// The permutation taking channels-first to channels-last.
public func channelsLastPermutation(rank: Int) -> [Int] { [0] + Array(2..<rank) + [1] }

extension Graph {
    /// The graph with channels-first edges where the source model had channels-last ones:
    /// an input read only by Transposes to channels-first becomes a channels-first input (the
    /// Transposes go), and an output made by a Transpose to channels-last becomes the value
    /// before it (renamed to the output's name). Returns what changed.
    public func withChannelsFirstInterface() throws -> (graph: Graph, changes: [LayoutChange]) {
        var g = self
        var changes: [LayoutChange] = []
        for (k, input) in g.inputs.enumerated() {
            let rank = input.type.shape.rank
            guard rank >= 3 else { continue }
            let perm = channelsFirstPermutation(rank: rank)
            let readers = g.consumerIndices()[input.name] ?? []
            guard !readers.isEmpty, !g.outputs.contains(where: { $0.name == input.name }),
                  readers.allSatisfy({ if case .transpose(let p) = g.nodes[$0].op { return p == perm } else { return false } })
            else { continue }
            let outs = readers.map { g.nodes[$0].outputs[0] }
            for i in readers.sorted(by: >) { g.nodes.remove(at: i) }
            for o in outs { g.renameUses(of: o, to: input.name) }
            let dims = input.type.shape.dims
            let newShape = Shape(perm.map { dims[$0] })
            g.inputs[k].type.shape = newShape
            changes.append(LayoutChange(name: input.name, isInput: true, before: input.type.shape, after: newShape,
                                        fromLayout: "channels-last", toLayout: "channels-first"))
        }
        for k in g.outputs.indices {
            let out = g.outputs[k]
            let rank = out.type.shape.rank
            guard rank >= 3, let p = g.producerIndices()[out.name], case .transpose(let perm) = g.nodes[p].op,
                  perm == channelsLastPermutation(rank: rank) else { continue }
            let source = g.nodes[p].inputs[0]
            // The value before the Transpose must be a node's, and not itself an interface value.
            guard g.producerIndices()[source] != nil, !g.outputs.contains(where: { $0.name == source }),
                  (g.consumerIndices()[out.name] ?? []).isEmpty else { continue }
            g.nodes.remove(at: p)
            g.renameValue(source, to: out.name)
            let dims = out.type.shape.dims
            let newShape = Shape(channelsFirstPermutation(rank: rank).map { dims[$0] })
            g.outputs[k].type.shape = newShape
            changes.append(LayoutChange(name: out.name, isInput: false, before: out.type.shape, after: newShape,
                                        fromLayout: "channels-last", toLayout: "channels-first"))
        }
        try g.verify()
        return (g, changes)
    }
}
