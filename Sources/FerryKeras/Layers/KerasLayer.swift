import FerryIR

/// A Keras layer type the importer supports, parsed from its config into typed fields.
/// Conforming types parse in `init(config:)` (rejecting unsupported attribute values there,
/// before any weight is read) and emit IR nodes in `build`.
protocol KerasLayer {
    init(config: ConfigReader) throws

    /// Emits one call of the layer on its input tensors (Keras layout semantics; the context
    /// converts layouts as needed) and returns its output tensors.
    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor]
}

/// Parses a layer's config into its typed form.
typealias KerasLayerParser = @Sendable (ConfigReader) throws -> any KerasLayer

/// The supported layers by Keras `class_name`. Adding a layer type is one entry here plus one
/// conforming type.
let kerasLayerTable: [String: KerasLayerParser] = [
    "InputLayer": { try InputLayerSpec(config: $0) },
    "Dense": { try DenseSpec(config: $0) },
    "Activation": { try ActivationSpec(config: $0) },
    "Dropout": { try DropoutSpec(config: $0) },
    "Flatten": { try FlattenSpec(config: $0) },
    "Conv2D": { try Conv2DSpec(config: $0) },
    "MaxPooling2D": { try Pooling2DSpec<MaxPooling>(config: $0) },
    "AveragePooling2D": { try Pooling2DSpec<AveragePooling>(config: $0) },
    "GlobalAveragePooling2D": { try GlobalPooling2DSpec<AveragePooling>(config: $0) },
    "GlobalMaxPooling2D": { try GlobalPooling2DSpec<MaxPooling>(config: $0) },
    "Add": { try ElementwiseMergeSpec<AddMerge>(config: $0) },
    "Subtract": { try ElementwiseMergeSpec<SubtractMerge>(config: $0) },
    "Multiply": { try ElementwiseMergeSpec<MultiplyMerge>(config: $0) },
    "Average": { try ElementwiseMergeSpec<AverageMerge>(config: $0) },
]

extension KerasLayer {
    /// The single input of a one-input layer.
    func single(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> KerasTensor {
        guard inputs.count == 1 else { throw ctx.error("expects one input tensor, is called on \(inputs.count)") }
        return inputs[0]
    }
}

// MARK: - Shared attribute types

/// A Keras activation function name (`activation=` argument or Activation layer).
enum KerasActivation: String {
    case linear, relu, sigmoid, tanh, softmax

    /// Reads `key` (absent or null means linear). Keras 3 may also write a serialized function
    /// object; its registered name is used.
    init(_ config: ConfigReader, key: String = "activation") throws {
        let name: String
        switch config.raw(key) {
        case nil:
            name = "linear"
        case let s as String:
            name = s
        case let o as [String: Any]:
            guard let s = (o["config"] as? String) ?? (o["registered_name"] as? String) ?? (o["class_name"] as? String) else {
                throw config.error("activation is an object without a name")
            }
            name = s
        case let other?:
            throw config.error("activation should be a name, is \(JSONKind.describe(other))")
        }
        guard let a = KerasActivation(rawValue: name) else {
            throw config.error("activation '\(name)' is not supported yet")
        }
        self = a
    }
}

extension LayerContext {
    /// Applies an activation in whatever layout the tensor is held (softmax works on the
    /// channel axis: the last in Keras layout, axis 1 channels first).
    func activate(_ activation: KerasActivation, _ t: KerasTensor) throws -> KerasTensor {
        let (x, channelsFirst) = anyLayout(t)
        let op: Op
        switch activation {
        case .linear: return t
        case .relu: op = .relu
        case .sigmoid: op = .sigmoid
        case .tanh: op = .tanh
        case .softmax: op = .softmax(axis: channelsFirst ? 1 : -1)
        }
        let y = try emit(op, [x], role: activation.rawValue)
        return channelsFirst ? KerasTensor(channelsFirst: y) : KerasTensor(keras: y)
    }
}

/// Keras `padding`.
enum KerasPadding: String {
    case valid, same

    init(_ config: ConfigReader) throws {
        let s = try config.string("padding", default: "valid")
        guard let p = KerasPadding(rawValue: s.lowercased()) else {
            throw config.error("padding '\(s)' is not supported (expected 'valid' or 'same')")
        }
        self = p
    }

    /// ONNX pads [begins..., ends...] for windows sliding over `spatial` (N, C, spatial...).
    /// TF's 'same': total = max((ceil(in/s) - 1) * s + (k - 1) * d + 1 - in, 0), the extra cell
    /// at the end.
    func pads(spatial: [Dim], kernel: [Int], strides: [Int], dilations: [Int], _ ctx: LayerContext) throws -> [Int] {
        switch self {
        case .valid:
            return Array(repeating: 0, count: 2 * kernel.count)
        case .same:
            var begins: [Int] = [], ends: [Int] = []
            for i in kernel.indices {
                guard let n = spatial[i].value else {
                    throw ctx.error("padding 'same' needs known spatial sizes, the input has \(Shape(spatial))")
                }
                let out = (n + strides[i] - 1) / strides[i]
                let total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - n, 0)
                begins.append(total / 2)
                ends.append(total - total / 2)
            }
            return begins + ends
        }
    }
}

/// Checks `data_format` (absent or null means channels_last, Keras's default).
func requireChannelsLast(_ config: ConfigReader) throws {
    let format = try config.string("data_format", default: "channels_last")
    guard format == "channels_last" else {
        throw config.error("data_format '\(format)' is not supported yet (only channels_last)")
    }
}

/// Largest kernel, stride, dilation, filter or unit count accepted from a config; anything
/// larger is a corrupt file (and would overflow size arithmetic).
let maxConfigSize = 1 << 24

/// Checks that every size in a list is between 1 and `maxConfigSize`.
func requirePositive(_ values: [Int], _ what: String, _ config: ConfigReader) throws {
    guard values.allSatisfy({ $0 >= 1 && $0 <= maxConfigSize }) else {
        throw config.error("\(what) \(values) must be between 1 and \(maxConfigSize)")
    }
}
