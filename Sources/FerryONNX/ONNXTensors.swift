import Foundation
import FerryIR

/// IR dtypes, shapes and tensors as ONNX protos.
enum ONNXTensors {
    /// The TensorProto.DataType number of a dtype (TypeProto.Tensor.elem_type, TensorProto.data_type).
    static func dataType(_ dtype: DType) -> Onnx_TensorProto.DataType {
        switch dtype {
        case .float32: return .float
        case .float16: return .float16
        case .bfloat16: return .bfloat16
        case .float64: return .double
        case .int64: return .int64
        case .int32: return .int32
        case .int16: return .int16
        case .int8: return .int8
        case .uint64: return .uint64
        case .uint32: return .uint32
        case .uint16: return .uint16
        case .uint8: return .uint8
        case .bool: return .bool
        case .string: return .string
        }
    }

    /// A shape: fixed sizes as dim_value, named sizes as dim_param. A size the IR could not
    /// name ("?", left by Reshape's -1 on a symbolic input) stays an unknown dimension.
    static func shape(_ shape: Shape) -> Onnx_TensorShapeProto {
        var proto = Onnx_TensorShapeProto()
        proto.dim = shape.dims.map { d in
            var dim = Onnx_TensorShapeProto.Dimension()
            switch d {
            case .fixed(let n): dim.dimValue = Int64(n)
            case .symbolic(let name) where name.isEmpty || name.contains("?"): break
            case .symbolic(let name): dim.dimParam = name
            }
            return dim
        }
        return proto
    }

    /// A value's name and tensor type.
    static func valueInfo(_ name: String, _ type: TensorType) -> Onnx_ValueInfoProto {
        var tensorType = Onnx_TypeProto.Tensor()
        tensorType.elemType = Int32(dataType(type.dtype).rawValue)
        tensorType.shape = shape(type.shape)
        var proto = Onnx_ValueInfoProto()
        proto.name = name
        proto.type.tensorType = tensorType
        return proto
    }

    /// A named tensor with its elements as little-endian raw_data (strings, which ONNX never
    /// keeps in raw_data, as UTF-8 in string_data).
    static func tensor(_ name: String, _ tensor: Tensor) -> Onnx_TensorProto {
        var proto = Onnx_TensorProto()
        proto.name = name
        proto.dims = tensor.shape.map(Int64.init)
        proto.dataType = Int32(dataType(tensor.dtype).rawValue)
        if case .string(let texts) = tensor.storage {
            proto.stringData = texts.map { Data($0.utf8) }
        } else {
            proto.rawData = rawData(tensor.storage)
        }
        return proto
    }

    /// The elements' bytes in little-endian order (ONNX raw_data); bool as one byte 0 or 1.
    /// Precondition: not strings (see `tensor`).
    static func rawData(_ storage: TensorStorage) -> Data {
        switch storage {
        case .float32(let a):
            #if _endian(little)
            return a.withUnsafeBytes { Data($0) }
            #else
            return littleEndianBytes(a.map(\.bitPattern))
            #endif
        case .float16(let a), .bfloat16(let a): return littleEndianBytes(a)
        case .float64(let a): return littleEndianBytes(a.map(\.bitPattern))
        case .int64(let a): return littleEndianBytes(a)
        case .int32(let a): return littleEndianBytes(a)
        case .int16(let a): return littleEndianBytes(a)
        case .uint64(let a): return littleEndianBytes(a)
        case .uint32(let a): return littleEndianBytes(a)
        case .uint16(let a): return littleEndianBytes(a)
        case .int8(let a): return a.withUnsafeBytes { Data($0) }
        case .uint8(let a): return Data(a)
        case .bool(let a): return Data(a.map { $0 ? 1 : 0 })
        case .string: preconditionFailure("string tensors are written as string_data")
        }
    }

    private static func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> Data {
        #if _endian(little)
        return values.withUnsafeBytes { Data($0) }
        #else
        return values.map(\.littleEndian).withUnsafeBytes { Data($0) }
        #endif
    }
}
