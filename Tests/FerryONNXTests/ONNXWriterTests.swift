import Foundation
import FerryIR
@testable import FerryONNX
import Testing

@Suite struct ONNXWriterTests {
    func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-writer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The streamed file decodes to the same model as the in-memory encoder's, weights inline.
    @Test(arguments: ["tiny_cnn", "every_op"])
    func streamedFileMatchesTheModel(_ which: String) throws {
        let graph = which == "tiny_cnn" ? try Graphs.cnn() : try Graphs.everyOp()
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("m.onnx")
        #expect(try ONNXExporter.write(graph, to: url) == nil)
        let streamed = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: url))
        let direct = try ONNXExporter.model(graph)
        var a = streamed, b = direct
        a.graph.initializer.sort { $0.name < $1.name }
        b.graph.initializer.sort { $0.name < $1.name }
        #expect(a == b)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["m.onnx"])
    }

    /// Over the threshold, weights of 1 KiB or more go to `m.onnx.data`; reading back gives the graph.
    @Test func externalDataWhenOverTheThreshold() throws {
        var b = GraphBuilder(name: "big", metadata: ["source_format": "test"])
        let x = b.addInput("x", TensorType(.float32, Shape([.symbolic("N"), .fixed(300)])))
        let w1 = b.addInitializer("w1", Tensor(shape: [300, 400], floats: Graphs.floats(120_000, seed: 1)))
        let b1 = b.addInitializer("b1", Tensor(shape: [400], floats: Graphs.floats(400, seed: 2)))
        let h = b.add(.gemm(GemmAttributes()), inputs: [x, w1, b1], output: "h", origin: nil)
        let small = b.addInitializer("small", Tensor(shape: [4], floats: [1, 2, 3, 4]))
        let r = b.add(.reshape(shape: [-1, 100, 4]), inputs: [h], output: "r", origin: nil)
        let y = b.add(.add, inputs: [r, small], output: "y", origin: nil)
        b.addOutput(y)
        let graph = try b.finish()

        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("m.onnx")
        let dataURL = try ONNXExporter.write(graph, to: url, externalDataThreshold: 100_000)
        #expect(dataURL?.lastPathComponent == "m.onnx.data")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["m.onnx", "m.onnx.data"])
        // The .onnx holds the small tensors only.
        #expect(try Data(contentsOf: url).count < 10_000)
        let proto = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: url))
        let locations = Dictionary(uniqueKeysWithValues: proto.graph.initializer.map { ($0.name, $0.dataLocation) })
        #expect(locations["w1"] == .external && locations["b1"] == .external && locations["small"] == .default)

        let back = try ONNXImporter.load(path: url.path)
        #expect(back.initializers == graph.initializers)
        #expect(back.nodes.map(\.op) == graph.nodes.map(\.op))
        // Without the data file the model is refused, naming the tensor.
        try FileManager.default.removeItem(at: dataURL!)
        #expect { try ONNXImporter.load(path: url.path) } throws: { e in
            (e as? FerryError)?.message.contains("w1") == true || (e as? FerryError)?.message.contains("b1") == true
        }
    }

    @Test func otherOpsetOnRequest() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("m.onnx")
        try ONNXExporter.write(try Graphs.cnn(), to: url, opset: 13)
        let proto = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: url))
        #expect(proto.opsetImport.first?.version == 13)
        #expect(proto.irVersion == 7)
        #expect(throws: FerryError.self) { try ONNXExporter.write(try Graphs.cnn(), to: url, opset: 99) }
    }
}
