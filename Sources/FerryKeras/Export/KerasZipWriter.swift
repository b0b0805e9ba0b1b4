import Foundation
import FerryIR
import ZIPFoundation

/// The Keras 3 `.keras` zip: `config.json` (Keras 3 serialization: module and registered_name
/// on every object, `batch_shape`, DTypePolicy dicts, `__keras_tensor__` inbound nodes),
/// `metadata.json`, and `model.weights.h5` with each layer's weights at
/// `layers/<snake_case class name + per-class counter>/vars/<i>` (the user's layer name in the
/// `vars` group's `name` attribute), as Keras 3's saving_lib names them.
extension KerasExporter {
    public static let keras3Version = "3.15.1"

    /// Merge layers take their inputs as one list argument.
    static let mergeClasses: Set<String> = ["Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average", "Concatenate",
                                            "Dot", "Attention"]

    /// Writes the model as a `.keras` zip (temporary file renamed into place).
    @discardableResult
    public static func writeKeras(_ graph: Graph, to path: String) throws -> Export {
        let export: Export
        // Nested models are written flat here (shared layers stay shared): Keras 3 nests their
        // weights under each model's own auto-named group, which this writer does not do yet.
        do { export = try self.export(graph, target: .keras3Zip) } catch let e as FerryError { throw e.inFile(path) }
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        let weights = folder.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).weights.h5")
        defer {
            try? FileManager.default.removeItem(at: temporary)
            try? FileManager.default.removeItem(at: weights)
        }
        let modelName = (export.config["config"] as? [String: Any])?["name"] as? String ?? "model"
        try HDF5.withLibrary {
            let w = try H5Writer(path: weights.path, namedInErrors: path)
            try w.group("vars")
            try w.setStrings("name", [modelName], on: "vars", variableLength: true, scalar: true)
            var counters: [String: Int] = [:]
            for layer in export.layers {
                let base = snakeCase(layer.className)
                let n = counters[base, default: 0]
                counters[base] = n + 1
                let folder = "layers/\(n == 0 ? base : "\(base)_\(n)")"
                try w.group("\(folder)/vars")
                try w.setStrings("name", [layer.name], on: "\(folder)/vars", variableLength: true, scalar: true)
                // A recurrent layer's weights are its cell's (a Bidirectional's its two layers'
                // cells), each group counting its own from 0.
                var counts: [String: Int] = [:]
                let share = layer.keras3Groups.isEmpty ? 0 : layer.weights.count / layer.keras3Groups.count
                for (i, weight) in layer.weights.enumerated() {
                    var (sub, cell) = keras3WeightGroup(weight.name, layer: layer.name)
                    let g = layer.keras3WeightGroups.count == layer.weights.count ? layer.keras3WeightGroups[i] : share > 0 ? i / share : -1
                    if g >= 0, g < layer.keras3Groups.count, case let group = layer.keras3Groups[g], !group.isEmpty {
                        (sub, cell) = (group.joined(separator: "/"), layer.keras3GroupNames[g])
                    }
                    let group = sub.isEmpty ? "\(folder)/vars" : "\(folder)/\(sub)/vars"
                    if counts[group] == nil {
                        counts[group] = 0
                        if !sub.isEmpty {
                            try w.group(group)
                            try w.setStrings("name", [cell], on: group, variableLength: true, scalar: true)
                        }
                    }
                    try w.writeFloats("\(group)/\(counts[group]!)", shape: weight.tensor.shape, weight.tensor.floats)
                    counts[group]! += 1
                }
            }
            try w.close()
        }
        let config = try JSONSerialization.data(withJSONObject: keras3Config(export), options: [.sortedKeys])
        let metadata = try JSONSerialization.data(withJSONObject: ["keras_version": keras3Version, "date_saved": dateSaved()],
                                                  options: [.sortedKeys])
        do {
            let archive = try Archive(url: temporary, accessMode: .create)
            for (name, data) in [("metadata.json", metadata), ("config.json", config)] {
                try archive.addEntry(with: name, type: .file, uncompressedSize: Int64(data.count)) { position, size in
                    data.subdata(in: Int(position)..<Int(position) + size)
                }
            }
            try archive.addEntry(with: "model.weights.h5", fileURL: weights)
        } catch let e as FerryError {
            throw e
        } catch {
            throw FerryError("cannot write the .keras archive: \(error)", file: path)
        }
        guard rename(temporary.path, path) == 0 else {
            throw FerryError("cannot move the written file into place: \(String(cString: strerror(errno)))", file: path)
        }
        return export
    }

    /// The model config in Keras 3's serialization.
    static func keras3Config(_ export: Export) -> [String: Any] {
        let dtype: [String: Any] = ["module": "keras", "class_name": "DTypePolicy", "config": ["name": "float32"],
                                    "registered_name": NSNull()]
        let ranks = Dictionary(export.layers.map { ($0.name, $0.outputRank) }, uniquingKeysWith: { a, _ in a })
        // The shape only sizes a placeholder Keras replaces by the named layer's output.
        func tensor(_ ref: KerasTensorRef) -> [String: Any] {
            ["class_name": "__keras_tensor__",
             "config": ["shape": Array(repeating: NSNull(), count: ranks[ref.layer] ?? 1), "dtype": "float32",
                        "keras_history": [ref.layer, ref.node, ref.tensor] as [Any]]]
        }
        let layers: [[String: Any]] = export.layers.map { l in
            var config = l.config
            if l.className == "InputLayer" {
                config["batch_shape"] = config.removeValue(forKey: "batch_input_shape")
            } else {
                config["dtype"] = dtype
            }
            // One inbound node per call (a shared layer has several).
            let calls: [[String: Any]] = l.calls.enumerated().map { k, call in
                let args: [Any] = mergeClasses.contains(l.className) ? [call.map(tensor)] : [tensor(call[0])]
                // A recurrent layer's further inputs are its initial states.
                var kwargs: [String: Any] = !mergeClasses.contains(l.className) && call.count > 1
                    ? ["initial_state": call.dropFirst().map(tensor)] : [:]
                kwargs.merge(l.arguments(ofCall: k).mapValues { $0.json(tensor) }) { a, _ in a }
                return ["args": args, "kwargs": kwargs]
            }
            return ["module": "keras.layers", "class_name": l.className, "config": config, "registered_name": NSNull(),
                    "name": l.name, "inbound_nodes": calls]
        }
        var model = export.config["config"] as? [String: Any] ?? [:]
        model["layers"] = layers
        return ["module": "keras.src.models.functional", "class_name": "Functional", "config": model,
                "registered_name": "Functional"]
    }

    /// Where Keras 3 keeps a weight named `<layer>/<path>/<leaf>:0` inside its layer's folder,
    /// and that group's name: a recurrent cell's (`<layer>/lstm_cell/kernel:0`) in `cell`, a
    /// Bidirectional's (`<layer>/forward_<inner>/lstm_cell/kernel:0`) in `forward_layer/cell`
    /// or `backward_layer/cell`; any other weight in the layer's own `vars` ("").
    static func keras3WeightGroup(_ weight: String, layer: String) -> (String, String) {
        let parts = weight.hasPrefix(layer + "/") ? weight.dropFirst(layer.count + 1).split(separator: "/").map(String.init) : []
        guard parts.count >= 2, let cell = parts.dropLast().last, cell.hasSuffix("_cell") else { return ("", "") }
        if parts.count == 3 { return ((parts[0].hasPrefix("forward_") ? "forward_layer" : "backward_layer") + "/cell", cell) }
        return ("cell", cell)
    }

    /// Keras's `to_snake_case`: Conv2D -> conv2d, BatchNormalization -> batch_normalization.
    static func snakeCase(_ name: String) -> String {
        ModelConfig.splitCamelCase(name).lowercased()
    }

    static func dateSaved() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd@HH:mm:ss"
        return f.string(from: Date())
    }
}
