import Foundation
import FerryIR

/// ONNX TensorProto and TypeProto read into IR tensors and types.
enum ONNXImportTensors {
    /// The IR dtype of a TensorProto.DataType number, or an error naming the ONNX type.
    static func dtype(_ code: Int32, what: String) throws -> DType {
        switch Onnx_TensorProto.DataType(rawValue: Int(code)) {
        case .float: return .float32
        case .float16: return .float16
        case .bfloat16: return .bfloat16
        case .double: return .float64
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
        case let other?:
            throw FerryError("\(what) has element type \(other) (\(code)), which Ferry's IR does not have "
                             + "(" + DType.allCases.map(\.description).joined(separator: ", ") + ")")
        case nil:
            throw FerryError("\(what) has unknown element type \(code)")
        }
    }

    /// A value's tensor type. Unknown dimensions (neither dim_value nor dim_param) get a
    /// symbolic name made from the value's name and the axis, so that they stay distinct.
    static func tensorType(_ info: Onnx_ValueInfoProto) throws -> TensorType {
        let what = "value '\(info.name)'"
        guard case .tensorType(let t)? = info.type.value else {
            let kind = info.type.value.map { "\($0)".split(separator: "(").first.map(String.init) ?? "?" } ?? "no type"
            throw FerryError("\(what) is not a tensor (\(kind)); Ferry's IR holds tensors only")
        }
        let dtype = try dtype(t.elemType, what: what)
        guard t.hasShape else {
            throw FerryError("\(what) has no shape (not even a rank); Ferry needs at least the rank")
        }
        let dims: [Dim] = try t.shape.dim.enumerated().map { i, d in
            switch d.value {
            case .dimValue(let n):
                guard n >= 0, n <= Int64(Int32.max) else { throw FerryError("\(what) has dimension \(n)") }
                return .fixed(Int(n))
            case .dimParam(let s) where !s.isEmpty: return .symbolic(s)
            default: return .symbolic("\(info.name)_dim\(i)")
            }
        }
        return TensorType(dtype, Shape(dims))
    }

    /// Where external tensor data may be read from: the model's folder (nil: external data
    /// refused). Each data file is mapped once per import.
    final class ExternalData {
        let directory: URL
        private var files: [String: MappedFile] = [:]

        init(directory: URL) { self.directory = directory }

        func file(_ path: String) throws -> MappedFile {
            if let f = files[path] { return f }
            let f = try MappedFile(path: path)
            files[path] = f
            return f
        }
    }

    /// A TensorProto's elements as an IR tensor: raw_data or the typed repeated fields, or
    /// external data in a file beside the model (location, offset, length). `raw` is raw_data
    /// the caller kept out of `proto` (still in a mapped file, see `ONNXWireSplit`).
    static func tensor(_ proto: Onnx_TensorProto, raw: (bytes: UnsafeRawBufferPointer, release: (Range<Int>) -> Void)? = nil,
                       external: ExternalData?) throws -> Tensor {
        let what = "tensor '\(proto.name)'"
        let dtype = try dtype(proto.dataType, what: what)
        guard proto.dims.allSatisfy({ $0 >= 0 && $0 <= Int64(Int32.max) }) else {
            throw FerryError("\(what) has dims \(proto.dims)")
        }
        let shape = proto.dims.map { Int($0) }
        guard let count = checkedElementCount(shape), count.multipliedReportingOverflow(by: dtype.byteSize).overflow == false else {
            throw FerryError("\(what) with dims \(shape) is too large")
        }
        if proto.hasSegment { throw FerryError("\(what) is a segment of a tensor, which Ferry does not read") }
        let storage: TensorStorage
        if dtype == .string {
            // ONNX keeps strings in string_data only (never raw_data or external data).
            guard proto.dataLocation != .external, raw == nil, !proto.hasRawData else {
                throw FerryError("\(what) is a string tensor with raw or external data; ONNX keeps strings in string_data")
            }
            storage = try strings(proto, count: count, what: what)
        } else if proto.dataLocation == .external {
            guard let external else { throw FerryError("\(what) keeps its data in an external file, and no folder was given to read it from") }
            let (file, range) = try externalRange(proto, count: count * dtype.byteSize, in: external)
            storage = try fromRaw(file.bytes(range), dtype: dtype, count: count, what: what) { copied in
                file.release((range.lowerBound + copied.lowerBound)..<(range.lowerBound + copied.upperBound))
            }
        } else if let raw {
            storage = try fromRaw(raw.bytes, dtype: dtype, count: count, what: what, release: raw.release)
        } else if proto.hasRawData {
            storage = try proto.rawData.withUnsafeBytes { try fromRaw($0, dtype: dtype, count: count, what: what) }
        } else {
            storage = try fromTyped(proto, dtype: dtype, count: count, what: what)
        }
        return try Tensor(shape: shape, storage: storage)
    }

    /// string_data as text; elements must be UTF-8 (Ferry's strings are Swift Strings).
    static func strings(_ proto: Onnx_TensorProto, count: Int, what: String) throws -> TensorStorage {
        guard proto.stringData.count == count else {
            throw FerryError("\(what) has \(proto.stringData.count) values in string_data for \(count) elements")
        }
        return .string(try proto.stringData.enumerated().map { i, bytes in
            guard let text = String(data: bytes, encoding: .utf8) else {
                throw FerryError("\(what) element \(i) is not UTF-8 text, which Ferry's string tensors need")
            }
            return text
        })
    }

    /// Little-endian raw bytes as typed storage. `release` is told each byte range of `data`
    /// once it has been copied (in chunks of 1 MiB), so that a mapped file's pages can be
    /// given back while a large tensor is still being read (a chunk is held twice for a moment:
    /// 16 MiB chunks put 12 MB on the peak of `ferry run` on a model whose largest weight is 36 MB).
    static func fromRaw(_ data: UnsafeRawBufferPointer, dtype: DType, count: Int, what: String,
                        release: ((Range<Int>) -> Void)? = nil) throws -> TensorStorage {
        guard data.count == count * dtype.byteSize else {
            throw FerryError("\(what) has \(data.count) bytes of data for \(count) \(dtype) elements")
        }
        let chunkElements = max(1, (1 << 20) / dtype.byteSize)
        func load<T>(_ element: (Int) -> T) -> [T] {
            [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                var start = 0
                while start < count {
                    let end = min(start + chunkElements, count)
                    for i in start..<end { buffer[i] = element(i) }
                    release?((start * dtype.byteSize)..<(end * dtype.byteSize))
                    start = end
                }
                initialized = count
            }
        }
        func integer<T: FixedWidthInteger>(_: T.Type) -> [T] {
            load { T(littleEndian: data.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) }
        }
        switch dtype {
        case .float32:
            // Straight into the tensor's array: no intermediate copy of a large weight.
            #if _endian(little)
            return .float32([Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                var start = 0
                while start < count {
                    let end = min(start + chunkElements, count)
                    UnsafeMutableRawPointer(buffer.baseAddress! + start)
                        .copyMemory(from: data.baseAddress! + 4 * start, byteCount: 4 * (end - start))
                    release?((4 * start)..<(4 * end))
                    start = end
                }
                initialized = count
            })
            #else
            return .float32(load { Float(bitPattern: UInt32(littleEndian: data.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) })
            #endif
        case .float16: return .float16(integer(UInt16.self))
        case .bfloat16: return .bfloat16(integer(UInt16.self))
        case .float64: return .float64(load { Double(bitPattern: UInt64(littleEndian: data.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))) })
        case .int64: return .int64(integer(Int64.self))
        case .int32: return .int32(integer(Int32.self))
        case .int16: return .int16(integer(Int16.self))
        case .int8: return .int8(integer(Int8.self))
        case .uint64: return .uint64(integer(UInt64.self))
        case .uint32: return .uint32(integer(UInt32.self))
        case .uint16: return .uint16(integer(UInt16.self))
        case .uint8: return .uint8(integer(UInt8.self))
        case .bool: return .bool(load { data[$0] != 0 })
        case .string: throw FerryError("\(what) is a string tensor with raw data; ONNX keeps strings in string_data")
        }
    }

    /// The typed repeated fields (float_data; double_data; int32_data for int32, int16, int8,
    /// uint16, uint8, bool and the bits of float16 and bfloat16; int64_data; uint64_data for uint32 and uint64).
    static func fromTyped(_ proto: Onnx_TensorProto, dtype: DType, count: Int, what: String) throws -> TensorStorage {
        func checked<T>(_ values: [T], _ field: String) throws -> [T] {
            guard values.count == count else {
                throw FerryError("\(what) has \(values.count) values in \(field) for \(count) elements")
            }
            return values
        }
        switch dtype {
        case .float32: return .float32(try checked(proto.floatData, "float_data"))
        case .int64: return .int64(try checked(proto.int64Data, "int64_data"))
        case .int32: return .int32(try checked(proto.int32Data, "int32_data"))
        case .float16: return .float16(try checked(proto.int32Data, "int32_data").map { UInt16(truncatingIfNeeded: $0) })
        case .bfloat16: return .bfloat16(try checked(proto.int32Data, "int32_data").map { UInt16(truncatingIfNeeded: $0) })
        case .float64: return .float64(try checked(proto.doubleData, "double_data"))
        case .int16: return .int16(try checked(proto.int32Data, "int32_data").map { Int16(truncatingIfNeeded: $0) })
        case .uint16: return .uint16(try checked(proto.int32Data, "int32_data").map { UInt16(truncatingIfNeeded: $0) })
        case .uint32: return .uint32(try checked(proto.uint64Data, "uint64_data").map { UInt32(truncatingIfNeeded: $0) })
        case .uint64: return .uint64(try checked(proto.uint64Data, "uint64_data"))
        case .int8: return .int8(try checked(proto.int32Data, "int32_data").map { Int8(truncatingIfNeeded: $0) })
        case .uint8: return .uint8(try checked(proto.int32Data, "int32_data").map { UInt8(truncatingIfNeeded: $0) })
        case .bool: return .bool(try checked(proto.int32Data, "int32_data").map { $0 != 0 })
        case .string: return try strings(proto, count: count, what: what)
        }
    }

    /// Where an external tensor's bytes lie: its data file (mapped) and the byte range in it.
    /// The file must lie inside the model's folder: a location that is absolute or climbs out
    /// of it (`..`, a symbolic link) is refused.
    static func externalRange(_ proto: Onnx_TensorProto, count: Int, in external: ExternalData) throws -> (MappedFile, Range<Int>) {
        let what = "tensor '\(proto.name)'"
        var location: String?
        var offset = 0
        var length: Int?
        for entry in proto.externalData {
            switch entry.key {
            case "location": location = entry.value
            case "offset":
                guard let n = Int(entry.value), n >= 0 else { throw FerryError("\(what) has external offset '\(entry.value)'") }
                offset = n
            case "length":
                guard let n = Int(entry.value), n >= 0 else { throw FerryError("\(what) has external length '\(entry.value)'") }
                length = n
            default: break  // checksum and unknown keys are informative only
            }
        }
        guard let location, !location.isEmpty else { throw FerryError("\(what) is external but names no location") }
        if let length, length != count {
            throw FerryError("\(what) has external length \(length) for \(count) bytes of elements")
        }
        let base = external.directory.standardizedFileURL.resolvingSymlinksInPath()
        let url = base.appendingPathComponent(location).standardizedFileURL.resolvingSymlinksInPath()
        guard !location.hasPrefix("/"), url.pathComponents.count > base.pathComponents.count,
              Array(url.pathComponents.prefix(base.pathComponents.count)) == base.pathComponents else {
            throw FerryError("\(what) names external data '\(location)' outside the model's folder; refusing to read it")
        }
        let file: MappedFile
        do {
            file = try external.file(url.path)
        } catch let e as FerryError {
            throw FerryError("\(what): cannot read external data file '\(location)': \(e.message)")
        }
        guard offset <= file.count, count <= file.count - offset else {
            throw FerryError("\(what): external data file '\(location)' ends before offset \(offset) + \(count) bytes")
        }
        return (file, offset..<(offset + count))
    }
}
