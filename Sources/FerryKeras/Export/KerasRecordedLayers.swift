import Foundation
import FerryIR

/// Keras layers the importer builds from several IR nodes that no op-by-op writer maps back: a
/// Dot (MatMul or ReduceSum of a product), an Attention or MultiHeadAttention (MatMuls and a Softmax), the
/// generic RNN over cells (one recurrent op per cell, the layer's class and cell config lost), a
/// Masking (its output zeroed where every feature equals mask_value: Equal, Not, ReduceMax, Mul), a
/// TimeDistributed (Reshapes around its inner layer), a LayerNormalization over other than the
/// trailing axes (reductions), Resizing and CenterCrop (Resize, Slice), UpSampling with the
/// interpolations Resize has not (bicubic, gaussian, ...: MatMuls by the filter). The importer records each
/// call of these (metadata `keras_recorded_layers`): the layer's class and config, the values it
/// read and made, its nodes (name and op with attributes) and a digest of each weight as Keras
/// stores it. The exporter writes the layer back from the record only while the graph still
/// holds exactly those nodes and each weight is found, bit for bit, among their constants; else
/// the nodes go through the op-by-op table (and fail there, naming them).
let kerasRecordedLayerClasses: Set<String> = ["Dot", "Attention", "TimeDistributed", "LayerNormalization", "Resizing",
                                              "CenterCrop", "UpSampling1D", "UpSampling2D", "UpSampling3D", "MultiHeadAttention",
                                              "RNN", "Masking"]

/// Options of Keras 3's layers that tf_keras's have not, with Keras 3's defaults.
let keras3OnlyOptions: [String: [String: String]] = [
    "Resizing": ["data_format": "channels_last", "pad_to_aspect_ratio": "false", "fill_mode": "constant", "fill_value": "0.0",
                 "antialias": "false"],
    "CenterCrop": ["data_format": "channels_last"],
    "LayerNormalization": ["rms_scaling": "false"],
    "MultiHeadAttention": ["use_gate": "false"],
]

/// Keras 3's fields that tf_keras's layers reject, written only with these (null or empty) values
/// by Keras 3's layers: left out of a `.h5` at any depth (a wrapped layer's, a cell's config).
let keras3OnlyNullFields: Set<String> = ["quantization_config", "lora_rank", "lora_alpha", "seed", "build_config", "input_axes",
                                         "output_axes", "sliding_window"]

/// A Keras 3 config in the form tf_keras reads, recursively: a DTypePolicy object becomes its
/// name, `keras3OnlyNullFields` holding null (or a build config) are left out.
func keras2Form(_ value: Any) -> Any {
    if let d = value as? [String: Any] {
        if d["class_name"] as? String == "DTypePolicy", let name = (d["config"] as? [String: Any])?["name"] as? String { return name }
        var out: [String: Any] = [:]
        for (k, v) in d {
            if keras3OnlyNullFields.contains(k), v is NSNull || k == "build_config" { continue }
            out[k] = keras2Form(v)
        }
        return out
    }
    if let list = value as? [Any] { return list.map(keras2Form) }
    return value
}

/// A config value as `keras3OnlyOptions` spells it (booleans as true/false, numbers as doubles).
func configText(_ value: Any) -> String {
    if let n = value as? NSNumber { return n.isJSONBool ? (n.boolValue ? "true" : "false") : "\(n.doubleValue)" }
    return "\(value)"
}

/// The names Keras 3 gives a layer's sub-layers (MultiHeadAttention's dense projections), by attribute.
let keras3SublayerNames = ["query_dense": "query", "key_dense": "key", "value_dense": "value", "output_dense": "attention_output"]

/// The metadata key holding the records (a JSON list, one entry per call).
let kerasRecordedLayersKey = "keras_recorded_layers"

/// One recorded call of a Keras layer.
struct RecordedKerasCall {
    struct Port: Equatable {
        var value: String
        /// Whether the IR value holds the Keras tensor channels first.
        var channelsFirst: Bool
    }

    /// A tensor the call passes by keyword: one, or a list whose null entries are nil.
    struct KeywordPorts {
        var key: String
        var ports: [Port?]
        var isList: Bool
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
    /// The call's keyword tensors (MultiHeadAttention's `value`, `attention_mask`; Attention's `mask`).
    var keywordInputs: [KeywordPorts] = []

    /// Every value the call reads: its positional inputs, then its keyword tensors.
    var allInputs: [Port] { inputs + keywordInputs.flatMap { $0.ports.compactMap { $0 } } }

    var json: [String: Any] {
        let tensor = { (t: Port) -> [String: Any] in ["value": t.value, "channels_first": t.channelsFirst] }
        return ["layer": layer, "class": className, "config": config, "groups": groups,
                "weights": weights.map { ["name": $0.name, "shape": $0.shape, "digest": $0.digest] as [String: Any] },
                "inputs": inputs.map(tensor), "outputs": outputs.map(tensor),
                "nodes": nodes.map { ["name": $0.name, "op": $0.op] }, "keywords": keywords,
                "keyword_inputs": keywordInputs.map { k -> [String: Any] in
                    ["key": k.key, "list": k.isList, "tensors": k.ports.map { p -> Any in p.map(tensor) ?? NSNull() }]
                }]
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
        for k in o["keyword_inputs"] as? [[String: Any]] ?? [] {
            guard let key = k["key"] as? String, let list = k["tensors"] as? [Any] else { return nil }
            let ports = list.map { t -> Port? in
                guard let t = t as? [String: Any], let v = t["value"] as? String else { return nil }
                return Port(value: v, channelsFirst: t["channels_first"] as? Bool ?? false)
            }
            keywordInputs.append(KeywordPorts(key: key, ports: ports, isList: k["list"] as? Bool ?? false))
        }
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
func writableRecordedCalls(_ graph: Graph, _ ctx: KerasExportContext) -> [Int: WritableRecordedCall] {
    let calls = RecordedKerasCall.all(in: graph)
    if calls.isEmpty { return [:] }
    let index = Dictionary(graph.nodes.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
    let readers = graph.consumerIndices()
    var matched: [Int: (group: RecordedLayerGroup, match: RecordedLayerMatch, payload: WritableRecordedCall)] = [:]
    for call in calls {
        // An RNN's weights are in the IR's recurrent ops with ONNX's gate order and bias rows, not
        // found by permuting axes: its cells' Keras weights are made again from the ops (as the
        // LSTM/GRU/SimpleRNN writer makes them) and must have the recorded digests.
        let searched = call.className == "RNN" ? [] : call.weights
        let group = RecordedLayerGroup(layer: call.layer, inputs: call.allInputs.map(\.value), outputs: call.outputs.map(\.value),
                                       nodes: call.nodes, weights: searched.map { .init(shape: $0.shape, digest: $0.digest) })
        guard let m = group.match(in: graph, index: index, readers: readers) else { continue }
        var weights = m.weights
        if call.className == "RNN" {
            guard let made = recurrentCellWeights(ctx, nodes: m.nodes), made.count == call.weights.count,
                  zip(made, call.weights).allSatisfy({ $0.count == $1.shape.reduce(1, *) && weightDigest($0.floats) == $1.digest }) else { continue }
            weights = zip(made, call.weights).map { $0.reshaped($1.shape) }
        }
        matched[m.nodes.min()!] = (group, m, WritableRecordedCall(call: call, nodes: m.nodes,
                                                                         weights: zip(call.weights, weights).map { ($0.name, $1) }))
    }
    return RecordedLayerGroup.complete(matched, in: graph).mapValues(\.payload)
}

/// The Keras weights (kernel, recurrent_kernel, bias) of the one-direction recurrent ops among
/// `nodes`, in graph order: an RNN layer's cells, first to last. Nil when one has no Keras form.
func recurrentCellWeights(_ ctx: KerasExportContext, nodes: [Int]) -> [Tensor]? {
    var out: [Tensor] = []
    for i in nodes.sorted() {
        let n = ctx.graph.nodes[i]
        guard let (kind, a) = KerasRecurrentKind.of(n.op) else { continue }
        guard a.direction != .bidirectional, let w = ctx.constant(n.inputs[1]), let r = ctx.constant(n.inputs[2]) else { return nil }
        let b = n.inputs.count > 3 && !n.inputs[3].isEmpty ? ctx.constant(n.inputs[3]) : nil
        guard let made = try? kerasRecurrentWeights(ctx, kind: kind, units: a.hiddenSize, features: w.shape[2], w: w, r: r, b: b,
                                                    direction: 0, resetAfter: a.linearBeforeReset) else { return nil }
        out += made.map(\.1)
    }
    return out
}

extension KerasExportContext {
    /// Writes a recorded call: the source layer's class and config, its inputs in the layouts
    /// it read them, its weights as Keras stores them; its outputs take the layer's tensors.
    mutating func writeRecorded(_ r: WritableRecordedCall) throws {
        let layoutOf = { (t: RecordedKerasCall.Port, rank: Int) in t.channelsFirst ? channelsLastLayout(rank) : Array(0..<rank) }
        if target == .keras3Zip, r.call.className == "MultiHeadAttention", r.call.config["softmax_robust_masking"] as? Bool == true {
            throw error("softmax_robust_masking is tf_keras's; Keras 3's MultiHeadAttention has no such option (written only in a .h5)")
        }
        if target == .keras3Zip, let interpolation = r.call.config["interpolation"] as? String, ["gaussian", "mitchellcubic"].contains(interpolation) {
            throw error("interpolation '\(interpolation)' is tf_keras's; Keras 3's \(r.call.className) has no such filter (written only in a .h5)")
        }
        if let change = maskingMeaningChange(r.call) { warnings.append(change) }
        var inbound: [KerasTensorRef] = []
        for t in r.call.inputs { inbound.append(try input(t.value, layout: layoutOf(t, try rank(t.value)))) }
        var arguments: [String: KerasCallArgument] = r.call.keywords.mapValues { .flag($0) }
        for k in r.call.keywordInputs {
            var refs: [KerasTensorRef?] = []
            for p in k.ports { refs.append(try p.map { try input($0.value, layout: layoutOf($0, try rank($0.value))) }) }
            arguments[k.key] = k.isList ? .tensors(refs) : refs.count == 1 && refs[0] != nil ? .tensor(refs[0]!) : .tensors(refs)
        }
        (inbound, arguments) = try kerasCallForm(r.call.className, positional: inbound, arguments: arguments)
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
        if target == .keras2H5, let defaults = keras3OnlyOptions[r.call.className] {
            // A Keras 3 source's options tf_keras's layer has not: left out where they hold Keras
            // 3's defaults, so that tf_keras reads the .h5 (other values stay, for Keras 3).
            for (key, value) in defaults where config[key].map(configText) == value { config.removeValue(forKey: key) }
        }
        if target == .keras2H5 { config = keras2Form(config) as? [String: Any] ?? config }
        if target == .keras2H5, r.call.className == "MultiHeadAttention" {
            // tf_keras's from_config takes these keys (a Keras 3 config has none): null builds the
            // layer on its call, as tf_keras does when they are unknown.
            for key in ["query_shape", "key_shape", "value_shape"] where config[key] == nil { config[key] = NSNull() }
        }
        if target == .keras3Zip, r.call.className == "RNN" {
            // tf_keras's field, which Keras 3's RNN constructor rejects (Ferry refuses time_major inputs).
            config.removeValue(forKey: "time_major")
        }
        if target == .keras3Zip, r.call.className == "MultiHeadAttention" {
            // tf_keras's build shapes and its (false) robust masking, which Keras 3's constructor rejects.
            for key in ["query_shape", "key_shape", "value_shape", "softmax_robust_masking"] { config.removeValue(forKey: key) }
        }
        let first = r.call.outputs[0]
        let before = layers.count
        add(r.call.className, config: config, inbound: inbound, weights: r.weights, output: first.value,
            layout: layoutOf(first, try rank(first.value)))
        if layers.count > before {
            layers[before].keras3Groups = r.call.groups
            // A wrapper's `layer` group is named after the wrapped layer, as Keras 3 saves it.
            let inner = ((r.call.config["layer"] as? [String: Any])?["config"] as? [String: Any])?["name"] as? String
            layers[before].keras3GroupNames = r.call.groups.map {
                $0 == ["layer"] ? inner ?? "layer" : keras3SublayerNames[$0.last ?? ""] ?? $0.last ?? ""
            }
            // Groups holding unequal shares (a StackedRNNCells' cells with and without bias): each
            // weight in the group of its name's path (`stacked_rnn_cells/lstm_cell_1/kernel`).
            var paths: [String] = []
            let groupOf = r.weights.map { w -> Int in
                let path = String(w.0.split(separator: "/").dropLast().joined(separator: "/"))
                if let k = paths.firstIndex(of: path) { return k }
                paths.append(path)
                return paths.count - 1
            }
            if r.call.groups.count > 1, paths.count == r.call.groups.count { layers[before].keras3WeightGroups = groupOf }
            // An RNN's cell groups are named after the cells (a StackedRNNCells' in list order).
            if let cell = r.call.config["cell"] as? [String: Any], let cellConfig = cell["config"] as? [String: Any] {
                let cells = cell["class_name"] as? String == "StackedRNNCells" ? (cellConfig["cells"] as? [[String: Any]] ?? []) : [cell]
                let names = cells.compactMap { ($0["config"] as? [String: Any])?["name"] as? String }
                if names.count == r.call.groups.count { layers[before].keras3GroupNames = names }
            }
        }
        let out = tensor[first.value]!
        if !arguments.isEmpty, let i = layers.firstIndex(where: { $0.name == out.layer }) {
            while layers[i].callArguments.count < layers[i].calls.count { layers[i].callArguments.append([:]) }
            layers[i].callArguments[out.node] = arguments
        }
        for (i, o) in r.call.outputs.enumerated().dropFirst() {
            tensor[o.value] = KerasTensorRef(layer: out.layer, node: out.node, tensor: i)
            layout[o.value] = layoutOf(o, try rank(o.value))
        }
        absorbed.formUnion(r.nodes)
    }

    /// A call's tensors as the Keras 2 layout's inbound node holds them (the Keras 3 zip writer
    /// turns them back, `KerasExporter.keras3Config`): MultiHeadAttention takes one positional
    /// tensor (the query) and the value and key by keyword, as tf_keras calls it (Keras 3 passes
    /// the value positionally); an RNN's initial states follow its input as further inbound
    /// tensors (Keras 3: `initial_state=`).
    func kerasCallForm(_ className: String, positional: [KerasTensorRef], arguments: [String: KerasCallArgument]) throws
        -> ([KerasTensorRef], [String: KerasCallArgument]) {
        var positional = positional, arguments = arguments
        switch className {
        case "MultiHeadAttention":
            var rest = positional.dropFirst(0)
            var tensors: [String: KerasTensorRef] = [:]
            for name in ["query", "value", "key"] {
                if case .tensor(let t)? = arguments[name] { tensors[name] = t } else if let t = rest.popFirst() { tensors[name] = t }
            }
            guard let query = tensors["query"], tensors["value"] != nil, rest.isEmpty else {
                throw error("a MultiHeadAttention call needs a query and a value tensor and takes at most a key besides")
            }
            positional = [query]
            arguments["query"] = nil
            for name in ["value", "key"] { if let t = tensors[name] { arguments[name] = .tensor(t) } }
        case "RNN":
            switch arguments.removeValue(forKey: "initial_state") {
            case .tensor(let t)?: positional.append(t)
            case .tensors(let list)?:
                guard list.allSatisfy({ $0 != nil }) else { throw error("an initial_state list with None entries has no Keras 2 form") }
                positional += list.compactMap { $0 }
            default: break
            }
        default: break
        }
        return (positional, arguments)
    }
}

extension NSNumber {
    /// Whether JSONSerialization made this number from `true` or `false` (booleans get their own
    /// NSNumber subclass, objCType "c").
    var isJSONBool: Bool { String(cString: objCType) == "c" }
}
