import FerryIR

/// Cast between the IR's element types.
extension ReferenceKernels {
    /// Converts every element to `to` (ONNX Cast): floats to integers truncate toward zero
    /// (NaN, infinities and values beyond Int64 become Int64.min first, as x86's conversion
    /// does), integers wrap to narrower types (two's complement), nonzero (and NaN) is true,
    /// true is 1, and float32 to float16 rounds to nearest even.
    public static func cast(_ x: Tensor, to: DType) throws -> Tensor {
        enum Source {
            case floating([Float])
            case integer([Int64])
        }
        let source: Source
        switch x.storage {
        case .float32(let a): source = .floating(a)
        case .float16(let a): source = .floating(a.map(HalfFloat.value))
        case .bool(let a): source = .integer(a.map { $0 ? 1 : 0 })
        default: source = .integer(x.int64s!)
        }
        func integers() -> [Int64] {
            switch source {
            case .integer(let a): return a
            case .floating(let a):
                return a.map { v in
                    guard v.isFinite, let i = Int64(exactly: v.rounded(.towardZero)) else { return Int64.min }
                    return i
                }
            }
        }
        let storage: TensorStorage
        switch (to, source) {
        case (.float32, .floating(let a)): storage = .float32(a)
        case (.float32, .integer(let a)): storage = .float32(a.map { Float($0) })
        case (.float16, .floating(let a)): storage = .float16(a.map(HalfFloat.bits))
        case (.float16, .integer(let a)): storage = .float16(a.map { HalfFloat.bits(Float($0)) })
        case (.bool, .floating(let a)): storage = .bool(a.map { $0 != 0 })
        case (.bool, .integer(let a)): storage = .bool(a.map { $0 != 0 })
        case (.int64, _): storage = .int64(integers())
        case (.int32, _): storage = .int32(integers().map { Int32(truncatingIfNeeded: $0) })
        case (.int8, _): storage = .int8(integers().map { Int8(truncatingIfNeeded: $0) })
        case (.uint8, _): storage = .uint8(integers().map { UInt8(truncatingIfNeeded: $0) })
        }
        return try Tensor(shape: x.shape, storage: storage)
    }
}
