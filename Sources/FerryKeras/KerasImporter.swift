import FerryIR

/// Imports Keras models saved as legacy HDF5 (`model.save("x.h5")`, Keras 2 or Keras 3).
///
/// The graph keeps the model's interface: inputs named after the InputLayers in Keras layout
/// (NHWC images) with the open batch size as the symbol N, outputs named after the output layers
/// in Keras layout. Inside, activations are channels first (NCHW); Transpose nodes at the
/// layout boundaries are made once per tensor and left for the optimizer to cancel.
public enum KerasImporter {
    /// Loads a Keras 2 or Keras 3 legacy-HDF5 `.h5` model file into the IR.
    ///
    /// Throws `FerryError` naming the file and, where one is at fault, the Keras layer and its
    /// class: for unsupported layers or attribute values, Lambda layers (never run), and files
    /// whose config and weights disagree.
    public static func load(path: String) throws -> Graph {
        do {
            return try HDF5.withLibrary { try importModel(path: path) }
        } catch let e as FerryError {
            throw e.inFile(path)
        } catch {
            throw FerryError("\(error)", file: path)
        }
    }

    private static func importModel(path: String) throws -> Graph {
        let file = try KerasFile(path: path)
        let model = try ModelConfig.parse(json: file.modelConfigJSON)
        var metadata = ["source_format": "keras-h5", "keras_model_class": model.kind.rawValue]
        if !file.kerasVersion.isEmpty { metadata["keras_version"] = file.kerasVersion }
        if !file.backend.isEmpty { metadata["backend"] = file.backend }
        let ctx = LayerContext(builder: GraphBuilder(name: model.name, metadata: metadata), file: file)
        return try assemble(model, ctx)
    }

    /// Builds every layer call once its inputs exist (inputs first, in declared order), then
    /// names the outputs after their layers.
    static func assemble(_ model: ModelConfig, _ ctx: LayerContext) throws -> Graph {
        let layers = Dictionary(model.layers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var tensors: [TensorRef: KerasTensor] = [:]

        func call(_ layer: ParsedLayer, node: Int, inputs: [TensorRef]) throws {
            ctx.begin(layer.origin)
            do {
                let ins = try inputs.map { ref in
                    guard let t = tensors[ref] else {
                        throw ctx.error("input \(ref) does not exist (no such layer, call or output)")
                    }
                    return t
                }
                let outs = try layer.spec.build(ins, ctx)
                for (i, t) in outs.enumerated() { tensors[TensorRef(layer: layer.name, node: node, tensor: i)] = t }
            } catch let e as FerryError {
                throw e.atLayer(layer.name, type: layer.className)
            }
        }

        for ref in model.inputs {
            guard let layer = layers[ref.layer], layer.className == "InputLayer" else {
                throw FerryError("model input \(ref) is not an InputLayer of the model", layer: ref.layer)
            }
            guard ref.node == 0, ref.tensor == 0 else {
                throw FerryError("model input \(ref) should be [\(ref.layer), 0, 0]", layer: ref.layer, layerType: "InputLayer")
            }
            if tensors[ref] == nil { try call(layer, node: 0, inputs: []) }
        }

        var pending: [(layer: ParsedLayer, node: Int, inputs: [TensorRef])] = []
        for layer in model.layers {
            for (node, inputs) in layer.calls.enumerated() { pending.append((layer, node, inputs)) }
        }
        while !pending.isEmpty {
            guard let next = pending.firstIndex(where: { $0.inputs.allSatisfy { tensors[$0] != nil } }) else {
                let stuck = pending[0]
                let missing = stuck.inputs.filter { tensors[$0] == nil }.map(\.description).joined(separator: ", ")
                throw FerryError("input \(missing) is never computed (an unknown layer, or a cycle)",
                                 layer: stuck.layer.name, layerType: stuck.layer.className)
            }
            let c = pending.remove(at: next)
            try call(c.layer, node: c.node, inputs: c.inputs)
        }

        var outputs: [(name: String, value: IRValue, origin: Origin)] = []
        for ref in model.outputs {
            guard let t = tensors[ref], let layer = layers[ref.layer] else {
                throw FerryError("model output \(ref) is never computed", layer: ref.layer)
            }
            ctx.begin(layer.origin)
            do {
                outputs.append((layer.name, try ctx.kerasLayout(t), layer.origin))
            } catch let e as FerryError {
                throw e.atLayer(layer.name, type: layer.className)
            }
        }
        return try ctx.finish(outputs: outputs)
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
        if renames.isEmpty { return g }
        func renamed(_ n: String) -> String { renames[n] ?? n }
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
