import FerryIR

/// LSTM, GRU and RNN (opsets 7 and 14: layout). Outputs may be a prefix or named "".
extension ONNXOpTable {
    static func LSTM(_ n: ONNXNode) throws {
        try recurrent(n, inputs: 8) { .lstm($0) }
    }

    static func GRU(_ n: ONNXNode) throws {
        try recurrent(n, inputs: 6) { .gru($0) }
    }

    static func RNN(_ n: ONNXNode) throws {
        try recurrent(n, inputs: 6) { .rnn($0) }
    }

    static func recurrent(_ n: ONNXNode, inputs count: Int, _ make: (RecurrentAttributes) -> Op) throws {
        let directionName = try n.string("direction", "forward")
        guard let direction = RecurrentDirection(rawValue: directionName) else {
            throw FerryError("\(n.opType) direction '\(directionName)' is not an ONNX value")
        }
        var hiddenSize = try n.int("hidden_size", 0)
        if hiddenSize == 0, let h = try n.type(try n.input(2)).shape.dims.last?.value { hiddenSize = h }
        let names = try n.strings("activations") ?? []
        let alphas = try n.floats("activation_alpha") ?? [], betas = try n.floats("activation_beta") ?? []
        let activations = try recurrentActivations(n, names: names, alphas: alphas, betas: betas)
        let attributes = RecurrentAttributes(
            hiddenSize: hiddenSize, direction: direction, activations: activations,
            clip: n.has("clip") ? try n.float("clip", 0) : nil,
            linearBeforeReset: n.opType == "GRU" ? try n.bool("linear_before_reset", false) : false,
            inputForget: n.opType == "LSTM" ? try n.bool("input_forget", false) : false,
            layout: n.opset >= 14 ? try n.int("layout", 0) : 0)
        let op = make(attributes)
        var inputs = (0..<min(count, n.inputCount)).map { n.optionalInput($0) ?? "" }
        while inputs.last == "" { inputs.removeLast() }
        var outputs = n.outputs
        while outputs.last == "" { outputs.removeLast() }
        guard !outputs.isEmpty else { throw FerryError("\(n.opType) names no output") }
        try n.refuseOutputs(from: op.name == "LSTM" ? 3 : 2, "not an output of \(op.name)")
        try n.state.emit(op, inputs: inputs, outputs: outputs, name: n.layer, origins: n.origins)
    }

    /// activation_alpha / activation_beta: one value per activation (as Ferry writes them), or
    /// values consumed in order by the activations that take them (as onnxruntime reads them);
    /// absent values are the ONNX operators' defaults.
    static func recurrentActivations(_ n: ONNXNode, names: [String], alphas: [Float], betas: [Float]) throws -> [ActivationFunction] {
        let perActivation = alphas.count == names.count && (betas.isEmpty || betas.count == names.count)
        var alphaIndex = 0, betaIndex = 0
        func alpha(_ i: Int, _ d: Float) -> Float {
            if perActivation { return alphas[i] }
            defer { alphaIndex += 1 }
            return alphaIndex < alphas.count ? alphas[alphaIndex] : d
        }
        func beta(_ i: Int, _ d: Float) -> Float {
            if perActivation { return betas.isEmpty ? d : betas[i] }
            defer { betaIndex += 1 }
            return betaIndex < betas.count ? betas[betaIndex] : d
        }
        return try names.enumerated().map { i, name in
            switch name.lowercased() {
            case "sigmoid": return .sigmoid
            case "tanh": return .tanh
            case "relu": return .relu
            case "softsign": return .softsign
            case "softplus": return .softplus
            case "affine": return .affine(alpha: alpha(i, 1), beta: beta(i, 0))
            case "leakyrelu": return .leakyRelu(alpha: alpha(i, 0.01))
            case "thresholdedrelu": return .thresholdedRelu(alpha: alpha(i, 1))
            case "scaledtanh": return .scaledTanh(alpha: alpha(i, 1), beta: beta(i, 1))
            case "hardsigmoid": return .hardSigmoid(alpha: alpha(i, 0.2), beta: beta(i, 0.5))
            case "elu": return .elu(alpha: alpha(i, 1))
            default: throw n.unsupported("activation '\(name)'")
            }
        }
    }
}
