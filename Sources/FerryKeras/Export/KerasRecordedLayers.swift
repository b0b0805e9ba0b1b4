import Foundation
import FerryIR

/// Keras layers the importer builds from several IR nodes that no op-by-op writer maps back: a
/// Dot (MatMul or ReduceSum of a product), an Attention (MatMuls and a Softmax), a
/// TimeDistributed (Reshapes around its inner layer), a LayerNormalization over other than the
/// trailing axes (reductions), Resizing and CenterCrop (Resize, Slice), UpSampling with the
/// interpolations Resize has not (bicubic, gaussian, ...: MatMuls by the filter). The importer records each
/// call of these (metadata `keras_recorded_layers`): the layer's class and config, the values it
/// read and made, its nodes (name and op with attributes) and a digest of each weight as Keras
/// stores it. The exporter writes the layer back from the record only while the graph still
/// holds exactly those nodes and each weight is found, bit for bit, among their constants; else
/// the nodes go through the op-by-op table (and fail there, naming them).
let kerasRecordedLayerClasses: Set<String> = ["Dot", "Attention", "TimeDistributed", "LayerNormalization", "Resizing",
                                              "CenterCrop", "UpSampling1D", "UpSampling2D", "UpSampling3D"]

/// The metadata key holding the records (a JSON list, one entry per call).
let kerasRecordedLayersKey = "keras_recorded_layers"

/// One recorded call of a Keras layer.
struct RecordedKerasCall {
    struct Port: Equatable {
        var value: String
        /// Whether the IR value holds the Keras tensor channels first.
        var channelsFirst: Bool
    }

    struct Weight {
        /// The weight's name below the layer's (`kernel`, `query/kernel`).
        var name: String
        var shape: [Int]
        var digest: String
    }

    var layer: String
    var className: String
    var config: [String: Any]
    /// Where Keras 3 keeps the weights below the layer's group (the importer's weightGroups).
    var groups: [[String]]
    var weights: [Weight]
    var inputs: [Port]
    var outputs: [Port]
    /// The call's nodes: name and op (with its attributes).
    var nodes: [(name: String, op: String)]
    /// The call's keyword options (`use_causal_mask`, `return_attention_scores`).
    var keywords: [String: Bool] = [:]

    var json: [String: Any] {
        let tensor = { (t: Port) -> [String: Any] in ["value": t.value, "channels_first": t.channelsFirst] }
        return ["layer": layer, "class": className, "config": config, "groups": groups,
                "weights": weights.map { ["name": $0.name, "shape": $0.shape, "digest": $0.digest] as [String: Any] },
                "inputs": inputs.map(tensor), "outputs": outputs.map(tensor),
                "nodes": nodes.map { ["name": $0.name, "op": $0.op] }, "keywords": keywords]
    }

    init(layer: String, className: String, config: [String: Any], groups: [[String]], weights: [Weight],
         inputs: [Port], outputs: [Port], nodes: [(name: String, op: String)]) {
        self.layer = layer
        self.className = className
        self.config = config
        self.groups = groups
        self.weights = weights
        self.inputs = inputs
        self.outputs = outputs
        self.nodes = nodes
    }

    init?(json o: [String: Any]) {
        func tensors(_ key: String) -> [Port]? {
            (o[key] as? [[String: Any]])?.compactMap { t in
                (t["value"] as? String).map { Port(value: $0, channelsFirst: t["channels_first"] as? Bool ?? false) }
            }
        }
        guard let layer = o["layer"] as? String, let className = o["class"] as? String, let config = o["config"] as? [String: Any],
              let inputs = tensors("inputs"), let outputs = tensors("outputs"), !outputs.isEmpty,
              let nodes = (o["nodes"] as? [[String: String]])?.compactMap({ n in n["name"].flatMap { name in n["op"].map { (name, $0) } } }),
              let weights = (o["weights"] as? [[String: Any]])?.compactMap({ w -> Weight? in
                  guard let name = w["name"] as? String, let shape = w["shape"] as? [Int], let digest = w["digest"] as? String else { return nil }
                  return Weight(name: name, shape: shape, digest: digest)
              }) else { return nil }
        self.init(layer: layer, className: className, config: config, groups: o["groups"] as? [[String]] ?? [[]],
                  weights: weights, inputs: inputs, outputs: outputs, nodes: nodes)
        keywords = o["keywords"] as? [String: Bool] ?? [:]
    }

    /// The records of a graph's metadata.
    static func all(in graph: Graph) -> [RecordedKerasCall] {
        guard let text = graph.metadata[kerasRecordedLayersKey], let data = text.data(using: .utf8),
              let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return [] }
        return list.compactMap(RecordedKerasCall.init(json:))
    }
}

/// A recorded call the exporter can write: its nodes (indices) and its weights found again.
struct WritableRecordedCall {
    var call: RecordedKerasCall
    var nodes: [Int]
    var weights: [(String, Tensor)]
}

/// The recorded calls whose nodes `graph` still holds unchanged and whose weights are found
/// again (`RecordedLayerGroup.match`), of layers with no other nodes but layout Transposes, by
/// the index of their first node.
func writableRecordedCalls(_ graph: Graph) -> [Int: WritableRecordedCall] {
    let calls = RecordedKerasCall.all(in: graph)
    if calls.isEmpty { return [:] }
    let index = Dictionary(graph.nodes.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
    let readers = graph.consumerIndices()
    var matched: [Int: (group: RecordedLayerGroup, nodes: [Int], payload: WritableRecordedCall)] = [:]
    for call in calls {
        let group = RecordedLayerGroup(layer: call.layer, inputs: call.inputs.map(\.value), outputs: call.outputs.map(\.value),
                                       nodes: call.nodes, weights: call.weights.map { .init(shape: $0.shape, digest: $0.digest) })
        guard let m = group.match(in: graph, index: index, readers: readers) else { continue }
        matched[m.nodes.min()!] = (group, m.nodes, WritableRecordedCall(call: call, nodes: m.nodes,
                                                                         weights: zip(call.weights, m.weights).map { ($0.name, $1) }))
    }
    return RecordedLayerGroup.complete(matched, in: graph).mapValues(\.payload)
}

extension KerasExportContext {
    /// Writes a recorded call: the source layer's class and config, its inputs in the layouts
    /// it read them, its weights as Keras stores them; its outputs take the layer's tensors.
    mutating func writeRecorded(_ r: WritableRecordedCall) throws {
        let layoutOf = { (t: RecordedKerasCall.Port, rank: Int) in t.channelsFirst ? channelsLastLayout(rank) : Array(0..<rank) }
        let inbound = try r.call.inputs.map { t in try input(t.value, layout: layoutOf(t, try rank(t.value))) }
        // An input's layout conversions stay available to later layers (as the Transpose writer).
        for i in r.nodes {
            guard case .transpose(let perm) = graph.nodes[i].op, let x = tensor[graph.nodes[i].inputs[0]],
                  let have = layout[graph.nodes[i].inputs[0]] else { continue }
            var inverse = [Int](repeating: 0, count: perm.count)
            for (k, p) in perm.enumerated() { inverse[p] = k }
            tensor[graph.nodes[i].outputs[0]] = x
            layout[graph.nodes[i].outputs[0]] = have.map { inverse[$0] }
        }
        var config = r.call.config
        for key in ["name", "trainable", "dtype"] { config.removeValue(forKey: key) }
        let first = r.call.outputs[0]
        let before = layers.count
        add(r.call.className, config: config, inbound: inbound, weights: r.weights, output: first.value,
            layout: layoutOf(first, try rank(first.value)))
        if layers.count > before {
            layers[before].keras3Groups = r.call.groups
            // A wrapper's `layer` group is named after the wrapped layer, as Keras 3 saves it.
            let inner = ((r.call.config["layer"] as? [String: Any])?["config"] as? [String: Any])?["name"] as? String
            layers[before].keras3GroupNames = r.call.groups.map { $0 == ["layer"] ? inner ?? "layer" : $0.last ?? "" }
        }
        let ref = tensor[first.value]!
        if !r.call.keywords.isEmpty, let i = layers.firstIndex(where: { $0.name == ref.layer }) {
            while layers[i].callKeywords.count < layers[i].calls.count { layers[i].callKeywords.append([:]) }
            layers[i].callKeywords[ref.node] = r.call.keywords
        }
        for (i, o) in r.call.outputs.enumerated().dropFirst() {
            tensor[o.value] = KerasTensorRef(layer: ref.layer, node: ref.node, tensor: i)
            layout[o.value] = layoutOf(o, try rank(o.value))
        }
        absorbed.formUnion(r.nodes)
    }
}
