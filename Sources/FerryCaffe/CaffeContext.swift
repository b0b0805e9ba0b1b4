import FerryIR

/// A value in the graph under construction with its inferred type.
struct IRValue: Hashable {
    var name: String
    var type: TensorType

    var rank: Int { type.shape.rank }
    var shape: Shape { type.shape }
    /// The size of a dimension when it is fixed.
    func size(_ axis: Int) -> Int? { type.shape[axis].value }
}

/// The graph under construction and what a layer builder needs: the current layer, its weight
/// blobs, emitting nodes with the layer as their origin, constants, and errors naming the layer.
final class CaffeContext {
    private(set) var graph: Graph
    private var usedNames = Set<String>()
    /// The layer being built and its weights (from the caffemodel by name, else the prototxt).
    private(set) var layer = Caffe_LayerParameter()
    private(set) var blobs: [Caffe_BlobProto] = []
    private(set) var origin = Origin(layer: "", type: "")
    /// Index of the first node the current layer added.
    private(set) var layerNodeStart = 0
    var warnings: [String] = []
    /// Layers the Caffe exporter writes back from a record (`RecordedCaffeLayers.swift`).
    var recordedLayers: [[String: Any]] = []
    /// Whether a caffemodel was given, and what to do for blobs the files do not hold.
    let hasWeightsFile: Bool
    let missingWeights: CaffeImporter.MissingWeights

    init(name: String, metadata: [String: String], hasWeightsFile: Bool, missingWeights: CaffeImporter.MissingWeights) {
        graph = Graph(name: name, metadata: metadata)
        self.hasWeightsFile = hasWeightsFile
        self.missingWeights = missingWeights
    }

    var layerName: String { layer.name }

    /// The caffemodel the layer's blobs come from, when they are not the main file's.
    private(set) var blobFile: String?

    /// Makes `layer` the one the following nodes, constants and errors belong to; its blobs
    /// come from `blobFile` (nil: the file being imported).
    func begin(_ layer: Caffe_LayerParameter, blobs: [Caffe_BlobProto], blobFile: String? = nil) {
        self.layer = layer
        self.blobs = blobs
        self.blobFile = blobFile
        origin = Origin(layer: layer.name, type: layer.type)
        layerNodeStart = graph.nodes.count
    }

    /// An error attributed to the current layer.
    func error(_ message: String) -> FerryError {
        FerryError(message, layer: layer.name, layerType: layer.type)
    }

    // MARK: Names

    /// A value name based on `base` that no value has yet; reserves it.
    func uniqueName(_ base: String) -> String {
        var name = base.isEmpty ? "v" : base
        if usedNames.contains(name) {
            var i = 1
            while usedNames.contains("\(base)_\(i)") { i += 1 }
            name = "\(base)_\(i)"
        }
        usedNames.insert(name)
        return name
    }

    func isNameUsed(_ name: String) -> Bool { usedNames.contains(name) }

    /// A name based on `base` that no value has, without reserving it.
    func freeName(_ base: String) -> String {
        if !usedNames.contains(base) { return base }
        var i = 1
        while usedNames.contains("\(base)_\(i)") { i += 1 }
        return "\(base)_\(i)"
    }

    /// Renames a value the current layer produced (its node outputs and uses in this layer)
    /// to `name`, which must be free.
    func renameLayerValue(_ value: IRValue, to name: String) -> IRValue {
        guard !usedNames.contains(name) else { return value }
        guard let producer = graph.nodes[layerNodeStart...].firstIndex(where: { $0.outputs.contains(value.name) }) else {
            return value
        }
        usedNames.insert(name)
        for i in producer..<graph.nodes.count {
            graph.nodes[i].inputs = graph.nodes[i].inputs.map { $0 == value.name ? name : $0 }
            graph.nodes[i].outputs = graph.nodes[i].outputs.map { $0 == value.name ? name : $0 }
            if graph.nodes[i].name == value.name { graph.nodes[i].name = name }
        }
        return IRValue(name: name, type: value.type)
    }

    /// Whether the current layer made this value (it is a node output of this layer).
    func madeByCurrentLayer(_ value: IRValue) -> Bool {
        graph.nodes[layerNodeStart...].contains { $0.outputs.contains(value.name) }
    }

    // MARK: Nodes

    /// Adds a node computing `op` on `inputs` (nil = absent optional input), typed by shape
    /// inference; its output is named `<layer>/<role>` until the importer names it after its top.
    @discardableResult
    func emit(_ op: Op, _ inputs: [IRValue?], role: String) throws -> IRValue {
        let outs = try emit(op, inputs, roles: [role])
        return outs[0]
    }

    /// Adds a node with several outputs.
    func emit(_ op: Op, _ inputs: [IRValue?], roles: [String]) throws -> [IRValue] {
        let types: [TensorType]
        do {
            types = try op.inferOutputTypes(inputs.map { $0?.type })
            // An op with optional outputs (MaxPool's Indices) may be asked for a prefix.
            guard types.count == roles.count || (op.hasOptionalOutputs && (1...types.count).contains(roles.count)) else {
                throw FerryError("\(op.name) makes \(types.count) outputs, expected \(roles.count)")
            }
        } catch let e as FerryError {
            throw e.atLayer(layer.name, type: layer.type)
        }
        let names = roles.map { uniqueName("\(layer.name)/\($0)") }
        graph.nodes.append(Node(name: names[0], op: op, inputs: inputs.map { $0?.name ?? "" }, outputs: names,
                                origins: [origin]))
        return zip(names, types).map { IRValue(name: $0, type: $1) }
    }

    /// Adds a graph input.
    func addGraphInput(_ name: String, _ type: TensorType) -> IRValue {
        let n = uniqueName(name)
        graph.inputs.append(Value(name: n, type: type))
        return IRValue(name: n, type: type)
    }

    /// Adds a constant named `<layer>/<role>`.
    func constant(_ role: String, _ tensor: Tensor) -> IRValue {
        let n = uniqueName("\(layer.name)/\(role)")
        graph.initializers[n] = tensor
        return IRValue(name: n, type: tensor.type)
    }

    /// A float constant of the given shape.
    func constant(_ role: String, shape: [Int], _ values: [Float]) -> IRValue {
        constant(role, Tensor(shape: shape, floats: values))
    }

    // MARK: Weights

    /// The number of weight blobs the layer has.
    var blobCount: Int { blobs.count }

    /// Weight blob `index` as a tensor of shape `expected`. The blob must hold that shape, or
    /// the same dimensions with leading 1s (legacy 4-D blobs: an InnerProduct weight 1x1xNxK,
    /// a bias 1x1x1xN), or be a legacy blob with the same element count.
    func blob(_ index: Int, role: String, shape expected: [Int]) throws -> Tensor {
        guard index < blobs.count else {
            if blobs.isEmpty && missingWeights == .zeros { return Tensor.zeros(.float32, shape: expected) }
            let hint = !blobs.isEmpty ? ""
                : hasWeightsFile ? " (the caffemodel has no weights for a layer of this name)"
                : " (no weights: no .caffemodel beside the prototxt and none given with --weights)"
            throw error("weight blob \(index) (\(role)) is missing: the layer has \(blobs.count) blob(s)" + hint)
        }
        let b = blobs[index]
        let dims = b.dims
        let values = b.values
        func squeezed(_ d: [Int]) -> [Int] { Array(d.drop(while: { $0 == 1 })) }
        // Both shapes come from the file (the layer's parameters, the blob's dims): checked products.
        guard expected.allSatisfy({ $0 >= 0 }), let count = checkedElementCount(expected) else {
            throw error("weight blob \(index) (\(role)): the layer's parameters need a blob of shape \(expected), which is not a valid size")
        }
        let fits = dims == expected || squeezed(dims) == squeezed(expected)
            || (b.isLegacyShaped && checkedElementCount(dims) == count)
            || (dims.isEmpty && count == 1)
        // Shapes that disagree may be either file's fault: the definition's file is named, and
        // the caffemodel the blob came from; a blob whose values do not fill its own shape is
        // the caffemodel's alone.
        guard fits else {
            let source = blobFile.map { " in \($0)" } ?? ""
            throw error("weight blob \(index) (\(role))\(source) has shape \(dims); the layer needs \(expected)")
        }
        guard values.count == count else {
            var e = error("weight blob \(index) (\(role)) holds \(values.count) values; shape \(expected) needs \(count)")
            e.file = blobFile
            throw e
        }
        return Tensor(shape: expected, floats: values)
    }

    /// The shape of weight blob `index` (dims as stored), for layers whose weight sizes are read
    /// from the file.
    func blobDims(_ index: Int, role: String) throws -> [Int] {
        guard index < blobs.count else {
            throw error("weight blob \(index) (\(role)) is missing: the layer has \(blobs.count) blob(s)")
        }
        return blobs[index].dims
    }

    /// Adds weight blob `index` as a constant of shape `expected`.
    func weight(_ index: Int, role: String, shape expected: [Int]) throws -> IRValue {
        constant(role, try blob(index, role: role, shape: expected))
    }

    // MARK: Finishing

    /// Declares the outputs and returns the verified graph. Each output is named after its top:
    /// when the name is held by an earlier version of an in-place blob, that version is renamed
    /// `<top>/<layer>` (when it is a graph input, the output keeps its `<top>/<layer>` name); a
    /// value that is a graph input, a constant or already an output goes through an Identity.
    func finish(outputs: [(top: String, value: IRValue, origin: Origin)]) throws -> Graph {
        var renames: [String: String] = [:]
        let nodeOutputs = Set(graph.nodes.flatMap(\.outputs))
        var claimed = Set<String>()
        var outputValues: [String] = []
        for o in outputs {
            let v = o.value.name
            if v == o.top && nodeOutputs.contains(v) && !claimed.contains(v) {
                claimed.insert(v)
                outputValues.append(v)
                continue
            }
            let produced = nodeOutputs.contains(v) && !claimed.contains(v) && renames[v] == nil
            if produced {
                if usedNames.contains(o.top) {
                    // An earlier version of the blob holds the name: give it the name of its layer.
                    if let producer = graph.nodes.first(where: { $0.outputs.contains(o.top) }) {
                        renames[o.top] = uniqueName("\(o.top)/\(producer.sourceLayer.name)")
                    } else {
                        // The name is a graph input's (an in-place layer on an input): the
                        // output keeps its `<top>/<layer>` name.
                        claimed.insert(v)
                        outputValues.append(v)
                        continue
                    }
                }
                renames[v] = o.top
                claimed.insert(o.top)
                outputValues.append(o.top)
            } else {
                let id = usedNames.contains(o.top) ? uniqueName(o.top + "/output") : uniqueName(o.top)
                graph.nodes.append(Node(name: id, op: .identity, inputs: [v], outputs: [id], origins: [o.origin]))
                claimed.insert(id)
                outputValues.append(id)
            }
        }
        func renamed(_ n: String) -> String { renames[n] ?? n }
        if let records = recordedLayersMetadata(renamed: renamed) { graph.metadata[caffeRecordedLayersKey] = records }
        graph.nodes = graph.nodes.map { node in
            var n = node
            n.inputs = n.inputs.map(renamed)
            n.outputs = n.outputs.map(renamed)
            n.name = renamed(n.name)
            return n
        }
        graph.outputs = outputValues.map { Value(name: $0, type: TensorType(.float32, Shape([Int]()))) }
        let g = try graph.withInferredOutputTypes()
        try g.verify()
        return g
    }
}

