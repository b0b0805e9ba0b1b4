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
    }

    /// A written layer: name, class, config and weights (Keras names and order).
    public struct KerasLayerRecord {
        public var name: String
        public var className: String
        public var config: [String: Any]
        public var inbound: [String]
        public var weights: [(name: String, tensor: Tensor)]
        /// The rank of the layer's output (Keras 3's config writes a placeholder shape of it).
        public var outputRank: Int
    }

    public static let kerasVersion = "2.21.0"

    public static func export(_ source: Graph) throws -> Export {
        let graph = source.splittingFusedActivations().removingIdentities()
        try graph.verify()
        let types = try graph.inferTypes()
        var ctx = KerasExportContext(graph: graph, types: types)
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
            ctx.tensor[input.name] = layerName
            let shape = layout.map { input.type.shape.dims[$0] }
            ctx.layers.append(KerasLayerRecord(name: layerName, className: "InputLayer", config: [
                "batch_input_shape": [NSNull()] + shape.dropFirst().map { d -> Any in d.value.map { $0 as Any } ?? NSNull() },
                "dtype": "float32", "sparse": false, "ragged": false, "name": layerName,
            ], inbound: [], weights: [], outputRank: rank))
            if layout != Array(0..<rank) {
                changes.append(LayoutChange(name: input.name, isInput: true, before: input.type.shape, after: Shape(shape),
                                            fromLayout: "channels-first", toLayout: "channels-last"))
            }
        }
        var failures = ExportFailures()
        for (i, node) in graph.nodes.enumerated() where !ctx.absorbed.contains(i) {
            ctx.begin(node, index: i)
            if failures.skipsDownstream(node) { continue }
            guard let writer = kerasExportTable[node.op.name] else {
                failures.record(node, "Keras has no built-in layer for \(node.op.name)")
                continue
            }
            do {
                try writer(&ctx, node)
            } catch let e as FerryError {
                failures.record(node, e.message)
            }
        }
        try failures.throwIfAny(format: "Keras", note: " (Ferry writes no Lambda layers)")
        var outputLayers: [[Any]] = []
        for out in graph.outputs {
            guard let t = ctx.tensor[out.name] else { throw FerryError("output '\(out.name)' was not written") }
            outputLayers.append([t, 0, 0])
            let layout = ctx.layout[out.name] ?? []
            if layout != Array(0..<layout.count) {
                changes.append(LayoutChange(name: out.name, isInput: false, before: out.type.shape,
                                            after: Shape(layout.map { out.type.shape.dims[$0] }),
                                            fromLayout: "channels-first", toLayout: "channels-last"))
            }
        }
        let layerConfigs: [[String: Any]] = ctx.layers.map { l in
            ["class_name": l.className, "config": l.config, "name": l.name,
             "inbound_nodes": l.inbound.isEmpty ? [] : [l.inbound.map { [$0, 0, 0, [String: Any]()] as [Any] }]]
        }
        let name = sanitizedModelName(graph.name)
        let config: [String: Any] = [
            "class_name": "Functional",
            "config": ["name": name, "trainable": true, "layers": layerConfigs,
                       "input_layers": graph.inputs.map { [ctx.tensor[$0.name]!, 0, 0] as [Any] }, "output_layers": outputLayers],
        ]
        return Export(config: config, layers: ctx.layers, layoutChanges: changes)
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
        try HDF5.withLibrary {
            let w = try H5Writer(path: temporary.path)
            try w.setStrings("keras_version", [kerasVersion], variableLength: true, scalar: true)
            try w.setStrings("backend", ["tensorflow"], variableLength: true, scalar: true)
            try w.setStrings("model_config", [String(decoding: json, as: UTF8.self)], variableLength: true, scalar: true)
            try w.group("model_weights")
            try w.setStrings("layer_names", export.layers.map(\.name), on: "model_weights", variableLength: true)
            try w.setStrings("keras_version", [kerasVersion], on: "model_weights", variableLength: true, scalar: true)
            try w.setStrings("backend", ["tensorflow"], on: "model_weights", variableLength: true, scalar: true)
            for layer in export.layers {
                let group = "model_weights/\(layer.name)"
                try w.group(group)
                try w.setStrings("weight_names", layer.weights.map(\.name), on: group, variableLength: true)
                for weight in layer.weights {
                    try w.writeFloats("\(group)/\(weight.name)", shape: weight.tensor.shape, weight.tensor.floats)
                }
            }
        }
        guard rename(temporary.path, path) == 0 else {
            throw FerryError("cannot move the written file into place: \(String(cString: strerror(errno)))", file: path)
        }
        return export
    }
}

/// Writes one IR node as Keras layers.
typealias KerasLayerWriter = @Sendable (inout KerasExportContext, Node) throws -> Void

struct KerasExportContext {
    let graph: Graph
    let types: [String: TensorType]
    let consumers: [String: [Int]]
    var layers: [KerasExporter.KerasLayerRecord] = []
    /// The Keras tensor (its layer's name) holding each IR value, and its layout: the
    /// permutation taking the IR value to the Keras tensor.
    var tensor: [String: String] = [:]
    var layout: [String: [Int]] = [:]
    var usedNames = Set<String>()
    var absorbed = Set<Int>()
    private var sourceLayerTaken = Set<String>()
    private(set) var node = Node(name: "", op: .identity, inputs: [], outputs: [])
    private(set) var index = 0

    /// Graph outputs name the layer making them (Keras names a model's outputs by layer).
    private var reservedOutputs = Set<String>()
    /// The graph output each value becomes (itself or through Transposes).
    private var outputNameOf: [String: String] = [:]

    init(graph: Graph, types: [String: TensorType]) {
        self.graph = graph
        self.types = types
        consumers = graph.consumerIndices()
        // The layer making a graph output (through Transposes, which are no layers) is named
        // after the output, before any other layer can take the name.
        let producers = graph.producerIndices()
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
        usedNames = reservedOutputs
    }

    mutating func begin(_ node: Node, index: Int) {
        self.node = node
        self.index = index
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
        if let origin = node.origins.first?.layer, case let source = kerasLayerName(origin), !sourceLayerTaken.contains(source),
           !usedNames.contains(source) {
            sourceLayerTaken.insert(source)
            usedNames.insert(source)
            return source
        }
        return uniqueName(node.name)
    }

    /// The Keras tensor of `value` in layout `wanted`, through a Permute layer when its layout
    /// differs. With `orderOnly`, a layout that keeps the elements in the same order (it only
    /// moves axes of size 1) is good enough (for Flatten and Reshape).
    mutating func input(_ value: String, layout wanted: [Int], orderOnly: Bool = false) throws -> String {
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
        let name = uniqueName("\(t)_permuted")
        layers.append(.init(name: name, className: "Permute",
                            config: ["name": name, "trainable": true, "dtype": "float32", "dims": q.dropFirst().map { $0 }],
                            inbound: [t], weights: [], outputRank: have.count))
        return name
    }

    /// Appends a layer making IR value `output` with layout `outLayout`.
    mutating func add(_ className: String, name: String? = nil, config: [String: Any], inbound: [String],
                      weights: [(String, Tensor)] = [], output: String, layout outLayout: [Int]) {
        let layerName: String
        if let o = outputNameOf[output], reservedOutputs.contains(o) {
            reservedOutputs.remove(o)
            layerName = o
        } else {
            layerName = name ?? mainName()
        }
        var c = config
        c["name"] = layerName
        c["trainable"] = true
        c["dtype"] = "float32"
        layers.append(.init(name: layerName, className: className, config: c, inbound: inbound,
                            weights: weights.map { ("\(layerName)/\($0.0):0", $0.1) }, outputRank: outLayout.count))
        tensor[output] = layerName
        layout[output] = outLayout
    }
}

/// The channels-last layout of a rank (identity below rank 3).
func channelsLastLayout(_ rank: Int) -> [Int] { rank >= 3 ? channelsLastPermutation(rank: rank) : Array(0..<rank) }

/// A layer name both Keras versions accept: Keras 3 forbids `/` (Keras 2 nests it as groups).
func kerasLayerName(_ name: String) -> String { name.replacingOccurrences(of: "/", with: "_") }
