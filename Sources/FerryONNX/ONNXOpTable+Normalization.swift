import FerryIR

/// Normalization builders other than BatchNormalization.
extension ONNXOpTable {
    static func InstanceNormalization(_ n: ONNXNode) throws {
        try n.emit(.instanceNormalization(epsilon: try n.float("epsilon", 1e-5)),
                   [try n.input(0), try n.input(1), try n.input(2)])
    }

    /// Y from the IR op; the optional Mean and InvStdDev outputs (over axes axis..<rank, kept
    /// as size 1) as the ONNX function body computes them.
    static func LayerNormalization(_ n: ONNXNode) throws {
        let axis = try n.int("axis", -1), epsilon = try n.float("epsilon", 1e-5)
        if try n.int("stash_type", 1) != 1 { throw n.unsupported("stash_type other than float") }
        let x = try n.input(0), xt = try n.inputType(0)
        guard let a = normalizeAxis(axis, rank: xt.shape.rank) else {
            throw FerryError("LayerNormalization axis \(axis) is out of range for \(xt.shape)")
        }
        try n.state.emit(.layerNormalization(axis: axis, epsilon: epsilon),
                         inputs: [x, try n.input(1)] + (n.optionalInput(2).map { [$0] } ?? []),
                         outputs: [try n.output(0)], name: n.layer, origins: n.origins)
        guard n.wantsOutput(1) || n.wantsOutput(2) else { return }
        let axes = Array(a..<xt.shape.rank)
        let mean = n.wantsOutput(1) ? try n.output(1) : n.state.freshName("\(n.layer)_mean")
        try n.state.emit(.reduce(.mean, axes: axes, keepDims: true), inputs: [x], outputs: [mean], name: mean, origins: n.origins)
        guard n.wantsOutput(2) else { return }
        let centered = try n.emitTemporary(.sub, [x, mean], "centered")
        let squared = try n.emitTemporary(.mul, [centered, centered], "squared")
        let variance = try n.emitTemporary(.reduce(.mean, axes: axes, keepDims: true), [squared], "variance")
        let eps = n.addConstant("epsilon", try Tensor(shape: [], storage: .repeating(epsilon, xt.dtype, count: 1)))
        let shifted = try n.emitTemporary(.add, [variance, eps], "shifted")
        let deviation = try n.emitTemporary(.sqrt, [shifted], "deviation")
        let inverse = try n.output(2)
        try n.state.emit(.reciprocal, inputs: [deviation], outputs: [inverse], name: inverse, origins: n.origins)
    }

    /// Opset 21 scales per channel, as the IR; opset 18's scale and bias hold one value per
    /// group, which become per-channel constants (each repeated C / num_groups times).
    static func GroupNormalization(_ n: ONNXNode) throws {
        guard n.has("num_groups") else { throw FerryError("GroupNormalization needs num_groups") }
        let groups = try n.int("num_groups", 1)
        if try n.int("stash_type", 1) != 1 { throw n.unsupported("stash_type other than float") }
        var scale = try n.input(1), bias = try n.input(2)
        if n.opset < 21 {
            let xt = try n.inputType(0)
            guard xt.shape.rank >= 2, let channels = xt.shape[1].value, groups >= 1, channels % groups == 0 else {
                throw FerryError("GroupNormalization of \(xt.shape) into \(groups) groups needs a known channel count divisible by it")
            }
            func perChannel(_ i: Int, _ what: String) throws -> String {
                let t = try n.requireConstant(i, what)
                guard t.count == groups, t.dtype == .float32 else {
                    throw FerryError("GroupNormalization \(what) should hold \(groups) float values, has \(t)")
                }
                let values = t.floats.flatMap { Array(repeating: $0, count: channels / groups) }
                return n.addConstant(what, Tensor(shape: [channels], floats: values))
            }
            scale = try perChannel(1, "scale")
            bias = try perChannel(2, "bias")
        }
        try n.emit(.groupNormalization(numGroups: groups, epsilon: try n.float("epsilon", 1e-5)), [try n.input(0), scale, bias])
    }

    static func LRN(_ n: ONNXNode) throws {
        guard n.has("size") else { throw FerryError("LRN needs a size") }
        try n.emit(.lrn(size: try n.int("size", 1), alpha: try n.float("alpha", 1e-4), beta: try n.float("beta", 0.75),
                        bias: try n.float("bias", 1)), [try n.input(0)])
    }

    static func LpNormalization(_ n: ONNXNode) throws {
        let p = try n.int("p", 2)
        guard p == 1 || p == 2 else { throw n.unsupported("p=\(p)") }
        try n.emit(.lpNormalization(axis: try n.int("axis", -1), p: p), [try n.input(0)])
    }
}
