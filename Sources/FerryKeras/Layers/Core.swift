import FerryIR

/// InputLayer: a graph input named after the layer, in Keras layout, with the open batch
/// dimension as the symbol N.
struct InputLayerSpec: KerasLayer {
    var batchShape: [Int?]
    var dtype: DType

    init(batchShape: [Int?], dtype: DType) {
        self.batchShape = batchShape
        self.dtype = dtype
    }

    init(config: ConfigReader) throws {
        // Keras 2 writes batch_input_shape, Keras 3 batch_shape.
        guard let shape = try config.optionalDims("batch_shape") ?? config.optionalDims("batch_input_shape") else {
            throw config.error("InputLayer has neither batch_shape nor batch_input_shape")
        }
        guard !shape.isEmpty else { throw config.error("InputLayer has an empty shape") }
        // Known sizes must leave room for size arithmetic downstream (flatten, element counts).
        guard let known = checkedElementCount(shape.compactMap { $0 }), known <= 1 << 40 else {
            throw config.error("InputLayer shape \(shape.map { $0.map(String.init) ?? "None" }) is too large")
        }
        batchShape = shape
        // dtype: a string, or (Keras 3) a DTypePolicy object.
        var name = "float32"
        if config.raw("dtype")?.string != nil {
            name = try config.string("dtype")
        } else if config.has("dtype") {
            let policy = try config.object("dtype")
            if policy.has("config") { name = try policy.object("config").string("name", default: name) }
        }
        // Integer inputs feed Embedding layers (token ids).
        let dtypes: [String: DType] = ["float32": .float32, "int32": .int32, "int64": .int64, "bool": .bool]
        guard let d = dtypes[name] else {
            throw config.error("input dtype \(name) is not supported yet (float32, int32, int64 and bool are)")
        }
        dtype = d
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        guard inputs.isEmpty else { throw ctx.error("an InputLayer takes no inputs") }
        let dims: [Dim] = batchShape.enumerated().map { i, d in
            if let d { return .fixed(d) }
            return .symbolic(i == 0 ? "N" : "\(ctx.layerName)_dim\(i)")
        }
        return [KerasTensor(keras: ctx.addGraphInput(ctx.layerName, TensorType(dtype, Shape(dims))))]
    }
}

/// Dense on 2-D inputs: Gemm(x, kernel (in, units), bias) with the kernel as Keras stores it.
struct DenseSpec: KerasLayer {
    var units: Int
    var useBias: Bool
    var activation: KerasActivation

    init(config: ConfigReader) throws {
        units = try config.int("units")
        try requirePositive([units], "units", config)
        useBias = try config.bool("use_bias", default: true)
        activation = try KerasActivation(config)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try ctx.kerasLayout(single(inputs, ctx))
        guard x.rank >= 2 else { throw ctx.error("Dense needs an input of rank 2 or more, got \(x.shape)") }
        guard let features = x.shape[x.rank - 1].value else {
            throw ctx.error("Dense needs a known input size, the input is \(x.shape)")
        }
        var specs = [WeightSpec(role: "kernel", shape: [features, units])]
        if useBias { specs.append(WeightSpec(role: "bias", shape: [units])) }
        let w = try ctx.weights(specs)
        var y: IRValue
        if x.rank == 2 {
            y = try ctx.emit(.gemm(GemmAttributes()), [x, w[0]] + (useBias ? [w[1]] : []), role: "gemm")
        } else {
            // Keras applies the kernel to the last axis of an N-D input.
            y = try ctx.emit(.matMul, [x, w[0]], role: "matmul")
            if useBias { y = try ctx.emit(.add, [y, w[1]], role: "bias") }
        }
        return [try ctx.activate(activation, KerasTensor(keras: y))]
    }
}

/// Activation layer.
struct ActivationSpec: KerasLayer {
    var activation: KerasActivation

    init(config: ConfigReader) throws {
        guard config.has("activation") else { throw config.error("config has no 'activation'") }
        activation = try KerasActivation(config)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try single(inputs, ctx)
        if activation == .linear {
            // Keep the layer visible (and its output a distinct value) with an identity.
            let (v, channelsFirst) = ctx.anyLayout(x)
            let y = try ctx.emit(.identity, [v], role: "identity")
            return [channelsFirst ? KerasTensor(channelsFirst: y) : KerasTensor(keras: y)]
        }
        return [try ctx.activate(activation, x)]
    }
}

/// Reshape to `target_shape` (Keras layout, without the batch axis; -1 inferred).
struct ReshapeSpec: KerasLayer {
    var target: [Int]

    init(config: ConfigReader) throws {
        guard let list = config.raw("target_shape")?.array else { throw config.error("config has no list 'target_shape'") }
        target = try list.map { try JSONValue.int($0, orThrow: config.error("target_shape should hold integers")) }
        guard target.allSatisfy({ $0 == -1 || ($0 >= 1 && $0 <= maxConfigSize) }), target.filter({ $0 == -1 }).count <= 1 else {
            throw config.error("target_shape \(target) is not a valid shape")
        }
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try ctx.kerasLayout(single(inputs, ctx))
        return [KerasTensor(keras: try ctx.emit(.reshape(shape: [0] + target), [x], role: "reshape"))]
    }
}

/// Permute: `dims` are the new order of the non-batch axes, counted from 1.
struct PermuteSpec: KerasLayer {
    var dims: [Int]

    init(config: ConfigReader) throws {
        guard let list = config.raw("dims")?.array else { throw config.error("config has no list 'dims'") }
        dims = try list.map { try JSONValue.int($0, orThrow: config.error("dims should hold integers")) }
        guard dims.sorted() == Array(1...max(dims.count, 1)), !dims.isEmpty else {
            throw config.error("dims \(dims) is not a permutation of 1...\(dims.count)")
        }
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try ctx.kerasLayout(single(inputs, ctx))
        guard x.rank == dims.count + 1 else { throw ctx.error("dims \(dims) do not fit an input of shape \(x.shape)") }
        return [KerasTensor(keras: try ctx.emit(.transpose(perm: [0] + dims), [x], role: "permute"))]
    }
}

/// Rescaling: x * scale + offset (numbers, or per-channel lists along the last axis).
struct RescalingSpec: KerasLayer {
    var scale: [Float]
    var offset: [Float]

    init(config: ConfigReader) throws {
        scale = try config.floats("scale") ?? [1]
        offset = try config.floats("offset") ?? [0]
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let t = try single(inputs, ctx)
        let perChannel = scale.count > 1 || offset.count > 1
        let (x, channelsFirst) = perChannel ? (try ctx.kerasLayout(t), false) : ctx.anyLayout(t)
        func constant(_ role: String, _ v: [Float]) -> IRValue {
            ctx.constant(role, Tensor(shape: v.count == 1 ? [] : [v.count], floats: v))
        }
        var y = try ctx.emit(.mul, [x, constant("scale", scale)], role: "scale")
        y = try ctx.emit(.add, [y, constant("offset", offset)], role: "offset")
        return [channelsFirst ? KerasTensor(channelsFirst: y) : KerasTensor(keras: y)]
    }
}

/// Dropout: the identity at inference. An Identity node keeps the layer's origin; the
/// optimizer removes it.
struct DropoutSpec: KerasLayer {
    init(config: ConfigReader) throws {}

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let (v, channelsFirst) = ctx.anyLayout(try single(inputs, ctx))
        let y = try ctx.emit(.identity, [v], role: "identity")
        return [channelsFirst ? KerasTensor(channelsFirst: y) : KerasTensor(keras: y)]
    }
}

/// Flatten in Keras's element order: the channels-last tensor flattened (N, H*W*C).
struct FlattenSpec: KerasLayer {
    init(config: ConfigReader) throws {
        try requireChannelsLast(config)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try ctx.kerasLayout(single(inputs, ctx))
        guard x.rank >= 1 else { throw ctx.error("Flatten of a scalar") }
        return [KerasTensor(keras: try ctx.emit(.flatten(axis: 1), [x], role: "flatten"))]
    }
}

/// Embedding: Gather of rows of the (input_dim, output_dim) table. Keras casts indices that are
/// not int32 / int64 to int32 first (truncating floats toward zero), as Cast does.
/// `mask_zero` makes a mask for the layers after it (see `KerasMaskEffect`).
struct EmbeddingSpec: KerasLayer {
    var inputDim: Int
    var outputDim: Int
    var maskZero: Bool

    init(config: ConfigReader) throws {
        inputDim = try config.int("input_dim")
        outputDim = try config.int("output_dim")
        try requirePositive([inputDim, outputDim], "input_dim and output_dim", config)
        maskZero = try config.bool("mask_zero", default: false)
        if try config.int("lora_rank", default: 0) != 0 { throw config.error("LoRA embeddings are not supported") }
        if config.has("quantization_mode") { throw config.error("quantized embeddings are not supported") }
    }

    var maskEffect: KerasMaskEffect { maskZero ? .makes : .carries }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        var indices = try ctx.kerasLayout(single(inputs, ctx))
        if indices.type.dtype != .int32 && indices.type.dtype != .int64 {
            indices = try ctx.emit(.cast(to: .int32), [indices], role: "to_int")
        }
        let table = try ctx.weights([WeightSpec(role: "embeddings", shape: [inputDim, outputDim])])[0]
        return [KerasTensor(keras: try ctx.emit(.gather(axis: 0), [table, indices], role: "gather"))]
    }
}

/// Masking: timesteps whose features all equal `mask_value` are zeroed (Keras multiplies by
/// any(x != mask_value) over the last axis), and they are masked for the layers after it.
/// Only the zeroing is computed here; a layer that would read the mask is refused.
struct MaskingSpec: KerasLayer {
    var maskValue: Float

    init(config: ConfigReader) throws {
        maskValue = try config.float("mask_value", default: 0)
    }

    var maskEffect: KerasMaskEffect { .makes }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let x = try ctx.kerasLayout(single(inputs, ctx))
        let value = ctx.constant("mask_value", Tensor(shape: [], floats: [maskValue]))
        let equal = try ctx.emit(.equal, [x, value], role: "equal")
        let differs = try ctx.emit(.not, [equal], role: "differs")
        let keep = try ctx.emit(.cast(to: .float32), [differs], role: "differs_float")
        let anyDiffers = try ctx.emit(.reduce(.max, axes: [-1], keepDims: true), [keep], role: "keep")
        return [KerasTensor(keras: try ctx.emit(.mul, [x, anyDiffers], role: "mask"))]
    }
}
