import FerryIR

/// Added to the scores of the positions a causal mask hides, as Keras does (it subtracts 1e9
/// rather than excluding them; softmax then gives them weight 0 in float32).
private let maskedScore: Float = -1e9

/// How an attention layer hides the keys its mask marks 0 / false (Keras's implementations
/// differ where every key of a query is hidden, and tf_keras's on masks other than 0 and 1).
enum AttentionMasking {
    /// Attention (both Keras): 1e9 subtracted from hidden scores; a query with every key
    /// hidden gets uniform weights.
    case subtract
    /// tf_keras's MultiHeadAttention (its Softmax with a mask): (1 - mask) * -1e9 added to the
    /// scores, the mask's own values unless a causal mask made it boolean.
    case addPenaltyOfMaskValue
    /// tf_keras's MultiHeadAttention with softmax_robust_masking: the scores where the mask is
    /// false or at most 0.5 replaced by -1e9 (a causal mask makes the mask boolean first: then
    /// nonzero counts); a query with every key hidden gets uniform weights.
    case replaceAboveHalf
    /// Keras 3.15's MultiHeadAttention when it returns its scores or has dropout (its Softmax
    /// with a mask): hidden scores replaced by -1e9 and their weights set to 0 after the softmax;
    /// a query with every key hidden gets zeros.
    case replaceAndZero
    /// Keras 3.15's MultiHeadAttention otherwise (`ops.dot_product_attention`): hidden scores
    /// replaced by a large negative number (-2.4e38 there; -1e9 gives the same weights, 0 in
    /// float32); a query with every key hidden gets uniform weights.
    case replace
}

extension LayerContext {
    /// The known, bounded (queries, keys) sizes of a causal mask.
    private func causalSizes(queries: Dim, keys: Dim) throws -> (t: Int, s: Int) {
        guard let t = queries.value, let s = keys.value else {
            throw error("use_causal_mask needs known sequence lengths, got \(queries) queries and \(keys) keys")
        }
        // Made from the file's numbers, not read from its data: bounded like every made constant
        // (a damaged input length of 2^30 made this loop for minutes).
        guard t >= 0, s >= 0, let count = checkedElementCount([t, s]), count <= largestMadeConstant else {
            throw error("use_causal_mask over \(t) queries and \(s) keys is too large to make (over \(largestMadeConstant) elements)")
        }
        return (t, s)
    }

    /// The (queries x keys) constant that hides later keys from each query: 0 where
    /// key <= query, -1e9 after (Keras's `use_causal_mask`).
    func causalMask(queries: Dim, keys: Dim) throws -> IRValue {
        let (t, s) = try causalSizes(queries: queries, keys: keys)
        let values = (0..<t).flatMap { row in (0..<s).map { col in col <= row ? Float(0) : maskedScore } }
        return constant("causal_mask", Tensor(shape: [t, s], floats: values))
    }

    /// The (queries x keys) constant of ones where key <= query and zeros after, as booleans
    /// (combined with a mask given to the layer).
    func causalKeep(queries: Dim, keys: Dim) throws -> IRValue {
        let (t, s) = try causalSizes(queries: queries, keys: keys)
        let values = (0..<t).flatMap { row in (0..<s).map { col in col <= row ? Float(1) : 0 } }
        return try emit(.cast(to: .bool), [constant("causal_keep", Tensor(shape: [t, s], floats: values))], role: "causal_keep")
    }

    /// softmax(scores (+ causal mask)) over the keys, and those weights applied to the values.
    /// `keyMask` (any numeric or boolean type, broadcastable to the scores; nonzero = attend) hides
    /// keys as `masking` says.
    func attend(scores: IRValue, values: IRValue, causal: Bool, keyMask: IRValue? = nil,
                masking: AttentionMasking = .subtract) throws -> (output: IRValue, weights: IRValue) {
        var s = scores
        let (queries, keys) = (s.shape[s.rank - 2], s.shape[s.rank - 1])
        guard let keyMask else {
            if causal {
                s = try emit(.add, [s, try causalMask(queries: queries, keys: keys)], role: "causal")
            }
            let weights = try emit(.softmax(axis: -1), [s], role: "attention_weights")
            return (try emit(.matMul, [weights, values], role: "attention"), weights)
        }
        let large = constant("large", Tensor(shape: [], floats: [-maskedScore]))
        var keep = keyMask.type.dtype == .bool ? keyMask : try emit(.cast(to: .bool), [keyMask], role: "mask_keep")
        if causal { keep = try emit(.and, [keep, try causalKeep(queries: queries, keys: keys)], role: "mask_and_causal") }
        var weights: IRValue
        switch masking {
        case .subtract:
            let hidden = try emit(.cast(to: .float32), [try emit(.not, [keep], role: "mask_hidden")], role: "mask_hidden_float")
            s = try emit(.sub, [s, try emit(.mul, [hidden, large], role: "mask_penalty")], role: "masked_scores")
            weights = try emit(.softmax(axis: -1), [s], role: "attention_weights")
        case .addPenaltyOfMaskValue:
            // (1 - mask) * -1e9 with the mask's own values unless a causal mask made it boolean.
            let m = try emit(.cast(to: .float32), [causal ? keep : keyMask], role: "mask_float")
            let one = constant("one", Tensor(shape: [], floats: [1]))
            let complement = try emit(.sub, [one, m], role: "mask_complement")
            let negative = constant("large_negative", Tensor(shape: [], floats: [maskedScore]))
            s = try emit(.add, [s, try emit(.mul, [complement, negative], role: "mask_penalty")], role: "masked_scores")
            weights = try emit(.softmax(axis: -1), [s], role: "attention_weights")
        case .replaceAboveHalf:
            if !causal && keyMask.type.dtype != .bool {
                let m = try emit(.cast(to: .float32), [keyMask], role: "mask_float")
                let half = constant("half", Tensor(shape: [], floats: [0.5]))
                keep = try emit(.greater, [m, half], role: "mask_keep")
            }
            let negative = constant("large_negative", Tensor(shape: [], floats: [maskedScore]))
            s = try emit(.where, [keep, s, negative], role: "masked_scores")
            weights = try emit(.softmax(axis: -1), [s], role: "attention_weights")
        case .replaceAndZero, .replace:
            let negative = constant("large_negative", Tensor(shape: [], floats: [maskedScore]))
            s = try emit(.where, [keep, s, negative], role: "masked_scores")
            if masking == .replace {
                weights = try emit(.softmax(axis: -1), [s], role: "attention_weights")
            } else {
                weights = try emit(.softmax(axis: -1), [s], role: "softmax")
                let zero = constant("zero", Tensor(shape: [], floats: [0]))
                weights = try emit(.where, [keep, weights, zero], role: "attention_weights")
            }
        }
        return (try emit(.matMul, [weights, values], role: "attention"), weights)
    }

    /// The (batch, time, features) input of an attention layer, in Keras layout.
    func sequence(_ t: KerasTensor, _ what: String) throws -> IRValue {
        let v = try kerasLayout(t)
        guard v.rank == 3 else { throw error("\(what) should be (batch, time, features), got \(v.shape)") }
        return v
    }
}

/// Attention (Luong dot-product, or Bahdanau-style `concat` scores): inputs [query, value] or
/// [query, value, key] (key defaults to value), all (batch, time, features).
/// dot: scores = query · keyᵀ (times `scale` with use_scale); concat: scores =
/// concat_score_weight * sum(tanh(scale * (query_i + key_j))) over the features. Then
/// softmax over the keys and the weighted sum of the values. `use_causal_mask`,
/// `return_attention_scores` and `mask=[query_mask, value_mask]` (tensors of the model, nonzero
/// = present) are call arguments: hidden values get 1e9 subtracted from their scores, and the
/// outputs of hidden queries are zeros. Masks from Masking layers are refused.
struct AttentionSpec: KerasLayer {
    enum ScoreMode: String { case dot, concat }

    var useScale: Bool
    var scoreMode: ScoreMode
    /// Keras 2's deprecated `causal` config field.
    var causal: Bool

    var maskEffect: KerasMaskEffect { .reads }

    init(config: ConfigReader) throws {
        useScale = try config.bool("use_scale", default: false)
        let mode = try config.string("score_mode", default: "dot")
        guard let m = ScoreMode(rawValue: mode) else { throw config.error("score_mode '\(mode)' is not supported") }
        scoreMode = m
        causal = try config.bool("causal", default: false)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        guard inputs.count == 2 || inputs.count == 3 else {
            throw ctx.error("expects [query, value] or [query, value, key], is called on \(inputs.count) tensors")
        }
        let query = try ctx.sequence(inputs[0], "the query")
        let value = try ctx.sequence(inputs[1], "the value")
        let key = inputs.count == 3 ? try ctx.sequence(inputs[2], "the key") : value
        var specs: [WeightSpec] = []
        if useScale { specs.append(WeightSpec(role: "scale", shape: [])) }
        if scoreMode == .concat { specs.append(WeightSpec(role: "concat_score_weight", shape: [])) }
        let w = try ctx.weights(specs)
        let scale = useScale ? w[0] : nil
        var scores: IRValue
        switch scoreMode {
        case .dot:
            let keyT = try ctx.emit(.transpose(perm: [0, 2, 1]), [key], role: "key_transposed")
            scores = try ctx.emit(.matMul, [query, keyT], role: "scores")
            if let scale { scores = try ctx.emit(.mul, [scores, scale], role: "scaled_scores") }
        case .concat:
            // (B, Tq, 1, d) + (B, 1, Tv, d) -> (B, Tq, Tv, d)
            let q = try ctx.emit(.unsqueeze(axes: [2]), [query], role: "query_rows")
            let k = try ctx.emit(.unsqueeze(axes: [1]), [key], role: "key_columns")
            var sum = try ctx.emit(.add, [q, k], role: "pair_sums")
            if let scale { sum = try ctx.emit(.mul, [sum, scale], role: "scaled_sums") }
            let t = try ctx.emit(.tanh, [sum], role: "tanh")
            let reduced = try ctx.emit(.reduce(.sum, axes: [-1], keepDims: false), [t], role: "score_sums")
            scores = try ctx.emit(.mul, [reduced, w[useScale ? 1 : 0]], role: "scores")
        }
        // mask=[query_mask, value_mask], either of which may be None (that side unmasked).
        let masks = ctx.keywordInputs("mask"), nulls = ctx.callNullEntries("mask")
        var valueMask: IRValue?, queryMask: IRValue?
        if !masks.isEmpty || !nulls.isEmpty {
            guard masks.count + nulls.count == 2, nulls.allSatisfy({ $0 < 2 }) else {
                throw ctx.error("mask should be [query_mask, value_mask], two tensors or None; the call passes "
                                + "\(masks.count) tensors and \(nulls.count) None")
            }
            var given = masks.makeIterator()
            let slots = (0..<2).map { nulls.contains($0) ? nil : given.next() }
            func mask(_ t: KerasTensor?) throws -> IRValue? {
                guard let t else { return nil }
                let m = try ctx.kerasLayout(t)
                guard m.rank == 2 else { throw ctx.error("the masks should be (batch, time), one is \(m.shape)") }
                return m
            }
            if let v = try mask(slots[1]) { valueMask = try ctx.emit(.unsqueeze(axes: [1]), [v], role: "value_mask_rows") }
            if let q = try mask(slots[0]) { queryMask = try ctx.emit(.unsqueeze(axes: [2]), [q], role: "query_mask_columns") }
        }
        var (output, weights) = try ctx.attend(scores: scores, values: value,
                                               causal: causal || ctx.callFlag("use_causal_mask"),
                                               keyMask: valueMask, masking: .subtract)
        if let queryMask {
            let present = queryMask.type.dtype == .bool ? queryMask : try ctx.emit(.cast(to: .bool), [queryMask], role: "query_present")
            let factor = try ctx.emit(.cast(to: .float32), [present], role: "query_mask_float")
            output = try ctx.emit(.mul, [output, factor], role: "query_masked")
        }
        if ctx.callFlag("return_attention_scores") {
            return [KerasTensor(keras: output), KerasTensor(keras: weights)]
        }
        return [KerasTensor(keras: output)]
    }
}

/// MultiHeadAttention over (batch, time, features) inputs, attention along time (the default
/// attention_axes). Its einsum projections become MatMuls with the kernels flattened:
/// query (d, heads, key_dim) -> (d, heads * key_dim), reshaped to (B, T, heads, key_dim) and
/// transposed to (B, heads, T, key_dim); the query is scaled by 1 / sqrt(key_dim); scores
/// Q · Kᵀ per head, softmax over the keys (causal with `use_causal_mask`), weights · V, heads
/// merged back to (B, T, heads * value_dim) and projected by the output kernel
/// (heads, value_dim, out) -> (heads * value_dim, out). `attention_mask` (a (batch, queries,
/// keys) tensor of the model, nonzero = attend) hides keys as each Keras does (`AttentionMasking`;
/// where a query sees no key at all: uniform weights in tf_keras, and in Keras 3.15 too unless
/// the layer returns its scores or has dropout, when the weights are zeros).
/// Masks from Masking layers are refused.
struct MultiHeadAttentionSpec: KerasLayer {
    var heads: Int
    var keyDim: Int
    var valueDim: Int
    var useBias: Bool
    var outputDim: Int?
    /// tf_keras's `softmax_robust_masking`: a mask hides by replacing scores, not adding to them.
    var robustMasking: Bool
    /// Keras 3.15 takes another path when dropout is set, even at inference (`AttentionMasking`).
    var hasDropout: Bool

    var maskEffect: KerasMaskEffect { .reads }

    /// Keras 3 keeps each projection's weights in its own sub-layer.
    var weightGroups: [[String]] { [["query_dense"], ["key_dense"], ["value_dense"], ["output_dense"]] }

    init(config: ConfigReader) throws {
        heads = try config.int("num_heads")
        keyDim = try config.int("key_dim")
        valueDim = config.has("value_dim") ? try config.int("value_dim") : keyDim
        try requirePositive([heads, keyDim, valueDim], "num_heads, key_dim and value_dim", config)
        useBias = try config.bool("use_bias", default: true)
        if let list = config.raw("output_shape")?.array {
            guard list.count == 1 else { throw config.error("output_shape \(list) of more than one axis is not supported") }
            outputDim = try JSONValue.int(list[0], orThrow: config.error("output_shape should hold integers"))
        } else if config.has("output_shape") {
            outputDim = try config.int("output_shape")
        }
        if let outputDim { try requirePositive([outputDim], "output_shape", config) }
        if let axes = config.raw("attention_axes") {
            let list = axes.array ?? [axes]
            let values = try list.map { try JSONValue.int($0, orThrow: config.error("attention_axes should hold integers")) }
            guard values == [1] || values == [-2] else {
                throw config.error("attention_axes \(values) is not supported (only the time axis of 3-D inputs)")
            }
        }
        robustMasking = try config.bool("softmax_robust_masking", default: false)
        hasDropout = (try config.optionalFloat("dropout") ?? 0) > 0
        guard try !config.bool("use_gate", default: false) else { throw config.error("use_gate is not supported") }
        guard !config.has("sliding_window") else { throw config.error("sliding_window is not supported") }
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        // Keras 2 passes value (and key) by keyword, Keras 3 positionally or by keyword.
        var positional = inputs
        func take(_ key: String) throws -> KerasTensor? {
            let named = ctx.keywordInputs(key)
            if let t = named.first {
                guard named.count == 1 else { throw ctx.error("'\(key)' should be one tensor") }
                return t
            }
            return positional.isEmpty ? nil : positional.removeFirst()
        }
        guard let queryT = try take("query"), let valueT = try take("value") else {
            throw ctx.error("expects a query and a value tensor")
        }
        let keyT = try take("key") ?? valueT
        guard positional.isEmpty else { throw ctx.error("is called on \(inputs.count) positional tensors, at most 3") }
        let query = try ctx.sequence(queryT, "the query")
        let value = try ctx.sequence(valueT, "the value")
        let key = try ctx.sequence(keyT, "the key")
        guard let dq = query.shape[2].value, let dk = key.shape[2].value, let dv = value.shape[2].value else {
            throw ctx.error("needs known feature sizes")
        }
        let out = outputDim ?? dq
        let (h, kd, vd) = (heads, keyDim, valueDim)
        var specs: [WeightSpec] = []
        for (role, inDim, perHead) in [("query", dq, kd), ("key", dk, kd), ("value", dv, vd)] {
            specs.append(WeightSpec(role: "\(role)_kernel", shape: [inDim, h, perHead]))
            if useBias { specs.append(WeightSpec(role: "\(role)_bias", shape: [h, perHead])) }
        }
        specs.append(WeightSpec(role: "output_kernel", shape: [h, vd, out]))
        if useBias { specs.append(WeightSpec(role: "output_bias", shape: [out])) }
        // Kernels flattened to 2-D (row-major: the same numbers), biases to 1-D.
        let stride = useBias ? 2 : 1
        let w = try ctx.weights(specs) { i, t in
            if i == 3 * stride { return Tensor(shape: [h * vd, out], floats: t.floats) }
            switch t.rank {
            case 3: return Tensor(shape: [t.shape[0], t.shape[1] * t.shape[2]], floats: t.floats)
            case 2: return Tensor(shape: [t.shape[0] * t.shape[1]], floats: t.floats)
            default: return t
            }
        }
        /// One projection split into heads: (B, T, d) -> (B, heads, T, perHead) (`perm` orders it).
        func project(_ x: IRValue, _ index: Int, _ role: String, perHead: Int, perm: [Int]) throws -> IRValue {
            var y = try ctx.emit(.matMul, [x, w[index * stride]], role: "\(role)_projection")
            if useBias { y = try ctx.emit(.add, [y, w[index * stride + 1]], role: "\(role)_bias") }
            y = try ctx.emit(.reshape(shape: [0, 0, h, perHead]), [y], role: "\(role)_heads")
            return try ctx.emit(.transpose(perm: perm), [y], role: "\(role)_by_head")
        }
        var q = try project(query, 0, "query", perHead: kd, perm: [0, 2, 1, 3])
        let inverseRoot = ctx.constant("inverse_sqrt_key_dim", Tensor(shape: [], floats: [Float(1.0 / Double(kd).squareRoot())]))
        q = try ctx.emit(.mul, [q, inverseRoot], role: "query_scaled")
        let kT = try project(key, 1, "key", perHead: kd, perm: [0, 2, 3, 1])
        let v = try project(value, 2, "value", perHead: vd, perm: [0, 2, 1, 3])
        let scores = try ctx.emit(.matMul, [q, kT], role: "scores")
        var keyMask: IRValue?
        let masks = ctx.keywordInputs("attention_mask")
        if !masks.isEmpty {
            let m = try ctx.kerasLayout(masks[0])
            guard masks.count == 1, m.rank == 3 else {
                throw ctx.error("attention_mask should be one (batch, queries, keys) tensor")
            }
            keyMask = try ctx.emit(.unsqueeze(axes: [1]), [m], role: "attention_mask_heads")
        }
        let (attended, weights) = try ctx.attend(scores: scores, values: v, causal: ctx.callFlag("use_causal_mask"),
                                                 keyMask: keyMask,
                                                 masking: ctx.kerasMajor == 2 ? (robustMasking ? .replaceAboveHalf : .addPenaltyOfMaskValue)
                                                     : ctx.callFlag("return_attention_scores") || hasDropout ? .replaceAndZero : .replace)
        var y = try ctx.emit(.transpose(perm: [0, 2, 1, 3]), [attended], role: "heads_last")
        y = try ctx.emit(.reshape(shape: [0, 0, h * vd]), [y], role: "heads_merged")
        y = try ctx.emit(.matMul, [y, w[3 * stride]], role: "output_projection")
        if useBias { y = try ctx.emit(.add, [y, w[3 * stride + 1]], role: "output_bias") }
        if ctx.callFlag("return_attention_scores") {
            return [KerasTensor(keras: y), KerasTensor(keras: weights)]
        }
        return [KerasTensor(keras: y)]
    }
}
