import FerryIR

/// TFOpLambda: tf_keras records a TensorFlow function applied to a Keras tensor (`x + 3`,
/// `tf.math.multiply(x, 1/6)`, as MobileNetV3's hard-swish and RegNet's residual sums are
/// written) as a layer naming the function. No code is stored or run: the name is looked up in
/// a short list of elementwise arithmetic whose meaning is fixed, with one tensor argument x
/// and `y` a number or a tensor (broadcast as numpy does). Any other function or argument is
/// refused.
struct TFOpLambdaSpec: KerasLayer {
    enum Function: String, CaseIterable {
        case operatorAdd = "__operators__.add"
        case add = "math.add"
        case multiply = "math.multiply"
        case subtract = "math.subtract"
        case truediv = "math.truediv"

        var op: Op {
            switch self {
            case .operatorAdd, .add: return .add
            case .multiply: return .mul
            case .subtract: return .sub
            case .truediv: return .div
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
        let result = try ctx.emit(function.op, operands, role: function.op.name.lowercased())
        return [channelsFirst ? KerasTensor(channelsFirst: result) : KerasTensor(keras: result)]
    }
}

/// InceptionResNetV2's `CustomScaleLayer` (defined in keras.applications, saved as
/// `Custom>CustomScaleLayer`): inputs[0] + inputs[1] * scale. Its code is not in the file;
/// the registered name could also be a user's own class, so the layer is taken for the
/// application's only when its config holds exactly the application's fields (name, trainable,
/// dtype, scale) and it is called on two tensors.
struct CustomScaleLayerSpec: KerasLayer {
    static let className = "Custom>CustomScaleLayer"
    var scale: Float

    init(config: ConfigReader) throws {
        let fields = Set(config.keys)
        guard fields.isSubset(of: ["name", "trainable", "dtype", "scale"]), fields.contains("scale") else {
            throw config.error("custom layer class \(Self.className) with fields \(fields.sorted()) is not "
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
