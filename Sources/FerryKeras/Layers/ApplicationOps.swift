import FerryIR

/// TFOpLambda: tf_keras records a TensorFlow function applied to a Keras tensor (`x + 3`,
/// `tf.math.multiply(x, 1/6)`, as MobileNetV3's hard-swish and RegNet's residual sums are
/// written) as a layer naming the function. No code is stored or run: the name is looked up in
/// a short list of functions whose meaning is fixed: elementwise arithmetic with one tensor
/// argument x and `y` a number or a tensor (broadcast as numpy does), and `tf.nn.gelu` with its
/// `approximate` flag (false unless given; the only saved form of the tanh approximation in
/// Keras 2, whose `activation="gelu"` is always exact). Any other function or argument is
/// refused.
struct TFOpLambdaSpec: KerasLayer {
    enum Function: String, CaseIterable {
        case operatorAdd = "__operators__.add"
        case add = "math.add"
        case multiply = "math.multiply"
        case subtract = "math.subtract"
        case truediv = "math.truediv"
        case gelu = "nn.gelu"

        /// The arithmetic op of a two-operand function (nil for gelu).
        var arithmetic: Op? {
            switch self {
            case .operatorAdd, .add: return .add
            case .multiply: return .mul
            case .subtract: return .sub
            case .truediv: return .div
            case .gelu: return nil
            }
        }
    }

    var function: Function

    init(config: ConfigReader) throws {
        let name = try config.string("function")
        guard let f = Function(rawValue: name) else {
            throw config.error("TFOpLambda runs the TensorFlow function '\(name)', which Ferry does not map "
                               + "(it maps \(Function.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        function = f
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        guard let arithmetic = function.arithmetic else { return [try buildGelu(inputs, ctx)] }
        guard inputs.count == 1 else {
            throw ctx.error("\(function.rawValue) should take one tensor x and y by keyword, is called on \(inputs.count) tensors")
        }
        if let other = ctx.callKeywords.subtracting(["y", "name"]).sorted().first {
            throw ctx.error("\(function.rawValue) is called with argument '\(other)', which Ferry does not support")
        }
        let yTensors = ctx.keywordInputs("y")
        let operands: [IRValue], channelsFirst: Bool
        if yTensors.count == 1 {
            let pair = [inputs[0], yTensors[0]]
            if inputs[0].rank == yTensors[0].rank {
                (operands, channelsFirst) = try ctx.commonLayout(pair)
            } else {
                // Numpy broadcasting aligns trailing axes: only Keras's own layout keeps them.
                (operands, channelsFirst) = (try pair.map { try ctx.kerasLayout($0) }, false)
            }
        } else if yTensors.isEmpty, let y = ctx.callNumber("y") {
            let (x, cf) = ctx.anyLayout(inputs[0])
            (operands, channelsFirst) = ([x, ctx.constant("y", Tensor(shape: [], floats: [Float(y)]))], cf)
        } else {
            throw ctx.error("\(function.rawValue) needs y, a number or one tensor")
        }
        let result = try ctx.emit(arithmetic, operands, role: arithmetic.name.lowercased())
        return [channelsFirst ? KerasTensor(channelsFirst: result) : KerasTensor(keras: result)]
    }

    /// tf.nn.gelu(features, approximate=False): the flag is a keyword of the call.
    private func buildGelu(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> KerasTensor {
        guard inputs.count == 1 else {
            throw ctx.error("nn.gelu should take one tensor, is called on \(inputs.count) tensors")
        }
        if let other = ctx.callKeywords.subtracting(["approximate", "name"]).sorted().first {
            throw ctx.error("nn.gelu is called with argument '\(other)', which Ferry does not support")
        }
        if ctx.callKeywords.contains("approximate") && ctx.callFlagValue("approximate") == nil {
            throw ctx.error("nn.gelu's approximate should be true or false")
        }
        let approximate = ctx.callFlag("approximate")
        return try ctx.sameLayout(inputs[0]) { x, _ in try ctx.emit(.gelu(approximate: approximate), [x], role: "gelu") }
    }
}

/// InceptionResNetV2's `CustomScaleLayer` (defined in keras.applications, saved as
/// `Custom>CustomScaleLayer` by tf_keras, which registers it, and as `CustomScaleLayer` by
/// Keras 3, which does not): inputs[0] + inputs[1] * scale. Its code is not in the file;
/// the registered name could also be a user's own class, so the layer is taken for the
/// application's only when its config holds exactly the application's fields (name, trainable,
/// dtype, scale) and it is called on two tensors.
struct CustomScaleLayerSpec: KerasLayer {
    static let className = "Custom>CustomScaleLayer"
    static let keras3ClassName = "CustomScaleLayer"
    var scale: Float

    init(config: ConfigReader) throws {
        let fields = Set(config.keys)
        guard fields.isSubset(of: ["name", "trainable", "dtype", "scale"]), fields.contains("scale") else {
            throw config.error("custom layer class CustomScaleLayer with fields \(fields.sorted()) is not "
                               + "InceptionResNetV2's scaling layer; its code is not in the file")
        }
        guard let s = try config.optionalFloat("scale") else { throw config.error("scale should be a number") }
        scale = s
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        guard inputs.count == 2 else { throw ctx.error("expects [shortcut, residual], is called on \(inputs.count) tensors") }
        let (values, channelsFirst) = try ctx.commonLayout(inputs)
        let factor = ctx.constant("scale", Tensor(shape: [], floats: [scale]))
        let scaled = try ctx.emit(.mul, [values[1], factor], role: "scaled")
        let sum = try ctx.emit(.add, [values[0], scaled], role: "add")
        return [channelsFirst ? KerasTensor(channelsFirst: sum) : KerasTensor(keras: sum)]
    }
}

/// ConvNeXt's `LayerScale` (defined in keras.applications.convnext and saved under its bare
/// class name, which no Keras registers): x * gamma, one factor per channel (the last axis).
/// Its code is not in the file; as with `CustomScaleLayer`, the layer is taken for the
/// application's only when its config holds exactly the application's fields (name,
/// trainable, dtype, init_values, projection_dim) and its one weight has projection_dim values.
struct LayerScaleSpec: KerasLayer {
    static let className = "LayerScale"
    var projectionDim: Int

    init(config: ConfigReader) throws {
        let fields = Set(config.keys)
        guard fields.isSubset(of: ["name", "trainable", "dtype", "init_values", "projection_dim"]),
              fields.isSuperset(of: ["init_values", "projection_dim"]) else {
            throw config.error("custom layer class \(Self.className) with fields \(fields.sorted()) is not "
                               + "ConvNeXt's layer scale; its code is not in the file")
        }
        projectionDim = try config.int("projection_dim")
        guard projectionDim > 0 else { throw config.error("projection_dim should be positive, is \(projectionDim)") }
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let t = try single(inputs, ctx)
        let rank = t.rank
        guard rank >= 2, t.kerasShape.dims.last?.value == projectionDim else {
            throw ctx.error("scales \(projectionDim) channels, the input is \(t.kerasShape)")
        }
        let channelsFirst = ctx.anyLayout(t).channelsFirst && rank >= 3
        let gamma = try ctx.weights([WeightSpec(role: "gamma", shape: [projectionDim])]) { _, g in
            // Channels first, the factors vary along axis 1: shape (C, 1, ..., 1).
            channelsFirst ? Tensor(shape: [projectionDim] + Array(repeating: 1, count: rank - 2), floats: g.floats) : g
        }[0]
        return [try ctx.sameLayout(t) { x, _ in try ctx.emit(.mul, [x, gamma], role: "scale") }]
    }
}

/// Keras 3 operations in a Functional model's config (modules `keras.src.ops.numpy` and
/// `keras.src.ops.nn`): Keras 3 records a function of `keras.ops` applied to Keras tensors as an
/// operation, as MobileNetV3 writes its hard sigmoid `ReLU(6.0)(x + 3.0) * (1.0 / 6.0)`, and
/// `keras.ops.gelu(x, approximate=True)` (also what `keras.activations.gelu(x, approximate=True)`
/// records on a Keras tensor: the only saved form of the tanh approximation, since
/// `activation="gelu"` is always exact). No code is stored or run: the class name is looked up
/// in a short list: elementwise arithmetic on two positional arguments, each a tensor or a
/// number (tensors broadcast as numpy does), and Gelu with its `approximate` config field.
struct KerasOperationSpec: KerasLayer {
    enum Operation: String, CaseIterable {
        case add = "Add"
        case subtract = "Subtract"
        case multiply = "Multiply"
        case divide = "Divide"
        case trueDivide = "TrueDivide"
        case gelu = "Gelu"

        var module: String { self == .gelu ? "keras.src.ops.nn" : "keras.src.ops.numpy" }

        /// The config fields the operation's class writes (besides its name).
        var fields: Set<String> { self == .gelu ? ["name", "approximate"] : ["name"] }
    }

    static let modules: Set<String> = Set(Operation.allCases.map(\.module))

    var operation: Operation
    /// Gelu's flag (false for the others).
    var approximate = false

    /// Whether a layer entry is an operation: `module` says so in `.keras` files; Keras 3's legacy
    /// `.h5` drops the module, leaving an operation that may share a layer's class name (Add,
    /// Subtract, Multiply) told apart by its config, which holds only the operation's own fields
    /// (every layer's config also has `trainable` and `dtype`).
    static func isOperation(className: String, module: String?, config: ConfigReader) -> Bool {
        if let module { return modules.contains(module) }
        guard let o = Operation(rawValue: className) else { return false }
        return Set(config.keys) == o.fields
    }

    init(config: ConfigReader) throws {
        throw config.error("a Keras operation is parsed with its class name")
    }

    /// `module` is the entry's (nil in a legacy `.h5`).
    init(className: String, module: String?, config: ConfigReader) throws {
        guard let o = Operation(rawValue: className), module == nil || module == o.module else {
            throw config.error("Keras operation \(className) (\(module ?? "no module")) is not supported (Ferry maps "
                               + Operation.allCases.map { "\($0.module).\($0.rawValue)" }.joined(separator: ", ") + ")")
        }
        operation = o
        if o == .gelu {
            guard config.has("approximate") else { throw config.error("Gelu's config has no approximate") }
            approximate = try config.bool("approximate", default: false)
        }
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let arguments = ctx.callPositionalArguments
        let tensorCount = arguments.filter { $0 == nil }.count
        if operation == .gelu {
            guard arguments.count == 1, tensorCount == 1, inputs.count == 1, ctx.callKeywords.isEmpty else {
                throw ctx.error("Gelu should take one tensor, is called with \(arguments.count) positional arguments "
                                + "(\(tensorCount) tensors) and keywords \(ctx.callKeywords.sorted())")
            }
            return [try ctx.sameLayout(inputs[0]) { x, _ in
                try ctx.emit(.gelu(approximate: approximate), [x], role: "gelu")
            }]
        }
        guard arguments.count == 2, ctx.callKeywords.isEmpty, tensorCount == inputs.count, tensorCount >= 1 else {
            throw ctx.error("\(operation.rawValue) should take two positional arguments, tensors or numbers, and "
                            + "at least one tensor; is called with \(arguments.count) positional arguments "
                            + "(\(tensorCount) tensors) and keywords \(ctx.callKeywords.sorted())")
        }
        let op: Op
        switch operation {
        case .add: op = .add
        case .subtract: op = .sub
        case .multiply: op = .mul
        case .divide, .trueDivide: op = .div
        case .gelu: preconditionFailure("handled above")
        }
        var operands: [IRValue], channelsFirst: Bool
        if inputs.count == 2 {
            if inputs[0].rank == inputs[1].rank {
                (operands, channelsFirst) = try ctx.commonLayout(inputs)
            } else {
                // Numpy broadcasting aligns trailing axes: only Keras's own layout keeps them.
                (operands, channelsFirst) = (try inputs.map { try ctx.kerasLayout($0) }, false)
            }
        } else {
            let (x, cf) = ctx.anyLayout(inputs[0])
            (operands, channelsFirst) = ([], cf)
            for (i, argument) in arguments.enumerated() {
                if let number = argument {
                    operands.append(ctx.constant("x\(i + 1)", Tensor(shape: [], floats: [Float(number)])))
                } else {
                    operands.append(x)
                }
            }
        }
        let result = try ctx.emit(op, operands, role: op.name.lowercased())
        return [channelsFirst ? KerasTensor(channelsFirst: result) : KerasTensor(keras: result)]
    }
}
