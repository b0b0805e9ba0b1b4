/// Element types a tensor can hold. Names and meanings follow ONNX's TensorProto.DataType.
public enum DType: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case float32, float16, int64, int32, int8, uint8, bool

    /// Bytes per element in contiguous storage.
    public var byteSize: Int {
        switch self {
        case .float32, .int32: return 4
        case .float16: return 2
        case .int64: return 8
        case .int8, .uint8, .bool: return 1
        }
    }

    public var isFloatingPoint: Bool { self == .float32 || self == .float16 }

    public var description: String { rawValue }
}
