import FerryIR

import Foundation

/// Elementwise math on float32: unary functions; Add, Sub, Mul, Div, Pow with full numpy
/// (multidirectional) broadcasting; the variadic Max, Min, Sum, Mean.
extension ReferenceKernels {
    // Add, Sub, Mul, Div run on every numeric element type: integers wrap at the type's width
    // and divide truncating toward zero; float16 is computed in float32 and rounded back.
    public static func add(_ a: Tensor, _ b: Tensor) throws -> Tensor { try elementwise(.add, [a, b]) }
    public static func sub(_ a: Tensor, _ b: Tensor) throws -> Tensor { try elementwise(.sub, [a, b]) }
    public static func mul(_ a: Tensor, _ b: Tensor) throws -> Tensor { try elementwise(.mul, [a, b]) }
    public static func div(_ a: Tensor, _ b: Tensor) throws -> Tensor { try elementwise(.div, [a, b]) }

    /// A binary function of tensors of one numeric element type, or a fold of several (Max, Min).
    static func elementwise(_ function: BinaryFunction, _ operands: [Tensor]) throws -> Tensor {
        guard !operands.isEmpty else { throw FerryError("\(function.name) needs at least one input") }
        if function == .div, operands[1].dtype.isInteger, try doubles(operands[1], "Div").contains(0) {
            throw FerryError("Div: integer division by zero")
        }
        var shape: [Int] = []
        for t in operands { shape = try broadcastSizes(shape, t.shape) }
        let kernel = Broadcasting(shapes: operands.map(\.shape), function: function)
        return try Tensor(shape: shape, storage: try TensorStorage.visitNumeric(operands.map(\.storage), function.name, kernel))
    }

    /// Whether every tensor has one integer element type.
    static func allInteger(_ tensors: [Tensor]) -> Bool {
        guard let first = tensors.first?.dtype, first.isInteger else { return false }
        return tensors.allSatisfy { $0.dtype == first }
    }

    /// Int64 results as a tensor of an integer `dtype`, wrapping to its width.
    static func integerTensor(_ values: [Int64], shape: [Int], dtype: DType) throws -> Tensor {
        try cast(Tensor(shape: shape, int64s: values), to: dtype)
    }

    /// The elements of a numeric tensor as doubles (exact for every type but the largest 64-bit integers).
    static func doubles(_ t: Tensor, _ name: String) throws -> [Double] {
        try TensorStorage.visitNumeric([t.storage], name, AsDoubles())
    }

    /// X to the power Y. Y may be of another numeric type than X (ONNX Pow's T1); the result has
    /// X's type: float32 to a float32 power in float32; otherwise the power is taken in double
    /// precision, and integer bases truncate it, as numpy's float power cast back does.
    public static func power(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        if a.dtype == .float32, b.dtype == .float32 { return try binary(a, b, "Pow") { Foundation.pow($0, $1) } }
        let x = try doubles(a, "Pow"), y = try doubles(b, "Pow")
        let (shape, p) = try broadcastPositions([a.shape, b.shape])
        let out = (0..<elementCount(shape)).map { Foundation.pow(x[p[0][$0]], y[p[1][$0]]) }
        if a.dtype.isFloatingPoint { return try cast(try Tensor(shape: shape, storage: .float64(out)), to: a.dtype) }
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

    /// Max, Min (every numeric element type), Sum, Mean (float32) of one or more inputs with
    /// numpy broadcasting.
    public static func maximum(_ inputs: [Tensor]) throws -> Tensor { try elementwise(.max, inputs) }
    public static func minimum(_ inputs: [Tensor]) throws -> Tensor { try elementwise(.min, inputs) }

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
        return Tensor(shape: shape, floats: broadcastBinary(x, a.shape, y, b.shape, shape, f))
    }

    /// f over two operands broadcast to `shape`: fast paths for equal shapes and scalars,
    /// else an odometer over all but the last output axis with a strided inner loop.
    @inline(__always)
    static func broadcastBinary<T, R>(_ x: [T], _ aShape: [Int], _ y: [T], _ bShape: [Int], _ shape: [Int],
                                      _ f: (T, T) -> R) -> [R] {
        let count = elementCount(shape)
        return x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                [R](unsafeUninitializedCapacity: count) { o, initialized in
                    initialized = count
                    if count == 0 { return }
                    if aShape == bShape {
                        for i in 0..<count { o.initializeElement(at: i, to: f(xp[i], yp[i])) }
                    } else if yp.count == 1 {
                        let v = yp[0]
                        for i in 0..<count { o.initializeElement(at: i, to: f(xp[i], v)) }
                    } else if xp.count == 1 {
                        let v = xp[0]
                        for i in 0..<count { o.initializeElement(at: i, to: f(v, yp[i])) }
                    } else {
                        broadcastLoop(shape: shape, aShape, bShape, xp, yp, o, f)
                    }
                }
            }
        }
    }

    @inline(__always)
    static func broadcastLoop<T, R>(shape: [Int], _ aShape: [Int], _ bShape: [Int],
                                    _ xp: UnsafeBufferPointer<T>, _ yp: UnsafeBufferPointer<T>,
                                    _ o: UnsafeMutableBufferPointer<R>, _ f: (T, T) -> R) {
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
                o.initializeElement(at: outPos, to: f(xp[pa], yp[pb]))
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

/// The binary functions that run on every numeric element type, generic over it.
enum BinaryFunction {
    case add, sub, mul, div, max, min

    var name: String {
        switch self {
        case .add: return "Add"
        case .sub: return "Sub"
        case .mul: return "Mul"
        case .div: return "Div"
        case .max: return "Max"
        case .min: return "Min"
        }
    }

    /// IEEE arithmetic; Max and Min give NaN when either operand is NaN (numpy's maximum /
    /// minimum, the ONNX reference).
    @inline(__always)
    func floating<T: FloatingElement>(_ a: T, _ b: T) -> T {
        switch self {
        case .add: return a + b
        case .sub: return a - b
        case .mul: return a * b
        case .div: return a / b
        case .max: return a.isNaN || b.isNaN ? .nan : Swift.max(a, b)
        case .min: return a.isNaN || b.isNaN ? .nan : Swift.min(a, b)
        }
    }

    /// Wrapping at the type's width; division truncates toward zero (the caller refuses a zero
    /// divisor; the type's minimum divided by -1 wraps).
    @inline(__always)
    func integer<T: FixedWidthInteger>(_ a: T, _ b: T) -> T {
        switch self {
        case .add: return a &+ b
        case .sub: return a &- b
        case .mul: return a &* b
        case .div: return a.dividedReportingOverflow(by: b).partialValue
        case .max: return Swift.max(a, b)
        case .min: return Swift.min(a, b)
        }
    }
}

/// A binary function folded left to right over operands of one numeric element type with
/// numpy broadcasting (broadcasting is associative).
struct Broadcasting: NumericVisitor {
    let shapes: [[Int]]
    let function: BinaryFunction

    func floating<T: FloatingElement>(_ operands: [[T]], _ wrap: @escaping ([T]) -> TensorStorage) throws -> TensorStorage {
        wrap(try fold(operands) { function.floating($0, $1) })
    }

    func integer<T: FixedWidthInteger & TensorElement>(_ operands: [[T]], _ wrap: @escaping ([T]) -> TensorStorage) throws -> TensorStorage {
        wrap(try fold(operands) { function.integer($0, $1) })
    }

    private func fold<T>(_ operands: [[T]], _ f: (T, T) -> T) throws -> [T] {
        var acc = operands[0], accShape = shapes[0]
        for (x, xShape) in zip(operands, shapes).dropFirst() {
            let shape = try broadcastSizes(accShape, xShape)
            acc = ReferenceKernels.broadcastBinary(acc, accShape, x, xShape, shape, f)
            accShape = shape
        }
        return acc
    }
}

/// The elements of one numeric operand as doubles.
struct AsDoubles: NumericVisitor {
    func floating<T: FloatingElement>(_ operands: [[T]], _ wrap: @escaping ([T]) -> TensorStorage) -> [Double] {
        operands[0].map { Double($0) }
    }
    func integer<T: FixedWidthInteger & TensorElement>(_ operands: [[T]], _ wrap: @escaping ([T]) -> TensorStorage) -> [Double] {
        operands[0].map { Double($0) }
    }
}
