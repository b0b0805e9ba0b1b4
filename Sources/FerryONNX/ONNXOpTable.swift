import FerryIR

/// The importer's op table: (domain, op_type) to a builder named like the ONNX op. Each
/// builder reads its attributes with the ONNX defaults, handles the opset differences that
/// matter (attributes that became inputs, changed defaults), and emits IR ops. An op missing
/// here is refused with its name, domain and opset.
enum ONNXOpTable {
    struct Key: Hashable {
        var domain: String
        var opType: String
    }

    typealias Builder = @Sendable (ONNXNode) throws -> Void

    static let builders: [Key: Builder] = {
        var table: [Key: Builder] = [:]
        for (name, builder) in defaultDomain { table[Key(domain: "", opType: name)] = builder }
        return table
    }()

    /// Builders of the default domain (ai.onnx), by op type.
    static let defaultDomain: [String: Builder] = [
        // Constants and shape facts the importer evaluates itself
        "Constant": Constant, "Shape": Shape, "Size": Size, "ConstantOfShape": ConstantOfShape, "Range": Range,
        // Linear algebra and convolution
        "Conv": Conv, "Gemm": Gemm, "MatMul": MatMul,
        // Pooling
        "MaxPool": MaxPool, "AveragePool": AveragePool,
        "GlobalAveragePool": GlobalAveragePool, "GlobalMaxPool": GlobalMaxPool,
        // Activations
        "Relu": Relu, "Sigmoid": Sigmoid, "Tanh": Tanh, "LeakyRelu": LeakyRelu, "Softmax": Softmax,
        "LogSoftmax": LogSoftmax, "Gelu": Gelu, "Elu": Elu, "Selu": Selu, "HardSigmoid": HardSigmoid,
        "ThresholdedRelu": ThresholdedRelu, "Clip": Clip, "PRelu": PRelu, "Softplus": Softplus,
        "Softsign": Softsign, "HardSwish": HardSwish, "Mish": Mish,
        // Elementwise unary math
        "Abs": Abs, "Neg": Neg, "Exp": Exp, "Log": Log, "Sqrt": Sqrt, "Reciprocal": Reciprocal,
        "Floor": Floor, "Ceil": Ceil, "Erf": Erf,
        // Elementwise binary and variadic
        "Add": Add, "Sub": Sub, "Mul": Mul, "Div": Div, "Pow": Pow,
        "Max": Max, "Min": Min, "Sum": Sum, "Mean": Mean,
        "ConvTranspose": ConvTranspose,
        // Normalization
        "BatchNormalization": BatchNormalization, "InstanceNormalization": InstanceNormalization,
        "LayerNormalization": LayerNormalization, "GroupNormalization": GroupNormalization,
        "LRN": LRN, "LpNormalization": LpNormalization,
        // Reductions
        "ReduceSum": ReduceSum, "ReduceMean": ReduceMean, "ReduceMax": ReduceMax, "ReduceMin": ReduceMin,
        "ReduceProd": ReduceProd, "ReduceL1": ReduceL1, "ReduceL2": ReduceL2, "ReduceSumSquare": ReduceSumSquare,
        "ReduceLogSumExp": ReduceLogSumExp, "ReduceLogSum": ReduceLogSum, "ArgMax": ArgMax, "ArgMin": ArgMin,
        "TopK": TopK,
        // Comparison, logic, types
        "Equal": Equal, "Greater": Greater, "Less": Less, "GreaterOrEqual": GreaterOrEqual, "LessOrEqual": LessOrEqual,
        "Not": Not, "And": And, "Or": Or, "Xor": Xor, "Where": Where, "Cast": Cast, "CastLike": CastLike,
        // Data movement
        "Flatten": Flatten, "Reshape": Reshape, "Transpose": Transpose, "Identity": Identity, "Dropout": Dropout,
        "Concat": Concat, "Split": Split, "Slice": Slice, "Pad": Pad, "Squeeze": Squeeze, "Unsqueeze": Unsqueeze,
        "Tile": Tile, "Expand": Expand, "Gather": Gather, "DepthToSpace": DepthToSpace, "SpaceToDepth": SpaceToDepth,
        // Resampling
        "Resize": Resize, "Upsample": Upsample,
        // Recurrent
        "LSTM": LSTM, "GRU": GRU, "RNN": RNN,
    ]

    // MARK: Constants and shape facts

    static func Constant(_ n: ONNXNode) throws {
        let value: Tensor
        if let t = try n.tensor("value") {
            value = t
        } else if let f = n.attribute("value_float") {
            value = Tensor(shape: [], floats: [f.f])
        } else if let fs = try n.floats("value_floats") {
            value = Tensor(shape: [fs.count], floats: fs)
        } else if let i = n.attribute("value_int") {
            value = Tensor(shape: [], int64s: [i.i])
        } else if let a = n.attribute("value_ints") {
            value = Tensor(shape: [a.ints.count], int64s: a.ints)
        } else if n.has("sparse_value") {
            throw n.unsupported("a sparse value")
        } else if n.has("value_string") || n.has("value_strings") {
            throw n.unsupported("string values")
        } else {
            throw FerryError("Constant has no value attribute")
        }
        try n.define(0, value)
    }

    /// The input's shape as a constant: the input's sizes must be known (start/end from opset 15).
    static func Shape(_ n: ONNXNode) throws {
        let t = try n.inputType(0)
        let rank = t.shape.rank
        func clampedAxis(_ a: Int) -> Int { min(max(a < 0 ? a + rank : a, 0), rank) }
        let start = clampedAxis(try n.int("start", 0))
        let end = clampedAxis(try n.int("end", rank))
        let dims = start < end ? Array(t.shape.dims[start..<end]) : []
        let sizes = try dims.map { d -> Int64 in
            guard let v = d.value else {
                throw FerryError("Shape of '\(try n.input(0))' \(t.shape) has a symbolic size; Ferry needs known sizes to fold Shape")
            }
            return Int64(v)
        }
        try n.define(0, Tensor(shape: [sizes.count], int64s: sizes))
    }

    static func Size(_ n: ONNXNode) throws {
        let t = try n.inputType(0)
        guard let count = t.shape.elementCount else {
            throw FerryError("Size of '\(try n.input(0))' \(t.shape) needs known sizes")
        }
        try n.define(0, Tensor(shape: [], int64s: [Int64(count)]))
    }

    static func ConstantOfShape(_ n: ONNXNode) throws {
        let shape = try n.constantInts(0, "shape")
        guard shape.allSatisfy({ $0 >= 0 }), let count = checkedElementCount(shape) else {
            throw FerryError("ConstantOfShape shape \(shape) is invalid")
        }
        guard count <= largestMadeConstant else {
            throw FerryError("ConstantOfShape shape \(shape) is too large to make at import (over \(largestMadeConstant) elements)")
        }
        let value = try n.tensor("value") ?? Tensor(shape: [1], floats: [0])
        guard value.count == 1 else { throw FerryError("ConstantOfShape value must hold one element") }
        let storage = value.storage.repeatingFirst(count: count)
        try n.define(0, try Tensor(shape: shape, storage: storage))
    }

    /// Range with constant start, limit and delta.
    static func Range(_ n: ONNXNode) throws {
        let start = try n.requireConstant(0, "start"), limit = try n.requireConstant(1, "limit"),
            delta = try n.requireConstant(2, "delta")
        guard start.count == 1, limit.count == 1, delta.count == 1 else { throw FerryError("Range takes scalars") }
        func count(_ s: Double, _ l: Double, _ d: Double) throws -> Int {
            guard d != 0 else { throw FerryError("Range delta is 0") }
            let c = ((l - s) / d).rounded(.up)
            guard c.isFinite, c <= Double(largestMadeConstant) else {
                throw FerryError("Range from \(s) to \(l) by \(d) is too long to make at import (over \(largestMadeConstant) elements)")
            }
            return Swift.max(Int(c), 0)
        }
        switch (start.storage, limit.storage, delta.storage) {
        case (.float32(let s), .float32(let l), .float32(let d)):
            let c = try count(Double(s[0]), Double(l[0]), Double(d[0]))
            // ONNX: start + i * delta in the input's precision.
            try n.define(0, Tensor(shape: [c], floats: (0..<c).map { s[0] + Float($0) * d[0] }))
        case (.int64(let s), .int64(let l), .int64(let d)):
            let c = try count(Double(s[0]), Double(l[0]), Double(d[0]))
            try n.define(0, Tensor(shape: [c], int64s: (0..<c).map { s[0] + Int64($0) * d[0] }))
        case (.int32(let s), .int32(let l), .int32(let d)):
            let c = try count(Double(s[0]), Double(l[0]), Double(d[0]))
            try n.define(0, try Tensor(shape: [c], storage: .int32((0..<c).map { s[0] + Int32($0) * d[0] })))
        default:
            throw n.unsupported("\(start.dtype) operands")
        }
    }

    // MARK: Linear algebra and convolution

    static func Conv(_ n: ONNXNode) throws {
        let x = try n.input(0), w = try n.input(1)
        let xt = try n.inputType(0), wt = try n.inputType(1)
        guard wt.shape.rank >= 3 else { throw FerryError("Conv weight \(wt.shape) should have rank 3 or more") }
        let spatial = wt.shape.rank - 2
        let kernel = try n.ints("kernel_shape") ?? wt.shape.dims.dropFirst(2).map { d in
            guard let v = d.value else { throw FerryError("Conv weight \(wt.shape) needs known kernel sizes") }
            return v
        }
        let strides = try n.ints("strides") ?? Array(repeating: 1, count: spatial)
        let dilations = try n.ints("dilations") ?? Array(repeating: 1, count: spatial)
        let pads = try windowPads(n, input: xt, kernel: kernel, strides: strides, dilations: dilations)
        let attributes = ConvAttributes(kernelShape: kernel, strides: strides, pads: pads, dilations: dilations,
                                        group: try n.int("group", 1))
        try n.emit(.conv(attributes), [x, w] + (n.optionalInput(2).map { [$0] } ?? []))
    }

    static func Gemm(_ n: ONNXNode) throws {
        // Opsets before 7 have a `broadcast` attribute; the IR broadcasts C either way.
        let attributes = GemmAttributes(alpha: try n.float("alpha", 1), beta: try n.float("beta", 1),
                                        transA: try n.bool("transA", false), transB: try n.bool("transB", false))
        try n.emit(.gemm(attributes), [try n.input(0), try n.input(1)] + (n.optionalInput(2).map { [$0] } ?? []))
    }

    static func MatMul(_ n: ONNXNode) throws {
        try n.emit(.matMul, [try n.input(0), try n.input(1)])
    }

    // MARK: Pooling

    static func MaxPool(_ n: ONNXNode) throws {
        var attributes = try pool(n, countIncludePad: false)
        switch try n.int("storage_order", 0) {
        case 0: attributes.indicesOrder = .rowMajor
        case 1: attributes.indicesOrder = .columnMajor
        case let other: throw FerryError("MaxPool storage_order must be 0 or 1, got \(other)")
        }
        // Y, and Indices when the node names it.
        let outputs = n.proto.output.count > 1 && !n.proto.output[1].isEmpty ? 2 : 1
        try n.emit(.maxPool(attributes), [try n.input(0)], outputs: outputs)
    }

    static func AveragePool(_ n: ONNXNode) throws {
        try n.emit(.averagePool(try pool(n, countIncludePad: try n.bool("count_include_pad", false))), [try n.input(0)])
    }

    static func pool(_ n: ONNXNode, countIncludePad: Bool) throws -> PoolAttributes {
        let xt = try n.inputType(0)
        guard let kernel = try n.ints("kernel_shape") else { throw FerryError("\(n.opType) needs kernel_shape") }
        let strides = try n.ints("strides") ?? Array(repeating: 1, count: kernel.count)
        let dilations = try n.ints("dilations") ?? Array(repeating: 1, count: kernel.count)
        // AveragePool's dilations (opset 19) are not in the IR.
        guard n.opType == "MaxPool" || dilations.allSatisfy({ $0 == 1 }) else { throw n.unsupported("dilations \(dilations)") }
        let pads = try windowPads(n, input: xt, kernel: kernel, strides: strides, dilations: dilations)
        return PoolAttributes(kernelShape: kernel, strides: strides, pads: pads,
                              ceilMode: try n.bool("ceil_mode", false), countIncludePad: countIncludePad,
                              dilations: dilations)
    }

    /// Explicit pads from `pads` or `auto_pad` (SAME_UPPER puts the odd cell at the end,
    /// SAME_LOWER at the beginning; both need known spatial sizes).
    static func windowPads(_ n: ONNXNode, input: TensorType, kernel: [Int], strides: [Int], dilations: [Int]) throws -> [Int] {
        let spatial = kernel.count
        guard strides.count == spatial, dilations.count == spatial else {
            throw FerryError("\(n.opType) strides \(strides) / dilations \(dilations) do not match kernel \(kernel)")
        }
        let autoPad = try n.string("auto_pad", "NOTSET")
        switch autoPad {
        case "NOTSET":
            let pads = try n.ints("pads") ?? Array(repeating: 0, count: 2 * spatial)
            guard pads.count == 2 * spatial else { throw FerryError("\(n.opType) pads \(pads) should have \(2 * spatial) values") }
            return pads
        case "VALID":
            return Array(repeating: 0, count: 2 * spatial)
        case "SAME_UPPER", "SAME_LOWER":
            guard input.shape.rank == spatial + 2 else { throw FerryError("\(n.opType) input \(input.shape) should have rank \(spatial + 2)") }
            var begin: [Int] = [], end: [Int] = []
            for i in 0..<spatial {
                guard let size = input.shape[i + 2].value else {
                    throw FerryError("\(n.opType) auto_pad \(autoPad) needs known spatial sizes, input is \(input.shape)")
                }
                let out = (size + strides[i] - 1) / strides[i]
                let total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size)
                let small = total / 2
                begin.append(autoPad == "SAME_UPPER" ? small : total - small)
                end.append(autoPad == "SAME_UPPER" ? total - small : small)
            }
            return begin + end
        default:
            throw FerryError("\(n.opType) auto_pad '\(autoPad)' is not an ONNX value")
        }
    }

    static func GlobalAveragePool(_ n: ONNXNode) throws { try n.emit(.globalAveragePool, [try n.input(0)]) }
    static func GlobalMaxPool(_ n: ONNXNode) throws { try n.emit(.globalMaxPool, [try n.input(0)]) }

    // MARK: Activations

    static func Relu(_ n: ONNXNode) throws { try n.emit(.relu, [try n.input(0)]) }
    static func Sigmoid(_ n: ONNXNode) throws { try n.emit(.sigmoid, [try n.input(0)]) }
    static func Tanh(_ n: ONNXNode) throws { try n.emit(.tanh, [try n.input(0)]) }
    static func LeakyRelu(_ n: ONNXNode) throws { try n.emit(.leakyRelu(alpha: try n.float("alpha", 0.01)), [try n.input(0)]) }

    static func Softmax(_ n: ONNXNode) throws {
        try alongAxis(n, defaultAxisBefore13: 1) { .softmax(axis: $0) }
    }

    static func LogSoftmax(_ n: ONNXNode) throws {
        try alongAxis(n, defaultAxisBefore13: 1) { .logSoftmax(axis: $0) }
    }

    static func Gelu(_ n: ONNXNode) throws {
        let approximate = try n.string("approximate", "none")
        guard approximate == "none" || approximate == "tanh" else { throw n.unsupported("approximate='\(approximate)'") }
        try n.emit(.gelu(approximate: approximate == "tanh"), [try n.input(0)])
    }

    static func Elu(_ n: ONNXNode) throws { try n.emit(.elu(alpha: try n.float("alpha", 1)), [try n.input(0)]) }

    static func Selu(_ n: ONNXNode) throws {
        try n.emit(.selu(alpha: try n.float("alpha", 1.67326319217681884765625),
                         gamma: try n.float("gamma", 1.05070102214813232421875)), [try n.input(0)])
    }

    static func HardSigmoid(_ n: ONNXNode) throws {
        try n.emit(.hardSigmoid(alpha: try n.float("alpha", 0.2), beta: try n.float("beta", 0.5)), [try n.input(0)])
    }

    static func ThresholdedRelu(_ n: ONNXNode) throws {
        try n.emit(.thresholdedRelu(alpha: try n.float("alpha", 1)), [try n.input(0)])
    }

    /// Bounds are attributes before opset 11 (defaults: none), optional constant inputs after.
    static func Clip(_ n: ONNXNode) throws {
        let low: Float?, high: Float?
        if n.opset < 11 {
            low = n.has("min") ? try n.float("min", 0) : nil
            high = n.has("max") ? try n.float("max", 0) : nil
        } else {
            low = try n.optionalConstantFloat(1, "min")
            high = try n.optionalConstantFloat(2, "max")
        }
        try n.emit(.clip(min: low, max: high), [try n.input(0)])
    }

    /// Before opset 7 a slope of C values applied per channel (axis 1); from 7 it broadcasts
    /// numpy-style from the right, so it gets trailing 1s.
    static func PRelu(_ n: ONNXNode) throws {
        var slope = try n.input(1)
        let x = try n.inputType(0), s = try n.inputType(1)
        if n.opset < 7, s.shape.rank == 1, x.shape.rank > 2, s.shape[0] != .fixed(1) {
            let trailing = Array(repeating: 1, count: x.shape.rank - 2)
            if let c = n.constant(1) {
                slope = n.addConstant("slope", c.reshaped(c.shape + trailing))
            } else {
                slope = try n.emitTemporary(.reshape(shape: [0] + trailing), [slope], "slope")
            }
        }
        try n.emit(.prelu, [try n.input(0), slope])
    }
    static func Softplus(_ n: ONNXNode) throws { try n.emit(.softplus, [try n.input(0)]) }
    static func Softsign(_ n: ONNXNode) throws { try n.emit(.softsign, [try n.input(0)]) }
    static func HardSwish(_ n: ONNXNode) throws { try n.emit(.hardSwish, [try n.input(0)]) }
    static func Mish(_ n: ONNXNode) throws { try n.emit(.mish, [try n.input(0)]) }

    // MARK: Elementwise unary math

    static func Abs(_ n: ONNXNode) throws { try n.emit(.abs, [try n.input(0)]) }
    static func Neg(_ n: ONNXNode) throws { try n.emit(.neg, [try n.input(0)]) }
    static func Exp(_ n: ONNXNode) throws { try n.emit(.exp, [try n.input(0)]) }
    static func Log(_ n: ONNXNode) throws { try n.emit(.log, [try n.input(0)]) }
    static func Sqrt(_ n: ONNXNode) throws { try n.emit(.sqrt, [try n.input(0)]) }
    static func Reciprocal(_ n: ONNXNode) throws { try n.emit(.reciprocal, [try n.input(0)]) }
    static func Floor(_ n: ONNXNode) throws { try n.emit(.floor, [try n.input(0)]) }
    static func Ceil(_ n: ONNXNode) throws { try n.emit(.ceil, [try n.input(0)]) }
    static func Erf(_ n: ONNXNode) throws { try n.emit(.erf, [try n.input(0)]) }

    /// Softmax-like ops: from opset 13 over one axis (default -1); before, the input was
    /// coerced to 2-D at `axis` (default 1) and each row normalised: the IR op over the last
    /// axis of Flatten(axis), reshaped back.
    static func alongAxis(_ n: ONNXNode, defaultAxisBefore13: Int, _ make: (Int) -> Op) throws {
        let x = try n.input(0)
        if n.opset >= 13 {
            try n.emit(make(try n.int("axis", -1)), [x])
            return
        }
        let shape = try n.inputType(0).shape
        let rank = shape.rank
        let axis = try n.int("axis", defaultAxisBefore13)
        guard let a = normalizeAxis(axis, rank: rank) else {
            throw FerryError("\(n.opType) axis \(axis) is out of range for \(shape)")
        }
        if a == rank - 1 {
            try n.emit(make(-1), [x])
            return
        }
        // Back to the input's shape: known sizes, and -1 for at most one symbolic size.
        let symbolic = shape.dims.filter { $0.value == nil }.count
        guard symbolic <= 1 else {
            throw n.unsupported("axis \(axis) on \(shape): the 2-D coercion before opset 13 needs at most one symbolic size")
        }
        let target = shape.dims.map { $0.value ?? -1 }
        let flat = try n.emitTemporary(.flatten(axis: a), [x], "2d")
        let normalized = try n.emitTemporary(make(1), [flat], "rows")
        try n.emit(.reshape(shape: target), [normalized])
    }

    // MARK: Elementwise binary

    static func Add(_ n: ONNXNode) throws { try binary(n, .add) }
    static func Sub(_ n: ONNXNode) throws { try binary(n, .sub) }
    static func Mul(_ n: ONNXNode) throws { try binary(n, .mul) }
    static func Div(_ n: ONNXNode) throws { try binary(n, .div) }

    /// numpy broadcasting from opset 7. Before, `broadcast=1` with `axis` aligned B's
    /// dimensions with A's from `axis` on: B gets trailing 1s to say the same in numpy terms.
    static func binary(_ n: ONNXNode, _ op: Op) throws {
        let a = try n.input(0)
        var b = try n.input(1)
        if n.opset < 7, try n.bool("broadcast", false), n.has("axis") {
            let ra = try n.inputType(0).shape.rank, bt = try n.inputType(1)
            let axis = try n.int("axis", 0)
            let start = axis < 0 ? axis + ra : axis
            let trailing = ra - start - bt.shape.rank
            guard start >= 0, trailing >= 0 else {
                throw FerryError("\(n.opType) legacy broadcast axis \(axis) does not fit \(bt.shape) into rank \(ra)")
            }
            if trailing > 0 {
                let target = Array(repeating: 0, count: bt.shape.rank) + Array(repeating: 1, count: trailing)
                if let c = n.constant(1) {
                    b = n.addConstant("B", c.reshaped(c.shape + Array(repeating: 1, count: trailing)))
                } else {
                    b = try n.emitTemporary(.reshape(shape: target), [b], "B")
                }
            }
        }
        try n.emit(op, [a, b])
    }

    static func Pow(_ n: ONNXNode) throws { try n.emit(.pow, [try n.input(0), try n.input(1)]) }

    static func Max(_ n: ONNXNode) throws { try variadic(n, .max) }
    static func Min(_ n: ONNXNode) throws { try variadic(n, .min) }
    static func Sum(_ n: ONNXNode) throws { try variadic(n, .sum) }
    static func Mean(_ n: ONNXNode) throws { try variadic(n, .mean) }

    /// Max, Min, Sum, Mean: one or more inputs (numpy broadcasting from opset 8; before, equal shapes).
    static func variadic(_ n: ONNXNode, _ op: Op) throws {
        let inputs = n.proto.input.filter { !$0.isEmpty }
        guard !inputs.isEmpty else { throw FerryError("\(n.opType) needs at least one input") }
        try n.emit(op, inputs)
    }

    // MARK: Normalization

    /// Inference form, or training_mode = 1 (opset 14 on) with the running statistics as
    /// optional outputs. Before opset 14 training is implied by the statistics outputs and
    /// refused; before opset 7 `is_test` must be 1, and `spatial` (opsets 7 and 8) must be 1.
    static func BatchNormalization(_ n: ONNXNode) throws {
        if n.opset >= 14, try n.bool("training_mode", false) {
            let inputs = try (0..<5).map { try n.input($0) }
            let op = Op.batchNormalizationTraining(epsilon: try n.float("epsilon", 1e-5), momentum: try n.float("momentum", 0.9))
            let outputs = (0..<3).map { n.wantsOutput($0) ? n.proto.output[$0] : "" }
            guard !outputs[0].isEmpty else { throw FerryError("BatchNormalization should name its output Y") }
            let listed = Array(outputs.prefix(through: outputs.lastIndex { !$0.isEmpty }!))
            try n.state.emit(op, inputs: inputs, outputs: listed, name: n.layer, origins: n.origins)
            return
        }
        if n.opset < 7, try n.int("is_test", 0) == 0 { throw n.unsupported("is_test=0 (training)") }
        if n.opset < 9, try n.int("spatial", 1) != 1 { throw n.unsupported("spatial=0 (per-element statistics)") }
        try n.refuseOutputs(from: 1, "training statistics")
        let inputs = try (0..<5).map { try n.input($0) }
        try n.emit(.batchNormalization(epsilon: try n.float("epsilon", 1e-5)), inputs)
    }

    // MARK: Data movement

    static func Flatten(_ n: ONNXNode) throws { try n.emit(.flatten(axis: try n.int("axis", 1)), [try n.input(0)]) }

    static func Reshape(_ n: ONNXNode) throws {
        let target: [Int]
        if n.opset < 5 {
            guard let s = try n.ints("shape") else { throw FerryError("Reshape needs a shape") }
            target = s
        } else {
            target = try n.constantInts(1, "shape")
        }
        // allowzero only matters when the target holds a 0.
        let allowZero = try n.bool("allowzero", false) && target.contains(0)
        try n.emit(.reshape(shape: target, allowZero: allowZero), [try n.input(0)])
    }

    static func Transpose(_ n: ONNXNode) throws {
        let rank = try n.inputType(0).shape.rank
        let perm = try n.ints("perm") ?? Array((0..<rank).reversed())
        try n.emit(.transpose(perm: perm), [try n.input(0)])
    }

    static func Identity(_ n: ONNXNode) throws { try n.emit(.identity, [try n.input(0)]) }

    /// Inference (or a ratio of 0 in training): the identity, and a mask (when asked for) of all true.
    static func Dropout(_ n: ONNXNode) throws {
        if n.opset >= 12, let training = n.optionalInput(2) {
            guard let t = n.state.constant(training) ?? n.state.bindInput(training), t.count == 1,
                  case .bool(let v) = t.storage else {
                throw n.unsupported("a training_mode input that is not a constant")
            }
            // Training drops nothing with a ratio of 0 (input 1, default 0.5); any other ratio
            // draws a random mask from a generator ONNX leaves undefined (the `seed` attribute
            // seeds whichever one a runtime has), so no output could be checked against
            // another implementation's; Ferry converts for inference.
            let ratio = try n.optionalConstantFloat(1, "ratio") ?? 0.5
            if v[0], ratio != 0 {
                throw FerryError("Dropout in training mode with ratio \(ratio) draws a random mask from a generator ONNX leaves "
                                 + "undefined; Ferry imports Dropout for inference only (training_mode false, or ratio 0) (opset \(n.opset))")
            }
        }
        if n.opset < 7, try n.int("is_test", 0) == 0 {
            throw n.unsupported("is_test=0 (training)")
        }
        if n.wantsOutput(1) {
            let shape = try n.inputType(0).shape
            guard let sizes = shape.fixedSizes, let count = checkedElementCount(sizes), count <= largestMadeConstant else {
                throw n.unsupported("a mask output for \(shape)")
            }
            try n.define(1, try Tensor(shape: sizes, storage: .bool(Array(repeating: true, count: count))))
        }
        try n.state.emit(.identity, inputs: [try n.input(0)], outputs: [try n.output(0)], name: n.layer, origins: n.origins)
    }
}

extension Double {
    func clamped(to range: ClosedRange<Double>) -> Double { Swift.min(Swift.max(self, range.lowerBound), range.upperBound) }
}
