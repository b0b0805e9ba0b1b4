import FerryIR
import Foundation

/// One Keras tensor in a model: the `tensor`-th output of the `node`-th call of `layer`.
struct TensorRef: Hashable, CustomStringConvertible {
    var layer: String
    var node: Int
    var tensor: Int

    var description: String { "\(layer)[\(node)][\(tensor)]" }
}

/// One call of a layer: the tensors passed positionally, and those passed by keyword
/// (`initial_state`, an attention layer's `key`), in the order Keras wrote them.
struct LayerCall {
    var positional: [TensorRef]
    var named: [(key: String, refs: [TensorRef])] = []
    /// Boolean call arguments (an attention layer's `use_causal_mask`, `return_attention_scores`).
    var flags: [String: Bool] = [:]
    /// Numeric call arguments (a TFOpLambda's `y`).
    var numbers: [String: Double] = [:]
    /// The names of every keyword argument given a value other than null.
    var keywords: Set<String> = []
    /// Keras 3: the call's top-level positional arguments in order, nil for a tensor and the
    /// value for a number (a Keras operation's `x + 3.0` is recorded as add(x, 3.0)).
    var positionalArguments: [Double?] = []
    /// For a keyword argument given as a list, the positions of its null entries (Attention's
    /// `mask=[query_mask, None]`), which its tensor references leave out.
    var nullEntries: [String: [Int]] = [:]
    /// The keyword arguments given as a list (Attention's `mask=[...]`; a Keras 2 `[layer, node,
    /// tensor]` triple is one tensor, not a list).
    var listKeywords: Set<String> = []

    /// Records a keyword argument that is not a tensor.
    mutating func note(_ key: String, _ value: JSONValue) {
        guard !value.isNull else { return }
        keywords.insert(key)
        if let list = value.array {
            if list.first?.string == nil { listKeywords.insert(key) }
            let nulls = list.indices.filter { list[$0].isNull }
            if !nulls.isEmpty { nullEntries[key] = nulls }
        }
        if let b = value.bool { flags[key] = b }
        if let n = value.number, n.isFinite { numbers[key] = n }
    }

    var all: [TensorRef] { positional + named.flatMap(\.refs) }
}

/// A layer of the model with its typed, validated configuration.
struct ParsedLayer {
    var name: String
    var className: String
    var spec: any KerasLayer
    /// One entry per call of the layer (its inbound nodes): the tensors it was called on.
    var calls: [LayerCall]
    /// The name Keras 3's weight layout gives the layer (snake_case class + counter).
    var autoName = ""
    /// What the config's node indices add to the call's position: 1 for models nested in a
    /// Keras 2 model (their node 0 is their own construction, left out of the config).
    var nodeOffset = 0
    /// The layer's config as the file holds it, for the classes the exporter records
    /// (`kerasRecordedLayerClasses`); empty for the others.
    var config: [String: Any] = [:]

    var origin: Origin { Origin(layer: name, type: className) }
}

/// A Keras `model_config` (Sequential or Functional, Keras 2 or Keras 3) reduced to one typed
/// form: layers in file order, each call's inputs, and the model's inputs and outputs.
struct ModelConfig {
    enum Kind: String { case sequential = "Sequential", functional = "Functional" }

    var kind: Kind
    var name: String
    var layers: [ParsedLayer]
    var inputs: [TensorRef]
    var outputs: [TensorRef]
    /// Whether the model was built on a declared input (an InputLayer or an input shape).
    var hasDeclaredInput = true

    /// Parses the JSON text of the `model_config` attribute. Unsupported layers and Lambda
    /// layers are refused here, before any weight is read.
    static func parse(json: String, kerasMajor: Int) throws -> ModelConfig {
        try parse(root: ConfigReader.parse(json: json), kerasMajor: kerasMajor, depth: 0)
    }

    /// Class names of models, which may also appear as layers of other models.
    static let modelClassNames: Set<String> = ["Sequential", "Functional", "Model"]

    private static func parse(root: ConfigReader, kerasMajor: Int, depth: Int) throws -> ModelConfig {
        guard depth < 32 else { throw FerryError("models are nested too deeply") }
        let className = try root.string("class_name")
        var model: ModelConfig
        switch className {
        case "Sequential":
            model = try parseSequential(root, kerasMajor: kerasMajor, depth: depth)
        case "Functional", "Model":
            model = try parseFunctional(root.object("config"), kerasMajor: kerasMajor, depth: depth)
        default:
            throw FerryError("model class \(className) is not supported (expected Sequential or Functional)")
        }
        model.assignAutoNames()
        return model
    }

    /// Keras 3 names each layer's weight group after its class in snake_case, counting per
    /// class in the model's layer order (a Sequential's list leaves out its InputLayer).
    private mutating func assignAutoNames() {
        var used: [String: Int] = [:]
        for i in layers.indices {
            if kind == .sequential && layers[i].className == "InputLayer" { continue }
            // Operations (`x + 3.0`) are not layers: Keras does not count them.
            if layers[i].spec is KerasOperationSpec { continue }
            let base = Self.snakeCase(layers[i].className)
            if let n = used[base] {
                used[base] = n + 1
                layers[i].autoName = "\(base)_\(n + 1)"
            } else {
                used[base] = 0
                layers[i].autoName = base
            }
        }
    }

    /// Keras's `to_snake_case`: "Conv2D" -> "conv2d", "PReLU" -> "p_re_lu".
    static func snakeCase(_ name: String) -> String {
        splitCamelCase(name.filter { $0.isLetter || $0.isNumber || $0 == "_" }).lowercased()
    }

    /// Keras's two substitutions of `to_snake_case` before it lowercases, `(.)([A-Z][a-z]+)` ->
    /// `\1_\2` and then `([a-z])([A-Z])` -> `\1_\2` (each over the whole name, left to right,
    /// matches not overlapping), written out: Foundation's regular expressions load ICU's
    /// code and tables (1.6 MB of a `ferry run`'s resident memory) for two layer names' worth.
    static func splitCamelCase(_ name: String) -> String {
        func upper(_ c: Unicode.Scalar) -> Bool { ("A"..."Z").contains(c) }
        func lower(_ c: Unicode.Scalar) -> Bool { ("a"..."z").contains(c) }
        // (.)([A-Z][a-z]+): any character, then a capital that starts a lowercase run.
        let scalars = Array(name.unicodeScalars)
        var first: [Unicode.Scalar] = []
        var i = 0
        while i < scalars.count {
            if i + 2 < scalars.count, upper(scalars[i + 1]), lower(scalars[i + 2]) {
                var end = i + 3
                while end < scalars.count, lower(scalars[end]) { end += 1 }
                first.append(scalars[i])
                first.append("_")
                first.append(contentsOf: scalars[(i + 1)..<end])
                i = end
            } else {
                first.append(scalars[i])
                i += 1
            }
        }
        // ([a-z])([A-Z]): a lowercase letter followed by a capital.
        var second = String.UnicodeScalarView()
        i = 0
        while i < first.count {
            if i + 1 < first.count, lower(first[i]), upper(first[i + 1]) {
                second.append(contentsOf: [first[i], "_", first[i + 1]])
                i += 2
            } else {
                second.append(first[i])
                i += 1
            }
        }
        return String(second)
    }

    // MARK: Sequential

    private static func parseSequential(_ root: ConfigReader, kerasMajor: Int, depth: Int) throws -> ModelConfig {
        // Keras 2.2 and older wrote the layer list directly as "config".
        let config: ConfigReader?
        let layerObjects: [ConfigReader]
        if root.raw("config")?.array != nil {
            config = nil
            layerObjects = try root.objects("config")
        } else {
            let c = try root.object("config")
            config = c
            layerObjects = try c.objects("layers")
        }
        let name = try config?.string("name", default: "sequential") ?? "sequential"
        var layers = try layerObjects.map { try parseLayer($0, functional: false, kerasMajor: kerasMajor, depth: depth) }

        let input: ParsedLayer
        var declaredInput = true
        if let first = layers.first, first.className == "InputLayer" {
            input = layers.removeFirst()
        } else {
            // Keras 2 may carry the input shape on the first layer instead of an InputLayer.
            let firstConfig = try layerObjects.first.map { try $0.object("config") }
            var dims = try firstConfig?.optionalDims("batch_input_shape")
                ?? firstConfig?.optionalDims("batch_shape")
                ?? config?.optionalDims("build_input_shape")
            if dims == nil && depth > 0 {
                // A nested Sequential takes its input from the call; the shape is not needed.
                declaredInput = false
                dims = [nil]
            }
            guard let dims else {
                throw FerryError("Sequential model '\(name)' has no InputLayer and no input shape")
            }
            let inputName = "\(layers.first?.name ?? name)_input"
            input = ParsedLayer(name: inputName, className: "InputLayer",
                                spec: InputLayerSpec(batchShape: dims, dtype: .float32), calls: [])
        }
        guard !layers.isEmpty else { throw FerryError("Sequential model '\(name)' has no layers") }
        for layer in layers where layer.className == "InputLayer" {
            throw FerryError("an InputLayer may only come first in a Sequential model",
                             layer: layer.name, layerType: layer.className)
        }
        var previous = TensorRef(layer: input.name, node: 0, tensor: 0)
        for i in layers.indices {
            layers[i].calls = [LayerCall(positional: [previous])]
            previous = TensorRef(layer: layers[i].name, node: layers[i].nodeOffset, tensor: 0)
        }
        var model = ModelConfig(kind: .sequential, name: name, layers: [input] + layers,
                                inputs: [TensorRef(layer: input.name, node: 0, tensor: 0)], outputs: [previous])
        model.hasDeclaredInput = declaredInput
        try model.checkNames()
        return model
    }

    // MARK: Functional

    private static func parseFunctional(_ config: ConfigReader, kerasMajor: Int, depth: Int) throws -> ModelConfig {
        let name = try config.string("name", default: "model")
        let layers = try config.objects("layers").map {
            try parseLayer($0, functional: true, kerasMajor: kerasMajor, depth: depth)
        }
        let inputs = try tensorRefs(config.raw("input_layers"), what: "input_layers", in: config)
        let outputs = try tensorRefs(config.raw("output_layers"), what: "output_layers", in: config)
        guard !inputs.isEmpty else { throw FerryError("model '\(name)' declares no input_layers") }
        guard !outputs.isEmpty else { throw FerryError("model '\(name)' declares no output_layers") }
        let model = ModelConfig(kind: .functional, name: name, layers: layers, inputs: inputs, outputs: outputs)
        try model.checkNames()
        return model
    }

    /// `input_layers` / `output_layers`: a list of [name, node, tensor] triples, or (Keras 3
    /// with a single input or output) one bare triple.
    private static func tensorRefs(_ value: JSONValue?, what: String, in config: ConfigReader) throws -> [TensorRef] {
        guard let value, let list = value.array else { throw config.error("model config has no list '\(what)'") }
        if list.first?.string != nil { return [try tensorRef(value, what: what, in: config)] }
        return try list.map { try tensorRef($0, what: what, in: config) }
    }

    /// One [name, node_index, tensor_index, (kwargs)] entry.
    private static func tensorRef(_ value: JSONValue, what: String, in config: ConfigReader) throws -> TensorRef {
        let bad = config.error("an entry of \(what) should be [layer name, node index, tensor index], is \(value.summary)")
        guard let triple = value.array, triple.count >= 3, let layer = triple[0].string else { throw bad }
        let node = try JSONValue.int(triple[1], orThrow: bad)
        let tensor = try JSONValue.int(triple[2], orThrow: bad)
        guard node >= 0, tensor >= 0 else { throw bad }
        return TensorRef(layer: layer, node: node, tensor: tensor)
    }

    // MARK: Layers

    /// Parses one entry of `layers`: checks the type against the layer table (refusing Lambda
    /// before reading anything but its name), parses its config, and reads its inbound nodes.
    private static func parseLayer(_ entry: ConfigReader, functional: Bool, kerasMajor: Int, depth: Int) throws -> ParsedLayer {
        let className = try entry.string("class_name")
        let config = try entry.object("config")
        guard let name = try entry.optionalString("name") ?? config.optionalString("name") else {
            throw FerryError("a layer of type \(className) has no name", layerType: className)
        }
        if className == "Lambda" {
            throw FerryError("Lambda layers hold Python code; Ferry never runs code from a model file",
                             layer: name, layerType: className)
        }
        let registered = entry.raw("registered_name")?.string ?? ""
        let module = entry.raw("module")?.string
        if KerasOperationSpec.isOperation(className: className, module: module, config: config) {
            // Keras 3 records keras.ops functions on Keras tensors (`x + 3.0`) as operations, not layers.
            let spec = try KerasOperationSpec(className: className, module: module, config: config.forLayer(name, type: className))
            let calls = functional ? try inboundNodes(entry.forLayer(name, type: className)) : []
            return ParsedLayer(name: name, className: className, spec: spec, calls: calls)
        }
        if let parser = kerasApplicationCustomLayers[className], registered.isEmpty || registered == className {
            let spec = try parser(config.forLayer(name, type: className))
            let calls = functional ? try inboundNodes(entry.forLayer(name, type: className)) : []
            return ParsedLayer(name: name, className: className, spec: spec, calls: calls)
        }
        if className.contains(">") || registered.contains(">") {
            throw FerryError("custom layer class \(registered.contains(">") ? registered : className) is not a Keras "
                             + "layer; its code is not in the file",
                             layer: name, layerType: className)
        }
        let spec: any KerasLayer
        var nodeOffset = 0
        if modelClassNames.contains(className) {
            let inner: ModelConfig
            do {
                inner = try parse(root: entry, kerasMajor: kerasMajor, depth: depth + 1)
            } catch let e as FerryError {
                throw e.atLayer(name, type: className)
            }
            spec = NestedModelSpec(model: inner)
            // Keras 2 leaves out a built model's own first node, so its calls count from 1.
            if kerasMajor == 2 && (inner.kind == .functional || inner.hasDeclaredInput) { nodeOffset = 1 }
        } else {
            guard let parser = kerasLayerTable[className] else {
                throw FerryError("layer type \(className) is not supported yet", layer: name, layerType: className)
            }
            spec = try parser(config.forLayer(name, type: className))
        }
        let calls = functional ? try inboundNodes(entry.forLayer(name, type: className)) : []
        // Only the recorded classes' configs are read again (by `recordCall`); the parsed JSON of
        // the others is freed here rather than held while the weights are read.
        let kept = kerasRecordedLayerClasses.contains(className) ? config.foundationObject : [:]
        return ParsedLayer(name: name, className: className, spec: spec, calls: calls, nodeOffset: nodeOffset, config: kept)
    }

    /// The calls of a Functional layer. Keras 2: `[[["layer", node, tensor, {kwargs}], ...], ...]`,
    /// tensors passed by keyword as `[layer, node, tensor]` triples inside the kwargs; Keras 3:
    /// `[{"args": [<keras tensor or list of them>, ...], "kwargs": {...}}, ...]`.
    private static func inboundNodes(_ entry: ConfigReader) throws -> [LayerCall] {
        guard let value = entry.raw("inbound_nodes") else { return [] }
        guard let nodes = value.array else {
            throw entry.error("inbound_nodes should be a list, is \(value.kind)")
        }
        return try nodes.map { node in
            if var entries = node.array {
                // tf_keras writes a TFOpLambda's call as one bare entry, not a list of entries.
                if entries.first?.string != nil { entries = [node] }
                var call = LayerCall(positional: try entries.map { try tensorRef($0, what: "inbound_nodes", in: entry) })
                // A call on a list of tensors repeats its kwargs beside each of them: read them once.
                var seen = Set<String>()
                for item in entries {
                    guard let list = item.array, list.count >= 4, let kwargs = list[3].object else { continue }
                    for key in kwargs.keys.sorted() where seen.insert(key).inserted {
                        call.note(key, kwargs[key]!)
                        let refs = try keras2TensorRefs(kwargs[key]!, in: entry)
                        if !refs.isEmpty { call.named.append((key, refs)) }
                    }
                }
                return call
            }
            if let object = node.object {
                var call = LayerCall(positional: [])
                try collectKerasTensors(object["args"] ?? .array([]), into: &call.positional, depth: 0, in: entry)
                for argument in object["args"]?.array ?? [] {
                    call.positionalArguments.append(argument.number)
                }
                for (key, v) in (object["kwargs"]?.object ?? [:]).sorted(by: { $0.key < $1.key }) {
                    call.note(key, v)
                    var refs: [TensorRef] = []
                    try collectKerasTensors(v, into: &refs, depth: 0, in: entry)
                    if !refs.isEmpty { call.named.append((key, refs)) }
                }
                return call
            }
            throw entry.error("an inbound node should be a list or an object, is \(node.kind)")
        }
    }

    /// A Keras 2 keyword argument: a `[layer, node, tensor]` triple, a list of them, or not a
    /// tensor at all (null, numbers: no refs).
    private static func keras2TensorRefs(_ value: JSONValue, in entry: ConfigReader) throws -> [TensorRef] {
        guard let list = value.array, !list.isEmpty else { return [] }
        if list[0].string != nil {
            guard list.count == 3, list[1].number != nil, list[2].number != nil else { return [] }
            return [try tensorRef(value, what: "inbound_nodes", in: entry)]
        }
        return try list.flatMap { try keras2TensorRefs($0, in: entry) }
    }

    /// Keras 3 call arguments: finds `__keras_tensor__` objects in order, through nested lists.
    private static func collectKerasTensors(_ value: JSONValue, into refs: inout [TensorRef], depth: Int,
                                            in entry: ConfigReader) throws {
        guard depth < 16 else { throw entry.error("inbound node arguments are nested too deeply") }
        if let list = value.array {
            for v in list { try collectKerasTensors(v, into: &refs, depth: depth + 1, in: entry) }
        } else if let object = value.object, object["class_name"]?.string == "__keras_tensor__" {
            guard let config = object["config"]?.object, let history = config["keras_history"] else {
                throw entry.error("a __keras_tensor__ argument has no keras_history")
            }
            refs.append(try tensorRef(history, what: "keras_history", in: entry))
        }
        // Other arguments (numbers, strings, null) are not tensors.
    }

    private func checkNames() throws {
        var seen = Set<String>()
        for layer in layers where !seen.insert(layer.name).inserted {
            throw FerryError("two layers are named '\(layer.name)'", layer: layer.name, layerType: layer.className)
        }
    }
}
