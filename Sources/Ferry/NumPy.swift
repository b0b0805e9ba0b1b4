import Foundation
@_exported import FerryIR

/// NumPy `.npy` files (format versions 1.0, 2.0 and 3.0's header layout): the interchange
/// format for inputs and outputs. C order only; Fortran order is refused, not transposed,
/// so a caller never gets silently permuted data.
public enum NumPy {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// Reads a tensor. float64 files are accepted only with `float64AsFloat32` (models take
    /// float32 where numpy's default is float64); they are then rounded to float32.
    public static func read(path: String, float64AsFloat32: Bool = false) throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FerryError("cannot read file", file: path)
        }
        do {
            return try decode([UInt8](data), float64AsFloat32: float64AsFloat32)
        } catch let e as FerryError {
            throw e.inFile(path)
        }
    }

    /// Writes a tensor as `.npy` (version 1.0; 2.0 when the header needs it), atomically.
    public static func write(_ tensor: Tensor, path: String) throws {
        try writeFileAtomically(Data(encode(tensor)), to: path)
    }

    /// Writes every tensor to its path, or (on a failure) none of them.
    public static func writeAll(_ outputs: [(tensor: Tensor, path: String)]) throws {
        try writeFilesAtomically(outputs.map { (Data(encode($0.tensor)), $0.path) })
    }

    public static func decode(_ bytes: [UInt8], float64AsFloat32: Bool = false) throws -> Tensor {
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw FerryError("not a NumPy .npy file (bad magic)")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw FerryError("truncated .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw FerryError(".npy format version \(major).\(bytes[7]) is not supported (1.0, 2.0 and 3.0 are)")
        }
        guard headerStart + headerLength <= bytes.count,
              let header = String(bytes: bytes[headerStart..<(headerStart + headerLength)], encoding: major == 3 ? .utf8 : .isoLatin1)
        else { throw FerryError("truncated .npy header") }
        let fields = try parseHeader(header)
        if fields.fortranOrder {
            throw FerryError(".npy data is in Fortran order; save it in C order (numpy.ascontiguousarray)")
        }
        let (dtype, itemSize, swap, isFloat64) = try parseDescr(fields.descr, float64AsFloat32: float64AsFloat32)
        guard let count = checkedElementCount(fields.shape),
              case let (byteCount, overflow) = count.multipliedReportingOverflow(by: itemSize), !overflow else {
            throw FerryError(".npy shape \(fields.shape) is too large")
        }
        let dataStart = headerStart + headerLength
        guard bytes.count - dataStart == byteCount else {
            throw FerryError(".npy holds \(bytes.count - dataStart) data bytes, shape \(fields.shape) of \(fields.descr) needs \(byteCount)")
        }
        let payload = bytes[dataStart...]
        let storage: TensorStorage = payload.withUnsafeBytes { raw in
            func load<T>(_: T.Type, _ convert: (T) -> T = { $0 }) -> [T] {
                (0..<count).map { convert(raw.loadUnaligned(fromByteOffset: $0 * itemSize, as: T.self)) }
            }
            if isFloat64 {
                let values = load(UInt64.self) { swap ? $0.byteSwapped : $0 }
                return .float32(values.map { Float(Double(bitPattern: $0)) })
            }
            switch dtype {
            case .float32: return .float32(load(UInt32.self) { swap ? $0.byteSwapped : $0 }.map(Float.init(bitPattern:)))
            case .float16: return .float16(load(UInt16.self) { swap ? $0.byteSwapped : $0 })
            case .bfloat16: return .bfloat16(load(UInt16.self) { swap ? $0.byteSwapped : $0 })
            case .float64: return .float64(load(UInt64.self) { swap ? $0.byteSwapped : $0 }.map(Double.init(bitPattern:)))
            case .int64: return .int64(load(Int64.self) { swap ? $0.byteSwapped : $0 })
            case .int32: return .int32(load(Int32.self) { swap ? $0.byteSwapped : $0 })
            case .int16: return .int16(load(Int16.self) { swap ? $0.byteSwapped : $0 })
            case .uint64: return .uint64(load(UInt64.self) { swap ? $0.byteSwapped : $0 })
            case .uint32: return .uint32(load(UInt32.self) { swap ? $0.byteSwapped : $0 })
            case .uint16: return .uint16(load(UInt16.self) { swap ? $0.byteSwapped : $0 })
            case .int8: return .int8(load(Int8.self))
            case .uint8: return .uint8(load(UInt8.self))
            case .bool: return .bool(load(UInt8.self).map { $0 != 0 })
            case .string:
                // numpy's '<Un': n UTF-32 code units per element, padded with NULs.
                return .string((0..<count).map { i in
                    let units = (0..<(itemSize / 4)).map { k in
                        let u = raw.loadUnaligned(fromByteOffset: i * itemSize + 4 * k, as: UInt32.self)
                        return swap ? u.byteSwapped : u
                    }
                    let scalars = units.prefix { $0 != 0 }.map { Unicode.Scalar($0) ?? "\u{FFFD}" }
                    return String(String.UnicodeScalarView(scalars))
                })
            }
        }
        return try Tensor(shape: fields.shape, storage: storage)
    }

    /// bfloat16, which numpy lacks, is written widened to float32 (exactly); strings as
    /// numpy's '<Un' (UTF-32, n the longest element's length in code points).
    public static func encode(_ tensor: Tensor) -> [UInt8] {
        if case .bfloat16(let bits) = tensor.storage {
            return encode(try! Tensor(shape: tensor.shape, storage: .float32(bits.map(BFloat16.value))))
        }
        let longestText = tensor.strings.map { $0.map(\.unicodeScalars.count).max() ?? 0 } ?? 0
        let descr: String
        switch tensor.dtype {
        case .float32: descr = "<f4"
        case .float16: descr = "<f2"
        case .float64: descr = "<f8"
        case .int64: descr = "<i8"
        case .int32: descr = "<i4"
        case .int16: descr = "<i2"
        case .uint64: descr = "<u8"
        case .uint32: descr = "<u4"
        case .uint16: descr = "<u2"
        case .int8: descr = "|i1"
        case .uint8: descr = "|u1"
        case .bool: descr = "|b1"
        case .bfloat16: preconditionFailure("bfloat16 is written as float32 above")
        case .string: descr = "<U\(max(1, longestText))"
        }
        let shapeText = tensor.shape.isEmpty ? "()"
            : tensor.shape.count == 1 ? "(\(tensor.shape[0]),)"
            : "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        // Version 1.0 holds headers up to 65535 bytes; pad so the data starts 64-byte aligned.
        let version: UInt8 = header.utf8.count + 11 < 65_536 ? 1 : 2
        let prefix = version == 1 ? 10 : 12
        let padding = (64 - (prefix + header.utf8.count + 1) % 64) % 64
        header += String(repeating: " ", count: padding) + "\n"
        var out = magic + [version, 0]
        let n = header.utf8.count
        out += version == 1 ? [UInt8(n & 0xFF), UInt8(n >> 8)]
                            : [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)]
        out += Array(header.utf8)
        func append<T>(_ values: [T]) { values.withUnsafeBytes { out += $0 } }
        switch tensor.storage {
        case .float32(let a): append(a)
        case .float16(let a): append(a)
        case .float64(let a): append(a)
        case .int64(let a): append(a)
        case .int32(let a): append(a)
        case .int16(let a): append(a)
        case .uint64(let a): append(a)
        case .uint32(let a): append(a)
        case .uint16(let a): append(a)
        case .int8(let a): append(a)
        case .uint8(let a): append(a)
        case .bool(let a): append(a.map { $0 ? UInt8(1) : 0 })
        case .bfloat16: preconditionFailure("bfloat16 is written as float32 above")
        case .string(let a):
            let width = max(1, longestText)
            for text in a {
                let units = text.unicodeScalars.map(\.value)
                append(units.map(\.littleEndian) + [UInt32](repeating: 0, count: width - units.count))
            }
        }
        return out
    }

    struct Header {
        var descr: String
        var fortranOrder: Bool
        var shape: [Int]
    }

    /// Parses the Python dict literal numpy writes: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
    static func parseHeader(_ text: String) throws -> Header {
        func value(of key: String) throws -> Substring {
            guard let k = text.range(of: "'\(key)'"),
                  let colon = text[k.upperBound...].firstIndex(of: ":") else {
                throw FerryError(".npy header lacks '\(key)': \(text.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            return text[text.index(after: colon)...].drop(while: { $0 == " " })
        }
        let descrText = try value(of: "descr")
        guard descrText.first == "'", let end = descrText.dropFirst().firstIndex(of: "'") else {
            throw FerryError(".npy header 'descr' is not a simple type string (structured arrays are not supported)")
        }
        let descr = String(descrText[descrText.index(after: descrText.startIndex)..<end])
        let fortranText = try value(of: "fortran_order")
        let fortran: Bool
        if fortranText.hasPrefix("True") { fortran = true }
        else if fortranText.hasPrefix("False") { fortran = false }
        else { throw FerryError(".npy header 'fortran_order' is neither True nor False") }
        let shapeText = try value(of: "shape")
        guard shapeText.first == "(", let close = shapeText.firstIndex(of: ")") else {
            throw FerryError(".npy header 'shape' is not a tuple")
        }
        var shape: [Int] = []
        for part in shapeText[shapeText.index(after: shapeText.startIndex)..<close].split(separator: ",") {
            let trimmed = part.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "L", with: "")
            if trimmed.isEmpty { continue }
            guard let n = Int(trimmed), n >= 0 else { throw FerryError(".npy shape has a bad dimension '\(trimmed)'") }
            shape.append(n)
        }
        return Header(descr: descr, fortranOrder: fortran, shape: shape)
    }

    static func parseDescr(_ descr: String, float64AsFloat32: Bool) throws
        -> (dtype: DType, itemSize: Int, swap: Bool, isFloat64: Bool) {
        guard descr.count >= 3, let order = descr.first, "<>|=".contains(order) else {
            throw FerryError(".npy dtype '\(descr)' is not supported")
        }
        let swap = order == ">"
        switch descr.dropFirst() {
        case "f4": return (.float32, 4, swap, false)
        case "f2": return (.float16, 2, swap, false)
        case "f8":
            guard float64AsFloat32 else {
                throw FerryError(".npy holds float64; Ferry works in float32 (convert with astype(numpy.float32))")
            }
            return (.float32, 8, swap, true)
        case "i8": return (.int64, 8, swap, false)
        case "i4": return (.int32, 4, swap, false)
        case "i2": return (.int16, 2, swap, false)
        case "u8": return (.uint64, 8, swap, false)
        case "u4": return (.uint32, 4, swap, false)
        case "u2": return (.uint16, 2, swap, false)
        case "i1": return (.int8, 1, false, false)
        case "u1": return (.uint8, 1, false, false)
        case "b1": return (.bool, 1, false, false)
        case let code where code.hasPrefix("U"):
            guard let n = Int(code.dropFirst()), n > 0, n < 1 << 20 else { throw FerryError(".npy dtype '\(descr)' is not supported") }
            return (.string, 4 * n, swap, false)
        default: throw FerryError(".npy dtype '\(descr)' is not supported (float32, float16, float64, int64, int32, int16, int8, uint64, uint32, uint16, uint8, bool and unicode strings are)")
        }
    }
}

/// Writes to a temporary file in the destination's folder, then renames it into place, so a
/// failure never leaves a half-written output.
public func writeFileAtomically(_ data: Data, to path: String) throws {
    try writeFilesAtomically([(data, path)])
}

/// Writes several files so that a failure leaves none of them: each goes to a temporary file in
/// its destination's folder, and only once every one is written are they renamed into place
/// (`ferry run --output-dir` writes one file per output).
public func writeFilesAtomically(_ files: [(data: Data, path: String)]) throws {
    var temps: [(temp: URL, path: String)] = []
    func removeTemps(from first: Int = 0) {
        for entry in temps[first...] { try? FileManager.default.removeItem(at: entry.temp) }
    }
    for (data, path) in files {
        let url = URL(fileURLWithPath: path)
        let temp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).ferry-\(ProcessInfo.processInfo.processIdentifier).tmp")
        temps.append((temp, path))
        do {
            try data.write(to: temp)
        } catch {
            removeTemps()
            throw FerryError("cannot write: \(FerryError.reason(error))", file: path)
        }
    }
    for (i, entry) in temps.enumerated() {
        // rename(2) replaces the destination atomically.
        guard rename(entry.temp.path, entry.path) == 0 else {
            let reason = String(cString: strerror(errno))
            removeTemps(from: i)
            throw FerryError("cannot rename into place: \(reason)", file: entry.path)
        }
    }
}
