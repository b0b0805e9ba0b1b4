import Foundation
import FerryIR

/// The import side of `kerasRecordedLayerClasses`: what a call of such a layer was, so that the
/// Keras exporter can write the layer back (see `RecordedKerasCall`).
extension LayerContext {
    /// Records a call whose nodes are those added since `firstNode`, with its boolean options
    /// (`use_causal_mask`, `return_attention_scores`; not `training`, which Keras 3 writes and
    /// inference ignores) and its keyword tensors (MultiHeadAttention's `value=` and
    /// `attention_mask=`, Attention's `mask=[query_mask, None]`, an RNN's `initial_state=`); a call
    /// with other options, or whose nodes read an input in neither of its forms, is not recorded.
    func recordCall(_ layer: ParsedLayer, _ call: LayerCall, inputs: [KerasTensor], named: [(key: String, tensors: [KerasTensor])],
                    outputs: [KerasTensor], firstNode: Int) {
        guard kerasRecordedLayerClasses.contains(layer.className),
              call.keywords.subtracting(["training"]).subtracting(named.map(\.key)).isSubset(of: Set(call.flags.keys)),
              firstNode < builder.graph.nodes.count, !outputs.isEmpty else { return }
        let nodes = Array(builder.graph.nodes[firstNode...])
        let made = Set(nodes.flatMap(\.outputs))
        let reads = Set(nodes.flatMap(\.inputs)).subtracting(made)
        func port(_ t: KerasTensor) -> RecordedKerasCall.Port? {
            if let k = t.kerasForm, reads.contains(k.name) { return .init(value: k.name, channelsFirst: false) }
            if let c = t.channelsFirstForm, reads.contains(c.name) { return .init(value: c.name, channelsFirst: true) }
            return nil
        }
        var ports: [RecordedKerasCall.Port] = []
        for t in inputs {
            guard let p = port(t) else { return }
            ports.append(p)
        }
        var keywordInputs: [RecordedKerasCall.KeywordPorts] = []
        for (key, tensors) in named {
            // A list's null entries stay in their places (`mask=[query_mask, None]`).
            let nulls = Set(call.nullEntries[key] ?? [])
            var given = tensors.makeIterator()
            var entries: [RecordedKerasCall.Port?] = []
            for i in 0..<(tensors.count + nulls.count) {
                if nulls.contains(i) { entries.append(nil); continue }
                guard let t = given.next(), let p = port(t) else { return }
                entries.append(p)
            }
            keywordInputs.append(.init(key: key, ports: entries, isList: call.listKeywords.contains(key)))
        }
        let outs = outputs.map { t -> RecordedKerasCall.Port in
            let (v, channelsFirst) = anyLayout(t)
            return .init(value: v.name, channelsFirst: channelsFirst)
        }
        var record = RecordedKerasCall(
            layer: origin.layer, className: layer.className, config: layer.config, groups: layer.spec.weightGroups,
            weights: readWeightDigests[origin.layer] ?? [], inputs: ports, outputs: outs,
            nodes: nodes.map { ($0.name, "\($0.op)") })
        record.keywords = call.flags.filter { $0.key != "training" }
        record.keywordInputs = keywordInputs
        recordedCalls.append(record)
    }

    /// Notes the digests of the weights read for the current layer (nil: not read, so never
    /// found again: its record is not written back).
    func noteWeightDigests(names: [String], tensors: [Tensor?]) {
        readWeightDigests[origin.layer] = zip(names, tensors).map { name, t in
            RecordedKerasCall.Weight(name: weightLeafName(name), shape: t?.shape ?? [], digest: t.map { weightDigest($0.floats) } ?? "unread")
        }
    }

    /// A weight's name below its layer's: `mha/query/kernel:0` -> `query/kernel`.
    func weightLeafName(_ name: String) -> String {
        var n = name.hasSuffix(":0") ? String(name.dropLast(2)) : name
        let leaf = String(origin.layer.split(separator: "/").last ?? "")
        if let r = n.range(of: leaf + "/"), r.lowerBound == n.startIndex { n = String(n[r.upperBound...]) }
        return n
    }

    /// The records as graph metadata, value and node names renamed as the graph's.
    func recordedCallsMetadata(renamed: (String) -> String) -> String? {
        guard !recordedCalls.isEmpty else { return nil }
        let list = recordedCalls.map { c -> [String: Any] in
            var c = c
            c.inputs = c.inputs.map { .init(value: renamed($0.value), channelsFirst: $0.channelsFirst) }
            c.outputs = c.outputs.map { .init(value: renamed($0.value), channelsFirst: $0.channelsFirst) }
            c.keywordInputs = c.keywordInputs.map { k in
                var k = k
                k.ports = k.ports.map { $0.map { .init(value: renamed($0.value), channelsFirst: $0.channelsFirst) } }
                return k
            }
            c.nodes = c.nodes.map { (renamed($0.name), $0.op) }
            return c.json
        }
        guard let data = try? JSONSerialization.data(withJSONObject: list, options: [.sortedKeys]) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
