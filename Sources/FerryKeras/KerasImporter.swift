import CFerryCPU
import FerryIR
import Foundation

/// Imports Keras models saved as legacy HDF5 (`model.save("x.h5")`, Keras 2 or Keras 3).
///
/// The graph keeps the model's interface: inputs named after the InputLayers in Keras layout
/// (NHWC images) with the open batch size as the symbol N, outputs named after the output layers
/// in Keras layout. Inside, activations are channels first (NCHW); Transpose nodes at the
/// layout boundaries are made once per tensor and left for the optimizer to cancel.
public enum KerasImporter {
    /// Loads a Keras model into the IR: a legacy HDF5 `.h5` (Keras 2 or 3), a Keras 3 `.keras`
    /// zip, or an architecture JSON (`model.to_json()`) with its weights file (`weights`).
    ///
    /// Throws `FerryError` naming the file and, where one is at fault, the Keras layer and its
    /// class: for unsupported layers or attribute values, Lambda layers (never run), and files
    /// whose config and weights disagree.
    public static func load(path: String, weights: String? = nil) throws -> Graph {
        do {
            return try HDF5.withLibrary {
                let ext = (path as NSString).pathExtension.lowercased()
                let source: KerasModelSource
                switch ext {
                case "keras":
                    source = try KerasModelSource.kerasZip(path: path)
                case "json":
                    guard let weights else {
                        throw FerryError("an architecture JSON needs its weights: --weights FILE.h5")
                    }
                    source = try KerasModelSource.jsonAndWeights(jsonPath: path, weightsPath: weights)
                default:
                    if weights != nil {
                        throw FerryError("--weights is for an architecture JSON; this .h5 holds its own weights")
                    }
                    source = try KerasModelSource.legacyH5(path: path)
                }
                return try importModel(source)
            }
        } catch let e as FerryError {
            throw e.inFile(path)
        } catch {
            throw FerryError("\(error)", file: path)
        }
    }

    private static func importModel(_ source: KerasModelSource) throws -> Graph {
        // Keras 2 always records its version; Keras 3's to_json() and .weights.h5 do not.
        let major = source.kerasVersion.hasPrefix("2") || source.kerasVersion.hasPrefix("1") ? 2 : 3
        let model = try ModelConfig.parse(json: source.configJSON, kerasMajor: major)
        // The parsed JSON's objects are freed once the typed config is made; their pages go
        // back before the weights are read (EfficientNetB0's 200 KB config parses into about 1 MB).
        ferry_return_free_heap_pages()
        var metadata = ["source_format": source.format, "keras_model_class": model.kind.rawValue]
        if !source.kerasVersion.isEmpty { metadata["keras_version"] = source.kerasVersion }
        if !source.backend.isEmpty { metadata["backend"] = source.backend }
        // The models used as layers ("inner", "outer/inner": their paths in the nodes' origins)
        // and their classes, so that the Keras exporter can write them back nested.
        let nested = nestedModelClasses(model, path: [])
        if !nested.isEmpty, let json = try? JSONSerialization.data(withJSONObject: nested, options: [.sortedKeys]) {
            metadata["keras_nested_models"] = String(decoding: json, as: UTF8.self)
        }
        // The names of the layers a Bidirectional wraps, by the wrapper's path.
        let wrapped = wrappedLayerNames(model, path: [])
        if !wrapped.isEmpty, let json = try? JSONSerialization.data(withJSONObject: wrapped, options: [.sortedKeys]) {
            metadata["keras_wrapped_layers"] = String(decoding: json, as: UTF8.self)
        }
        let ctx = LayerContext(builder: GraphBuilder(name: model.name, metadata: metadata), store: source.store,
                               kerasMajor: major)
        return try assemble(model, ctx)
    }

    /// {path of a wrapper layer: the wrapped layer's name} at any depth.
    static func wrappedLayerNames(_ model: ModelConfig, path: [String]) -> [String: String] {
        var result: [String: String] = [:]
        for layer in model.layers {
            if let wrapper = layer.spec as? WrapsNamedLayer, let inner = wrapper.innerName {
                result[(path + [layer.name]).joined(separator: "/")] = inner
            }
            if let nested = layer.spec as? NestedModelSpec {
                result.merge(wrappedLayerNames(nested.model, path: path + [layer.name])) { a, _ in a }
            }
        }
        return result
    }

    /// {path of a nested model: {"class": its class, "inputs": its InputLayers' names}} for
    /// every model used as a layer, at any depth.
    static func nestedModelClasses(_ model: ModelConfig, path: [String]) -> [String: Any] {
        var result: [String: Any] = [:]
        for layer in model.layers {
            guard let nested = layer.spec as? NestedModelSpec else { continue }
            let inner = path + [layer.name]
            result[inner.joined(separator: "/")] = ["class": nested.model.kind.rawValue, "inputs": nested.model.inputs.map(\.layer)]
            result.merge(nestedModelClasses(nested.model, path: inner)) { a, _ in a }
        }
        return result
    }

    /// Builds the whole model with graph inputs for its InputLayers, then names the outputs
    /// after their layers.
    static func assemble(_ model: ModelConfig, _ ctx: LayerContext) throws -> Graph {
        let results = try run(model, inputs: nil, ctx)
        let layers = Dictionary(model.layers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var outputs: [(name: String, value: IRValue, origin: Origin)] = []
        for (ref, t) in zip(model.outputs, results) {
            let layer = layers[ref.layer]!
            ctx.begin(layer)
            do {
                outputs.append((layer.name, try ctx.kerasLayout(t), ctx.origin))
            } catch let e as FerryError {
                throw e.atLayer(layer.name, type: layer.className)
            }
        }
        return try ctx.finish(outputs: outputs)
    }

    /// Builds every layer call of `model` once its inputs exist and returns the model's output
    /// tensors. `inputs` (a nested model's call) stand for the model's inputs; nil makes graph
    /// inputs from the InputLayers.
    static func run(_ model: ModelConfig, inputs given: [KerasTensor]?, _ ctx: LayerContext) throws -> [KerasTensor] {
        let layers = Dictionary(model.layers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var tensors: [TensorRef: KerasTensor] = [:]

        func call(_ layer: ParsedLayer, node: Int, _ call: LayerCall) throws {
            ctx.begin(layer)
            do {
                func resolve(_ ref: TensorRef) throws -> KerasTensor {
                    guard let t = tensors[ref] else {
                        throw ctx.error("input \(ref) does not exist (no such layer, call or output)")
                    }
                    return t
                }
                let ins = try call.positional.map(resolve)
                let named = try call.named.map { (key: $0.key, tensors: try $0.refs.map(resolve)) }
                let maskFrom = (ins + named.flatMap(\.tensors)).lazy.compactMap(\.maskFrom).first
                let effect = layer.spec.maskEffect
                if let maskFrom, effect == .reads {
                    throw ctx.error("its input carries the mask of layer '\(maskFrom)' (Masking or Embedding with "
                                    + "mask_zero), which this layer would read; Ferry does not compute masks")
                }
                if !(layer.spec is KerasOperationSpec), let i = call.positionalArguments.firstIndex(where: { $0 != nil }) {
                    // A layer takes tensors positionally; a number there would be silently dropped.
                    throw ctx.error("positional argument \(i + 1) of its call is a number, which this layer does not take")
                }
                let firstNode = ctx.builder.graph.nodes.count
                let outs = try ctx.withCallArguments(named, options: call) { try layer.spec.build(ins, ctx) }
                ctx.recordCall(layer, call, inputs: ins, named: named, outputs: outs, firstNode: firstNode)
                switch effect {
                case .makes: outs.forEach { $0.maskFrom = ctx.layerName }
                case .carries: if let maskFrom { outs.forEach { if $0.maskFrom == nil { $0.maskFrom = maskFrom } } }
                case .reads: break
                }
                for (i, t) in outs.enumerated() {
                    tensors[TensorRef(layer: layer.name, node: node + layer.nodeOffset, tensor: i)] = t
                }
            } catch let e as FerryError {
                throw e.atLayer(ctx.origin.layer, type: layer.className)
            }
        }

        if let given, given.count != model.inputs.count {
            throw FerryError("model '\(model.name)' takes \(model.inputs.count) inputs, is called on \(given.count)")
        }
        for (i, ref) in model.inputs.enumerated() {
            guard let layer = layers[ref.layer], layer.className == "InputLayer" else {
                throw FerryError("model input \(ref) is not an InputLayer of the model", layer: ref.layer)
            }
            guard ref.node == 0, ref.tensor == 0 else {
                throw FerryError("model input \(ref) should be [\(ref.layer), 0, 0]", layer: ref.layer, layerType: "InputLayer")
            }
            if let given {
                tensors[ref] = given[i]
            } else if tensors[ref] == nil {
                try call(layer, node: 0, LayerCall(positional: []))
            }
        }

        var pending: [(layer: ParsedLayer, node: Int, call: LayerCall)] = []
        for layer in model.layers where layer.className != "InputLayer" {
            for (node, c) in layer.calls.enumerated() { pending.append((layer, node, c)) }
        }
        while !pending.isEmpty {
            guard let next = pending.firstIndex(where: { $0.call.all.allSatisfy { tensors[$0] != nil } }) else {
                let stuck = pending[0]
                let missing = stuck.call.all.filter { tensors[$0] == nil }.map(\.description).joined(separator: ", ")
                throw FerryError("input \(missing) is never computed (an unknown layer, or a cycle)",
                                 layer: stuck.layer.name, layerType: stuck.layer.className)
            }
            let c = pending.remove(at: next)
            try call(c.layer, node: c.node, c.call)
        }

        return try model.outputs.map { ref in
            guard let t = tensors[ref], layers[ref.layer] != nil else {
                throw FerryError("model output \(ref) is never computed", layer: ref.layer)
            }
            return t
        }
    }
}

/// A model used as a layer of another (Sequential in Functional, or the reverse): its layers
/// are built inline on the call's inputs, their weights looked up under the model's name.
struct NestedModelSpec: KerasLayer {
    var model: ModelConfig

    init(model: ModelConfig) {
        self.model = model
    }

    init(config: ConfigReader) throws {
        throw config.error("a nested model is parsed from its whole entry")
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        try ctx.nested { try KerasImporter.run(model, inputs: inputs, ctx) }
    }
}

extension LayerContext {
    /// Declares the graph outputs under their layers' names and returns the verified graph.
    /// A value made by a node is renamed to the output name; a graph input, or a value that
    /// is already an output, goes through an Identity named after the layer.
    func finish(outputs: [(name: String, value: IRValue, origin: Origin)]) throws -> Graph {
        var b = builder
        let produced = Set(b.graph.nodes.flatMap(\.outputs))
        var renames: [String: String] = [:]
        for o in outputs {
            if produced.contains(o.value.name), renames[o.value.name] == nil {
                renames[o.value.name] = b.uniqueName(o.name)
                b.addOutput(o.value.name)
            } else {
                let id = b.add(.identity, inputs: [o.value.name], output: o.name, origin: o.origin)
                b.addOutput(id)
            }
        }
        var g = try b.finish()
        func renamed(_ n: String) -> String { renames[n] ?? n }
        if let records = recordedCallsMetadata(renamed: renamed) { g.metadata[kerasRecordedLayersKey] = records }
        if renames.isEmpty { return g }
        g.nodes = g.nodes.map { node in
            var n = node
            n.inputs = n.inputs.map(renamed)
            n.outputs = n.outputs.map(renamed)
            n.name = renamed(n.name)
            return n
        }
        g.outputs = g.outputs.map { Value(name: renamed($0.name), type: $0.type) }
        try g.verify()
        return g
    }
}
