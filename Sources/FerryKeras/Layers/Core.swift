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
        if config.raw("dtype") is String {
            name = try config.string("dtype")
        } else if config.has("dtype") {
            let policy = try config.object("dtype")
            if policy.has("config") { name = try policy.object("config").string("name", default: name) }
        }
        guard name == "float32" else { throw config.error("input dtype \(name) is not supported yet (only float32)") }
        dtype = .float32
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
        guard x.rank == 2 else {
            throw ctx.error("Dense on a rank-\(x.rank) input \(x.shape) is not supported yet (only 2-D inputs)")
        }
        guard let features = x.shape[1].value else {
            throw ctx.error("Dense needs a known input size, the input is \(x.shape)")
        }
        var specs = [WeightSpec(role: "kernel", shape: [features, units])]
        if useBias { specs.append(WeightSpec(role: "bias", shape: [units])) }
        let w = try ctx.weights(specs)
        let y = try ctx.emit(.gemm(GemmAttributes()), [x, w[0]] + (useBias ? [w[1]] : []), role: "gemm")
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
