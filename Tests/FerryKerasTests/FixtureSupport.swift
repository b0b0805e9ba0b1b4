import Foundation
import FerryIR
@testable import FerryKeras

/// The repository's `fixtures/keras` directory, found from this file's path.
let kerasFixtures: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("fixtures/keras")

/// One saved file of a fixture model with what its manifest says about it.
struct FixtureVariant: CustomStringConvertible, Sendable {
    var model: String
    var file: String
    /// The weights file of an architecture JSON.
    var weights: String?
    var expectError: Bool
    var errorLayer: String?
    var inputs: [(name: String, npy: String)]
    var outputs: [(name: String, npy: String)]
    /// The batch size the model's inputs fix (stateful recurrent layers need one); nil: open.
    var fixedBatch: Int?

    /// The batch axis the imported graph should have.
    var batchDim: Dim { fixedBatch.map { .fixed($0) } ?? .symbolic("N") }

    var path: String { kerasFixtures.appendingPathComponent(model).appendingPathComponent(file).path }
    var weightsPath: String? { weights.map { kerasFixtures.appendingPathComponent(model).appendingPathComponent($0).path } }
    /// The source_format the importer reports for this kind of file.
    var format: String { file.hasSuffix(".keras") ? "keras" : file.hasSuffix(".json") ? "keras-json" : "keras-h5" }
    var isKeras3: Bool { file.hasPrefix("keras3") }
    var description: String { "\(model)/\(file)" }

    func npyShape(_ npy: String) throws -> [Int] {
        try readNpyShape(kerasFixtures.appendingPathComponent(model).appendingPathComponent(npy))
    }

    /// The element type of a fixture array (float32, int32 / int64 ids, or bool masks).
    func npyDType(_ npy: String) throws -> DType {
        let url = kerasFixtures.appendingPathComponent(model).appendingPathComponent(npy)
        let header = String(decoding: try Data(contentsOf: url).prefix(256), as: UTF8.self)
        for (descr, dtype) in [("'<f4'", DType.float32), ("'<i4'", .int32), ("'<i8'", .int64), ("'|b1'", .bool)] where header.contains(descr) {
            return dtype
        }
        throw FerryError("unexpected .npy dtype", file: url.path)
    }
}

/// All variants of all fixture models (empty when the fixtures are absent).
func fixtureVariants(expectError: Bool? = nil) -> [FixtureVariant] {
    let models = (try? FileManager.default.contentsOfDirectory(atPath: kerasFixtures.path)) ?? []
    var all: [FixtureVariant] = []
    for model in models.sorted() {
        let manifestURL = kerasFixtures.appendingPathComponent(model).appendingPathComponent("manifest.json")
        guard let data = try? Data(contentsOf: manifestURL),
              let manifest = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let variants = manifest["variants"] as? [[String: Any]] else { continue }
        let isError = manifest["expect"] as? String == "error"
        if let expectError, expectError != isError { continue }
        func pairs(_ v: Any?) -> [(name: String, npy: String)] {
            ((v as? [[String: Any]]) ?? []).map { ($0["name"] as? String ?? "", $0["npy"] as? String ?? "") }
        }
        for v in variants {
            all.append(FixtureVariant(model: model, file: v["file"] as? String ?? "", weights: v["weights"] as? String,
                                      expectError: isError,
                                      errorLayer: manifest["error_layer"] as? String,
                                      inputs: pairs(v["inputs"]), outputs: pairs(v["outputs"]),
                                      fixedBatch: manifest["fixed_batch"] as? Int))
        }
    }
    return all
}

/// The shape in a .npy file's header.
func readNpyShape(_ url: URL) throws -> [Int] {
    let data = try Data(contentsOf: url)
    let bytes = [UInt8](data.prefix(4096))
    guard bytes.count > 10, bytes[0] == 0x93, String(decoding: bytes[1..<6], as: UTF8.self) == "NUMPY" else {
        throw FerryError("not a .npy file", file: url.path)
    }
    let major = bytes[6]
    let (start, length) = major == 1
        ? (10, Int(bytes[8]) | Int(bytes[9]) << 8)
        : (12, Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24)
    let header = String(decoding: bytes[start..<min(start + length, bytes.count)], as: UTF8.self)
    guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
        throw FerryError("no shape in .npy header", file: url.path)
    }
    return header[open.upperBound..<close].split(separator: ",").compactMap {
        Int($0.trimmingCharacters(in: .whitespaces))
    }
}

/// Reads a layer's Keras-layout weights straight from the file, in weight_names order.
func kerasWeights(_ path: String, layer: String) throws -> [H5FloatArray] {
    try HDF5.withLibrary {
        let source = try KerasModelSource.legacyH5(path: path)
        return try source.store.weights(layerPath: [LayerKey(name: layer, autoName: "")], groups: [[]]).map {
            try source.store.h5.readFloats($0.path)
        }
    }
}

extension Graph {
    func node(producing value: String) -> Node? { nodes.first { $0.outputs.contains(value) } }
    func nodes(_ opName: String) -> [Node] { nodes.filter { $0.op.name == opName } }
}
