import Foundation
import Testing
@testable import FerryCaffe
import FerryIR

/// Every Caffe fixture Caffe can express, written back to Caffe, keeps every weight bit for bit
/// (compared by the importer's `<layer>/<role>` names) and its layer names; nets with asymmetric
/// padding get the zero-extended-kernel form; errors name every node Caffe cannot express.
struct CaffeExportTests {
    /// Every fixture the importer reads (manifest `expect` "ok"): Caffe can express each.
    static var roundTripFixtures: [String] {
        let root = repositoryRoot.appendingPathComponent("fixtures/caffe").standardized
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.sorted().filter { name in
            guard let data = FileManager.default.contents(atPath: root.appendingPathComponent("\(name)/manifest.json").path),
                  let manifest = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
            return (manifest["expect"] as? String ?? "ok") == "ok"
        }
    }

    func reimport(_ graph: Graph) throws -> Graph {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-caffe-export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let written = try CaffeExporter.write(graph, to: folder.appendingPathComponent("net.prototxt").path)
        return try CaffeImporter.load(prototxt: written.prototxt, weights: written.caffemodel)
    }

    @Test(arguments: roundTripFixtures)
    func roundTripKeepsWeightsAndLayers(_ name: String) throws {
        let dir = repositoryRoot.appendingPathComponent("fixtures/caffe/\(name)").standardized
        let original = try CaffeImporter.load(prototxt: dir.appendingPathComponent("net.prototxt").path,
                                              weights: dir.appendingPathComponent("net.caffemodel").path)
        let again = try reimport(original)
        // Layers the importer reads as several ops come back from its records (ArgMax without an
        // axis, the forks' BN, Interp with crops or a second bottom, ...): the same nodes again.
        #expect(Set(again.initializers.keys) == Set(original.initializers.keys))
        for (key, tensor) in original.initializers {
            #expect(again.initializers[key] == tensor, "weight \(key) changed")
        }
        let layers = { (g: Graph) in g.nodes.map { $0.sourceLayer.name } }
        #expect(layers(again) == layers(original))
        #expect(again.nodes.map { "\($0.op)" } == original.nodes.map { "\($0.op)" })
        #expect(again.outputs.map(\.name) == original.outputs.map(\.name))
    }

    @Test func roundTripCoversTheExpressibleFixtures() {
        // Not an empty list by a wrong path: the fixtures added with the Caffe importer are in it.
        let fixtures = Set(Self.roundTripFixtures)
        #expect(fixtures.count >= 42)
        #expect(fixtures.isSuperset(of: ["lenet", "interp", "upsample", "upsample_unpool", "argmax", "argmax_topk", "bn_fork", "fcn",
                                         "ssd_head", "ssd_detection"]))
    }

    @Test func asymmetricPaddingBecomesZeroTapsWithSymmetricPads() throws {
        var b = GraphBuilder(name: "pad")
        let x = b.addInput("x", TensorType(.float32, Shape([.symbolic("N"), .fixed(2), .fixed(7), .fixed(7)])))
        let w = b.addInitializer("w", Tensor(shape: [3, 2, 3, 3], floats: (0..<54).map { Float($0) }))
        let y = b.add(.conv(ConvAttributes(kernelShape: [3, 3], strides: [2, 2], pads: [0, 1, 1, 1])), inputs: [x, w],
                      output: "y", origin: Origin(layer: "conv", type: "Conv2D"))
        b.addOutput(y)
        let export = try CaffeExporter.export(try b.finish())
        #expect(export.prototxt.contains("kernel_h: 4"))
        #expect(export.prototxt.contains("kernel_w: 3"))
        #expect(export.prototxt.contains("pad: 1"))
        let net = try Caffe_NetParameter(serializedBytes: export.caffemodel)
        let weights = net.layer.first { $0.name == "conv" }!.blobs[0]
        #expect(weights.shape.dim == [3, 2, 4, 3])
        // The added first row of taps is zero, the rest the original kernel.
        #expect(Array(weights.data[0..<3]) == [0, 0, 0])
        #expect(Array(weights.data[3..<12]) == (0..<9).map { Float($0) })
    }

    @Test func unexpressibleNodesAreAllListed() throws {
        var b = GraphBuilder(name: "bad")
        let x = b.addInput("x", TensorType(.float32, Shape([.symbolic("N"), .fixed(4)])))
        let g = b.add(.gelu(approximate: false), inputs: [x], output: "g", origin: Origin(layer: "act", type: "Activation"))
        let m = b.add(.hardSwish, inputs: [g], output: "h", origin: Origin(layer: "hs", type: "Activation"))
        let s = b.add(.thresholdedRelu(alpha: 0.4), inputs: [x], output: "s", origin: Origin(layer: "step", type: "Activation"))
        b.addOutput(m)
        b.addOutput(s)
        #expect {
            try CaffeExporter.export(try b.finish())
        } throws: { error in
            let e = error as! FerryError
            // The Gelu and the ThresholdedRelu; the HardSwish after the Gelu is not reported on its own.
            return e.layer == "act" && e.message.contains("2 node(s)") && e.message.contains("Gelu")
                && e.message.contains("step (Activation, ThresholdedRelu)") && !e.message.contains("HardSwish")
        }
    }
}
