import Foundation
import FerryIR

/// Writes an IR graph as a Keras model: a Functional model whose config is in the Keras 2
/// layout (tf_keras 2.x and Keras 3 both read it) and whose weights follow `model_weights`.
///
/// Keras layers are channels-last. Each IR value has a layout: the permutation taking the IR
/// value (channels-first inside the IR) to the Keras tensor. A Transpose costs no layer (it
/// only changes the layout); a layer that needs another layout (Conv2D wants channels-last,
/// Flatten and Dense want the IR's order) gets a Keras Permute first. A Keras model read by
/// Ferry thus comes back without extra layers, and a Caffe or ONNX (NCHW) model becomes an
/// NHWC Keras model whose changed inputs and outputs are reported.
/// Nodes Keras has no built-in layer for are an error listing them all; never a Lambda.
public enum KerasExporter {
    public struct Export {
        public var config: [String: Any]
        public var layers: [KerasLayerRecord]
        public var layoutChanges: [LayoutChange]
        /// Whether the model is written as a Sequential (a chain of single-input layers).
        public var isSequential: Bool
        /// Layers the file's reader gives another meaning than the source had, and how
        /// (`KerasMaskingMeaning.swift`): the conversion prints them as warnings.
        public var warnings: [String] = []
    }

    /// A written layer: name, class, config, calls and weights (Keras names and order).
    public struct KerasLayerRecord {
        public var name: String
        public var className: String
        public var config: [String: Any]
        /// The inputs of each call of the layer (a shared layer has several).
        public var calls: [[KerasTensorRef]]
        /// The layer's weights in Keras's order; a nested model's are its layers' (trainable
        /// ones first, as Keras lists a model's weights), named `<layer>/<weight>:0`.
        public var weights: [(name: String, tensor: Tensor)]
        /// The rank of the layer's output (Keras 3's config writes a placeholder shape of it).
        public var outputRank: Int
        /// The Keras shape of the (first) output, batch first; nil where open.
        var outputShape: [Int?]
        /// The nested model holding the layer while the export is assembled (its path).
        var scope: String
        /// A nested model's own layers (its InputLayers first, each layer with its calls inside
        /// the model) and its outputs.
        public var sublayers: [KerasLayerRecord] = []
        public var modelOutputs: [KerasTensorRef] = []
        /// Where Keras 3 keeps the weights below the layer's group, in order, each group
        /// holding an equal share (a recorded layer's: MultiHeadAttention's four dense layers,
        /// TimeDistributed's `layer`); empty: the layer's own `vars`, or as named.
        public var keras3Groups: [[String]] = []
        /// The `name` attribute of each of those groups (the wrapped layer's name).
        public var keras3GroupNames: [String] = []
        /// When the groups hold unequal shares: the group of each weight.
        public var keras3WeightGroups: [Int] = []
        /// Each call's keyword arguments (a recorded Attention's `use_causal_mask` and `mask`, a
        /// MultiHeadAttention's `value`); Keras 2 writes them with each of the call's inbound tensors.
        public var callArguments: [[String: KerasCallArgument]] = []

        func arguments(ofCall k: Int) -> [String: KerasCallArgument] { callArguments.indices.contains(k) ? callArguments[k] : [:] }

        /// The tensors call `k` reads: its inbound tensors, then its keyword tensors by key (the
        /// order Keras's `nest.flatten` of (args, kwargs) gives).
        func tensorsRead(byCall k: Int) -> [KerasTensorRef] {
            (calls.indices.contains(k) ? calls[k] : []) + arguments(ofCall: k).sorted { $0.key < $1.key }.flatMap { $0.value.tensors }
        }

        /// Every reference to another layer's tensor in the calls and their arguments mapped by `f`.
        mutating func mapTensors(_ f: (KerasTensorRef) -> KerasTensorRef) {
            calls = calls.map { $0.map(f) }
            callArguments = callArguments.map { $0.mapValues { $0.mapped(f) } }
        }

        public var isModel: Bool { !sublayers.isEmpty }
        public var inbound: [KerasTensorRef] { calls.first ?? [] }
    }

    public static let kerasVersion = "2.21.0"

    /// The file written: the Keras 2 layout `.h5` (read by tf_keras and Keras 3) or the Keras 3
    /// `.keras` zip. Where the two Keras versions give one name two meanings (`hard_sigmoid`),
    /// the name is written only with the meaning of the version that reads the file as its own.
    public enum Target: Sendable {
        case keras2H5, keras3Zip
    }

    /// Exports `source`. For the `.h5`, the models a Keras source used as layers are written
    /// back as nested models and a Sequential source as a Sequential; for the zip, every layer
    /// is written at the top of one Functional model.
    public static func export(_ source: Graph, target: Target = .keras2H5) throws -> Export {
        let nestedModels = target == .keras2H5
        let graph = source.splittingFusedActivations().removingIdentities().batchFirstRecurrentOps().groupNormalizationOps()
        try graph.verify()
        let types = try graph.inferTypes()
        var nested: [String: NestedModel] = [:]
        if nestedModels, let json = graph.metadata["keras_nested_models"]?.data(using: .utf8),
           let models = try? JSONSerialization.jsonObject(with: json) as? [String: [String: Any]] {
            for (path, m) in models {
                guard let className = m["class"] as? String else { continue }
                nested[path] = NestedModel(className: className, inputNames: m["inputs"] as? [String] ?? [])
            }
        }
        var ctx = KerasExportContext(graph: graph, types: types, target: target, nestedModels: nested)
        // A Keras model, or an ONNX file Ferry wrote from one, has channels-last inputs.
        let channelsLastSource = graph.metadata["source_format"]?.hasPrefix("keras") == true
            || graph.metadata["original_format"]?.hasPrefix("keras") == true
        let readers = graph.consumerIndices()
        var changes: [LayoutChange] = []
        for input in graph.inputs {
            let rank = input.type.shape.rank
            // Already channels-last: a Keras model's input, or one only Transposes to NCHW read
            // (an ONNX model written from Keras).
            let toChannelsFirst = rank >= 3 && !(readers[input.name] ?? []).isEmpty && (readers[input.name] ?? []).allSatisfy {
                if case .transpose(let p) = graph.nodes[$0].op { return p == channelsFirstPermutation(rank: rank) }
                return false
            }
            let layout = rank >= 3 && !channelsLastSource && !toChannelsFirst ? channelsLastPermutation(rank: rank) : Array(0..<rank)
            ctx.layout[input.name] = layout
            let layerName = ctx.uniqueName(kerasLayerName(input.name))
            ctx.tensor[input.name] = KerasTensorRef(layer: layerName)
            let shape = layout.map { input.type.shape.dims[$0] }
            ctx.layers.append(inputLayer(layerName, shape: shape.map(\.value), dtype: input.type.dtype))
            if layout != Array(0..<rank) {
                changes.append(LayoutChange(name: input.name, isInput: true, before: input.type.shape, after: Shape(shape),
                                            fromLayout: "channels-first", toLayout: "channels-last"))
            }
        }
        var failures = ExportFailures()
        let recorded = writableRecordedCalls(graph, ctx)
        // Attention layers whose records no longer match (an ONNX file's shared scores): their
        // nodes are taken before the loop and written at their Softmax.
        let attention = attentionPatterns(graph, taken: Set(recorded.values.flatMap(\.nodes)), ctx)
        ctx.absorbed.formUnion(attention.values.flatMap(\.nodes))
        for (i, node) in graph.nodes.enumerated() {
            if let p = attention[i] {
                ctx.begin(node, index: i)
                if failures.skipsDownstream(node) { continue }
                do { try ctx.writeAttentionPattern(p) } catch let e as FerryError { failures.record(node, e.message) }
                continue
            }
            if ctx.absorbed.contains(i) { continue }
            ctx.begin(node, index: i)
            if failures.skipsDownstream(node) { continue }
            if let call = recorded[i] {
                do { try ctx.writeRecorded(call) } catch let e as FerryError { failures.record(node, e.message) }
                continue
            }
            guard let writer = kerasExportTable[node.op.name] else {
                failures.record(node, "Keras has no built-in layer for \(node.op.name)")
                continue
            }
            do {
                try writer(&ctx, node)
                if let mix = ctx.timeMixError {
                    ctx.timeMixError = nil
                    failures.record(node, mix)
                }
            } catch let e as FerryError {
                failures.record(node, e.message)
            }
        }
        try failures.throwIfAny(format: "Keras", note: " (Ferry writes no Lambda layers)")
        // Nested models, innermost first: their layers' calls become the model's calls.
        for path in nested.keys.sorted(by: { $0.split(separator: "/").count > $1.split(separator: "/").count || ($0.split(separator: "/").count == $1.split(separator: "/").count && $0 < $1) }) {
            try ctx.assembleNestedModel(path, nested[path]!)
        }
        var outputLayers: [KerasTensorRef] = []
        for out in graph.outputs {
            guard let t = ctx.tensor[out.name] else { throw FerryError("output '\(out.name)' was not written") }
            if ctx.isTimeMerged(out.name) {
                throw FerryError("output '\(out.name)' holds time folded into the batch axis, which a Keras model cannot return")
            }
            outputLayers.append(t)
            let layout = ctx.layout[out.name] ?? []
            if layout != Array(0..<layout.count) {
                changes.append(LayoutChange(name: out.name, isInput: false, before: out.type.shape,
                                            after: Shape(layout.map { out.type.shape.dims[$0] }),
                                            fromLayout: "channels-first", toLayout: "channels-last"))
            }
        }
        let inputLayers = graph.inputs.map { ctx.tensor[$0.name]! }
        ctx.layers = kerasOrder(ctx.layers, outputs: outputLayers)
        let name = sanitizedModelName(graph.name)
        let sequential = nestedModels && graph.metadata["keras_model_class"] == "Sequential"
            && isChain(ctx.layers, inputs: inputLayers, outputs: outputLayers)
        let config = modelConfig(name: name, layers: ctx.layers, inputs: inputLayers, outputs: outputLayers, sequential: sequential)
        return Export(config: config, layers: ctx.layers, layoutChanges: changes, isSequential: sequential, warnings: ctx.warnings)
    }

    /// The layers in the order Keras lists a Functional model's layers (and loads an `.h5`'s
    /// weights, by position): by depth from the outputs, deepest first, and within one depth in
    /// the order a depth-first walk from the outputs meets them (Keras's `_map_graph_network`).
    /// Nested models' own layers are ordered the same way.
    static func kerasOrder(_ layers: [KerasLayerRecord], outputs: [KerasTensorRef]) -> [KerasLayerRecord] {
        struct Call: Hashable { var layer: String; var node: Int }
        let byName = Dictionary(layers.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        func parents(_ call: Call) -> [Call] {
            guard let i = byName[call.layer], layers[i].calls.indices.contains(call.node) else { return [] }
            return layers[i].tensorsRead(byCall: call.node).map { Call(layer: $0.layer, node: $0.node) }
        }
        var seen: [String: Int] = [:]
        var finished = Set<Call>()
        var postOrder: [Call] = []
        func visit(_ call: Call) {
            if finished.contains(call) { return }
            if seen[call.layer] == nil { seen[call.layer] = seen.count }
            for p in parents(call) { visit(p) }
            finished.insert(call)
            postOrder.append(call)
        }
        for o in outputs { visit(Call(layer: o.layer, node: o.node)) }
        var nodeDepth: [Call: Int] = [:]
        var layerDepth: [String: Int] = [:]
        for call in postOrder.reversed() {
            let depth = max(nodeDepth[call, default: 0], layerDepth[call.layer, default: 0])
            layerDepth[call.layer] = depth
            nodeDepth[call] = depth
            for p in parents(call) { nodeDepth[p] = max(depth + 1, nodeDepth[p, default: 0]) }
        }
        // Layers no output depends on (an unused input) keep their place after the others.
        let ordered = layers.filter { layerDepth[$0.name] != nil }.sorted {
            (layerDepth[$0.name]!, -seen[$0.name]!) > (layerDepth[$1.name]!, -seen[$1.name]!)
        }
        return (ordered + layers.filter { layerDepth[$0.name] == nil }).map { l in
            var l = l
            if l.isModel { l.sublayers = kerasOrder(l.sublayers, outputs: l.modelOutputs) }
            return l
        }
    }

    /// An InputLayer; integer and boolean inputs (an Embedding's ids, attention masks) keep their type.
    static func inputLayer(_ name: String, shape: [Int?], dtype: DType = .float32) -> KerasLayerRecord {
        KerasLayerRecord(name: name, className: "InputLayer", config: [
            "batch_input_shape": [NSNull()] + shape.dropFirst().map { d -> Any in d.map { $0 as Any } ?? NSNull() },
            "dtype": [.int32, .int64, .bool].contains(dtype) ? dtype.rawValue : "float32", "sparse": false, "ragged": false, "name": name,
        ], calls: [], weights: [], outputRank: shape.count, outputShape: shape, scope: "")
    }

    /// Whether `layers` (InputLayer first) form a Sequential: one input, each layer called once on
    /// the previous one's only output, the last one the only output.
    static func isChain(_ layers: [KerasLayerRecord], inputs: [KerasTensorRef], outputs: [KerasTensorRef]) -> Bool {
        guard inputs.count == 1, outputs.count == 1, layers.count >= 2, layers[0].className == "InputLayer",
              inputs[0] == KerasTensorRef(layer: layers[0].name) else { return false }
        for (previous, layer) in zip(layers, layers.dropFirst()) {
            guard layer.className != "InputLayer", layer.calls == [[KerasTensorRef(layer: previous.name)]],
                  layer.tensorsRead(byCall: 0).count == 1 else { return false }
        }
        return outputs[0] == KerasTensorRef(layer: layers.last!.name)
    }

    /// A node index as the Keras 2 config writes it: a nested model's calls count from 1 (its
    /// node 0 is its own construction).
    static func keras2Node(_ ref: KerasTensorRef, _ layers: [KerasLayerRecord]) -> Int {
        layers.contains { $0.name == ref.layer && $0.isModel } ? ref.node + 1 : ref.node
    }

    /// The Keras 2 config of a model (Sequential or Functional) made of `layers`.
    static func modelConfig(name: String, layers: [KerasLayerRecord], inputs: [KerasTensorRef], outputs: [KerasTensorRef],
                            sequential: Bool) -> [String: Any] {
        func entry(_ l: KerasLayerRecord) -> [String: Any] {
            let config = l.isModel ? (nestedConfig(l)["config"]!) : l.config
            let className = l.isModel ? nestedConfig(l)["class_name"]! : l.className
            if sequential { return ["class_name": className, "config": config] }
            return ["class_name": className, "config": config, "name": l.name,
                    "inbound_nodes": l.calls.enumerated().map { k, call in
                        let kwargs = l.arguments(ofCall: k).mapValues { $0.json { [$0.layer, keras2Node($0, layers), $0.tensor] as [Any] } }
                        return call.map { [$0.layer, keras2Node($0, layers), $0.tensor, kwargs] as [Any] }
                    }]
        }
        if sequential {
            return ["class_name": "Sequential", "config": ["name": name, "layers": layers.map(entry)]]
        }
        return ["class_name": "Functional",
                "config": ["name": name, "trainable": true, "layers": layers.map(entry),
                           "input_layers": inputs.map { [$0.layer, keras2Node($0, layers), $0.tensor] as [Any] },
                           "output_layers": outputs.map { [$0.layer, keras2Node($0, layers), $0.tensor] as [Any] }]]
    }

    /// A nested model's class and config.
    static func nestedConfig(_ model: KerasLayerRecord) -> [String: Any] {
        let inputs = model.sublayers.filter { $0.className == "InputLayer" }.map { KerasTensorRef(layer: $0.name) }
        let sequential = model.className == "Sequential" && isChain(model.sublayers, inputs: inputs, outputs: model.modelOutputs)
        return modelConfig(name: model.name, layers: model.sublayers, inputs: inputs, outputs: model.modelOutputs, sequential: sequential)
    }

    static func sanitizedModelName(_ name: String) -> String {
        let cleaned = String(name.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" })
        return cleaned.isEmpty ? "model" : cleaned
    }

    /// Writes the model as a Keras `.h5` (temporary file renamed into place).
    @discardableResult
    public static func writeH5(_ graph: Graph, to path: String) throws -> Export {
        let export: Export
        do { export = try self.export(graph) } catch let e as FerryError { throw e.inFile(path) }
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        defer { try? FileManager.default.removeItem(at: temporary) }
        let json = try JSONSerialization.data(withJSONObject: [
            "class_name": export.config["class_name"]!, "config": export.config["config"]!,
            "keras_version": kerasVersion, "backend": "tensorflow",
        ], options: [.sortedKeys])
        // A Sequential's weights list no InputLayer (as Keras writes them).
        let weighted = export.layers.filter { !(export.isSequential && $0.className == "InputLayer") }
        try HDF5.withLibrary {
            let w = try H5Writer(path: temporary.path, namedInErrors: path)
            try w.setStrings("keras_version", [kerasVersion], variableLength: true, scalar: true)
            try w.setStrings("backend", ["tensorflow"], variableLength: true, scalar: true)
            try w.setStrings("model_config", [String(decoding: json, as: UTF8.self)], variableLength: true, scalar: true)
            try w.group("model_weights")
            try w.setStrings("layer_names", weighted.map(\.name), on: "model_weights", variableLength: true)
            try w.setStrings("keras_version", [kerasVersion], on: "model_weights", variableLength: true, scalar: true)
            try w.setStrings("backend", ["tensorflow"], on: "model_weights", variableLength: true, scalar: true)
            for layer in weighted {
                let group = "model_weights/\(layer.name)"
                try w.group(group)
                try w.setStrings("weight_names", layer.weights.map(\.name), on: group, variableLength: true)
                for weight in layer.weights {
                    try w.writeFloats("\(group)/\(weight.name)", shape: weight.tensor.shape, weight.tensor.floats)
                }
            }
            try w.close()
        }
        guard rename(temporary.path, path) == 0 else {
            throw FerryError("cannot move the written file into place: \(String(cString: strerror(errno)))", file: path)
        }
        return export
    }
}

/// A model the Keras source used as a layer: its class and its InputLayers' names.
struct NestedModel {
    var className: String
    var inputNames: [String]
}

/// A keyword argument of a layer call: a boolean option, a tensor, or a list of tensors (nil:
/// None, as in Attention's `mask=[query_mask, None]`).
public enum KerasCallArgument {
    case flag(Bool)
    case tensor(KerasTensorRef)
    case tensors([KerasTensorRef?])

    var tensors: [KerasTensorRef] {
        switch self {
        case .flag: return []
        case .tensor(let t): return [t]
        case .tensors(let list): return list.compactMap { $0 }
        }
    }

    func mapped(_ f: (KerasTensorRef) -> KerasTensorRef) -> KerasCallArgument {
        switch self {
        case .flag: return self
        case .tensor(let t): return .tensor(f(t))
        case .tensors(let list): return .tensors(list.map { $0.map(f) })
        }
    }

    /// The argument's JSON, each tensor written by `tensor`.
    func json(_ tensor: (KerasTensorRef) -> Any) -> Any {
        switch self {
        case .flag(let b): return b
        case .tensor(let t): return tensor(t)
        case .tensors(let list): return list.map { $0.map(tensor) ?? NSNull() }
        }
    }
}

/// One output of one call of a Keras layer: `[layer, node, tensor]` in a config (node counted
/// from 0 for every layer here; see `KerasExporter.keras2Node`).
public struct KerasTensorRef: Hashable, Sendable {
    public var layer: String
    public var node: Int
    public var tensor: Int

    public init(layer: String, node: Int = 0, tensor: Int = 0) {
        self.layer = layer
        self.node = node
        self.tensor = tensor
    }
}

/// Writes one IR node as Keras layers.
typealias KerasLayerWriter = @Sendable (inout KerasExportContext, Node) throws -> Void

struct KerasExportContext {
    let graph: Graph
    let types: [String: TensorType]
    let target: KerasExporter.Target
    let consumers: [String: [Int]]
    let producers: [String: Int]
    var layers: [KerasExporter.KerasLayerRecord] = []
    /// The Keras tensor (layer, call, output) holding each IR value, and its layout: the
    /// permutation taking the IR value to the Keras tensor.
    var tensor: [String: KerasTensorRef] = [:]
    var layout: [String: [Int]] = [:]
    /// Keras tensors (N, T, ...) whose IR values hold time folded into the batch (N*T, ...), with
    /// their time steps: the layers computing from them are wrapped in TimeDistributed.
    var timeSteps: [KerasTensorRef: Int] = [:]
    /// IR values unfolded from a time-folded one: the same Keras tensor, seen whole.
    var unmerged = Set<String>()
    /// A layer mixing time-folded and whole tensors (set by `add`, reported by the export loop).
    var timeMixError: String?
    var usedNames = Set<String>()
    var absorbed = Set<Int>()
    /// What the file's reader means otherwise than the source (`Export.warnings`).
    var warnings: [String] = []
    /// The paths of the nested models the source used as layers.
    let nestedModels: [String: NestedModel]
    private var sourceLayerTaken = Set<String>()
    private(set) var node = Node(name: "", op: .identity, inputs: [], outputs: [])
    private(set) var index = 0
    /// The nested model holding the current node's source layer ("" at the top), and the
    /// layer's name inside it.
    private(set) var scope = ""
    private var leafName = ""

    /// Graph outputs name the layer making them (Keras names a model's outputs by layer).
    private var reservedOutputs = Set<String>()
    /// The graph output each value becomes (itself or through Transposes).
    private var outputNameOf: [String: String] = [:]

    init(graph: Graph, types: [String: TensorType], target: KerasExporter.Target = .keras2H5,
         nestedModels: [String: NestedModel] = [:]) {
        self.graph = graph
        self.types = types
        self.target = target
        self.nestedModels = nestedModels
        consumers = graph.consumerIndices()
        producers = graph.producerIndices()
        // The layer making a graph output (through Transposes, which are no layers) is named
        // after the output, before any other layer can take the name.
        for o in graph.outputs where !graph.inputs.contains(where: { $0.name == o.name }) {
            let name = kerasLayerName(o.name)
            reservedOutputs.insert(name)
            var value = o.name
            outputNameOf[value] = name
            while let i = producers[value], case .transpose = graph.nodes[i].op {
                value = graph.nodes[i].inputs[0]
                if outputNameOf[value] == nil { outputNameOf[value] = name }
            }
        }
        // A nested model keeps its name: no layer takes it.
        usedNames = reservedOutputs.union(nestedModels.keys.map { kerasLayerName(String($0.split(separator: "/").last!)) })
    }

    /// Whether the IR value holds time folded into its batch axis (its Keras tensor is (N, T, ...)).
    func isTimeMerged(_ value: String) -> Bool {
        guard let t = tensor[value], !unmerged.contains(value) else { return false }
        return timeSteps[t] != nil
    }

    mutating func begin(_ node: Node, index: Int) {
        self.node = node
        self.index = index
        let origin = node.origins.first?.layer ?? ""
        // The longest nested model path the source layer sits in.
        scope = nestedModels.keys.filter { origin.hasPrefix($0 + "/") }.max { $0.count < $1.count } ?? ""
        leafName = kerasLayerName(scope.isEmpty ? origin : String(origin.dropFirst(scope.count + 1)))
    }

    func error(_ message: String) -> FerryError {
        FerryError(message, layer: node.sourceLayer.name, layerType: node.sourceLayer.type)
    }

    func constant(_ value: String) -> Tensor? {
        guard let t = graph.initializers[value], t.dtype == .float32 else { return nil }
        return t
    }

    func rank(_ value: String) throws -> Int {
        guard let t = types[value] else { throw error("the type of '\(value)' is unknown") }
        return t.shape.rank
    }

    func isGraphOutput(_ value: String) -> Bool { graph.outputs.contains { $0.name == value } }

    /// The single reader of `value` when it is a later node of the same source layer.
    func soleSameLayerReader(of value: String) -> (index: Int, node: Node)? {
        guard !isGraphOutput(value), let r = consumers[value], r.count == 1, r[0] > index, !absorbed.contains(r[0]),
              let origin = node.origins.first?.layer else { return nil }
        let n = graph.nodes[r[0]]
        guard n.origins.first?.layer == origin else { return nil }
        return (r[0], n)
    }

    mutating func uniqueName(_ wanted: String) -> String {
        let base = kerasLayerName(wanted)
        var name = base.isEmpty ? "layer" : base
        var k = 1
        while usedNames.contains(name) { name = "\(base)_\(k)"; k += 1 }
        usedNames.insert(name)
        return name
    }

    /// The current node's layer name: its source layer's the first time, else the node's.
    mutating func mainName() -> String {
        if !leafName.isEmpty, !sourceLayerTaken.contains(leafName), !usedNames.contains(leafName) {
            sourceLayerTaken.insert(leafName)
            usedNames.insert(leafName)
            return leafName
        }
        return uniqueName(node.name)
    }

    /// The Keras tensor of `value` in layout `wanted`, through a Permute layer when its layout
    /// differs. With `orderOnly`, a layout that keeps the elements in the same order (it only
    /// moves axes of size 1) is good enough (for Flatten and Reshape).
    mutating func input(_ value: String, layout wanted: [Int], orderOnly: Bool = false) throws -> KerasTensorRef {
        guard let t = tensor[value], let have = layout[value] else {
            if constant(value) != nil { throw error("reads the constant '\(value)' as data; Keras layers cannot") }
            throw error("reads '\(value)', which no layer wrote")
        }
        if have == wanted { return t }
        if orderOnly, let dims = types[value]?.shape.dims {
            let big = { (l: [Int]) in l.filter { dims[$0].value != 1 } }
            if big(have) == big(wanted) { return t }
        }
        // keras_in = ir.transpose(have); want ir.transpose(wanted) = keras_in.transpose(q).
        var inverse = [Int](repeating: 0, count: have.count)
        for (i, a) in have.enumerated() { inverse[a] = i }
        let q = wanted.map { inverse[$0] }
        guard q.first == 0 else { throw error("a layout change moving the batch axis has no Keras layer") }
        if let steps = timeSteps[t], !unmerged.contains(value) {
            // (N, T, per-sample axes): the Permute keeps T where it is.
            let permuted = appendLayer("Permute", named: "\(t.layer)_permuted", config: ["dims": [1] + q.dropFirst().map { $0 + 1 }],
                                       inbound: [t], outputShape: [])
            timeSteps[permuted] = steps
            return permuted
        }
        let shape = layers.first { $0.name == t.layer }?.outputShape
        // The Permute a source Permute layer's Transpose stands for takes that layer's name.
        var base = "\(t.layer)_permuted"
        if let p = producers[value], case .transpose = graph.nodes[p].op, let origin = graph.nodes[p].origins.first,
           origin.type == "Permute", case let name = kerasLayerName(origin.layer), !usedNames.contains(name) {
            base = name
        }
        return appendLayer("Permute", named: base, config: ["dims": q.dropFirst().map { $0 }], inbound: [t],
                           outputShape: shape.map { s in q.map { s.indices.contains($0) ? s[$0] : nil } } ?? [])
    }

    /// Appends a helper layer (Permute, ZeroPadding2D) named after `base`; the same layer
    /// written again on another call of a shared layer becomes that layer's next call.
    mutating func appendLayer(_ className: String, named base: String, config: [String: Any], inbound: [KerasTensorRef],
                              outputShape: [Int?]) -> KerasTensorRef {
        var c = config
        c["trainable"] = true
        c["dtype"] = "float32"
        if let call = addCall(of: kerasLayerName(base), className: className, config: c, weights: [], inbound: inbound) {
            return call
        }
        let name = uniqueName(base)
        c["name"] = name
        layers.append(.init(name: name, className: className, config: c, calls: [inbound], weights: [],
                            outputRank: outputShape.count, outputShape: outputShape, scope: scope))
        return KerasTensorRef(layer: name)
    }

    /// When the layer `name` of the current scope was written with this class, config and
    /// weights (a shared layer, or a nested model, called again): adds a call of it.
    private mutating func addCall(of name: String, className: String, config: [String: Any], weights: [(String, Tensor)],
                                  inbound: [KerasTensorRef]) -> KerasTensorRef? {
        guard let i = layers.firstIndex(where: { $0.name == name && $0.scope == scope }), layers[i].className == className,
              !layers[i].calls.contains(inbound) else { return nil }
        var mine = config
        mine["name"] = name
        let same = { (a: [String: Any], b: [String: Any]) in
            (try? JSONSerialization.data(withJSONObject: a, options: [.sortedKeys])) == (try? JSONSerialization.data(withJSONObject: b, options: [.sortedKeys]))
        }
        guard same(mine, layers[i].config), layers[i].weights.count == weights.count,
              zip(layers[i].weights, weights).allSatisfy({ $0.tensor == $1.1 }) else { return nil }
        layers[i].calls.append(inbound)
        return KerasTensorRef(layer: name, node: layers[i].calls.count - 1)
    }

    /// Appends a layer making IR value `output` with layout `outLayout`, or a call of the
    /// source layer's Keras layer when a shared layer or nested model wrote it already.
    mutating func add(_ className: String, name: String? = nil, config: [String: Any], inbound: [KerasTensorRef],
                      weights: [(String, Tensor)] = [], output: String, layout outLayout: [Int]) {
        // Whether the node reads time-folded values (the same Keras tensor may be read whole
        // through the Reshape unfolding it, so this is the IR values', not the tensors').
        let read = node.inputs.filter { tensor[$0] != nil }
        let steps = read.filter(isTimeMerged).compactMap { timeSteps[tensor[$0]!] }
        if !steps.isEmpty {
            guard steps.count == read.count, Set(steps).count == 1 else {
                timeMixError = "a layer reading tensors with time folded into the batch (TimeDistributed) and others"
                return
            }
            // The layer per time step: TimeDistributed around it (its weights are the wrapped layer's).
            var inner = config
            inner["trainable"] = true
            inner["dtype"] = "float32"
            inner["name"] = "\(leafName.isEmpty ? className.lowercased() : leafName)_\(className.lowercased())"
            let before = layers.count
            addLayer("TimeDistributed", name: name, config: ["layer": ["module": "keras.layers", "class_name": className, "config": inner,
                                                        "registered_name": NSNull()] as [String: Any]],
                     inbound: inbound, weights: weights, output: output, layout: outLayout)
            if layers.count > before {
                layers[before].keras3Groups = weights.isEmpty ? [] : [["layer"]]
                layers[before].keras3GroupNames = weights.isEmpty ? [] : [inner["name"] as! String]
                layers[before].outputShape = [nil, steps[0]] + layers[before].outputShape.dropFirst()
                layers[before].outputRank += 1
            }
            if let t = tensor[output] { timeSteps[t] = steps[0] }
            return
        }
        addLayer(className, name: name, config: config, inbound: inbound, weights: weights, output: output, layout: outLayout)
    }

    private mutating func addLayer(_ className: String, name: String?, config: [String: Any], inbound: [KerasTensorRef],
                                   weights: [(String, Tensor)], output: String, layout outLayout: [Int]) {
        var c = config
        c["trainable"] = true
        c["dtype"] = "float32"
        if name == nil, !leafName.isEmpty, let call = addCall(of: leafName, className: className, config: c, weights: weights, inbound: inbound) {
            tensor[output] = call
            layout[output] = outLayout
            return
        }
        let layerName: String
        if scope.isEmpty, let o = outputNameOf[output], reservedOutputs.contains(o) {
            reservedOutputs.remove(o)
            layerName = o
        } else {
            layerName = name ?? mainName()
        }
        c["name"] = layerName
        let shape: [Int?] = types[output].map { t in outLayout.map { t.shape.dims[$0].value } } ?? []
        layers.append(.init(name: layerName, className: className, config: c, calls: [inbound],
                            weights: weights.map { ("\(layerName)/\($0.0):0", $0.1) }, outputRank: outLayout.count,
                            outputShape: shape, scope: scope))
        tensor[output] = KerasTensorRef(layer: layerName)
        layout[output] = outLayout
    }

    /// Gathers the layers of nested model `path` into one layer: a model whose layers are
    /// their first calls, called once per call of its layers. Its inputs are what a call reads
    /// from outside the model; its outputs what the rest of the graph reads from it.
    mutating func assembleNestedModel(_ path: String, _ nested: NestedModel) throws {
        let className = nested.className
        let members = layers.indices.filter { layers[$0].scope == path }
        guard let first = members.first else { return }
        let name = kerasLayerName(String(path.split(separator: "/").last!))
        func fail(_ why: String) -> FerryError { FerryError("nested model '\(path)': \(why)", layer: path, layerType: className) }
        let memberNames = Set(members.map { layers[$0].name })
        let callCount = layers[first].calls.count
        guard members.allSatisfy({ layers[$0].calls.count == callCount }) else {
            throw fail("its layers are called different numbers of times; Ferry writes a nested model only when each call runs all of them")
        }
        // Each call's inputs from outside, in order of use.
        var callInputs: [[KerasTensorRef]] = []
        for k in 0..<callCount {
            var inputs: [KerasTensorRef] = []
            for m in members {
                for ref in layers[m].tensorsRead(byCall: k) {
                    if memberNames.contains(ref.layer) {
                        guard ref.node == k else { throw fail("call \(k) of layer '\(layers[m].name)' reads another call's tensor") }
                    } else if !inputs.contains(ref) {
                        inputs.append(ref)
                    }
                }
            }
            callInputs.append(inputs)
        }
        guard Set(callInputs.map(\.count)).count == 1 else { throw fail("its calls take different numbers of inputs") }
        // The model's outputs: member tensors read outside it (by any call), in layer order.
        var readOutside = Set<KerasTensorRef>()
        for (i, l) in layers.enumerated() where !members.contains(i) {
            for k in l.calls.indices {
                for ref in l.tensorsRead(byCall: k) where memberNames.contains(ref.layer) {
                    readOutside.insert(KerasTensorRef(layer: ref.layer, tensor: ref.tensor))
                }
            }
        }
        for ref in tensor.values where memberNames.contains(ref.layer) && graph.outputs.contains(where: { tensor[$0.name] == ref }) {
            readOutside.insert(KerasTensorRef(layer: ref.layer, tensor: ref.tensor))
        }
        let outputs = members.flatMap { m in readOutside.filter { $0.layer == layers[m].name }.sorted { $0.tensor < $1.tensor } }
        // The model's InputLayers take the shapes of the first call's inputs.
        var inputLayers: [KerasExporter.KerasLayerRecord] = []
        var inputOf: [KerasTensorRef: KerasTensorRef] = [:]
        for (i, ref) in callInputs[0].enumerated() {
            let shape = layers.first { $0.name == ref.layer }?.outputShape ?? []
            // The source's InputLayer names when the calls take as many inputs.
            let wanted = nested.inputNames.count == callInputs[0].count ? nested.inputNames[i]
                : callInputs[0].count == 1 ? "\(name)_input" : "\(name)_input_\(i)"
            let input = KerasExporter.inputLayer(uniqueName(wanted), shape: shape)
            inputLayers.append(input)
            inputOf[ref] = KerasTensorRef(layer: input.name)
        }
        var sublayers = inputLayers
        for m in members {
            var l = layers[m]
            l.calls = [l.calls[0].map { inputOf[$0] ?? $0 }]
            l.callArguments = l.callArguments.isEmpty ? [] : [l.arguments(ofCall: 0).mapValues { $0.mapped { inputOf[$0] ?? $0 } }]
            l.scope = ""
            sublayers.append(l)
        }
        // Keras lists a model's trainable weights before the others (a BatchNormalization's moving statistics).
        let all = members.flatMap { layers[$0].weights }
        let isStatistic = { (w: (name: String, tensor: Tensor)) in w.name.hasSuffix("/moving_mean:0") || w.name.hasSuffix("/moving_variance:0") }
        let model = KerasExporter.KerasLayerRecord(
            name: name, className: className, config: ["name": name], calls: callInputs,
            weights: all.filter { !isStatistic($0) } + all.filter(isStatistic), outputRank: layers[members.last!].outputRank,
            outputShape: layers[members.last!].outputShape, scope: String(path.split(separator: "/").dropLast().joined(separator: "/")),
            sublayers: sublayers, modelOutputs: outputs)
        // Everything reading a member's call k reads the model's call k.
        func outside(_ ref: KerasTensorRef) -> KerasTensorRef {
            guard memberNames.contains(ref.layer), let o = outputs.firstIndex(of: KerasTensorRef(layer: ref.layer, tensor: ref.tensor)) else { return ref }
            return KerasTensorRef(layer: name, node: ref.node, tensor: o)
        }
        var rest: [KerasExporter.KerasLayerRecord] = []
        for (i, l) in layers.enumerated() {
            if i == first { rest.append(model) }
            if members.contains(i) { continue }
            var l = l
            l.mapTensors(outside)
            rest.append(l)
        }
        layers = rest
        tensor = tensor.mapValues(outside)
    }
}

/// The channels-last layout of a rank (identity below rank 3).
func channelsLastLayout(_ rank: Int) -> [Int] { rank >= 3 ? channelsLastPermutation(rank: rank) : Array(0..<rank) }

/// A layer name both Keras versions accept: Keras 3 forbids `/` (Keras 2 nests it as groups).
func kerasLayerName(_ name: String) -> String { name.replacingOccurrences(of: "/", with: "_") }
