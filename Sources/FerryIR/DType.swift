/// Element types a tensor can hold. Names and meanings follow ONNX's TensorProto.DataType.
public enum DType: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case float32, float16, bfloat16, float64, int64, int32, int16, int8, uint64, uint32, uint16, uint8, bool
    /// Text elements (ONNX's STRING: bytes, which Ferry requires to be UTF-8). Only data
    /// movement and Cast take them; no arithmetic does.
    case string

    /// Bytes per element in contiguous storage. For string, the size of one element's
    /// reference in memory (its characters live elsewhere): a figure for memory estimates,
    /// never a file layout (ONNX keeps strings in string_data, not raw_data).
    public var byteSize: Int {
        switch self {
        case .float64, .int64, .uint64: return 8
        case .float32, .int32, .uint32: return 4
        case .float16, .bfloat16, .int16, .uint16: return 2
        case .int8, .uint8, .bool: return 1
        case .string: return MemoryLayout<String>.stride
        }
    }

    public var isFloatingPoint: Bool { self == .float32 || self == .float16 || self == .bfloat16 || self == .float64 }

    /// Whether the type holds integers (signed or not; bool is not an integer type).
    public var isInteger: Bool { !isFloatingPoint && self != .bool && self != .string }

    public var description: String { rawValue }
}
