import FerryIR

/// A Keras layer type the importer supports, parsed from its config into typed fields.
/// Conforming types parse in `init(config:)` (rejecting unsupported attribute values there,
/// before any weight is read) and emit IR nodes in `build`.
protocol KerasLayer {
    init(config: ConfigReader) throws

    /// Emits one call of the layer on its input tensors (Keras layout semantics; the context
    /// converts layouts as needed) and returns its output tensors.
    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor]

    /// Where the layer's weights sit in Keras 3's layout, below the layer's own group, in the
    /// order of the legacy layout's `weight_names`: `[[]]` for the layer's own `vars`; a
    /// recurrent layer keeps them in its cell (`[["cell"]]`), a wrapper in its inner layers.
    var weightGroups: [[String]] { get }

    /// What the layer does with Keras masks (timesteps marked as padding).
    var maskEffect: KerasMaskEffect { get }
}

extension KerasLayer {
    var weightGroups: [[String]] { [[]] }
    var maskEffect: KerasMaskEffect { .carries }
}

/// How a layer meets Keras's masks. Ferry computes no masks: a mask only matters to the layers
/// that read it (recurrent layers skip masked steps, pooling and softmax leave them out,
/// attention ignores them), so those are refused when a mask may reach them, and every other
/// layer is taken to pass a mask on (Keras drops it in some: refusing there too is safe).
enum KerasMaskEffect {
    /// Passes any mask of its inputs on to its outputs, its values unaffected.
    case carries
    /// Makes a mask (Masking, Embedding with mask_zero).
    case makes
    /// Reads the mask: with a masked input, its results would differ from Keras's.
    case reads
}

/// Parses a layer's config into its typed form.
typealias KerasLayerParser = @Sendable (ConfigReader) throws -> any KerasLayer

/// The supported layers by Keras `class_name`. Adding a layer type is one entry here plus one
/// conforming type.
let kerasLayerTable: [String: KerasLayerParser] = [
    // Core
    "InputLayer": { try InputLayerSpec(config: $0) },
    "Dense": { try DenseSpec(config: $0) },
    "Activation": { try ActivationSpec(config: $0) },
    "Identity": { try DropoutSpec(config: $0) },
    "Embedding": { try EmbeddingSpec(config: $0) },
    "Masking": { try MaskingSpec(config: $0) },
    // Identity at inference: regularization
    "Dropout": { try DropoutSpec(config: $0) },
    "SpatialDropout1D": { try DropoutSpec(config: $0) },
    "SpatialDropout2D": { try DropoutSpec(config: $0) },
    "SpatialDropout3D": { try DropoutSpec(config: $0) },
    "GaussianNoise": { try DropoutSpec(config: $0) },
    "GaussianDropout": { try DropoutSpec(config: $0) },
    "AlphaDropout": { try DropoutSpec(config: $0) },
    "ActivityRegularization": { try DropoutSpec(config: $0) },
    // Convolution
    "Conv1D": { try ConvSpec<Rank1>(config: $0) },
    "Conv2D": { try ConvSpec<Rank2>(config: $0) },
    "Conv3D": { try ConvSpec<Rank3>(config: $0) },
    "DepthwiseConv1D": { try ConvSpec<Rank1>(depthwise: $0) },
    "DepthwiseConv2D": { try ConvSpec<Rank2>(depthwise: $0) },
    "SeparableConv1D": { try SeparableConvSpec<Rank1>(config: $0) },
    "SeparableConv2D": { try SeparableConvSpec<Rank2>(config: $0) },
    "Conv1DTranspose": { try ConvTransposeSpec<Rank1>(config: $0) },
    "Conv2DTranspose": { try ConvTransposeSpec<Rank2>(config: $0) },
    "Conv3DTranspose": { try ConvTransposeSpec<Rank3>(config: $0) },
    // Pooling
    "MaxPooling1D": { try PoolingSpec<MaxPooling, Rank1>(config: $0) },
    "MaxPooling2D": { try PoolingSpec<MaxPooling, Rank2>(config: $0) },
    "MaxPooling3D": { try PoolingSpec<MaxPooling, Rank3>(config: $0) },
    "AveragePooling1D": { try PoolingSpec<AveragePooling, Rank1>(config: $0) },
    "AveragePooling2D": { try PoolingSpec<AveragePooling, Rank2>(config: $0) },
    "AveragePooling3D": { try PoolingSpec<AveragePooling, Rank3>(config: $0) },
    "GlobalAveragePooling1D": { try GlobalPoolingSpec<AveragePooling, Rank1>(config: $0) },
    "GlobalAveragePooling2D": { try GlobalPoolingSpec<AveragePooling, Rank2>(config: $0) },
    "GlobalAveragePooling3D": { try GlobalPoolingSpec<AveragePooling, Rank3>(config: $0) },
    "GlobalMaxPooling1D": { try GlobalPoolingSpec<MaxPooling, Rank1>(config: $0) },
    "GlobalMaxPooling2D": { try GlobalPoolingSpec<MaxPooling, Rank2>(config: $0) },
    "GlobalMaxPooling3D": { try GlobalPoolingSpec<MaxPooling, Rank3>(config: $0) },
    // Normalization
    "BatchNormalization": { try BatchNormalizationSpec(config: $0) },
    "LayerNormalization": { try LayerNormalizationSpec(config: $0) },
    "GroupNormalization": { try GroupNormalizationSpec(config: $0) },
    "UnitNormalization": { try UnitNormalizationSpec(config: $0) },
    // Activations
    "ReLU": { try ReLUSpec(config: $0) },
    "LeakyReLU": { try LeakyReLUSpec(config: $0) },
    "PReLU": { try PReLUSpec(config: $0) },
    "ELU": { try ELUSpec(config: $0) },
    "ThresholdedReLU": { try ThresholdedReLUSpec(config: $0) },
    "Softmax": { try SoftmaxSpec(config: $0) },
    // Merging
    "Add": { try ElementwiseMergeSpec<AddMerge>(config: $0) },
    "Subtract": { try ElementwiseMergeSpec<SubtractMerge>(config: $0) },
    "Multiply": { try ElementwiseMergeSpec<MultiplyMerge>(config: $0) },
    "Average": { try ElementwiseMergeSpec<AverageMerge>(config: $0) },
    "Maximum": { try ElementwiseMergeSpec<MaximumMerge>(config: $0) },
    "Minimum": { try ElementwiseMergeSpec<MinimumMerge>(config: $0) },
    "Dot": { try DotSpec(config: $0) },
    // Reshaping
    "Flatten": { try FlattenSpec(config: $0) },
    "Reshape": { try ReshapeSpec(config: $0) },
    "Permute": { try PermuteSpec(config: $0) },
    "RepeatVector": { try RepeatVectorSpec(config: $0) },
    "ZeroPadding1D": { try ZeroPaddingSpec<Rank1>(config: $0) },
    "ZeroPadding2D": { try ZeroPaddingSpec<Rank2>(config: $0) },
    "ZeroPadding3D": { try ZeroPaddingSpec<Rank3>(config: $0) },
    "Cropping1D": { try CroppingSpec<Rank1>(config: $0) },
    "Cropping2D": { try CroppingSpec<Rank2>(config: $0) },
    "Cropping3D": { try CroppingSpec<Rank3>(config: $0) },
    "UpSampling1D": { try UpSamplingSpec<Rank1>(config: $0) },
    "UpSampling2D": { try UpSamplingSpec<Rank2>(config: $0) },
    "UpSampling3D": { try UpSamplingSpec<Rank3>(config: $0) },
    "Concatenate": { try ConcatenateSpec(config: $0) },
    // Recurrent
    "SimpleRNN": { try RecurrentSpec<SimpleRNNKind>(config: $0) },
    "LSTM": { try RecurrentSpec<LSTMKind>(config: $0) },
    "GRU": { try RecurrentSpec<GRUKind>(config: $0) },
    "RNN": { try GenericRNNSpec(config: $0) },
    "Bidirectional": { try parseBidirectional($0) },
    "TimeDistributed": { try TimeDistributedSpec(config: $0) },
    // Attention
    "Attention": { try AttentionSpec(config: $0) },
    "MultiHeadAttention": { try MultiHeadAttentionSpec(config: $0) },
    // Preprocessing
    "Rescaling": { try RescalingSpec(config: $0) },
    "Normalization": { try PreprocessingNormalizationSpec(config: $0) },
    "Resizing": { try ResizingSpec(config: $0) },
    // TensorFlow functions recorded by tf_keras (a short list of arithmetic, by name)
    "TFOpLambda": { try TFOpLambdaSpec(config: $0) },
    "CenterCrop": { try CenterCropSpec(config: $0) },
]

/// Layers that keras.applications defines itself and saves under a custom class name; each
/// checks that its config is the application's.
let kerasApplicationCustomLayers: [String: KerasLayerParser] = [
    CustomScaleLayerSpec.className: { try CustomScaleLayerSpec(config: $0) },
    CustomScaleLayerSpec.keras3ClassName: { try CustomScaleLayerSpec(config: $0) },
    LayerScaleSpec.className: { try LayerScaleSpec(config: $0) },
]

extension KerasLayer {
    /// The single input of a one-input layer.
    func single(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> KerasTensor {
        guard inputs.count == 1 else { throw ctx.error("expects one input tensor, is called on \(inputs.count)") }
        return inputs[0]
    }
}

// MARK: - Shared attribute types

/// Keras `padding`.
enum KerasPadding: String {
    case valid, same
    /// Conv1D only: all padding before the sequence, so no output sees the future.
    case causal

    init(_ config: ConfigReader) throws {
        let s = try config.string("padding", default: "valid")
        guard let p = KerasPadding(rawValue: s.lowercased()) else {
            throw config.error("padding '\(s)' is not supported (expected 'valid', 'same' or 'causal')")
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
        case .causal:
            return kernel.indices.map { (kernel[$0] - 1) * dilations[$0] } + Array(repeating: 0, count: kernel.count)
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
