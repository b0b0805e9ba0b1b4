import FerryIR

/// Cast between the IR's element types.
extension ReferenceKernels {
    /// Converts every element to `to` (ONNX Cast): floats to integers truncate toward zero
    /// (NaN, infinities and values beyond 64 bits become Int64.min first, as x86's conversion
    /// does), integers wrap to narrower types (two's complement), nonzero (and NaN) is true,
    /// true is 1, and floats round to nearest even into narrower float types (bfloat16 too, as
    /// onnx's reference and onnxruntime do). Strings are read and written by `NumericText`.
    public static func cast(_ x: Tensor, to: DType) throws -> Tensor {
        if case .string(let texts) = x.storage {
            return try Tensor(shape: x.shape, storage: fromText(texts, to: to))
        }
        if to == .string { return try Tensor(shape: x.shape, storage: .string(text(x.storage))) }
        let source = x.dtype == .bool ? try Tensor(shape: x.shape, storage: .uint8(bools(x, "Cast", "input").map { $0 ? 1 : 0 })) : x
        return try Tensor(shape: x.shape, storage: try TensorStorage.visitNumeric([source.storage], "Cast", Conversion(target: to)))
    }
}

extension ReferenceKernels {
    /// String elements as numbers of element type `to`.
    static func fromText(_ texts: [String], to: DType) throws -> TensorStorage {
        switch to {
        case .string: return .string(texts)
        case .bool: return .bool(try texts.map(NumericText.bool))
        case let t where t.isFloatingPoint:
            return try TensorStorage.visitNumeric([.float64(try texts.map(NumericText.double))], "Cast", Conversion(target: t))
        default:
            return try TensorStorage.visitNumeric([.uint64(try texts.map(NumericText.integerBits))], "Cast", Conversion(target: to))
        }
    }

    /// Elements as text, each float in the shortest form of its own type (see `NumericText`).
    static func text(_ storage: TensorStorage) -> [String] {
        switch storage {
        case .float32(let a): return a.map { NumericText.string($0) }
        case .float64(let a): return a.map { NumericText.string($0) }
        case .float16(let a): return a.map { NumericText.string(float16: $0) }
        case .bfloat16(let a): return a.map { NumericText.string(BFloat16.value($0)) }
        case .int64(let a): return a.map { NumericText.string($0) }
        case .int32(let a): return a.map { NumericText.string($0) }
        case .int16(let a): return a.map { NumericText.string($0) }
        case .int8(let a): return a.map { NumericText.string($0) }
        case .uint64(let a): return a.map { NumericText.string($0) }
        case .uint32(let a): return a.map { NumericText.string($0) }
        case .uint16(let a): return a.map { NumericText.string($0) }
        case .uint8(let a): return a.map { NumericText.string($0) }
        case .bool(let a): return a.map { NumericText.string($0) }
        case .string(let a): return a
        }
    }
}

/// One generic conversion per source kind (floating, integer), to any target element type.
private struct Conversion: NumericVisitor {
    let target: DType

    func floating<S: FloatingElement>(_ operands: [[S]], _ wrap: @escaping ([S]) -> TensorStorage) -> TensorStorage {
        // A double narrows to bfloat16 through float32 (rounding twice), as ml_dtypes (onnx's
        // reference) and onnxruntime do; to float16 directly, as numpy does.
        convert(operands[0], float: { Float($0) }, double: { Double($0) }, half: { narrowed($0, HalfFloat.bits) },
                bfloat: { BFloat16.bits(Float($0)) }, isNonZero: { $0 != 0 }) { v in
            let whole = v.rounded(.towardZero)
            if let u = UInt64(exactly: whole) { return u }
            return UInt64(bitPattern: Int64(exactly: whole) ?? .min)
        }
    }

    func integer<S: FixedWidthInteger & TensorElement>(_ operands: [[S]], _ wrap: @escaping ([S]) -> TensorStorage) -> TensorStorage {
        convert(operands[0], float: { Float($0) }, double: { Double($0) }, half: { HalfFloat.bits(Float($0)) },
                bfloat: { BFloat16.bits(Float($0)) }, isNonZero: { $0 != 0 }) { UInt64(truncatingIfNeeded: $0) }
    }

    /// `a` as the target type. Integer targets take the low bits of each element's 64-bit two's
    /// complement form (`bits64`), which is how both floats (after truncation toward zero) and
    /// wider integers wrap.
    private func convert<S>(_ a: [S], float: (S) -> Float, double: (S) -> Double, half: (S) -> UInt16,
                            bfloat: (S) -> UInt16, isNonZero: (S) -> Bool, bits64: (S) -> UInt64) -> TensorStorage {
        func integers<T: FixedWidthInteger>(_: T.Type) -> [T] { a.map { T(truncatingIfNeeded: bits64($0)) } }
        switch target {
        case .float32: return .float32(a.map(float))
        case .float64: return .float64(a.map(double))
        case .float16: return .float16(a.map(half))
        case .bfloat16: return .bfloat16(a.map(bfloat))
        case .bool: return .bool(a.map(isNonZero))
        case .int64: return .int64(integers(Int64.self))
        case .int32: return .int32(integers(Int32.self))
        case .int16: return .int16(integers(Int16.self))
        case .int8: return .int8(integers(Int8.self))
        case .uint64: return .uint64(integers(UInt64.self))
        case .uint32: return .uint32(integers(UInt32.self))
        case .uint16: return .uint16(integers(UInt16.self))
        case .uint8: return .uint8(integers(UInt8.self))
        case .string: preconditionFailure("casts to string go through ReferenceKernels.text")
        }
    }

    /// The 16-bit float bits nearest to `v` (`bits` rounds a float32 to them). A double is
    /// first rounded to float32 "to odd" (an inexact result keeps its last bit set), so that
    /// rounding twice still gives the nearest value, as numpy's direct double-to-half
    /// conversion does.
    private func narrowed<S: FloatingElement>(_ v: S, _ bits: (Float) -> UInt16) -> UInt16 {
        var f = Float(v)
        if v.isFinite, f.isFinite, Double(f) != Double(v), f.bitPattern & 1 == 0 {
            f = Double(v) > Double(f) ? f.nextUp : f.nextDown
        }
        return bits(f)
    }
}
