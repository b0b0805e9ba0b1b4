import Foundation
import Testing
import ZIPFoundation
import FerryIR
@testable import FerryKeras

/// `.keras` archives Keras never writes: the importer must refuse them with a FerryError.
@Suite struct KerasZipTests {
    /// Writes a zip with the given members (path, bytes) and returns its path.
    func zip(_ members: [(String, Data)]) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-\(UUID().uuidString).keras")
        let archive = try Archive(url: url, accessMode: .create)
        for (path, data) in members {
            try archive.addEntry(with: path, type: .file, uncompressedSize: Int64(data.count)) { position, size in
                data.subdata(in: Int(position)..<Int(position) + size)
            }
        }
        return url.path
    }

    let config = Data(#"{"class_name": "Sequential", "config": {"name": "s", "layers": []}}"#.utf8)

    @Test func membersEscapingTheArchiveAreRefused() throws {
        for bad in ["../evil.h5", "a/../../evil.h5", "/etc/evil"] {
            let path = try zip([("config.json", config), (bad, Data("x".utf8))])
            defer { try? FileManager.default.removeItem(atPath: path) }
            let e = #expect(throws: FerryError.self) { try KerasImporter.load(path: path) }
            #expect(e?.message.contains("leaves the archive") == true, "\(String(describing: e))")
            #expect(e?.file == path)
        }
    }

    @Test func missingMembersAreNamed() throws {
        let noWeights = try zip([("config.json", config)])
        defer { try? FileManager.default.removeItem(atPath: noWeights) }
        let e = #expect(throws: FerryError.self) { try KerasImporter.load(path: noWeights) }
        #expect(e?.message.contains("model.weights.h5") == true)

        let noConfig = try zip([("model.weights.h5", Data("not hdf5".utf8))])
        defer { try? FileManager.default.removeItem(atPath: noConfig) }
        let e2 = #expect(throws: FerryError.self) { try KerasImporter.load(path: noConfig) }
        #expect(e2?.message.contains("config.json") == true)
    }

    @Test func notAZipIsSaidSo() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-\(UUID().uuidString).keras")
        try Data("plain text".utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let e = #expect(throws: FerryError.self) { try KerasImporter.load(path: url.path) }
        #expect(e?.message.contains("not a zip") == true)
    }

    @Test func weightsInsideTheArchiveMustBeHDF5() throws {
        let path = try zip([("config.json", config), ("model.weights.h5", Data("not hdf5".utf8))])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let e = #expect(throws: FerryError.self) { try KerasImporter.load(path: path) }
        #expect(e?.message.contains("model.weights.h5") == true)
    }

    @Test func extractionNeedsTheDeclaredBytesFreeInTheTemporaryFolder() throws {
        let folder = FileManager.default.temporaryDirectory.path
        try KerasModelSource.checkFreeSpace(for: 1 << 20, in: folder)
        let e = #expect(throws: FerryError.self) { try KerasModelSource.checkFreeSpace(for: 1 << 62, in: folder) }
        #expect(e?.message.contains("free in the temporary folder \(folder)") == true, "\(String(describing: e))")
    }

    @Test func architectureJSONNeedsWeights() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-\(UUID().uuidString).json")
        try config.write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let e = #expect(throws: FerryError.self) { try KerasImporter.load(path: url.path) }
        #expect(e?.message.contains("--weights") == true)
    }

    @Test func autoNamesFollowKerasSnakeCase() {
        #expect(ModelConfig.snakeCase("Conv2D") == "conv2d")
        #expect(ModelConfig.snakeCase("PReLU") == "p_re_lu")
        #expect(ModelConfig.snakeCase("BatchNormalization") == "batch_normalization")
        #expect(ModelConfig.snakeCase("Functional") == "functional")
        #expect(ModelConfig.snakeCase("GlobalAveragePooling2D") == "global_average_pooling2d")
        // Keras 3.15's keras.src.utils.naming.to_snake_case on each name (printed by Python).
        let keras = ["ABCDef": "abc_def", "LSTMCell": "lstm_cell", "Conv2DTranspose": "conv2d_transpose", "ReLU": "re_lu",
                     "HTTPServer2X": "http_server2x", "aB": "a_b", "AbCdEf": "ab_cd_ef", "X": "x", "": "",
                     "TFOpLambda": "tf_op_lambda", "Dense_1Layer": "dense_1_layer", "ÉtéLayer": "été_layer",
                     "SimpleRNNCell": "simple_rnn_cell", "GRU": "gru", "layerNorm": "layer_norm"]
        for (name, expected) in keras { #expect(ModelConfig.snakeCase(name) == expected, "\(name)") }
    }
}
