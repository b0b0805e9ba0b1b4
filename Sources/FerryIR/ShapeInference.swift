/// Output types of each op from its input types (ONNX shape-inference rules). Absent optional
/// inputs are nil. Errors say what is inconsistent; callers attach the node's source layer.
extension Op {
    /// The largest size or attribute value Ferry accepts (Int32's range). Sizes and attributes
    /// come from model files; within this bound the rules' sums and pairwise products cannot
    /// overflow, so a damaged file gets an error instead of an arithmetic trap. Slice also takes
    /// ONNX's "to the end" sentinels (Int64's extremes), which its rule clamps first.
    public static let largestSize = Int(Int32.max)

    /// Output types of the op for the given input types, after checking that every integer
    /// attribute and every input dimension is within `largestSize`, and that every output's
    /// element count is within `Int`'s range.
    public func inferOutputTypes(_ inputs: [TensorType?]) throws -> [TensorType] {
        if let bad = firstOutOfRangeInteger() {
            throw FerryError("\(name) has an attribute value \(bad) outside Ferry's range (±\(Op.largestSize))")
        }
        for case let t? in inputs {
            for case .fixed(let n) in t.shape.dims where n < 0 || n > Op.largestSize {
                throw FerryError("\(name) has an input of shape \(t.shape), with a dimension outside 0...\(Op.largestSize)")
            }
            guard t.shape.fixedSizes.map({ checkedElementCount($0) != nil }) ?? true else {
                throw FerryError("\(name) has an input of shape \(t.shape), whose element count overflows")
            }
        }
        let outputs = try inferOutputTypesUnchecked(inputs)
        for t in outputs {
            for case .fixed(let n) in t.shape.dims where n < 0 || n > Op.largestSize {
                throw FerryError("\(name) would make an output of shape \(t.shape), with a dimension outside 0...\(Op.largestSize)")
            }
            guard t.shape.fixedSizes.map({ checkedElementCount($0) != nil }) ?? true else {
                throw FerryError("\(name) would make an output of shape \(t.shape), whose element count overflows")
            }
        }
        return outputs
    }

    /// The first integer attribute (at any depth of the op's attribute values) outside
    /// ±`largestSize` (Slice: other than Int64's extremes).
    func firstOutOfRangeInteger() -> Int? {
        var isSlice = false
        if case .slice = self { isSlice = true }
        func scan(_ value: Any, depth: Int, sentinels: Bool) -> Int? {
            switch value {
            case let n as Int:
                return (sentinels && (n == Int.max || n == Int.min)) || (n >= -Op.largestSize && n <= Op.largestSize) ? nil : n
            case let n as Int64:
                return scan(Int(n), depth: depth, sentinels: sentinels)
            case is Float, is Double, is Bool, is String, is Int32, is [Float]:
                return nil
            default:
                guard depth < 6 else { return nil }
                for child in Mirror(reflecting: value).children {
                    let ends = sentinels || (isSlice && (child.label == "starts" || child.label == "ends"))
                    if let bad = scan(child.value, depth: depth + 1, sentinels: ends) { return bad }
                }
                return nil
            }
        }
        return scan(self, depth: 0, sentinels: false)
    }

    func inferOutputTypesUnchecked(_ inputs: [TensorType?]) throws -> [TensorType] {
        func input(_ i: Int) throws -> TensorType {
            guard i < inputs.count, let t = inputs[i] else {
                throw FerryError("\(name) is missing input \(i)")
            }
            return t
        }
        func requireRank(_ t: TensorType, _ r: Int, _ what: String) throws {
            guard t.shape.rank == r else {
                throw FerryError("\(name) expects \(what) of rank \(r), got \(t.shape)")
            }
        }
        func requireFloat(_ t: TensorType) throws {
            guard t.dtype.isFloatingPoint else { throw FerryError("\(name) expects a float input, got \(t.dtype)") }
        }
        /// Inputs `first`... named `names` are vectors of X's channel count (dimension 1) and X's dtype.
        func requireChannelVectors(_ x: TensorType, _ names: [String], from first: Int) throws {
            let channels = x.shape[1]
            for (i, what) in names.enumerated() {
                let t = try input(first + i)
                guard t.dtype == x.dtype else { throw FerryError("\(name) \(what) is \(t.dtype), X is \(x.dtype)") }
                guard t.shape.rank == 1, channels.value == nil || t.shape[0].value == nil || t.shape[0] == channels else {
                    throw FerryError("\(name) \(what) has shape \(t.shape), expected [\(channels)] for X \(x.shape)")
                }
            }
        }

        switch self {
        case .conv(let a):
            let x = try input(0), w = try input(1)
            let spatial = a.kernelShape.count
            try requireRank(x, spatial + 2, "X")
            try requireRank(w, spatial + 2, "W")
            try requireFloat(x)
            guard a.strides.count == spatial, a.dilations.count == spatial, a.pads.count == 2 * spatial else {
                throw FerryError("Conv attribute lengths do not match \(spatial) spatial dimensions")
            }
            guard a.group >= 1, let cIn = x.shape[1].value, let m = w.shape[0].value, let cw = w.shape[1].value,
                  cIn == cw * a.group, m % a.group == 0 else {
                throw FerryError("Conv channels do not match: X \(x.shape), W \(w.shape), group \(a.group)")
            }
            for i in 0..<spatial where w.shape[i + 2].value != a.kernelShape[i] {
                throw FerryError("Conv kernel_shape \(a.kernelShape) does not match W \(w.shape)")
            }
            if let b = inputs.count > 2 ? inputs[2] : nil, b.shape != Shape([m]) {
                throw FerryError("Conv bias shape \(b.shape) should be [\(m)]")
            }
            var dims: [Dim] = [x.shape[0], .fixed(m)]
            for i in 0..<spatial {
                dims.append(try windowOutput(x.shape[i + 2], kernel: a.kernelShape[i], stride: a.strides[i],
                                             dilation: a.dilations[i], padBegin: a.pads[i],
                                             padEnd: a.pads[i + spatial], ceil: false))
            }
            // A fused residual (input 3) is added to the result: it must have the result's shape.
            if inputs.count > 3, let r = inputs[3] {
                guard r.shape.rank == dims.count,
                      zip(r.shape.dims, dims).allSatisfy({ $0.value == nil || $1.value == nil || $0 == $1 }) else {
                    throw FerryError("Conv residual shape \(r.shape) should be \(Shape(dims))")
                }
            }
            return [TensorType(x.dtype, Shape(dims))]

        case .convTranspose(let a):
            let x = try input(0), w = try input(1)
            try a.validate()
            let s = a.kernelShape.count
            guard x.shape.rank == s + 2, w.shape.rank == s + 2 else {
                throw FerryError("ConvTranspose with a \(s)-D kernel expects X and W of rank \(s + 2), got \(x.shape) and \(w.shape)")
            }
            guard x.dtype.isFloatingPoint, w.dtype == x.dtype else {
                throw FerryError("ConvTranspose expects float X and W of one type, got \(x.dtype) and \(w.dtype)")
            }
            guard let cIn = x.shape[1].value, let wIn = w.shape[0].value, let mg = w.shape[1].value,
                  cIn == wIn, cIn % a.group == 0 else {
                throw FerryError("ConvTranspose channels do not match: X \(x.shape), W \(w.shape), group \(a.group)")
            }
            for i in 0..<s where w.shape[i + 2].value != a.kernelShape[i] {
                throw FerryError("ConvTranspose kernel_shape \(a.kernelShape) does not match W \(w.shape)")
            }
            let m = mg * a.group
            if let b = inputs.count > 2 ? inputs[2] : nil, b.shape != Shape([m]) || b.dtype != x.dtype {
                throw FerryError("ConvTranspose bias \(b) should be \(x.dtype)[\(m)]")
            }
            var dims: [Dim] = [x.shape[0], .fixed(m)]
            for i in 0..<s {
                guard let n = x.shape[i + 2].value else {
                    throw FerryError("ConvTranspose needs known spatial sizes, got \(x.shape)")
                }
                dims.append(.fixed(try a.outputLength(n, axis: i)))
            }
            return [TensorType(x.dtype, Shape(dims))]

        case .maxPool(let a), .averagePool(let a):
            let x = try input(0)
            let spatial = a.kernelShape.count
            try requireRank(x, spatial + 2, "X")
            guard a.strides.count == spatial, a.pads.count == 2 * spatial, a.dilations.count == spatial else {
                throw FerryError("\(name) attribute lengths do not match \(spatial) spatial dimensions")
            }
            if case .averagePool = self, !a.isDense {
                throw FerryError("AveragePool has no dilations (ONNX adds them in opset 19), got \(a.dilations)")
            }
            for i in 0..<spatial where a.pads[i] >= a.kernelShape[i] || a.pads[i + spatial] >= a.kernelShape[i] {
                throw FerryError("\(name) pads \(a.pads) must be smaller than kernel \(a.kernelShape)")
            }
            var dims: [Dim] = [x.shape[0], x.shape[1]]
            for i in 0..<spatial {
                dims.append(try windowOutput(x.shape[i + 2], kernel: a.kernelShape[i], stride: a.strides[i],
                                             dilation: a.dilations[i], padBegin: a.pads[i], padEnd: a.pads[i + spatial],
                                             ceil: a.ceilMode))
            }
            let y = TensorType(x.dtype, Shape(dims))
            if case .maxPool = self { return [y, TensorType(.int64, Shape(dims))] }
            return [y]

        case .maxPoolIndices(let a):
            let x = try input(0)
            guard a.kernelShape.count == 2 else { throw FerryError("MaxPoolIndices takes a 2-D kernel, got \(a.kernelShape)") }
            guard x.dtype == .float32 else { throw FerryError("MaxPoolIndices expects float32, got \(x.dtype)") }
            let pooled = try Op.maxPool(a).inferOutputTypesUnchecked([x])[0]
            return [TensorType(.float32, pooled.shape)]

        case .maxUnpool(let h, let w):
            let x = try input(0), indices = try input(1)
            try requireRank(x, 4, "values")
            guard x.dtype == .float32, indices.dtype == .float32 else {
                throw FerryError("MaxUnpool expects float32 values and indices, got \(x.dtype) and \(indices.dtype)")
            }
            guard indices.shape.rank == 4, zip(x.shape.dims, indices.shape.dims).allSatisfy({ a, b in
                a.value == nil || b.value == nil || a == b
            }) else { throw FerryError("MaxUnpool values \(x.shape) and indices \(indices.shape) differ in shape") }
            guard h >= 1, w >= 1 else { throw FerryError("MaxUnpool output size \(h)x\(w) must be positive") }
            return [TensorType(.float32, Shape([x.shape[0], x.shape[1], .fixed(h), .fixed(w)]))]

        case .globalAveragePool, .globalMaxPool:
            let x = try input(0)
            guard x.shape.rank >= 3 else { throw FerryError("\(name) expects rank >= 3, got \(x.shape)") }
            return [TensorType(x.dtype, Shape([x.shape[0], x.shape[1]] + Array(repeating: .fixed(1), count: x.shape.rank - 2)))]

        case .gemm(let a):
            let tb = try input(1)
            // A fused Flatten reads A as (d0, d1 * ... * dn).
            let ta = a.flattensA ? try Op.flatten(axis: 1).inferOutputTypes([try input(0)])[0] : try input(0)
            try requireRank(ta, 2, "A")
            try requireRank(tb, 2, "B")
            let m = a.transA ? ta.shape[1] : ta.shape[0]
            let k = a.transA ? ta.shape[0] : ta.shape[1]
            let k2 = a.transB ? tb.shape[1] : tb.shape[0]
            let n = a.transB ? tb.shape[0] : tb.shape[1]
            if let k = k.value, let k2 = k2.value, k != k2 {
                throw FerryError("Gemm inner dimensions differ: A \(ta.shape), B \(tb.shape)")
            }
            let out = Shape([m, n])
            if inputs.count > 2, let c = inputs[2] {
                let b = try broadcastShapes(c.shape, out)
                guard b.rank == 2 else {
                    throw FerryError("Gemm C \(c.shape) does not broadcast to \(out)")
                }
            }
            return [TensorType(ta.dtype, out)]

        case .matMul:
            let ta = try input(0), tb = try input(1)
            guard ta.shape.rank >= 1, tb.shape.rank >= 1 else { throw FerryError("MatMul of a scalar") }
            var a = ta.shape.dims, b = tb.shape.dims
            let aVector = a.count == 1, bVector = b.count == 1
            if aVector { a.insert(.fixed(1), at: 0) }
            if bVector { b.append(.fixed(1)) }
            if let k = a.last!.value, let k2 = b[b.count - 2].value, k != k2 {
                throw FerryError("MatMul inner dimensions differ: \(ta.shape) x \(tb.shape)")
            }
            let batch = try broadcastShapes(Shape(Array(a.dropLast(2))), Shape(Array(b.dropLast(2))))
            var dims = batch.dims
            if !aVector { dims.append(a[a.count - 2]) }
            if !bVector { dims.append(b.last!) }
            return [TensorType(ta.dtype, Shape(dims))]

        case .relu, .sigmoid, .tanh, .leakyRelu, .identity:
            return [try input(0)]

        case .clip:
            // Any number (ONNX Clip 12+); the bounds are converted to X's type.
            let x = try input(0)
            guard x.dtype != .bool else { throw FerryError("Clip does not take bool") }
            return [x]

        case .gelu, .elu, .selu, .hardSigmoid, .thresholdedRelu, .softplus, .softsign, .hardSwish, .mish,
             .exp, .log, .sqrt, .reciprocal, .floor, .ceil, .erf:
            let x = try input(0)
            try requireFloat(x)
            return [x]

        case .abs, .neg:
            let x = try input(0)
            guard x.dtype != .bool, self != .neg || x.dtype != .uint8 else {
                throw FerryError("\(name) does not take \(x.dtype)")
            }
            return [x]

        case .prelu:
            let x = try input(0), slope = try input(1)
            try requireFloat(x)
            guard slope.dtype == x.dtype else { throw FerryError("PRelu slope is \(slope.dtype), X is \(x.dtype)") }
            guard (try? broadcastShapes(x.shape, slope.shape)) == x.shape else {
                throw FerryError("PRelu slope \(slope.shape) does not broadcast to X \(x.shape)")
            }
            return [x]

        case .softmax(let axis):
            let x = try input(0)
            guard normalizeAxis(axis, rank: x.shape.rank) != nil else {
                throw FerryError("Softmax axis \(axis) out of range for \(x.shape)")
            }
            return [x]

        case .logSoftmax(let axis):
            let x = try input(0)
            try requireFloat(x)
            guard normalizeAxis(axis, rank: x.shape.rank) != nil else {
                throw FerryError("LogSoftmax axis \(axis) out of range for \(x.shape)")
            }
            return [x]

        case .add, .sub, .mul, .div:
            let a = try input(0), b = try input(1)
            guard a.dtype == b.dtype else { throw FerryError("\(name) of \(a.dtype) and \(b.dtype)") }
            return [TensorType(a.dtype, try broadcastShapes(a.shape, b.shape))]

        case .pow:
            // The exponent may be any number type (ONNX Pow 12+'s T1); the result has X's type.
            let a = try input(0), b = try input(1)
            guard a.dtype != .bool, b.dtype != .bool else { throw FerryError("Pow does not take bool") }
            return [TensorType(a.dtype, try broadcastShapes(a.shape, b.shape))]

        case .max, .min, .sum, .mean:
            let first = try input(0)
            if self == .sum || self == .mean { try requireFloat(first) }
            guard first.dtype != .bool else { throw FerryError("\(name) does not take bool") }
            var shape = first.shape
            for i in 1..<Swift.max(inputs.count, 1) {
                let t = try input(i)
                guard t.dtype == first.dtype else { throw FerryError("\(name) of \(first.dtype) and \(t.dtype)") }
                shape = try broadcastShapes(shape, t.shape)
            }
            return [TensorType(first.dtype, shape)]

        case .batchNormalization, .batchNormalizationTraining:
            let x = try input(0)
            try requireFloat(x)
            guard x.shape.rank >= 2 else { throw FerryError("BatchNormalization expects X of rank >= 2, got \(x.shape)") }
            try requireChannelVectors(x, ["scale", "B", "mean", "var"], from: 1)
            if case .batchNormalizationTraining = self {
                let statistics = TensorType(x.dtype, Shape([x.shape[1]]))
                return [x, statistics, statistics]
            }
            return [x]

        case .instanceNormalization:
            let x = try input(0)
            try requireFloat(x)
            guard x.shape.rank >= 3 else { throw FerryError("InstanceNormalization expects X of rank >= 3, got \(x.shape)") }
            try requireChannelVectors(x, ["scale", "B"], from: 1)
            return [x]

        case .groupNormalization(let groups, _):
            let x = try input(0)
            try requireFloat(x)
            guard x.shape.rank >= 3 else { throw FerryError("GroupNormalization expects X of rank >= 3, got \(x.shape)") }
            guard groups >= 1 else { throw FerryError("GroupNormalization num_groups must be positive, got \(groups)") }
            if let c = x.shape[1].value, c % groups != 0 {
                throw FerryError("GroupNormalization: \(c) channels do not split into \(groups) groups")
            }
            try requireChannelVectors(x, ["scale", "bias"], from: 1)
            return [x]

        case .layerNormalization(let axis, _):
            let x = try input(0)
            try requireFloat(x)
            guard normalizeAxis(axis, rank: x.shape.rank) != nil, x.shape.rank > 0 else {
                throw FerryError("LayerNormalization axis \(axis) out of range for \(x.shape)")
            }
            for i in 1..<Swift.min(inputs.count, 3) {
                guard let t = inputs[i] else { continue }
                guard t.dtype == x.dtype, (try? broadcastShapes(x.shape, t.shape)) == x.shape else {
                    throw FerryError("LayerNormalization \(i == 1 ? "Scale" : "B") \(t) does not broadcast to X \(x)")
                }
            }
            return [x]

        case .lrn(let size, _, _, _):
            let x = try input(0)
            try requireFloat(x)
            guard x.shape.rank >= 3 else { throw FerryError("LRN expects X of rank >= 3, got \(x.shape)") }
            guard size >= 1 else { throw FerryError("LRN size must be positive, got \(size)") }
            return [x]

        case .lpNormalization(let axis, let p):
            let x = try input(0)
            try requireFloat(x)
            guard normalizeAxis(axis, rank: x.shape.rank) != nil, x.shape.rank > 0 else {
                throw FerryError("LpNormalization axis \(axis) out of range for \(x.shape)")
            }
            guard p == 1 || p == 2 else { throw FerryError("LpNormalization p must be 1 or 2, got \(p)") }
            return [x]

        case .reduce(let operation, let axes, let keepDims):
            let x = try input(0)
            guard x.dtype != .bool else { throw FerryError("\(name) does not take bool") }
            if ![.sum, .max, .min, .prod].contains(operation) { try requireFloat(x) }
            let reduced = try reducedAxes(axes, rank: x.shape.rank)
            var dims: [Dim] = []
            for (i, d) in x.shape.dims.enumerated() {
                if !reduced.contains(i) { dims.append(d) } else if keepDims { dims.append(.fixed(1)) }
            }
            return [TensorType(x.dtype, Shape(dims))]

        case .argMax(let axis, let keepDims, _), .argMin(let axis, let keepDims, _):
            let x = try input(0)
            guard x.dtype != .bool else { throw FerryError("\(name) does not take bool") }
            guard let a = normalizeAxis(axis, rank: x.shape.rank), x.shape.rank > 0 else {
                throw FerryError("\(name) axis \(axis) out of range for \(x.shape)")
            }
            var dims = x.shape.dims
            if keepDims { dims[a] = .fixed(1) } else { dims.remove(at: a) }
            return [TensorType(.int64, Shape(dims))]

        case .topK(let axis, let k, _):
            let x = try input(0)
            guard x.dtype != .bool else { throw FerryError("TopK does not take bool") }
            guard let a = normalizeAxis(axis, rank: x.shape.rank), x.shape.rank > 0 else {
                throw FerryError("TopK axis \(axis) out of range for \(x.shape)")
            }
            guard k >= 1 else { throw FerryError("TopK k \(k) must be positive") }
            if case .fixed(let n) = x.shape[a], k > n {
                throw FerryError("TopK k \(k) is larger than axis \(a) of \(x.shape)")
            }
            var dims = x.shape.dims
            dims[a] = .fixed(k)
            return [TensorType(x.dtype, Shape(dims)), TensorType(.int64, Shape(dims))]

        case .equal, .greater, .less, .greaterOrEqual, .lessOrEqual:
            let a = try input(0), b = try input(1)
            guard a.dtype == b.dtype else { throw FerryError("\(name) of \(a.dtype) and \(b.dtype)") }
            guard a.dtype != .bool || self == .equal else { throw FerryError("\(name) does not take bool") }
            return [TensorType(.bool, try broadcastShapes(a.shape, b.shape))]

        case .not:
            let x = try input(0)
            guard x.dtype == .bool else { throw FerryError("Not expects bool, got \(x.dtype)") }
            return [x]

        case .and, .or:
            let a = try input(0), b = try input(1)
            guard a.dtype == .bool, b.dtype == .bool else { throw FerryError("\(name) expects bool inputs, got \(a.dtype) and \(b.dtype)") }
            return [TensorType(.bool, try broadcastShapes(a.shape, b.shape))]

        case .where:
            let condition = try input(0), x = try input(1), y = try input(2)
            guard condition.dtype == .bool else { throw FerryError("Where condition must be bool, got \(condition.dtype)") }
            guard x.dtype == y.dtype else { throw FerryError("Where of \(x.dtype) and \(y.dtype)") }
            let shape = try broadcastShapes(try broadcastShapes(condition.shape, x.shape), y.shape)
            return [TensorType(x.dtype, shape)]

        case .cast(let to):
            return [TensorType(to, try input(0).shape)]

        case .flatten(let axis):
            let x = try input(0)
            let r = x.shape.rank
            let a = axis < 0 ? axis + r : axis
            guard a >= 0, a <= r else { throw FerryError("Flatten axis \(axis) out of range for \(x.shape)") }
            return [TensorType(x.dtype, Shape([product(x.shape.dims[..<a]), product(x.shape.dims[a...])]))]

        case .reshape(let target, let allowZero):
            let x = try input(0)
            return [TensorType(x.dtype, try reshapeOutput(x.shape, target, allowZero: allowZero))]

        case .transpose(let perm):
            let x = try input(0)
            guard perm.sorted() == Array(0..<x.shape.rank) else {
                throw FerryError("Transpose perm \(perm) is not a permutation of rank \(x.shape.rank)")
            }
            return [TensorType(x.dtype, Shape(perm.map { x.shape[$0] }))]

        case .concat, .split, .slice, .pad, .squeeze, .unsqueeze, .tile, .expand, .gather,
             .depthToSpace, .spaceToDepth:
            return try inferDataMovement(inputs)

        case .resize, .lstm, .gru, .rnn:
            return try inferResizeOrRecurrent(inputs)

        case .detectionOutput(let a):
            return [try a.outputType(loc: try input(0), conf: try input(1), priors: try input(2))]
        }
    }
}

/// The axes a reduction reduces, normalized and sorted: nil or empty means every axis (ONNX
/// with noop_with_empty_axes = 0). Throws for an axis out of range or given twice.
public func reducedAxes(_ axes: [Int]?, rank: Int) throws -> [Int] {
    guard let axes, !axes.isEmpty else { return Array(0..<rank) }
    var result: [Int] = []
    for axis in axes {
        guard let a = normalizeAxis(axis, rank: rank), rank > 0 else {
            throw FerryError("reduction axis \(axis) out of range for rank \(rank)")
        }
        guard !result.contains(a) else { throw FerryError("reduction axes \(axes) name axis \(a) twice") }
        result.append(a)
    }
    return result.sorted()
}

/// Output length of a sliding window (convolution or pooling), ONNX rules.
func windowOutput(_ size: Dim, kernel: Int, stride: Int, dilation: Int, padBegin: Int, padEnd: Int,
                  ceil: Bool) throws -> Dim {
    guard case .fixed(let n) = size else {
        throw FerryError("spatial dimension \(size) must be known to slide a window over it")
    }
    return .fixed(try windowOutputLength(n, kernel: kernel, stride: stride, dilation: dilation,
                                         padBegin: padBegin, padEnd: padEnd, ceil: ceil))
}

/// Output length of a sliding window on a concrete size (ONNX rules): floor or ceil of
/// (n + pads - span) / stride, plus one, where span = (kernel - 1) * dilation + 1.
public func windowOutputLength(_ n: Int, kernel: Int, stride: Int, dilation: Int, padBegin: Int, padEnd: Int,
                               ceil: Bool) throws -> Int {
    guard kernel >= 1, stride >= 1, dilation >= 1, padBegin >= 0, padEnd >= 0 else {
        throw FerryError("invalid window: kernel \(kernel), stride \(stride), dilation \(dilation), pads \(padBegin),\(padEnd)")
    }
    let span = (kernel - 1) * dilation + 1
    let room = n + padBegin + padEnd - span
    guard room >= 0 else {
        throw FerryError("window of \(span) does not fit input of \(n) with pads \(padBegin),\(padEnd)")
    }
    var out = (ceil ? (room + stride - 1) / stride : room / stride) + 1
    // A window may not start in the end padding (ONNX and Caffe both drop it).
    if ceil, (out - 1) * stride >= n + padBegin { out -= 1 }
    return out
}

/// numpy broadcasting of two concrete shapes.
public func broadcastSizes(_ a: [Int], _ b: [Int]) throws -> [Int] {
    guard let s = try broadcastShapes(Shape(a), Shape(b)).fixedSizes else {
        preconditionFailure("fixed shapes broadcast to a fixed shape")
    }
    return s
}

/// numpy broadcasting of two shapes.
public func broadcastShapes(_ a: Shape, _ b: Shape) throws -> Shape {
    let r = max(a.rank, b.rank)
    var dims: [Dim] = []
    for i in 0..<r {
        let da: Dim = i < r - a.rank ? .fixed(1) : a.dims[i - (r - a.rank)]
        let db: Dim = i < r - b.rank ? .fixed(1) : b.dims[i - (r - b.rank)]
        switch (da, db) {
        case (.fixed(1), _): dims.append(db)
        case (_, .fixed(1)): dims.append(da)
        case (.fixed(let x), .fixed(let y)):
            guard x == y else { throw FerryError("shapes \(a) and \(b) do not broadcast") }
            dims.append(da)
        case (.symbolic, .fixed): dims.append(db)
        default: dims.append(da)
        }
    }
    return Shape(dims)
}

/// Product of dimensions; symbolic factors make a symbolic name like "N*16".
func product<C: Collection>(_ dims: C) -> Dim where C.Element == Dim {
    var fixed = 1
    var names: [String] = []
    for d in dims {
        switch d {
        case .fixed(let n): fixed *= n
        case .symbolic(let s): names.append(s)
        }
    }
    if names.isEmpty { return .fixed(fixed) }
    if fixed != 1 { names.append(String(fixed)) }
    return .symbolic(names.joined(separator: "*"))
}

/// ONNX Reshape (allowzero = 0) on possibly symbolic shapes.
func reshapeOutput(_ input: Shape, _ target: [Int], allowZero: Bool = false) throws -> Shape {
    guard target.filter({ $0 == -1 }).count <= 1, target.allSatisfy({ $0 >= -1 }) else {
        throw FerryError("Reshape target \(target) may hold one -1 and no other negative size")
    }
    if allowZero, target.contains(0), target.contains(-1) {
        throw FerryError("Reshape target \(target) with allowzero may not hold both 0 and -1")
    }
    var dims: [Dim] = []
    var copied = Set<Int>()
    for (i, t) in target.enumerated() {
        if t == 0 && !allowZero {
            guard i < input.rank else { throw FerryError("Reshape target \(target): 0 at \(i) beyond input rank") }
            dims.append(input.dims[i])
            copied.insert(i)
        } else {
            dims.append(.fixed(t))
        }
    }
    guard let unknown = target.firstIndex(of: -1) else {
        if let a = input.elementCount, let b = Shape(dims).elementCount, a != b {
            throw FerryError("cannot reshape \(input) (\(a) elements) to \(target)")
        }
        return Shape(dims)
    }
    // Elements left for -1: input elements not accounted for by copied (possibly symbolic) dims.
    // Symbolic products ("N*3", as a reshape that merges axes names them) are split into their
    // factors, so that merging and splitting axes again gives back "N".
    var remaining = 1
    var symbols: [String] = []
    for (i, d) in input.dims.enumerated() where !copied.contains(i) {
        switch d {
        case .fixed(let n): remaining *= n
        case .symbolic(let name):
            for factor in name.split(separator: "*").map(String.init) {
                if let n = Int(factor) { remaining *= n } else { symbols.append(factor) }
            }
        }
    }
    var known = 1
    for (i, d) in dims.enumerated() where i != unknown && !copied.contains(i) { known *= d.value ?? 1 }
    if !symbols.isEmpty {
        guard !symbols.contains("?"), known > 0, remaining % known == 0 else {
            dims[unknown] = .symbolic("?")
            return Shape(dims)
        }
        dims[unknown] = product(symbols.map { Dim.symbolic($0) } + [.fixed(remaining / known)])
        return Shape(dims)
    }
    guard known > 0, remaining % known == 0 else {
        throw FerryError("cannot reshape \(input) to \(target)")
    }
    dims[unknown] = .fixed(remaining / known)
    return Shape(dims)
}
