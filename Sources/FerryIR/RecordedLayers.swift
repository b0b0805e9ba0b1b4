import Foundation

/// What an importer records of a source layer it builds from several ops, so that the exporter
/// of the same format can write the layer back as it was (the Keras importer's Dot, Attention,
/// TimeDistributed, ...; the Caffe importer's Swish, Power, LRN, ...): the values it read and
/// made, its nodes (name and op with its attributes) and a digest of each weight as the source
/// file stores it. `RecordedLayerGroup.match` says whether a graph still holds exactly those
/// nodes and finds the weights again, bit for bit.
public struct RecordedLayerGroup {
    public struct Weight {
        public var shape: [Int]
        public var digest: String

        public init(shape: [Int], digest: String) {
            self.shape = shape
            self.digest = digest
        }
    }

    public var layer: String
    public var inputs: [String]
    public var outputs: [String]
    public var nodes: [(name: String, op: String)]
    public var weights: [Weight]

    public init(layer: String, inputs: [String], outputs: [String], nodes: [(name: String, op: String)], weights: [Weight]) {
        self.layer = layer
        self.inputs = inputs
        self.outputs = outputs
        self.nodes = nodes
        self.weights = weights
    }

    /// The group's node indices and weights (in the recorded shapes) when `graph` holds its
    /// nodes unchanged (same names, ops and source layer), reading only its inputs, its own
    /// values and constants, and each weight is a constant of the group, maybe with its axes
    /// permuted. Nil otherwise.
    ///
    /// The optimizer may have changed the nodes in two ways that keep the layer's meaning:
    /// - a recorded node of constant inputs alone folded into a constant of its name
    ///   (MultiHeadAttention's causal keep, cast to bool): that constant stands for it;
    /// - a recorded node merged by common-subexpression elimination into another layer's node of
    ///   the same op on the same values (two MultiHeadAttention layers' Unsqueeze and Cast of one
    ///   mask), which then names this layer among its origins: that node stands for it when it
    ///   reads only the group's inputs, constants and other such nodes. It is `shared`: the
    ///   other layer holds it, both layers compute it.
    /// The group's values read outside it (but Transposes of an input: layout conversions later
    /// layers share) are `exposed`, by the node making them: `complete` keeps the group only when
    /// each such reader belongs to a kept group that shares the node.
    public func match(in graph: Graph, index: [String: Int], readers: [String: [Int]]) -> RecordedLayerMatch? {
        var found: [Int] = []
        var missing: [String] = []
        for n in nodes {
            if let i = index[n.name] {
                guard "\(graph.nodes[i].op)" == n.op, graph.nodes[i].origins.first?.layer == layer else { return nil }
                found.append(i)
            } else if graph.initializers[n.name] == nil || outputs.contains(n.name) {
                missing.append(n.op)
            }
        }
        guard !found.isEmpty else { return nil }
        let inputs = Set(self.inputs)
        var made = Set(found.flatMap { graph.nodes[$0].outputs })
        let outputs = Set(self.outputs)
        guard outputs.isSubset(of: made) else { return nil }
        // Values the found nodes read that are none of theirs: made by the nodes standing for the
        // missing ones, walked back to the group's inputs.
        let known = { (v: String) in v.isEmpty || made.contains(v) || inputs.contains(v) || graph.initializers[v] != nil }
        var foreign = found.flatMap { graph.nodes[$0].inputs }.filter { !known($0) }
        var shared: [Int] = []
        if !foreign.isEmpty {
            let producers = graph.producerIndices()
            while let v = foreign.popLast() {
                if known(v) { continue }
                guard let p = producers[v], graph.nodes[p].origins.first?.layer != layer,
                      graph.nodes[p].origins.contains(where: { $0.layer == layer }), let k = missing.firstIndex(of: "\(graph.nodes[p].op)") else { return nil }
                missing.remove(at: k)
                shared.append(p)
                made.formUnion(graph.nodes[p].outputs)
                foreign += graph.nodes[p].inputs.filter { !known($0) }
            }
        }
        guard missing.isEmpty else { return nil }
        let group = Set(found)
        let graphOutputs = Set(graph.outputs.map(\.name))
        let conversions = Set(found.filter { i in
            if case .transpose = graph.nodes[i].op { return inputs.contains(graph.nodes[i].inputs[0]) }
            return false
        }.map { graph.nodes[$0].outputs[0] })
        var exposed: [Int: [Int]] = [:]
        for i in found {
            for v in graph.nodes[i].outputs where !outputs.contains(v) && !conversions.contains(v) {
                if graphOutputs.contains(v) { return nil }
                let outside = (readers[v] ?? []).filter { !group.contains($0) }
                if !outside.isEmpty { exposed[i, default: []] += outside }
            }
        }
        let members = found + shared
        let constants = Array(Set(members.flatMap { graph.nodes[$0].inputs }.filter { graph.initializers[$0]?.dtype == .float32 })).sorted()
        var tensors: [Tensor] = []
        for w in weights {
            let count = w.shape.reduce(1, *)
            guard let t = constants.lazy.compactMap({ name -> Tensor? in
                let c = graph.initializers[name]!
                guard c.count == count else { return nil }
                return axisPermutations(c.rank).lazy.map { permutedTensor(c, $0) }.first { weightDigest($0.floats) == w.digest }
            }).first else { return nil }
            tensors.append(t.reshaped(w.shape))
        }
        return RecordedLayerMatch(nodes: found, shared: shared, exposed: exposed, weights: tensors)
    }

    /// Of `matched` groups (by their first node), those whose layer has no nodes outside its
    /// matched groups but Transposes (layout conversions, no layer of their own), whose shared
    /// nodes a kept group holds, and whose exposed values only kept groups sharing their maker
    /// read; until no more groups drop.
    public static func complete<T>(_ matched: [Int: (group: RecordedLayerGroup, match: RecordedLayerMatch, payload: T)], in graph: Graph)
        -> [Int: (group: RecordedLayerGroup, match: RecordedLayerMatch, payload: T)] {
        var byLayer: [String: Set<Int>] = [:]
        for (i, n) in graph.nodes.enumerated() { byLayer[n.origins.first?.layer ?? "", default: []].insert(i) }
        var kept = matched
        while true {
            var covered: [String: Set<Int>] = [:]
            var owner: [Int: Int] = [:]
            for (key, m) in kept {
                covered[m.group.layer, default: []].formUnion(m.match.nodes)
                for i in m.match.nodes { owner[i] = key }
            }
            let next = kept.filter { _, m in
                let whole = (byLayer[m.group.layer] ?? []).subtracting(covered[m.group.layer] ?? []).allSatisfy {
                    if case .transpose = graph.nodes[$0].op { return true }
                    return false
                }
                let sharedHeld = m.match.shared.allSatisfy { owner[$0] != nil }
                let exposedShared = m.match.exposed.allSatisfy { maker, outside in
                    outside.allSatisfy { r in owner[r].flatMap { kept[$0] }?.match.shared.contains(maker) == true }
                }
                return whole && sharedHeld && exposedShared
            }
            if next.count == kept.count { return kept }
            kept = next
        }
    }
}

/// Where a recorded layer's nodes are in a graph (`RecordedLayerGroup.match`).
public struct RecordedLayerMatch {
    /// The group's own nodes, found by name.
    public var nodes: [Int]
    /// Other layers' nodes standing for recorded nodes the optimizer merged into them.
    public var shared: [Int]
    /// Own nodes whose values nodes outside the group read, with those readers.
    public var exposed: [Int: [Int]]
    /// The recorded weights found again, in the recorded shapes.
    public var weights: [Tensor]
}

/// FNV-1a (64 bits) of the floats' bit patterns: a weight's identity, bit for bit.
public func weightDigest(_ values: [Float]) -> String {
    var digest = WeightDigest()
    values.withUnsafeBufferPointer { digest.add($0) }
    return digest.value
}

/// `weightDigest` of values given in parts (a weight read a slab at a time): FNV-1a over the
/// float32 values' little-endian bytes.
public struct WeightDigest {
    private var h: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func add(_ values: UnsafeBufferPointer<Float>) {
        for v in values {
            var bits = v.bitPattern
            for _ in 0..<4 {
                h = (h ^ UInt64(bits & 0xff)) &* 0x100_0000_01b3
                bits >>= 8
            }
        }
    }

    public var value: String { String(h, radix: 16) }
}

/// The permutations of 0..<n, the identity first.
public func axisPermutations(_ n: Int) -> [[Int]] {
    guard n > 1 else { return [Array(0..<n)] }
    var result: [[Int]] = []
    func extend(_ prefix: [Int]) {
        if prefix.count == n { result.append(prefix); return }
        for i in 0..<n where !prefix.contains(i) { extend(prefix + [i]) }
    }
    extend([])
    return result
}

/// The tensor with its axes permuted (numpy `transpose(perm)`), float32.
public func permutedTensor(_ t: Tensor, _ perm: [Int]) -> Tensor {
    if perm == Array(0..<perm.count) { return t }
    let shape = t.shape
    let r = shape.count
    let src = t.floats
    let outShape = perm.map { shape[$0] }
    var srcStrides = [Int](repeating: 1, count: r)
    for i in stride(from: r - 2, through: 0, by: -1) { srcStrides[i] = srcStrides[i + 1] * shape[i + 1] }
    let strides = perm.map { srcStrides[$0] }
    var out = [Float](repeating: 0, count: src.count)
    var index = [Int](repeating: 0, count: r)
    var offset = 0
    for o in 0..<out.count {
        out[o] = src[offset]
        var axis = r - 1
        while axis >= 0 {
            index[axis] += 1
            offset += strides[axis]
            if index[axis] < outShape[axis] { break }
            offset -= strides[axis] * outShape[axis]
            index[axis] = 0
            axis -= 1
        }
    }
    return Tensor(shape: outShape, floats: out)
}
