import Foundation
import Testing
@testable import Ferry

/// The repository root, found from this file's path.
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let npyFixtures = repoRoot.appendingPathComponent("fixtures/npy")

struct NumPyCase: Decodable {
    var dtype: String?
    var shape: [Int]?
    var values: [Double]?
    var version: String?
    var refused: String?
}

func loadNumPyManifest() throws -> [String: NumPyCase] {
    let data = try Data(contentsOf: npyFixtures.appendingPathComponent("values.json"))
    return try JSONDecoder().decode([String: NumPyCase].self, from: data)
}

/// Elements of a tensor as Doubles, whatever its type (float16 decoded from its bits).
func doubles(_ t: Tensor) -> [Double] {
    switch t.storage {
    case .float32(let a): return a.map(Double.init)
    case .float16(let a): return a.map { bits in
        let sign: Double = bits & 0x8000 != 0 ? -1 : 1
        let exponent = Int(bits >> 10 & 0x1F), mantissa = Double(bits & 0x3FF)
        if exponent == 0 { return sign * mantissa * pow(2, -24) }
        return sign * (1 + mantissa / 1024) * pow(2, Double(exponent - 15))
    }
    case .float64(let a): return a
    case .int64(let a): return a.map(Double.init)
    case .int32(let a): return a.map(Double.init)
    case .int16(let a): return a.map(Double.init)
    case .uint64(let a): return a.map(Double.init)
    case .uint32(let a): return a.map(Double.init)
    case .uint16(let a): return a.map(Double.init)
    case .int8(let a): return a.map(Double.init)
    case .uint8(let a): return a.map(Double.init)
    case .bool(let a): return a.map { $0 ? 1 : 0 }
    case .bfloat16(let a): return a.map { Double(Float(bitPattern: UInt32($0) << 16)) }
    case .string(let a): return a.map { Double($0) ?? .nan }
    }
}

@Suite struct NumPyTests {
    @Test func readsEveryFileNumpyWrote() throws {
        let manifest = try loadNumPyManifest()
        #expect(manifest.count >= 12)
        for (name, expected) in manifest where expected.refused == nil {
            let path = npyFixtures.appendingPathComponent("\(name).npy").path
            let tensor = try NumPy.read(path: path, float64AsFloat32: true)
            #expect(tensor.shape == expected.shape!, "\(name)")
            let want = expected.values!
            let got = doubles(tensor)
            #expect(got.count == want.count, "\(name)")
            for (g, w) in zip(got, want) {
                // float64 files are rounded to float32 on request; everything else is exact.
                let tol = expected.dtype == "float64" ? abs(w) * 1e-7 : 0
                #expect(abs(g - w) <= tol, "\(name): \(g) vs \(w)")
            }
        }
    }

    @Test func mapsNumpyDtypes() throws {
        let expected: [String: DType] = [
            "float32_2x3x4": .float32, "float16_5": .float16, "int32_4x1": .int32, "int64_6": .int64,
            "int8_3": .int8, "uint8_2x2": .uint8, "bool_5": .bool, "float32_v2_3x5": .float32,
            "float32_bigendian_3": .float32,
        ]
        for (name, dtype) in expected {
            let t = try NumPy.read(path: npyFixtures.appendingPathComponent("\(name).npy").path)
            #expect(t.dtype == dtype, "\(name)")
        }
    }

    @Test func float64NeedsTheRequest() throws {
        let path = npyFixtures.appendingPathComponent("float64_3x2.npy").path
        #expect(throws: FerryError.self) { try NumPy.read(path: path) }
        #expect(try NumPy.read(path: path, float64AsFloat32: true).dtype == .float32)
    }

    @Test func refusesFortranOrderNamingTheFile() throws {
        let path = npyFixtures.appendingPathComponent("fortran_order_2x3.npy").path
        do {
            _ = try NumPy.read(path: path)
            Issue.record("Fortran-order file was accepted")
        } catch let e as FerryError {
            #expect(e.description.contains("Fortran order"))
            #expect(e.description.contains("fortran_order_2x3.npy"))
        }
    }

    @Test func writtenFilesReadBackIdentically() throws {
        let tensors: [Tensor] = [
            Tensor(shape: [2, 3], floats: [1, -2, 3.5, 0, .pi, -1e-30]),
            Tensor(shape: [], floats: [7]),
            Tensor(shape: [4], int64s: [Int64.min, -1, 0, Int64.max]),
            try Tensor(shape: [3], storage: .bool([true, false, true])),
            try Tensor(shape: [1, 2], storage: .uint8([0, 255])),
            try Tensor(shape: [2], storage: .int32([-5, 6])),
        ]
        for t in tensors {
            let bytes = NumPy.encode(t)
            // Data starts 64-byte aligned, as numpy writes it.
            let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            #expect((10 + headerLength) % 64 == 0)
            #expect(try NumPy.decode(bytes) == t)
        }
    }

    @Test func rejectsDamagedFiles() throws {
        let good = NumPy.encode(Tensor(shape: [2, 2], floats: [1, 2, 3, 4]))
        #expect(throws: FerryError.self) { try NumPy.decode(Array(good.dropLast(1))) }
        #expect(throws: FerryError.self) { try NumPy.decode(Array(good.prefix(8))) }
        var badMagic = good
        badMagic[1] = 0x41
        #expect(throws: FerryError.self) { try NumPy.decode(badMagic) }
        let header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (9999999999999, 999999999), }\n".utf8)
        let hugeShape = NumPy.magic + [1, 0, UInt8(header.count), 0] + header + [0, 0, 0, 0]
        #expect(throws: FerryError.self) { try NumPy.decode(hugeShape) }
    }
}

/// `ferry run --output-dir` writes all outputs or none: a failure on one file removes the
/// temporary files of the others and renames nothing into place.
@Suite struct AtomicOutputSetTests {
    @Test func aFailureLeavesNoFileOfTheSet() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-atomic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = dir.appendingPathComponent("first.npy").path
        let unwritable = dir.appendingPathComponent("no-such-folder/second.npy").path
        let tensor = Tensor(shape: [2], floats: [1, 2])
        #expect(throws: FerryError.self) { try NumPy.writeAll([(tensor, first), (tensor, unwritable)]) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        let second = dir.appendingPathComponent("second.npy").path
        try NumPy.writeAll([(tensor, first), (tensor, second)])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["first.npy", "second.npy"])
        #expect(try NumPy.read(path: second) == tensor)
    }
}
