import FerryIR

import Foundation

/// Elementwise math on float32: unary functions; Add, Sub, Mul, Div, Pow with full numpy
/// (multidirectional) broadcasting; the variadic Max, Min, Sum, Mean.
extension ReferenceKernels {
    // Add, Sub, Mul, Div also run on int64, int32, int8 and uint8 (the shape arithmetic the
    // ONNX importer folds, 8-bit data): wrapping at the type's width, division truncating toward zero.
    public static func add(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        if let t = try integerBinary(a, b, "Add", { $0 &+ $1 }) { return t }
        return try binary(a, b, "Add") { $0 + $1 }
    }
    public static func sub(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        if let t = try integerBinary(a, b, "Sub", { $0 &- $1 }) { return t }
        return try binary(a, b, "Sub") { $0 - $1 }
    }
    public static func mul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        if let t = try integerBinary(a, b, "Mul", { $0 &* $1 }) { return t }
        return try binary(a, b, "Mul") { $0 * $1 }
    }
    public static func div(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        if let t = try integerBinary(a, b, "Div", { x, y in
            guard y != 0 else { throw FerryError("Div: integer division by zero") }
            return x.dividedReportingOverflow(by: y).partialValue
        }) { return t }
        return try binary(a, b, "Div") { $0 / $1 }
    }

    /// Whether every tensor has one integer element type (int64, int32, int8 or uint8).
    static func allInteger(_ tensors: [Tensor]) -> Bool {
        guard let first = tensors.first?.dtype, [.int64, .int32, .int8, .uint8].contains(first) else { return false }
        return tensors.allSatisfy { $0.dtype == first }
    }

    /// Int64 results as a tensor of an integer `dtype`, wrapping to its width.
    static func integerTensor(_ values: [Int64], shape: [Int], dtype: DType) throws -> Tensor {
        let storage: TensorStorage
        switch dtype {
        case .int32: storage = .int32(values.map { Int32(truncatingIfNeeded: $0) })
        case .int8: storage = .int8(values.map { Int8(truncatingIfNeeded: $0) })
        case .uint8: storage = .uint8(values.map { UInt8(truncatingIfNeeded: $0) })
        default: storage = .int64(values)
        }
        return try Tensor(shape: shape, storage: storage)
    }

    /// A broadcasting binary op on two int64 (or two int32) tensors; nil for other element types.
    static func integerBinary(_ a: Tensor, _ b: Tensor, _ name: String, _ f: (Int64, Int64) throws -> Int64) throws -> Tensor? {
        guard allInteger([a, b]), let x = a.int64s, let y = b.int64s else { return nil }
        let (shape, p) = try broadcastPositions([a.shape, b.shape])
        let out = try (0..<elementCount(shape)).map { try f(x[p[0][$0]], y[p[1][$0]]) }
        return try integerTensor(out, shape: shape, dtype: a.dtype)
    }
    /// X to the power Y. Y may be of another numeric type than X (ONNX Pow's T1); the result has
    /// X's type: integer bases take the power in double precision and truncate, as numpy's
    /// float power cast back does.
    public static func power(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        if a.dtype == .float32, b.dtype == .float32 { return try binary(a, b, "Pow") { Foundation.pow($0, $1) } }
        func doubles(_ t: Tensor) throws -> [Double] {
            if t.dtype == .float32 { return t.floats.map(Double.init) }
            guard let v = t.int64s else { throw FerryError("Pow does not take \(t.dtype)") }
            return v.map(Double.init)
        }
        let x = try doubles(a), y = try doubles(b)
        let (shape, p) = try broadcastPositions([a.shape, b.shape])
        let out = (0..<elementCount(shape)).map { Foundation.pow(x[p[0][$0]], y[p[1][$0]]) }
        if a.dtype == .float32 { return Tensor(shape: shape, floats: out.map(Float.init)) }
        guard a.int64s != nil else { throw FerryError("Pow does not take \(a.dtype)") }
        return try integerTensor(out.map { $0.isFinite ? Int64(exactly: $0.rounded(.towardZero)) ?? 0 : 0 }, shape: shape, dtype: a.dtype)
    }

    /// The function of an elementwise unary math op (Abs ... Erf), nil for other ops.
    static func unaryMathFunction(_ op: Op) -> ((Float) -> Float)? {
        switch op {
        case .abs: return { Swift.abs($0) }
        case .neg: return { -$0 }
        case .exp: return { Foundation.exp($0) }
        case .log: return { Foundation.log($0) }
        case .sqrt: return { $0.squareRoot() }
        case .reciprocal: return { 1 / $0 }
        case .floor: return { Foundation.floor($0) }
        case .ceil: return { Foundation.ceil($0) }
        case .erf: return { Foundation.erf($0) }
        default: return nil
        }
    }

    /// Abs, Neg, Exp, Log, Sqrt, Reciprocal, Floor, Ceil, Erf.
    public static func unaryMath(_ op: Op, _ x: Tensor) throws -> Tensor {
        guard let f = unaryMathFunction(op) else { throw FerryError("\(op.name) is not an elementwise unary math op") }
        // Abs and Neg of integers wrap at the type's minimum, as two's complement does.
        if op == .abs || op == .neg, allInteger([x]), let v = x.int64s {
            let out = v.map { i -> Int64 in op == .neg || i < 0 ? 0 &- i : i }
            return try integerTensor(out, shape: x.shape, dtype: x.dtype)
        }
        return try unary(x, op.name, f)
    }

    /// Max, Min, Sum, Mean of one or more inputs with numpy broadcasting.
    /// NaN in any input makes the result NaN (numpy's maximum / minimum, the ONNX reference).
    /// float16 inputs are widened to float32 and the result narrowed back, which is exact: the
    /// result is one of the inputs.
    public static func maximum(_ inputs: [Tensor]) throws -> Tensor {
        if allInteger(inputs) { return try integerVariadic(inputs, "Max") { Swift.max($0, $1) } }
        return try viaFloat32(inputs) { try variadic($0, "Max") { $0.isNaN || $1.isNaN ? .nan : Swift.max($0, $1) } }
    }
    public static func minimum(_ inputs: [Tensor]) throws -> Tensor {
        if allInteger(inputs) { return try integerVariadic(inputs, "Min") { Swift.min($0, $1) } }
        return try viaFloat32(inputs) { try variadic($0, "Min") { $0.isNaN || $1.isNaN ? .nan : Swift.min($0, $1) } }
    }

    /// `body` on the inputs widened to float32 when they are all float16, its result narrowed
    /// back; otherwise `body` on the inputs as they are.
    static func viaFloat32(_ inputs: [Tensor], _ body: ([Tensor]) throws -> Tensor) throws -> Tensor {
        guard !inputs.isEmpty, inputs.allSatisfy({ $0.dtype == .float16 }) else { return try body(inputs) }
        return try cast(try body(try inputs.map { try cast($0, to: .float32) }), to: .float16)
    }

    /// Folds int64 (or int32) inputs pairwise.
    static func integerVariadic(_ inputs: [Tensor], _ name: String, _ f: (Int64, Int64) -> Int64) throws -> Tensor {
        var acc = inputs[0]
        for t in inputs.dropFirst() { acc = try integerBinary(acc, t, name, f)! }
        return acc
    }
    public static func sum(_ inputs: [Tensor]) throws -> Tensor { try variadic(inputs, "Sum") { $0 + $1 } }
    public static func mean(_ inputs: [Tensor]) throws -> Tensor {
        let total = try variadic(inputs, "Mean") { $0 + $1 }
        let n = Float(inputs.count)
        return try unary(total, "Mean") { $0 / n }
    }

    /// Folds the inputs pairwise, left to right (broadcasting is associative).
    static func variadic(_ inputs: [Tensor], _ name: String, _ f: (Float, Float) -> Float) throws -> Tensor {
        guard let first = inputs.first else { throw FerryError("\(name) needs at least one input") }
        var acc = first
        _ = try acc.requireFloats(name, "input 0")
        for t in inputs.dropFirst() { acc = try binary(acc, t, name, f) }
        return acc
    }

    @inline(__always)
    static func binary(_ a: Tensor, _ b: Tensor, _ name: String, _ f: (Float, Float) -> Float) throws -> Tensor {
        let x = try a.requireFloats(name, "A")
        let y = try b.requireFloats(name, "B")
        let shape = try broadcastSizes(a.shape, b.shape)
        let count = elementCount(shape)
        let out: [Float] = x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                makeFloats(count) { o in
                    if count == 0 { return }
                    if a.shape == b.shape {
                        for i in 0..<count { o[i] = f(xp[i], yp[i]) }
                    } else if yp.count == 1 {
                        let v = yp[0]
                        for i in 0..<count { o[i] = f(xp[i], v) }
                    } else if xp.count == 1 {
                        let v = xp[0]
                        for i in 0..<count { o[i] = f(v, yp[i]) }
                    } else {
                        broadcastLoop(shape: shape, a.shape, b.shape, xp, yp, o, f)
                    }
                }
            }
        }
        return Tensor(shape: shape, floats: out)
    }

    /// General broadcasting: odometer over all but the last output axis, strided inner loop.
    @inline(__always)
    static func broadcastLoop(shape: [Int], _ aShape: [Int], _ bShape: [Int],
                              _ xp: UnsafeBufferPointer<Float>, _ yp: UnsafeBufferPointer<Float>,
                              _ o: UnsafeMutableBufferPointer<Float>, _ f: (Float, Float) -> Float) {
        let r = shape.count
        let sa = broadcastStrides(aShape, to: shape)
        let sb = broadcastStrides(bShape, to: shape)
        let inner = shape[r - 1], ia = sa[r - 1], ib = sb[r - 1]
        var index = Array(repeating: 0, count: r)
        var offA = 0, offB = 0, outPos = 0
        let total = elementCount(shape)
        while outPos < total {
            var pa = offA, pb = offB
            for _ in 0..<inner {
                o[outPos] = f(xp[pa], yp[pb])
                outPos += 1
                pa += ia
                pb += ib
            }
            // Advance the odometer over axes r-2 ... 0.
            var axis = r - 2
            while axis >= 0 {
                index[axis] += 1
                offA += sa[axis]
                offB += sb[axis]
                if index[axis] < shape[axis] { break }
                offA -= sa[axis] * shape[axis]
                offB -= sb[axis] * shape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}
