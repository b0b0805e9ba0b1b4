import Foundation
import FerryIR
import SwiftProtobuf

/// Caffe layers the importer builds from several ops, which the op-by-op writers would write
/// back as several layers: Swish (Sigmoid, Mul), Power with a scale or shift, Exp and Log with a
/// base, LRN (WITHIN_CHANNEL's window means and Pow; ACROSS_CHANNELS, one IR LRN node, is
/// recorded too, so that a layer without lrn_param is written back without one: OpenCV reads
/// such a layer with other values than Caffe's defaults), Flatten with `axis` / `end_axis` (Reshape), InnerProduct
/// along another axis (MatMul, Add), Crop (Slices; its second bottom only gives the sizes, which
/// the IR keeps in the Slices, so the bottom is recorded though no node reads it), ArgMax without
/// an axis (Flatten, ArgMax or TopK, Reshape), the forks' BN (its Mul and Add, and in LEARN mode
/// the batch statistics), Interp with pad_beg/pad_end crops, shrink_factor or a second bottom
/// (Slice and Resize, or the Resize alone with the sizes the second bottom gave; that bottom is
/// recorded as Crop's is); layers the table has no Caffe form for: MVN and Normalize (their
/// reductions), Reduction, Threshold (Greater, Cast), Embed (Cast, Gather, Add), the two-bottom
/// Scale (a broadcasting Mul), Pooling with `round_mode: FLOOR` or windows past the input (Pad
/// and pooling), Bias (an Add the table would write as Scale), Reshape (its 0, -1, axis and
/// num_axes, which the table writes as the output's dims), InnerProduct with `transpose: true`.
/// PriorBox (its priors computed at import: an Identity of a constant; its bottoms, which only
/// give sizes, kept as bottoms) and DetectionOutput. The importer records each (metadata
/// `caffe_recorded_layers`: the layer's parameter without bottoms, tops and blobs, the values
/// it read and made, its nodes by name and op, a digest of each blob); the exporter writes the
/// layer back from the record while `RecordedLayerGroup.match` finds its nodes unchanged.
let caffeRecordedLayerTypes: Set<String> = ["Swish", "Power", "Exp", "Log", "LRN", "Flatten", "InnerProduct", "Crop", "ArgMax",
                                             "BN", "Interp", "MVN", "Normalize", "Reduction", "Threshold", "Embed", "Scale",
                                             "Pooling", "Bias", "Reshape", "PriorBox", "DetectionOutput"]

let caffeRecordedLayersKey = "caffe_recorded_layers"

extension CaffeContext {
    /// Records the current layer when it is one the table would write otherwise: Swish, Power,
    /// Exp and Log made as two or more nodes, every LRN, Flatten over other axes than 1 to the end,
    /// InnerProduct along another axis than 1 or with `transpose: true` (which OpenCV ignores, in
    /// the source as well), ArgMax without an axis, every BN, Interp with crops, shrink_factor or
    /// a second bottom, Bias, Reshape (the forms the table writes otherwise); MVN, Normalize,
    /// Reduction, Threshold, Embed, the two-bottom Scale, Pooling with round_mode FLOOR or windows
    /// past the input (the table has no form for them).
    func recordLayer(inputs: [IRValue], outputs: [IRValue]) {
        guard caffeRecordedLayerTypes.contains(layer.type), graph.nodes.count > layerNodeStart else { return }
        switch layer.type {
        case "Flatten": guard layer.flattenParam.axis != 1 || layer.flattenParam.endAxis != -1 else { return }
        case "InnerProduct": guard layer.innerProductParam.axis != 1 || layer.innerProductParam.transpose else { return }
        case "LRN", "Crop", "BN", "MVN", "Normalize", "Reduction", "Threshold", "Embed", "Bias", "Reshape", "PriorBox",
             "DetectionOutput": break
        case "Scale": guard inputs.count == 2 else { return }
        case "Pooling":
            guard layer.poolingParam.roundMode == .floor || graph.nodes.count - layerNodeStart > layer.top.count else { return }
        case "ArgMax": guard !layer.argmaxParam.hasAxis else { return }
        case "Interp":
            let p = layer.interpParam
            guard inputs.count == 2 || p.padBeg != 0 || p.padEnd != 0 || p.hasShrinkFactor else { return }
        default: guard graph.nodes.count - layerNodeStart >= 2 else { return }
        }
        let nodes = Array(graph.nodes[layerNodeStart...])
        let made = Set(nodes.flatMap(\.outputs))
        let reads = Set(nodes.flatMap(\.inputs))
        guard inputs.enumerated().allSatisfy({ i, v in
                  !made.contains(v.name) && (reads.contains(v.name) || (["Crop", "Interp"].contains(layer.type) && i == 1) || layer.type == "PriorBox") }),
              outputs.allSatisfy({ made.contains($0.name) }) else { return }
        var parameter = layer
        parameter.bottom = []
        parameter.top = []
        parameter.blobs = []
        let weights: [[String: Any]] = blobs.map { b in
            let values = b.data.isEmpty ? b.doubleData.map { Float($0) } : b.data
            let shape = b.hasShape ? b.shape.dim.map { Int($0) } : [Int(b.num), Int(b.channels), Int(b.height), Int(b.width)]
            return ["shape": shape, "digest": weightDigest(values)]
        }
        recordedLayers.append(["layer": origin.layer, "parameter": parameter.textFormatString(), "inputs": inputs.map(\.name),
                               "outputs": outputs.map(\.name), "weights": weights,
                               "nodes": nodes.map { ["name": $0.name, "op": "\($0.op)"] }])
    }

    /// The records as metadata, with the names `finish` gave the values and nodes.
    func recordedLayersMetadata(renamed: (String) -> String) -> String? {
        guard !recordedLayers.isEmpty else { return nil }
        let list = recordedLayers.map { r -> [String: Any] in
            var r = r
            r["inputs"] = (r["inputs"] as? [String] ?? []).map(renamed)
            r["outputs"] = (r["outputs"] as? [String] ?? []).map(renamed)
            r["nodes"] = (r["nodes"] as? [[String: String]] ?? []).map { ["name": renamed($0["name"] ?? ""), "op": $0["op"] ?? ""] }
            return r
        }
        guard let data = try? JSONSerialization.data(withJSONObject: list, options: [.sortedKeys]) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}

/// A recorded layer the exporter can write: its parameter, nodes and blobs found again.
struct WritableRecordedCaffeLayer {
    var parameter: Caffe_LayerParameter
    var inputs: [String]
    var outputs: [String]
    var nodes: [Int]
    var blobs: [Tensor]
}

/// The recorded layers whose nodes `graph` still holds unchanged and whose blobs are found
/// again, of layers with no other nodes but layout Transposes, by the index of their first node.
func writableRecordedCaffeLayers(_ graph: Graph) -> [Int: WritableRecordedCaffeLayer] {
    guard let text = graph.metadata[caffeRecordedLayersKey], let data = text.data(using: .utf8),
          let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return [:] }
    let index = Dictionary(graph.nodes.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
    let readers = graph.consumerIndices()
    var matched: [Int: (group: RecordedLayerGroup, match: RecordedLayerMatch, payload: WritableRecordedCaffeLayer)] = [:]
    for r in list {
        guard let layer = r["layer"] as? String, let text = r["parameter"] as? String,
              let parameter = try? Caffe_LayerParameter(textFormatString: text),
              let inputs = r["inputs"] as? [String], let outputs = r["outputs"] as? [String], !outputs.isEmpty,
              let nodes = r["nodes"] as? [[String: String]], let weights = r["weights"] as? [[String: Any]] else { continue }
        let group = RecordedLayerGroup(
            layer: layer, inputs: inputs, outputs: outputs,
            nodes: nodes.map { ($0["name"] ?? "", $0["op"] ?? "") },
            weights: weights.map { .init(shape: $0["shape"] as? [Int] ?? [], digest: $0["digest"] as? String ?? "") })
        guard let m = group.match(in: graph, index: index, readers: readers) else { continue }
        matched[m.nodes.min()!] = (group, m, WritableRecordedCaffeLayer(parameter: parameter, inputs: inputs, outputs: outputs,
                                                                             nodes: m.nodes, blobs: m.weights))
    }
    return RecordedLayerGroup.complete(matched, in: graph).mapValues(\.payload)
}

extension CaffeExportContext {
    /// Writes a recorded layer as it was: its parameter, bottoms and tops for the recorded
    /// values, its blobs.
    mutating func writeRecorded(_ r: WritableRecordedCaffeLayer) throws {
        var l = r.parameter
        l.name = uniqueLayerName(l.name)
        l.bottom = try r.inputs.map { try bottom($0) }
        l.top = r.outputs.map { topBlob($0) }
        l.blobs = r.blobs.map(caffeBlob)
        layers.append(l)
        absorbed.formUnion(r.nodes)
    }
}

extension Graph {
    /// A recorded PriorBox whose Identity an importer folded away (the ONNX importer reads an
    /// Identity of a constant as that constant under the output's name): the Identity made again
    /// from the record (the constant renamed beside it), so that the PriorBox comes back from its
    /// record as in a Caffe source. The priors are the constant the Caffe importer computed from
    /// the same parameter and bottom sizes.
    func restoringFoldedPriorBoxes() -> Graph {
        guard let text = metadata[caffeRecordedLayersKey], let data = text.data(using: .utf8),
              let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return self }
        var g = self
        let produced = Set(nodes.flatMap(\.outputs))
        var names = Set(nodes.map(\.name)).union(produced).union(initializers.keys)
        for r in list {
            guard let layer = r["layer"] as? String, let parameter = (r["parameter"] as? String).flatMap({ try? Caffe_LayerParameter(textFormatString: $0) }),
                  parameter.type == "PriorBox", let nodes = r["nodes"] as? [[String: String]], nodes.count == 1,
                  let name = nodes[0]["name"], nodes[0]["op"] == "\(Op.identity)", r["outputs"] as? [String] == [name],
                  outputs.contains(where: { $0.name == name }), !produced.contains(name), let priors = g.initializers[name] else { continue }
            var constant = "\(name)/priors"
            var k = 1
            while names.contains(constant) { constant = "\(name)/priors_\(k)"; k += 1 }
            names.insert(constant)
            g.initializers[name] = nil
            g.initializers[constant] = priors
            g.nodes.append(Node(name: name, op: .identity, inputs: [constant], outputs: [name], origins: [Origin(layer: layer, type: "PriorBox")]))
        }
        return g
    }
}
