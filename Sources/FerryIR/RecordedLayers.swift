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
    /// values and constants, its other values read nowhere else (but Transposes of an input:
    /// layout conversions later layers share), and each weight is a constant of the group,
    /// maybe with its axes permuted. A recorded node of constant inputs alone may have been folded
    /// by the optimizer into a constant of its name (MultiHeadAttention's causal keep, cast to
    /// bool): that constant stands for it. Nil otherwise.
    public func match(in graph: Graph, index: [String: Int], readers: [String: [Int]]) -> (nodes: [Int], weights: [Tensor])? {
        let found = nodes.compactMap { n -> Int? in
            guard let i = index[n.name], "\(graph.nodes[i].op)" == n.op, graph.nodes[i].origins.first?.layer == layer else { return nil }
            return i
        }
        let folded = nodes.filter { index[$0.name] == nil && graph.initializers[$0.name] != nil && !self.outputs.contains($0.name) }
        guard !found.isEmpty, found.count + folded.count == nodes.count else { return nil }
        let group = Set(found)
        let made = Set(found.flatMap { graph.nodes[$0].outputs })
        let inputs = Set(self.inputs)
        let outputs = Set(self.outputs)
        let graphOutputs = Set(graph.outputs.map(\.name))
        guard outputs.isSubset(of: made) else { return nil }
        let readsOwn = found.allSatisfy { i in
            graph.nodes[i].inputs.allSatisfy { $0.isEmpty || made.contains($0) || inputs.contains($0) || graph.initializers[$0] != nil }
        }
        let conversions = Set(found.filter { i in
            if case .transpose = graph.nodes[i].op { return inputs.contains(graph.nodes[i].inputs[0]) }
            return false
        }.map { graph.nodes[$0].outputs[0] })
        let sealed = made.subtracting(outputs).allSatisfy { v in
            !graphOutputs.contains(v) && (conversions.contains(v) || (readers[v] ?? []).allSatisfy { group.contains($0) })
        }
        guard readsOwn, sealed else { return nil }
        let constants = Array(Set(found.flatMap { graph.nodes[$0].inputs }.filter { graph.initializers[$0]?.dtype == .float32 })).sorted()
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
        return (found, tensors)
    }

    /// Of `matched` groups (by their first node), those whose layer has no nodes outside its
    /// matched groups but Transposes (layout conversions, no layer of their own).
    public static func complete<T>(_ matched: [Int: (group: RecordedLayerGroup, nodes: [Int], payload: T)], in graph: Graph)
        -> [Int: (group: RecordedLayerGroup, nodes: [Int], payload: T)] {
        var byLayer: [String: Set<Int>] = [:]
        for (i, n) in graph.nodes.enumerated() { byLayer[n.origins.first?.layer ?? "", default: []].insert(i) }
        var covered: [String: Set<Int>] = [:]
        for m in matched.values { covered[m.group.layer, default: []].formUnion(m.nodes) }
        return matched.filter { _, m in
            (byLayer[m.group.layer] ?? []).subtracting(covered[m.group.layer] ?? []).allSatisfy {
                if case .transpose = graph.nodes[$0].op { return true }
                return false
            }
        }
    }
}

/// FNV-1a (64 bits) of the floats' bit patterns: a weight's identity, bit for bit.
public func weightDigest(_ values: [Float]) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for v in values {
        var bits = v.bitPattern
        for _ in 0..<4 {
            h = (h ^ UInt64(bits & 0xff)) &* 0x100_0000_01b3
            bits >>= 8
        }
    }
    return String(h, radix: 16)
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
