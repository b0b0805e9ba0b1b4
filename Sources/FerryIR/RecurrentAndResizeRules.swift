/// Shape rules of Resize and the recurrent layers, shared by shape inference and the runtime.

extension ResizeAttributes {
    /// Checks scales / sizes against the rank and the axes.
    public func validate(rank: Int) throws {
        if let axes {
            guard !axes.isEmpty, axes.allSatisfy({ $0 >= 0 && $0 < rank }), zip(axes, axes.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw FerryError("Resize axes \(axes) should be ascending axes of a rank-\(rank) input")
            }
        }
        let count = axes?.count ?? rank
        switch (scales, sizes) {
        case (let s?, nil):
            guard s.count == count, s.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                throw FerryError("Resize scales \(s) should be \(count) positive numbers")
            }
        case (nil, let s?):
            guard s.count == count, s.allSatisfy({ $0 >= 0 }) else {
                throw FerryError("Resize sizes \(s) should be \(count) non-negative numbers")
            }
        default:
            throw FerryError("Resize needs exactly one of scales and sizes")
        }
        if let roi {
            guard roi.count == 2 * rank, roi.allSatisfy(\.isFinite) else {
                throw FerryError("Resize roi \(roi) should be \(2 * rank) numbers (starts, then ends)")
            }
        }
    }

    /// A float scale whose product with `n`, rounded down, is `m` whether the product is taken
    /// in float (Ferry, onnxruntime) or in double (ONNX shape inference): m / n, raised by ulps
    /// where rounding would lose the last cell.
    public static func scale(giving m: Int, from n: Int) -> Float {
        func lengths(_ s: Float) -> (Int, Int) {
            (Int((Float(n) * s).rounded(.down)), Int((Double(n) * Double(s)).rounded(.down)))
        }
        var s = Float(m) / Float(n)
        while lengths(s).0 < m || lengths(s).1 < m { s = s.nextUp }
        return s
    }

    /// Where an input axis's scale or size sits in `scales` / `sizes`; nil for an axis that
    /// `axes` leaves alone.
    public func entry(axis: Int) -> Int? {
        guard let axes else { return axis }
        return axes.firstIndex(of: axis)
    }

    /// Output length along an axis of n cells: the size, or floor(n * scale) (in float, as
    /// onnxruntime computes it).
    public func outputLength(_ n: Int, axis: Int) -> Int {
        guard let i = entry(axis: axis) else { return n }
        if let sizes { return sizes[i] }
        let length = (Float(n) * scales![i]).rounded(.down)
        // A damaged file's scale can take the length past Int (or to infinity): such a length is
        // returned as one past Op.largestSize, which shape inference refuses.
        return length < Float(Op.largestSize) ? Int(length) : Op.largestSize + 1
    }

    /// The scale the coordinate transformation divides by along an axis: the given scale, or
    /// out / in when sizes are given.
    public func scale(axis: Int, input n: Int, output m: Int) -> Float {
        guard let i = entry(axis: axis) else { return 1 }
        if let scales { return scales[i] }
        return n == 0 ? 1 : Float(m) / Float(n)
    }

    /// The input coordinate an output coordinate maps to along an axis (ONNX
    /// coordinate_transformation_mode).
    public func inputCoordinate(_ x: Int, axis: Int, scale: Float, input n: Int, output m: Int) -> Float {
        let xf = Float(x)
        switch coordinateTransformation {
        case .halfPixel: return (xf + 0.5) / scale - 0.5
        case .pytorchHalfPixel: return m > 1 ? (xf + 0.5) / scale - 0.5 : 0
        case .alignCorners: return m == 1 ? 0 : xf * Float(n - 1) / Float(m - 1)
        case .asymmetric: return xf / scale
        case .tfHalfPixelForNN: return (xf + 0.5) / scale
        case .tfCropAndResize:
            let rank = (roi?.count ?? 0) / 2
            let start = roi.map { $0[axis] } ?? 0, end = roi.map { $0[rank + axis] } ?? 1
            let span = Float(n - 1)
            return m > 1 ? start * span + xf * (end - start) * span / Float(m - 1) : 0.5 * (start + end) * span
        }
    }

    /// Nearest mode's input index for an input coordinate, clamped to the input.
    public func nearestIndex(_ x: Float, input n: Int) -> Int {
        let i: Float
        switch nearestMode {
        case .roundPreferFloor: i = x == x.rounded(.down) + 0.5 ? x.rounded(.down) : x.rounded()
        case .roundPreferCeil: i = x == x.rounded(.down) + 0.5 ? x.rounded(.up) : x.rounded()
        case .floor: i = x.rounded(.down)
        case .ceil: i = x.rounded(.up)
        }
        return Swift.min(Swift.max(Int(i), 0), n - 1)
    }
}

extension Op {
    /// Gates per direction: LSTM 4 (i, o, f, c), GRU 3 (z, r, h), RNN 1.
    public var recurrentGateCount: Int {
        switch self {
        case .lstm: return 4
        case .gru: return 3
        case .rnn: return 1
        default: return 0
        }
    }

    /// ONNX's default activations of one direction.
    public var defaultRecurrentActivations: [ActivationFunction] {
        switch self {
        case .lstm: return [.sigmoid, .tanh, .tanh]
        case .gru: return [.sigmoid, .tanh]
        default: return [.tanh]
        }
    }
}

extension RecurrentAttributes {
    /// The activations of each direction, defaults filled in.
    public func activationsPerDirection(_ op: Op) throws -> [[ActivationFunction]] {
        let n = op.defaultRecurrentActivations.count, dirs = direction.count
        if activations.isEmpty { return Array(repeating: op.defaultRecurrentActivations, count: dirs) }
        if activations.count == n { return Array(repeating: activations, count: dirs) }
        guard activations.count == n * dirs else {
            throw FerryError("\(op.name) takes \(n) activations per direction, got \(activations.count) for \(direction)")
        }
        return (0..<dirs).map { Array(activations[($0 * n)..<(($0 + 1) * n)]) }
    }

    /// Checks hidden size, layout and clip.
    public func validate(_ op: Op) throws {
        guard hiddenSize >= 1 else { throw FerryError("\(op.name) hidden_size \(hiddenSize) must be positive") }
        guard layout == 0 || layout == 1 else { throw FerryError("\(op.name) layout \(layout) must be 0 or 1") }
        if let clip { guard clip > 0 else { throw FerryError("\(op.name) clip \(clip) must be positive") } }
        if linearBeforeReset, op.name != "GRU" { throw FerryError("linear_before_reset is a GRU attribute") }
        if inputForget, op.name != "LSTM" { throw FerryError("input_forget is an LSTM attribute") }
        _ = try activationsPerDirection(op)
    }
}

extension Op {
    /// Output types of Resize and the recurrent layers (`inferOutputTypes` dispatches here).
    func inferResizeOrRecurrent(_ inputs: [TensorType?]) throws -> [TensorType] {
        func input(_ i: Int) throws -> TensorType {
            guard i < inputs.count, let t = inputs[i] else { throw FerryError("\(name) is missing input \(i)") }
            return t
        }
        func optional(_ i: Int) -> TensorType? { i < inputs.count ? inputs[i] : nil }
        func expect(_ t: TensorType?, _ what: String, _ dims: [Dim], dtype: DType? = nil) throws {
            guard let t else { return }
            let ok = t.shape.rank == dims.count && zip(t.shape.dims, dims).allSatisfy { a, b in
                a.value == nil || b.value == nil || a == b
            }
            guard ok else { throw FerryError("\(name) \(what) is \(t.shape), expected \(Shape(dims))") }
            if let dtype, t.dtype != dtype { throw FerryError("\(name) \(what) must be \(dtype), got \(t.dtype)") }
        }
        switch self {
        case .resize(let a):
            let x = try input(0)
            try a.validate(rank: x.shape.rank)
            var dims: [Dim] = []
            for (i, d) in x.shape.dims.enumerated() {
                if let n = d.value {
                    dims.append(.fixed(a.outputLength(n, axis: i)))
                } else if let e = a.entry(axis: i) {
                    if let sizes = a.sizes { dims.append(.fixed(sizes[e])) } else { dims.append(a.scales![e] == 1 ? d : unknownDim) }
                } else {
                    dims.append(d)
                }
            }
            return [TensorType(x.dtype, Shape(dims))]

        case .lstm(let a), .gru(let a), .rnn(let a):
            try a.validate(self)
            let x = try input(0), w = try input(1)
            guard x.shape.rank == 3, x.dtype.isFloatingPoint else {
                throw FerryError("\(name) X must be a 3-D float tensor, got \(x)")
            }
            let (seq, batch) = a.layout == 0 ? (x.shape[0], x.shape[1]) : (x.shape[1], x.shape[0])
            let dirs = Dim.fixed(a.direction.count), h = a.hiddenSize, g = recurrentGateCount
            guard w.shape.rank == 3 else { throw FerryError("\(name) W must be 3-D, got \(w.shape)") }
            try expect(w, "W", [dirs, .fixed(g * h), x.shape[2]], dtype: x.dtype)
            try expect(try input(2), "R", [dirs, .fixed(g * h), .fixed(h)], dtype: x.dtype)
            try expect(optional(3), "B", [dirs, .fixed(2 * g * h)], dtype: x.dtype)
            try expect(optional(4), "sequence_lens", [batch], dtype: .int32)
            let state: [Dim] = a.layout == 0 ? [dirs, batch, .fixed(h)] : [batch, dirs, .fixed(h)]
            try expect(optional(5), "initial_h", state, dtype: x.dtype)
            if case .lstm = self {
                try expect(optional(6), "initial_c", state, dtype: x.dtype)
                try expect(optional(7), "P", [dirs, .fixed(3 * h)], dtype: x.dtype)
            }
            let y: [Dim] = a.layout == 0 ? [seq, dirs, batch, .fixed(h)] : [batch, seq, dirs, .fixed(h)]
            let outputs = [TensorType(x.dtype, Shape(y)), TensorType(x.dtype, Shape(state))]
            if case .lstm = self { return outputs + [TensorType(x.dtype, Shape(state))] }
            return outputs

        default:
            preconditionFailure("\(name) is neither Resize nor recurrent")
        }
    }
}
