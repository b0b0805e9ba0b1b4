import FerryIR

/// Cast between the IR's element types.
extension ReferenceKernels {
    /// Converts every element to `to` (ONNX Cast): floats to integers truncate toward zero
    /// (NaN, infinities and values beyond 64 bits become Int64.min first, as x86's conversion
    /// does), integers wrap to narrower types (two's complement), nonzero (and NaN) is true,
    /// true is 1, and floats round to nearest even into narrower float types.
    public static func cast(_ x: Tensor, to: DType) throws -> Tensor {
        let source = x.dtype == .bool ? try Tensor(shape: x.shape, storage: .uint8(bools(x, "Cast", "input").map { $0 ? 1 : 0 })) : x
        return try Tensor(shape: x.shape, storage: try TensorStorage.visitNumeric([source.storage], "Cast", Conversion(target: to)))
    }
}

/// One generic conversion per source kind (floating, integer), to any target element type.
private struct Conversion: NumericVisitor {
    let target: DType

    func floating<S: FloatingElement>(_ operands: [[S]], _ wrap: @escaping ([S]) -> TensorStorage) -> TensorStorage {
        convert(operands[0], float: { Float($0) }, double: { Double($0) }, half: halfBits, isNonZero: { $0 != 0 }) { v in
            let whole = v.rounded(.towardZero)
            if let u = UInt64(exactly: whole) { return u }
            return UInt64(bitPattern: Int64(exactly: whole) ?? .min)
        }
    }

    func integer<S: FixedWidthInteger & TensorElement>(_ operands: [[S]], _ wrap: @escaping ([S]) -> TensorStorage) -> TensorStorage {
        convert(operands[0], float: { Float($0) }, double: { Double($0) }, half: { HalfFloat.bits(Float($0)) },
                isNonZero: { $0 != 0 }) { UInt64(truncatingIfNeeded: $0) }
    }

    /// `a` as the target type. Integer targets take the low bits of each element's 64-bit two's
    /// complement form (`bits64`), which is how both floats (after truncation toward zero) and
    /// wider integers wrap.
    private func convert<S>(_ a: [S], float: (S) -> Float, double: (S) -> Double, half: (S) -> UInt16,
                            isNonZero: (S) -> Bool, bits64: (S) -> UInt64) -> TensorStorage {
        func integers<T: FixedWidthInteger>(_: T.Type) -> [T] { a.map { T(truncatingIfNeeded: bits64($0)) } }
        switch target {
        case .float32: return .float32(a.map(float))
        case .float64: return .float64(a.map(double))
        case .float16: return .float16(a.map(half))
        case .bool: return .bool(a.map(isNonZero))
        case .int64: return .int64(integers(Int64.self))
        case .int32: return .int32(integers(Int32.self))
        case .int16: return .int16(integers(Int16.self))
        case .int8: return .int8(integers(Int8.self))
        case .uint64: return .uint64(integers(UInt64.self))
        case .uint32: return .uint32(integers(UInt32.self))
        case .uint16: return .uint16(integers(UInt16.self))
        case .uint8: return .uint8(integers(UInt8.self))
        }
    }

    /// The half-precision bits nearest to `v`. A double is first rounded to float32 "to odd"
    /// (an inexact result keeps its last bit set), so that rounding twice still gives the
    /// nearest half, as numpy's direct double-to-half conversion does.
    private func halfBits<S: FloatingElement>(_ v: S) -> UInt16 {
        var f = Float(v)
        if v.isFinite, f.isFinite, Double(f) != Double(v), f.bitPattern & 1 == 0 {
            f = Double(v) > Double(f) ? f.nextUp : f.nextDown
        }
        return HalfFloat.bits(f)
    }
}
