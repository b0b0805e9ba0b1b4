import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file mapped read-only. Pages read through it are given back (`release`) once their bytes
/// have been copied into a tensor or decoded, so that a model's weights are not resident twice:
/// once in the mapping and once in the IR (the ONNX and Caffe importers).
public final class MappedFile {
    public let path: String
    public let count: Int
    private let base: UnsafeMutableRawPointer?

    public init(path: String) throws {
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
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Bytes `range` of the file (which must lie inside it).
    public func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= count)
        return UnsafeRawBufferPointer(rebasing: bytes[range])
    }

    /// Drops the whole pages inside `range` from this process's resident memory (they stay in
    /// the page cache; reading them again faults them back in from the file).
    public func release(_ range: Range<Int>) {
        guard let base else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound + page - 1) / page * page
        let end = range.upperBound / page * page
        if end > start { _ = madvise(base + start, end - start, Int32(MADV_DONTNEED)) }
    }
}

/// Walks the fields of one protobuf message in a byte range.
public struct WireReader {
    public struct Field {
        public var number: Int
        public var wireType: Int
        /// Key and payload.
        public var whole: Range<Int>
        /// For length-delimited fields, the payload without its length.
        public var payload: Range<Int>
    }

    public let bytes: UnsafeRawBufferPointer
    public let end: Int
    public var position: Int
    public private(set) var failed = false

    public init(bytes: UnsafeRawBufferPointer, range: Range<Int>) {
        self.bytes = bytes
        end = range.upperBound
        position = range.lowerBound
    }

    /// The next field; nil at the end; .some(nil) for bytes that are not a well-formed field
    /// (group wire types included).
    public mutating func next() -> Field?? {
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

/// Protobuf wire-format pieces for the length-delimited fields the ONNX streaming writer emits
/// and the Caffe reader re-encodes.
public enum ProtobufWire {
    public static func varint(_ value: Int) -> [UInt8] {
        var v = UInt64(value)
        var bytes: [UInt8] = []
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
        return bytes
    }

    /// The key of a length-delimited field (wire type 2).
    public static func key(_ field: Int) -> [UInt8] { varint(field << 3 | 2) }
}
