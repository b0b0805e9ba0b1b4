import Foundation
import FerryIR
import SwiftProtobuf
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file mapped read-only. Pages read through it are given back (`release`) once their bytes
/// have been copied into a tensor, so that a model's weights are not resident twice: once in the
/// mapping and once in the IR.
final class MappedFile {
    let path: String
    let count: Int
    private let base: UnsafeMutableRawPointer?

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw FerryError("cannot open: \(String(cString: strerror(errno)))", file: path) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FerryError("cannot stat: \(String(cString: strerror(errno)))", file: path) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw FerryError("not a regular file", file: path) }
        count = Int(info.st_size)
        if count == 0 {
            base = nil
            return
        }
        guard let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw FerryError("cannot map: \(String(cString: strerror(errno)))", file: path)
        }
        base = p
    }

    deinit {
        if let base { munmap(base, count) }
    }

    /// The whole file.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Bytes `range` of the file (which must lie inside it).
    func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= count)
        return UnsafeRawBufferPointer(rebasing: bytes[range])
    }

    /// Drops the whole pages inside `range` from this process's resident memory (they stay in
    /// the page cache; reading them again faults them back in from the file).
    func release(_ range: Range<Int>) {
        guard let base else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound + page - 1) / page * page
        let end = range.upperBound / page * page
        if end > start { _ = madvise(base + start, end - start, Int32(MADV_DONTNEED)) }
    }
}

/// An .onnx file split at the wire level into the model without its weights' bytes, which
/// SwiftProtobuf decodes (small: nodes, attributes, value types), and the initializers, each a
/// TensorProto without raw_data plus where its raw_data lies in the file. SwiftProtobuf would
/// copy every raw_data into a Data of its own, holding the weights a second time beside the
/// mapped file; this way each weight is copied once, from the mapped file into its tensor.
struct ONNXWireSplit {
    /// ModelProto bytes with GraphProto.initializer (field 5 of ModelProto.graph, field 7) left out.
    var skeleton: [UInt8]
    /// Each graph initializer: the byte ranges of its fields but raw_data, and raw_data's bytes.
    var initializers: [(fields: [Range<Int>], raw: Range<Int>?)]

    /// The split of `bytes`, or nil when they are not laid out as one graph message whose
    /// initializers carry at most one raw_data each (merged repeated messages, groups,
    /// truncated fields): the caller then decodes the whole file, which reports any damage.
    init?(_ bytes: UnsafeRawBufferPointer) {
        var reader = WireReader(bytes: bytes, range: 0..<bytes.count)
        var modelFields: [UInt8] = []
        var graphRange: Range<Int>?
        while let field = reader.next() {
            guard let field else { return nil }
            if field.number == 7, field.wireType == 2 {
                guard graphRange == nil else { return nil }
                graphRange = field.payload
            } else {
                modelFields += bytes[field.whole]
            }
        }
        guard reader.failed == false else { return nil }
        var graphFields: [UInt8] = []
        var initializers: [(fields: [Range<Int>], raw: Range<Int>?)] = []
        if let graphRange {
            var graphReader = WireReader(bytes: bytes, range: graphRange)
            while let field = graphReader.next() {
                guard let field else { return nil }
                guard field.number == 5, field.wireType == 2 else {
                    graphFields += bytes[field.whole]
                    continue
                }
                var tensorReader = WireReader(bytes: bytes, range: field.payload)
                var fields: [Range<Int>] = []
                var raw: Range<Int>?
                while let tensorField = tensorReader.next() {
                    guard let tensorField else { return nil }
                    if tensorField.number == 9, tensorField.wireType == 2 {
                        guard raw == nil else { return nil }
                        raw = tensorField.payload
                    } else {
                        fields.append(tensorField.whole)
                    }
                }
                initializers.append((fields, raw))
            }
            modelFields += ProtobufWire.key(7) + ProtobufWire.varint(graphFields.count) + graphFields
        }
        skeleton = modelFields
        self.initializers = initializers
    }
}

/// Walks the fields of one protobuf message in a byte range.
struct WireReader {
    struct Field {
        var number: Int
        var wireType: Int
        /// Key and payload.
        var whole: Range<Int>
        /// For length-delimited fields, the payload without its length.
        var payload: Range<Int>
    }

    let bytes: UnsafeRawBufferPointer
    let end: Int
    var position: Int
    private(set) var failed = false

    init(bytes: UnsafeRawBufferPointer, range: Range<Int>) {
        self.bytes = bytes
        end = range.upperBound
        position = range.lowerBound
    }

    /// The next field; nil at the end; .some(nil) for bytes that are not a well-formed field
    /// (group wire types included).
    mutating func next() -> Field?? {
        guard position < end else { return nil }
        let start = position
        guard let key = varint(), key >> 3 > 0, key >> 3 <= UInt64(Int32.max) else { return fail() }
        let wireType = Int(key & 7)
        switch wireType {
        case 0:
            guard varint() != nil else { return fail() }
        case 1, 5:
            let size = wireType == 1 ? 8 : 4
            guard end - position >= size else { return fail() }
            position += size
        case 2:
            guard let length = varint(), length <= UInt64(end - position) else { return fail() }
            let payload = position..<(position + Int(length))
            position = payload.upperBound
            return .some(Field(number: Int(key >> 3), wireType: 2, whole: start..<position, payload: payload))
        default:
            return fail()
        }
        return .some(Field(number: Int(key >> 3), wireType: wireType, whole: start..<position, payload: position..<position))
    }

    private mutating func fail() -> Field?? {
        failed = true
        position = end
        return .some(nil)
    }

    private mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while position < end, shift < 64 {
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }
}
