import FerryIR

/// A Keras recurrent cell type as the IR's recurrent op: its gate count, its weights' gate
/// order, and its states.
protocol RecurrentKind {
    static func op(_ attributes: RecurrentAttributes) -> Op
    /// For each ONNX gate, the Keras gate it is: LSTM Keras (i, f, c, o) to ONNX (i, o, f, c);
    /// GRU (z, r, h) in both.
    static var gateOrder: [Int] { get }
    /// Whether `recurrent_activation` applies (the gates of LSTM and GRU).
    static var hasGates: Bool { get }
    /// LSTM carries a cell state besides the hidden state.
    static var stateCount: Int { get }
    static var role: String { get }
}

enum SimpleRNNKind: RecurrentKind {
    static func op(_ attributes: RecurrentAttributes) -> Op { .rnn(attributes) }
    static var gateOrder: [Int] { [0] }
    static var hasGates: Bool { false }
    static var stateCount: Int { 1 }
    static var role: String { "rnn" }
}

enum LSTMKind: RecurrentKind {
    static func op(_ attributes: RecurrentAttributes) -> Op { .lstm(attributes) }
    static var gateOrder: [Int] { [0, 3, 1, 2] }
    static var hasGates: Bool { true }
    static var stateCount: Int { 2 }
    static var role: String { "lstm" }
}

enum GRUKind: RecurrentKind {
    static func op(_ attributes: RecurrentAttributes) -> Op { .gru(attributes) }
    static var gateOrder: [Int] { [0, 1, 2] }
    static var hasGates: Bool { true }
    static var stateCount: Int { 1 }
    static var role: String { "gru" }
}

extension KerasActivation {
    /// The activation as an ONNX recurrent activation function. hard_sigmoid differs between
    /// Keras 2 (clip(0.2 x + 0.5)) and Keras 3 (relu6(x + 3) / 6 = clip(x / 6 + 0.5)).
    func recurrentFunction(kerasMajor: Int) -> ActivationFunction? {
        switch self {
        case .tanh: return .tanh
        case .sigmoid: return .sigmoid
        case .relu: return .relu
        case .hardSigmoid: return .hardSigmoid(alpha: kerasMajor == 2 ? 0.2 : 1.0 / 6.0, beta: 0.5)
        case .linear: return .affine(alpha: 1, beta: 0)
        case .softsign: return .softsign
        case .softplus: return .softplus
        case .elu: return .elu(alpha: 1)
        case .leakyRelu: return .leakyRelu(alpha: 0.2)
        default: return nil
        }
    }
}

/// SimpleRNN / LSTM / GRU (one direction): the IR's RNN / LSTM / GRU op in batch-first layout.
/// Keras kernels (in, gates * units) and recurrent kernels (units, gates * units) become ONNX
/// W (1, gates * units, in) and R (1, gates * units, units) with the gates reordered; the bias
/// becomes ONNX B = [Wb, Rb]: a GRU with reset_after stores both rows (linear_before_reset),
/// the others one (Rb = 0).
struct RecurrentSpec<Kind: RecurrentKind>: KerasLayer {
    var units: Int
    var activation: KerasActivation
    var recurrentActivation: KerasActivation
    var useBias: Bool
    var returnSequences: Bool
    var returnState: Bool
    var goBackwards: Bool
    /// GRU: the reset gate applies after the recurrent matrix product (Keras's default since 2.x).
    var resetAfter: Bool
    /// Masked time steps would be skipped.
    var maskEffect: KerasMaskEffect { .reads }

    init(config: ConfigReader) throws {
        units = try config.int("units")
        try requirePositive([units], "units", config)
        activation = try KerasActivation(config, key: "activation", default: "tanh")
        recurrentActivation = Kind.hasGates
            ? try KerasActivation(config, key: "recurrent_activation", default: "sigmoid") : .sigmoid
        useBias = try config.bool("use_bias", default: true)
        returnSequences = try config.bool("return_sequences", default: false)
        returnState = try config.bool("return_state", default: false)
        goBackwards = try config.bool("go_backwards", default: false)
        resetAfter = Kind.self == GRUKind.self ? try config.bool("reset_after", default: true) : false
        // stateful=True carries the last states of one batch into the next; the file holds no
        // states (Keras keeps them outside the saved weights), so a loaded model starts from
        // zeros: its first call (or the first after reset_states()) is the stateless layer's,
        // which is what Ferry computes on every call.
        _ = try config.bool("stateful", default: false)
        if try config.bool("time_major", default: false) {
            throw config.error("time_major inputs are not supported")
        }
    }

    var weightGroups: [[String]] { [["cell"]] }

    /// The Keras weights for inputs of `features` values per step.
    func weightSpecs(features: Int) -> [WeightSpec] {
        let g = Kind.gateOrder.count
        var specs = [WeightSpec(role: "kernel", shape: [features, g * units]),
                     WeightSpec(role: "recurrent_kernel", shape: [units, g * units])]
        if useBias {
            specs.append(WeightSpec(role: "bias", shape: resetAfter ? [2, g * units] : [g * units]))
        }
        return specs
    }

    /// A Keras kernel (rows, gates * units) in Keras gate order placed as ONNX's (gates * units,
    /// rows) at direction `direction` of a (directions, gates * units, rows) tensor.
    private func gatesMajor(rows: Int, direction: Int) -> WeightPlacement {
        let u = units, g = Kind.gateOrder.count
        var columns = [Int](repeating: 0, count: g * u)
        for (j, k) in Kind.gateOrder.enumerated() {
            for i in 0..<u { columns[k * u + i] = (j * u + i) * rows }
        }
        return WeightPlacement(offsets: [Array(0..<rows), columns], base: direction * g * u * rows)
    }

    /// A Keras bias (gates * units), or (2, gates * units) with reset_after (input and recurrent
    /// rows), placed as ONNX's B = [Wb, Rb] at direction `direction` of a (directions,
    /// 2 * gates * units) tensor; Rb stays zero without reset_after.
    private func biasPlacement(direction: Int) -> WeightPlacement {
        let u = units, g = Kind.gateOrder.count
        var columns = [Int](repeating: 0, count: g * u)
        for (j, k) in Kind.gateOrder.enumerated() {
            for i in 0..<u { columns[k * u + i] = j * u + i }
        }
        let base = direction * 2 * g * u
        if resetAfter { return WeightPlacement(offsets: [[0, g * u], columns], base: base) }
        return WeightPlacement(offsets: [columns], base: base)
    }

    /// Where one direction's Keras weights (numbered from `first` among the layer's) go in
    /// ONNX's W, R and (with a bias) B: direction `direction` of each.
    func onnxParts(first: Int, features: Int, direction: Int) -> (w: (Int, WeightPlacement), r: (Int, WeightPlacement),
                                                                  b: (Int, WeightPlacement)?) {
        ((first, gatesMajor(rows: features, direction: direction)), (first + 1, gatesMajor(rows: units, direction: direction)),
         useBias ? (first + 2, biasPlacement(direction: direction)) : nil)
    }

    /// The IR activations of one direction (f, g, h as ONNX lists them).
    func activations(_ ctx: LayerContext) throws -> [ActivationFunction] {
        guard let act = activation.recurrentFunction(kerasMajor: ctx.kerasMajor) else {
            throw ctx.error("activation '\(activation.rawValue)' is not supported in a recurrent layer")
        }
        guard Kind.hasGates else { return [act] }
        guard let gate = recurrentActivation.recurrentFunction(kerasMajor: ctx.kerasMajor) else {
            throw ctx.error("recurrent_activation '\(recurrentActivation.rawValue)' is not supported")
        }
        return Kind.self == LSTMKind.self ? [gate, act, act] : [gate, act]
    }

    /// One direction's W, R and (with a bias) B, each role prefixed, placed from the Keras
    /// weights numbered from `first`.
    func onnxWeights(first: Int, features: Int, prefix: String = "") -> [PlacedWeight] {
        let g = Kind.gateOrder.count * units
        let parts = onnxParts(first: first, features: features, direction: 0)
        var out = [PlacedWeight(role: prefix + "W", shape: [1, g, features], parts: [parts.w]),
                   PlacedWeight(role: prefix + "R", shape: [1, g, units], parts: [parts.r])]
        if let b = parts.b { out.append(PlacedWeight(role: prefix + "B", shape: [1, 2 * g], parts: [b])) }
        return out
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        guard let first = inputs.first else { throw ctx.error("is called on no inputs") }
        let x = try recurrentInput(first, ctx)
        let states = Array(inputs.dropFirst()) + ctx.keywordInputs("initial_state")
        let features = x.shape[2].value!
        let w = try ctx.placedWeights(weightSpecs(features: features), onnxWeights(first: 0, features: features))
        return try run(x, weights: w, initialStates: states, ctx)
    }

    /// The layer on a (batch, time, features) input with its IR weights: the output (sequence
    /// or last step), then the final states when return_state.
    func run(_ x: IRValue, weights w: [IRValue], initialStates states: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let initial = try initialStates(states, directions: [states], ctx)
        let attributes = RecurrentAttributes(hiddenSize: units, direction: goBackwards ? .reverse : .forward,
                                             activations: try activations(ctx),
                                             linearBeforeReset: resetAfter, layout: 1)
        let node = try emitRecurrent(Kind.op(attributes), x: x, w: w, initial: initial, stateCount: Kind.stateCount,
                                     needSequence: returnSequences, ctx)
        var output: IRValue
        if returnSequences {
            output = try ctx.emit(.squeeze(axes: [2]), [node.y!], role: "sequence")
            // Keras returns a backward layer's outputs in processing order (reversed time).
            if goBackwards { output = try reverseTime(output, ctx) }
        } else {
            output = try ctx.emit(.squeeze(axes: [1]), [node.states[0]], role: "last")
        }
        var outs = [KerasTensor(keras: output)]
        if returnState {
            for (i, s) in node.states.enumerated() {
                outs.append(KerasTensor(keras: try ctx.emit(.squeeze(axes: [1]), [s], role: i == 0 ? "state_h" : "state_c")))
            }
        }
        return outs
    }

    /// The initial states as ONNX's batch-first (N, directions, units) inputs: nil when none
    /// are given, else one list of Keras states (N, units) per direction.
    func initialStates(_ all: [KerasTensor], directions: [[KerasTensor]], _ ctx: LayerContext) throws -> [IRValue?] {
        if all.isEmpty { return Array(repeating: nil, count: Kind.stateCount) }
        guard directions.allSatisfy({ $0.count == Kind.stateCount }) else {
            throw ctx.error("is given \(all.count) initial states, needs \(Kind.stateCount * directions.count)")
        }
        return try (0..<Kind.stateCount).map { s in
            let parts = try directions.map { d -> IRValue in
                let v = try ctx.kerasLayout(d[s])
                guard v.rank == 2, v.shape[1].value == units else {
                    throw ctx.error("initial state \(v.shape) should be (batch, \(units))")
                }
                return try ctx.emit(.unsqueeze(axes: [1]), [v], role: "initial_state")
            }
            return parts.count == 1 ? parts[0] : try ctx.emit(.concat(axis: 1), parts, role: "initial_states")
        }
    }
}

/// The outputs of one recurrent node: Y (N, T, directions, units) when asked for, and the final
/// states (N, directions, units): h, and c for an LSTM.
struct RecurrentNode {
    var y: IRValue?
    var states: [IRValue]
}

/// A recurrent layer's input: (batch, time, features) with known features.
func recurrentInput(_ t: KerasTensor, _ ctx: LayerContext) throws -> IRValue {
    let x = try ctx.kerasLayout(t)
    guard x.rank == 3, x.shape[2].value != nil else {
        throw ctx.error("expects a (batch, time, features) input with known features, got \(x.shape)")
    }
    return x
}

/// Emits a recurrent op on X with weights [W, R, (B)] and initial states.
func emitRecurrent(_ op: Op, x: IRValue, w: [IRValue], initial: [IRValue?], stateCount: Int, needSequence: Bool,
                   _ ctx: LayerContext) throws -> RecurrentNode {
    var inputs: [IRValue?] = [x, w[0], w[1], w.count > 2 ? w[2] : nil, nil, initial[0]]
    if stateCount == 2 { inputs.append(initial[1]) }
    while let last = inputs.last, last == nil { inputs.removeLast() }
    let roles: [String?] = [needSequence ? "Y" : nil, "Y_h"] + (stateCount == 2 ? ["Y_c"] : [])
    let outs = try ctx.emit(op, inputs, roles: roles)
    return RecurrentNode(y: outs[0], states: outs.dropFirst().map { $0! })
}

/// Reverses the time axis (1) of a (batch, time, ...) tensor.
func reverseTime(_ x: IRValue, _ ctx: LayerContext) throws -> IRValue {
    try ctx.emit(.slice(SliceAttributes(starts: [-1], ends: [Int(Int64.min)], axes: [1], steps: [-1])), [x],
                 role: "reverse_time")
}

/// Bidirectional: a forward and a backward layer of one type over the same input, as one
/// bidirectional IR node; outputs merged by `merge_mode` (concat, sum, mul, ave, or None for
/// both), then the forward states and the backward states when return_state.
struct BidirectionalSpec<Kind: RecurrentKind>: KerasLayer, WrapsNamedLayer {
    enum Merge: String { case concat, sum, mul, ave }

    var forward: RecurrentSpec<Kind>
    var backward: RecurrentSpec<Kind>
    var merge: Merge?
    /// The wrapped layer's own name (its weights are `forward_<name>/...`), for the exporter.
    var innerName: String?
    var maskEffect: KerasMaskEffect { .reads }

    init(config: ConfigReader) throws {
        throw config.error("Bidirectional is parsed with its inner layer")
    }

    init(forward: RecurrentSpec<Kind>, backward: RecurrentSpec<Kind>, config: ConfigReader) throws {
        self.forward = forward
        self.backward = backward
        if !config.keys.contains("merge_mode") {
            merge = .concat
        } else if let mode = try config.optionalString("merge_mode") {
            guard let m = Merge(rawValue: mode) else { throw config.error("merge_mode '\(mode)' is not supported") }
            merge = m
        } else {
            merge = nil  // None: both directions' outputs
        }
        guard !forward.goBackwards, backward.goBackwards else {
            throw config.error("the forward layer must run forwards and the backward layer backwards")
        }
        guard forward.units == backward.units, forward.resetAfter == backward.resetAfter,
              forward.returnSequences == backward.returnSequences, forward.returnState == backward.returnState else {
            throw config.error("forward and backward layers with different units, reset_after or returns are not supported")
        }
    }

    var weightGroups: [[String]] { [["forward_layer", "cell"], ["backward_layer", "cell"]] }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        guard let first = inputs.first else { throw ctx.error("is called on no inputs") }
        let x = try recurrentInput(first, ctx)
        let states = Array(inputs.dropFirst()) + ctx.keywordInputs("initial_state")
        let features = x.shape[2].value!
        let units = forward.units
        let fSpecs = forward.weightSpecs(features: features), bSpecs = backward.weightSpecs(features: features)
        let f = forward.onnxParts(first: 0, features: features, direction: 0)
        let b = backward.onnxParts(first: fSpecs.count, features: features, direction: 1)
        let g = Kind.gateOrder.count * units
        var placed = [PlacedWeight(role: "W", shape: [2, g, features], parts: [f.w, b.w]),
                      PlacedWeight(role: "R", shape: [2, g, units], parts: [f.r, b.r])]
        let biases = [f.b, b.b].compactMap { $0 }
        if !biases.isEmpty { placed.append(PlacedWeight(role: "B", shape: [2, 2 * g], parts: biases)) }
        let w = try ctx.placedWeights(fSpecs + bSpecs, placed)
        let half = states.count / 2
        let initial = try forward.initialStates(states, directions: [Array(states[..<half]), Array(states[half...])], ctx)
        let attributes = RecurrentAttributes(hiddenSize: units, direction: .bidirectional,
                                             activations: try forward.activations(ctx) + backward.activations(ctx),
                                             linearBeforeReset: forward.resetAfter, layout: 1)
        let node = try emitRecurrent(Kind.op(attributes), x: x, w: w, initial: initial, stateCount: Kind.stateCount,
                                     needSequence: forward.returnSequences, ctx)
        // Both directions side by side on the axis before units: (N, T, 2, u) or (N, 2, u).
        let both = forward.returnSequences ? node.y! : node.states[0]
        let axis = forward.returnSequences ? 2 : 1
        var outs: [KerasTensor]
        func direction(_ d: Int) throws -> IRValue {
            let s = try ctx.emit(.slice(SliceAttributes(starts: [d], ends: [d + 1], axes: [axis])), [both],
                                 role: d == 0 ? "forward" : "backward")
            return try ctx.emit(.squeeze(axes: [axis]), [s], role: d == 0 ? "forward_output" : "backward_output")
        }
        switch merge {
        case .concat?:
            let shape = forward.returnSequences ? [0, 0, 2 * units] : [0, 2 * units]
            outs = [KerasTensor(keras: try ctx.emit(.reshape(shape: shape), [both], role: "concat"))]
        case .sum?:
            outs = [KerasTensor(keras: try ctx.emit(.reduce(.sum, axes: [axis], keepDims: false), [both], role: "sum"))]
        case .ave?:
            outs = [KerasTensor(keras: try ctx.emit(.reduce(.mean, axes: [axis], keepDims: false), [both], role: "ave"))]
        case .mul?:
            outs = [KerasTensor(keras: try ctx.emit(.mul, [try direction(0), try direction(1)], role: "mul"))]
        case nil:
            outs = [KerasTensor(keras: try direction(0)), KerasTensor(keras: try direction(1))]
        }
        if forward.returnState {
            for d in 0..<2 {
                for (i, s) in node.states.enumerated() {
                    let one = try ctx.emit(.slice(SliceAttributes(starts: [d], ends: [d + 1], axes: [1])), [s],
                                           role: "state_slice")
                    let role = (d == 0 ? "forward_" : "backward_") + (i == 0 ? "h" : "c")
                    outs.append(KerasTensor(keras: try ctx.emit(.squeeze(axes: [1]), [one], role: role)))
                }
            }
        }
        return outs
    }
}

/// A layer wrapping another whose name the exporter needs back (Bidirectional).
protocol WrapsNamedLayer { var innerName: String? { get } }

/// Parses a Bidirectional layer: its `layer` (the forward layer) and, when given,
/// `backward_layer` (Keras 3 always writes it); without it the backward layer is the forward
/// layer's config running backwards.
func parseBidirectional(_ config: ConfigReader) throws -> any KerasLayer {
    let inner = try config.object("layer")
    let className = try inner.string("class_name")
    let innerConfig = try inner.object("config")
    let backwardConfig = config.has("backward_layer") ? try config.object("backward_layer").object("config") : nil
    func make<K: RecurrentKind>(_: K.Type) throws -> any KerasLayer {
        let f = try RecurrentSpec<K>(config: innerConfig)
        var b = try backwardConfig.map { try RecurrentSpec<K>(config: $0) } ?? f
        if backwardConfig == nil { b.goBackwards = !f.goBackwards }
        if let backwardConfig, try config.object("backward_layer").string("class_name") != className {
            throw backwardConfig.error("a backward layer of another type than the forward layer is not supported")
        }
        var spec = try BidirectionalSpec<K>(forward: f, backward: b, config: config)
        spec.innerName = try? innerConfig.string("name")
        return spec
    }
    switch className {
    case "SimpleRNN": return try make(SimpleRNNKind.self)
    case "LSTM": return try make(LSTMKind.self)
    case "GRU": return try make(GRUKind.self)
    default: throw config.error("Bidirectional over \(className) is not supported (only SimpleRNN, LSTM, GRU)")
    }
}

/// TimeDistributed: the inner layer applied to every time step. Dense (which Keras applies to
/// the last axis of any input) runs on the whole tensor; other layers run on (batch * time,
/// ...) and are reshaped back, which needs the time and feature sizes known.
struct TimeDistributedSpec: KerasLayer {
    var inner: any KerasLayer
    /// Keras hands the inner layer the mask of each step.
    var maskEffect: KerasMaskEffect { .reads }

    init(config: ConfigReader) throws {
        let entry = try config.object("layer")
        let className = try entry.string("class_name")
        guard !ModelConfig.modelClassNames.contains(className), className != "TimeDistributed",
              className != "Bidirectional", let parser = kerasLayerTable[className] else {
            throw config.error("TimeDistributed over \(className) is not supported")
        }
        inner = try parser(try entry.object("config"))
    }

    var weightGroups: [[String]] { inner.weightGroups.map { ["layer"] + $0 } }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try ctx.kerasLayout(single(inputs, ctx))
        guard x.rank >= 3 else { throw ctx.error("expects a (batch, time, ...) input, got \(x.shape)") }
        if inner is DenseSpec { return try inner.build([KerasTensor(keras: x)], ctx) }
        guard let steps = x.shape[1].value, let rest = knownSizes(Array(x.shape.dims[2...])) else {
            throw ctx.error("needs known time and feature sizes, the input is \(x.shape)")
        }
        let merged = try ctx.emit(.reshape(shape: [-1] + rest), [x], role: "merge_time")
        let outs = try inner.build([KerasTensor(keras: merged)], ctx)
        guard outs.count == 1 else { throw ctx.error("an inner layer with \(outs.count) outputs is not supported") }
        let y = try ctx.kerasLayout(outs[0])
        guard let outRest = knownSizes(Array(y.shape.dims[1...])) else {
            throw ctx.error("the inner layer's output \(y.shape) has unknown sizes")
        }
        return [KerasTensor(keras: try ctx.emit(.reshape(shape: [-1, steps] + outRest), [y], role: "split_time"))]
    }
}

/// The sizes when all are known.
func knownSizes(_ dims: [Dim]) -> [Int]? {
    let v = dims.compactMap(\.value)
    return v.count == dims.count ? v : nil
}
