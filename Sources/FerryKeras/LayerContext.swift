import FerryIR

/// A value in the graph under construction with its inferred type.
struct IRValue: Hashable {
    var name: String
    var type: TensorType

    var rank: Int { type.shape.rank }
    var shape: Shape { type.shape }
}

/// A Keras tensor as the IR holds it. Keras tensors are channels-last; inside, Ferry works
/// channels-first. A tensor of rank 3 or more may be held in either layout or both; each
/// conversion is made at most once and kept here. Tensors of rank 2 or less have one layout.
final class KerasTensor {
    fileprivate(set) var kerasForm: IRValue?
    fileprivate(set) var channelsFirstForm: IRValue?
    /// The layer that made the Keras mask this tensor carries, if any (see `KerasMaskEffect`).
    var maskFrom: String?

    init(keras value: IRValue) { kerasForm = value }
    init(channelsFirst value: IRValue) {
        if value.rank < 3 { kerasForm = value } else { channelsFirstForm = value }
    }

    var rank: Int { (kerasForm ?? channelsFirstForm)!.rank }
}

/// A weight a layer expects: its role (used in the initializer's name) and its shape as Keras
/// stores it.
struct WeightSpec {
    var role: String
    var shape: [Int]
    /// False for weights that do not affect inference (a Normalization's integer `count`):
    /// their shape is checked, their data not read; their IRValue has an empty name.
    var used = true
}

/// The graph under construction and everything a layer builder needs: emitting nodes with the
/// current layer as origin, layout conversions, and the layer's weights.
final class LayerContext {
    var builder: GraphBuilder
    private let store: KerasWeightStore
    /// The Keras major version that wrote the model (2 or 3): a few semantics differ.
    let kerasMajor: Int
    private(set) var origin = Origin(layer: "", type: "")
    /// The enclosing nested models of the layer being built, outermost first.
    private(set) var scope: [LayerKey] = []
    private var current = LayerKey(name: "", autoName: "")
    /// Initializers per layer path, so that a shared layer's calls use one copy of its weights.
    private var layerConstants: [[LayerKey]: [IRValue]] = [:]
    /// Where the current layer's weights sit below its own group in Keras 3's layout.
    private var weightGroups: [[String]] = [[]]
    /// The tensors the current call passes by keyword, until the layer takes them.
    private var callArguments: [(key: String, tensors: [KerasTensor])] = []
    /// The current call's arguments that are not tensors.
    private var callOptions = LayerCall(positional: [])
    /// Calls of the layers the Keras exporter writes back from a record (`RecordedLayerCalls.swift`).
    var recordedCalls: [RecordedKerasCall] = []
    /// The digests of each layer's weights as read.
    var readWeightDigests: [String: [RecordedKerasCall.Weight]] = [:]

    init(builder: GraphBuilder, store: KerasWeightStore, kerasMajor: Int) {
        self.builder = builder
        self.store = store
        self.kerasMajor = kerasMajor
    }

    /// The layer's name, prefixed with its enclosing models' names when nested ("inner/dense").
    var layerName: String { origin.layer }

    /// Makes `layer` the one that the following nodes and errors belong to.
    func begin(_ layer: ParsedLayer) {
        current = LayerKey(name: layer.name, autoName: layer.autoName)
        weightGroups = layer.spec.weightGroups
        origin = Origin(layer: (scope.map(\.name) + [layer.name]).joined(separator: "/"), type: layer.className)
    }

    /// Runs `body` with the current layer (a nested model) as the enclosing scope.
    func nested<T>(_ body: () throws -> T) rethrows -> T {
        let saved = (current, origin, weightGroups)
        scope.append(current)
        defer {
            scope.removeLast()
            (current, origin, weightGroups) = saved
        }
        return try body()
    }

    /// Runs one call of the current layer with the tensors it was given by keyword; the layer
    /// takes those it understands (`keywordInputs`), and any left over is an error.
    func withCallArguments<T>(_ named: [(key: String, tensors: [KerasTensor])], options: LayerCall = LayerCall(positional: []),
                              _ body: () throws -> T) throws -> T {
        let saved = (callArguments, callOptions)
        (callArguments, callOptions) = (named, options)
        defer { (callArguments, callOptions) = saved }
        let result = try body()
        if let left = callArguments.first {
            throw error("the call passes a tensor as '\(left.key)', which Ferry does not support for this layer")
        }
        return result
    }

    /// A boolean argument of the current call (false when not given).
    func callFlag(_ key: String) -> Bool { callOptions.flags[key] ?? false }

    /// A boolean argument of the current call, nil when not given as true or false.
    func callFlagValue(_ key: String) -> Bool? { callOptions.flags[key] }

    /// A numeric argument of the current call.
    func callNumber(_ key: String) -> Double? { callOptions.numbers[key] }

    /// The positions of the null entries of a list the current call passes as `key`.
    func callNullEntries(_ key: String) -> [Int] { callOptions.nullEntries[key] ?? [] }

    /// Keras 3: the current call's positional arguments, nil for a tensor, else the number.
    var callPositionalArguments: [Double?] { callOptions.positionalArguments }

    /// The keyword arguments of the current call given a value (tensors or not).
    var callKeywords: Set<String> { callOptions.keywords }

    /// Takes the tensors the current call passes as `key` (empty when none).
    func keywordInputs(_ key: String) -> [KerasTensor] {
        guard let i = callArguments.firstIndex(where: { $0.key == key }) else { return [] }
        return callArguments.remove(at: i).tensors
    }

    /// An error attributed to the current layer.
    func error(_ message: String) -> FerryError {
        FerryError(message, layer: origin.layer, layerType: origin.type)
    }

    // MARK: Nodes

    /// Adds a node computing `op` on `inputs` (nil = absent optional input), typed by shape
    /// inference; its output is named `<layer>/<role>`.
    @discardableResult
    func emit(_ op: Op, _ inputs: [IRValue?], role: String) throws -> IRValue {
        let type: TensorType
        do {
            let types = try op.inferOutputTypes(inputs.map { $0?.type })
            // An op with optional outputs (MaxPool's Indices) may be asked for its first only.
            guard types.count == 1 || (op.hasOptionalOutputs && !types.isEmpty) else {
                throw FerryError("\(op.name) makes \(types.count) outputs, expected 1")
            }
            type = types[0]
        } catch let e as FerryError {
            throw e.atLayer(origin.layer, type: origin.type)
        }
        let name = builder.add(op, inputs: inputs.map { $0?.name ?? "" }, output: "\(origin.layer)/\(role)",
                               origin: origin)
        return IRValue(name: name, type: type)
    }

    /// Adds a node with several outputs (recurrent layers); a nil role leaves that optional
    /// output unnamed ("").
    func emit(_ op: Op, _ inputs: [IRValue?], roles: [String?]) throws -> [IRValue?] {
        let types: [TensorType]
        do {
            types = try op.inferOutputTypes(inputs.map { $0?.type })
        } catch let e as FerryError {
            throw e.atLayer(origin.layer, type: origin.type)
        }
        guard types.count >= roles.count else { throw error("\(op.name) makes \(types.count) outputs, not \(roles.count)") }
        let names = builder.add(op, inputs: inputs.map { $0?.name ?? "" },
                                outputs: roles.map { $0.map { "\(origin.layer)/\($0)" } ?? "" }, origin: origin)
        return zip(names, types).map { $0.isEmpty ? nil : IRValue(name: $0, type: $1) }
    }

    /// Adds a graph input.
    func addGraphInput(_ name: String, _ type: TensorType) -> IRValue {
        IRValue(name: builder.addInput(name, type), type: type)
    }

    // MARK: Layouts

    /// The tensor in Keras's layout (channels last), transposing a channels-first form once.
    func kerasLayout(_ t: KerasTensor) throws -> IRValue {
        if let v = t.kerasForm { return v }
        let cf = t.channelsFirstForm!
        let r = cf.rank
        let v = try emit(.transpose(perm: [0] + Array(2..<r) + [1]), [cf], role: r == 4 ? "to_nhwc" : "to_channels_last")
        t.kerasForm = v
        return v
    }

    /// The tensor channels first (N, C, spatial...), transposing the Keras form once. Tensors of
    /// rank 2 or less are returned as they are.
    func channelsFirst(_ t: KerasTensor) throws -> IRValue {
        if let v = t.channelsFirstForm { return v }
        let k = t.kerasForm!
        let r = k.rank
        if r < 3 { return k }
        let v = try emit(.transpose(perm: [0, r - 1] + Array(1..<(r - 1))), [k], role: r == 4 ? "to_nchw" : "to_channels_first")
        t.channelsFirstForm = v
        return v
    }

    /// The form that needs no conversion, channels first when both exist (for elementwise ops,
    /// which keep whatever layout they get).
    func anyLayout(_ t: KerasTensor) -> (value: IRValue, channelsFirst: Bool) {
        if let v = t.channelsFirstForm { return (v, true) }
        return (t.kerasForm!, false)
    }

    // MARK: Weights

    /// A constant the current layer computes (not read from the file), named `<layer>/<role>`.
    func constant(_ role: String, _ tensor: Tensor) -> IRValue {
        let name = builder.addInitializer("\(origin.layer)/\(role)", tensor)
        return IRValue(name: name, type: tensor.type)
    }

    /// The current layer's weights as initializers, read from the file in `weight_names` order,
    /// checked against `expected` (count and Keras shapes), converted to the IR layout by
    /// `convert` (index, Keras tensor). Read once per layer.
    func weights(_ expected: [WeightSpec], convert: (Int, Tensor) throws -> Tensor = { $1 }) throws -> [IRValue] {
        try cachedWeights(expected) {
            let tensors = try readWeights(expected)
            return try expected.indices.map { i -> IRValue in
                guard let t = tensors[i] else { return IRValue(name: "", type: TensorType(.float32, Shape(expected[i].shape))) }
                return constant(expected[i].role, try convert(i, t))
            }
        }
    }

    /// A shared layer's later calls reuse the initializers of its first.
    private func cachedWeights(_ expected: [WeightSpec], _ make: () throws -> [IRValue]) throws -> [IRValue] {
        let path = scope + [current]
        if let cached = layerConstants[path] {
            // A shared layer's later call; shape inference checks it against the new inputs.
            return cached
        }
        let values = try make()
        layerConstants[path] = values
        return values
    }

    /// The current layer's weights read from the file (in `weight_names` order, checked against
    /// `expected` as by `weights`) straight into the IR's tensors `placed`: each stored weight is
    /// read a slab at a time to its places (`WeightPlacement`), so that a weight the IR holds in
    /// another layout (a convolution kernel, a recurrent kernel) is never whole in both layouts
    /// at once. Read once per layer.
    func placedWeights(_ expected: [WeightSpec], _ placed: [PlacedWeight]) throws -> [IRValue] {
        try cachedWeights(expected) {
            let held = try heldWeights(expected)
            var digests = [RecordedKerasCall.Weight?](repeating: nil, count: expected.count)
            let values = try placed.map { weight -> IRValue in
                // Shapes, and sizes the file can hold, before the tensor is allocated.
                for (index, _) in weight.parts {
                    try checkShape(held[index], expected[index])
                    try store.h5.checkFloats(held[index].path)
                }
                let count = weight.shape.reduce(1, *)
                let floats = try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    buffer.initialize(repeating: 0)
                    initialized = count
                    for (index, placement) in weight.parts {
                        var digest = digests[index] == nil && recordsDigests ? WeightDigest() : nil
                        try store.h5.readFloats(held[index].path, into: buffer, placement: placement) { digest?.add($0) }
                        if let digest {
                            digests[index] = .init(name: weightLeafName(held[index].name), shape: expected[index].shape, digest: digest.value)
                        }
                    }
                }
                return constant(weight.role, Tensor(shape: weight.shape, floats: floats))
            }
            let placedIndices = Set(placed.flatMap { $0.parts.map(\.weight) })
            for i in expected.indices where !placedIndices.contains(i) { try checkShape(held[i], expected[i]) }
            if recordsDigests {
                readWeightDigests[origin.layer] = expected.indices.map {
                    digests[$0] ?? .init(name: weightLeafName(held[$0].name), shape: [], digest: "unread")
                }
            }
            return values
        }
    }

    /// The weights the file holds for the current layer (a name for messages and the dataset's
    /// path), as many as `expected` (their shapes are checked as they are read, `checkShape`).
    private func heldWeights(_ expected: [WeightSpec]) throws -> [(name: String, path: String)] {
        let held = try store.weights(layerPath: scope + [current], groups: weightGroups)
        let names = held.map(\.name)
        guard names.count == expected.count else {
            let held = names.isEmpty ? "no weights" : "\(names.count) weights (\(names.joined(separator: ", ")))"
            throw error("the file holds \(held) for this layer; its config needs \(expected.count) "
                        + "(\(expected.map(\.role).joined(separator: ", ")))")
        }
        return held
    }

    /// Checks that a weight the file holds has the shape its spec expects.
    private func checkShape(_ held: (name: String, path: String), _ spec: WeightSpec) throws {
        let shape = try store.h5.datasetShape(held.path)
        guard shape == spec.shape else {
            throw error("weight '\(held.name)' has shape \(shape) in the file, but the config and input "
                        + "give \(spec.role) shape \(spec.shape)")
        }
    }

    /// The weights the file holds for the current layer, checked against `expected`; nil for
    /// those not `used` (shape checked, data not read).
    private func readWeights(_ expected: [WeightSpec]) throws -> [Tensor?] {
        let held = try heldWeights(expected)
        var tensors: [Tensor?] = []
        for (i, spec) in expected.enumerated() {
            try checkShape(held[i], spec)
            if !spec.used {
                tensors.append(nil)
                continue
            }
            let data = try store.h5.readFloats(held[i].path)
            tensors.append(try Tensor(shape: data.shape, storage: .float32(data.values)))
        }
        if recordsDigests { noteWeightDigests(names: held.map(\.name), tensors: tensors) }
        return tensors
    }

    /// Whether the current layer's calls may be recorded for the Keras exporter, which finds
    /// their weights again by digest (`recordCall`); other layers' weights are not digested.
    private var recordsDigests: Bool { kerasRecordedLayerClasses.contains(origin.type) }
}

/// The tensor with its axes permuted (numpy `transpose(perm)`), float32 only: FerryIR's
/// `permutedTensor`, with the permutation checked (importers pass computed ones).
func permuted(_ t: Tensor, _ perm: [Int]) -> Tensor {
    precondition(perm.sorted() == Array(0..<t.shape.count), "perm \(perm) for rank \(t.shape.count)")
    return permutedTensor(t, perm)
}
