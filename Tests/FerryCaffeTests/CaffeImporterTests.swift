import Foundation
import Testing
@testable import FerryCaffe
import FerryIR

/// The repository root (Tests/FerryCaffeTests/<file> -> up three).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// The real-world deploy prototxts beside the project (see ../shared/reference/caffe/SOURCES.md).
let referencePrototxts = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/reference/caffe/prototxt")

/// Layer types of the reference nets the importer does not build yet (waiting for IR ops).
/// A net using one must fail naming that layer; every other net must import and verify.
let pendingLayerTypes: Set<String> = []

func net(_ text: String) throws -> Caffe_NetParameter { try Caffe_NetParameter(textFormatString: text) }

@Suite struct ReferencePrototxtTests {
    /// Structure only: weights are zero-filled (`missingWeights: .zeros`), as no caffemodel is
    /// stored beside the reference prototxts.
    @Test func everyReferencePrototxtImportsOrNamesAPendingLayer() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: referencePrototxts.path)
            .filter { $0.hasSuffix(".prototxt") }.sorted()
        try #require(files.count >= 21, "reference prototxts not found at \(referencePrototxts.path)")
        var imported: [String] = []
        for file in files {
            let path = referencePrototxts.appendingPathComponent(file).path
            do {
                let g = try CaffeImporter.load(prototxt: path, weights: nil, missingWeights: .zeros)
                try g.verify()
                #expect(!g.inputs.isEmpty && !g.outputs.isEmpty, "\(file)")
                #expect(g.inputs.allSatisfy { $0.type.shape[0] == .symbolic("N") }, "\(file)")
                imported.append(file)
            } catch let e as FerryError {
                let type = e.layerType ?? ""
                #expect(pendingLayerTypes.contains(type) && e.layer != nil && e.file == path,
                        "\(file): \(e)")
            }
        }
        // Nets using only supported layers: the LeNets in every input form, ResNet-50,
        // MobileNet v1/v2, VGG-16, AlexNet and CaffeNet (V2 and V1, with LRN), CIFAR-10,
        // SqueezeNet and GoogLeNet (Concat), FCN-8s (Deconvolution, Crop), MobileNet-SSD (both
        // forms), OpenCV's face detector (Normalize, PriorBox, DetectionOutput) and ENet (the
        // fork's BN, Pooling mask tops and max-unpooling Upsample, which OpenCV cannot read).
        for expected in ["lenet.prototxt", "lenet_v1_legacy.prototxt", "lenet_v2_input_dim.prototxt",
                         "lenet_v2_input_shape.prototxt", "resnet50.prototxt", "mobilenet_v1.prototxt",
                         "mobilenet_v2.prototxt", "vgg16.prototxt", "cifar10_quick.prototxt",
                         "alexnet.prototxt", "caffenet.prototxt", "caffenet_v1_legacy.prototxt",
                         "cifar10_full.prototxt", "squeezenet_v1_0.prototxt", "squeezenet_v1_1.prototxt",
                         "googlenet.prototxt", "fcn8s.prototxt", "mobilenet_ssd.prototxt",
                         "mobilenet_ssd_bn.prototxt", "opencv_face_detector.prototxt", "enet.prototxt"] {
            #expect(imported.contains(expected), "\(expected) should import")
        }
    }

    @Test func resnet50HasTheExpectedShape() throws {
        let g = try CaffeImporter.load(prototxt: referencePrototxts.appendingPathComponent("resnet50.prototxt").path,
                                       weights: nil, missingWeights: .zeros)
        #expect(g.inputs.map(\.type.shape) == [Shape([.symbolic("N"), .fixed(3), .fixed(224), .fixed(224)])])
        #expect(g.outputs.map(\.type.shape) == [Shape([.symbolic("N"), .fixed(1000)])])
        #expect(g.opCounts.first { $0.op == "Conv" }?.count == 53)
    }
}

@Suite struct ImporterRulesTests {
    @Test func v1LayersBecomeV2Layers() throws {
        let n = try net("""
            input: "data" input_dim: 1 input_dim: 2 input_dim: 3 input_dim: 3
            layers { name: "r" type: RELU bottom: "data" top: "data" relu_param { negative_slope: 0.5 } }
            """)
        let layers = try n.allLayers()
        #expect(layers.map(\.type) == ["ReLU"])
        #expect(layers[0].reluParam.negativeSlope == 0.5)
        let g = try CaffeImporter.importNet(n, weights: nil)
        // An in-place layer on a graph input: the output is named `<top>/<layer>`.
        #expect(g.inputs.map(\.name) == ["data"])
        #expect(g.outputs.map(\.name) == ["data/r"])
        #expect(g.nodes.map(\.op) == [.leakyRelu(alpha: 0.5)])
    }

    @Test func mixedV1AndV2EntriesKeepTheFileOrder() throws {
        // A V2 layer first, then a V1 layer reading its top, then V2 again.
        let text = """
            input: "x" input_shape { dim: 1 dim: 2 }
            layer { name: "a" type: "Sigmoid" bottom: "x" top: "y" }
            layers { name: "b" type: RELU bottom: "y" top: "z" }
            layer { name: "c" type: "TanH" bottom: "z" top: "w" }
            """
        let order = CaffeFiles.layerListOrder(text: text)
        #expect(order == [false, true, false])
        let n = try net(text)
        #expect(try n.allLayers(order: order).map(\.name) == ["a", "b", "c"])
        let g = try CaffeImporter.importNet(n, weights: nil, layerOrder: order)
        #expect(g.nodes.map(\.op) == [.sigmoid, .relu, .tanh])
        // A binary file interleaving the lists (concatenated messages merge into one net).
        var data = Data()
        for entry in text.split(separator: "\n").dropFirst() {
            data += try net(String(entry)).serializedBytes() as Data
        }
        #expect(try Caffe_NetParameter(serializedBytes: data).allLayers(order: [false, true, false]).map(\.name) == ["a", "b", "c"])
        // Read as a caffemodel, a layer at a time: the same lists and order, the other fields kept.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("interleaved-\(UUID().uuidString).caffemodel")
        try (try net(String(text.split(separator: "\n")[0])).serializedBytes() as Data + data).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        let (read, readOrder) = try CaffeFiles.readCaffemodelWithLayerOrder(path.path)
        #expect(readOrder == [false, true, false])
        #expect(try read.allLayers(order: readOrder).map(\.name) == ["a", "b", "c"])
        #expect(read.input == ["x"] && read.inputShape.first?.dim == [1, 2])
    }

    /// A caffemodel is decoded a layer at a time, blob data copied from the mapped file by the
    /// megabyte: the same net as decoding it whole, for V2 and V1 layers, blobs of several
    /// megabytes, empty ones, unpacked data (left to the decoder) and data split in two fields.
    @Test func caffemodelsDecodeLayerByLayerAsWhole() throws {
        var big = Caffe_BlobProto()
        big.shape.dim = [700, 1000]
        big.data = (0..<700_000).map { Float($0 % 977) * 0.25 - 3 }
        var small = Caffe_BlobProto()
        small.shape.dim = [3]
        small.data = [1, -2, 3.5]
        var empty = Caffe_BlobProto()
        empty.num = 0
        var v2 = Caffe_LayerParameter()
        v2.name = "ip"
        v2.type = "InnerProduct"
        v2.blobs = [big, small, empty]
        var v1 = Caffe_V1LayerParameter()
        v1.name = "conv"
        v1.blobs = [small, big]
        var net = Caffe_NetParameter()
        net.name = "streamed"
        net.input = ["x"]
        net.layer = [v2]
        net.layers = [v1]
        var data = try net.serializedBytes() as Data
        // A V2 layer whose blob holds unpacked data (field 5, wire type 5), then packed data
        // split in two fields: both decode as one list, in order.
        func varint(_ v: Int) -> [UInt8] { v < 0x80 ? [UInt8(v)] : [UInt8(v & 0x7F) | 0x80] + varint(v >> 7) }
        func floats(_ xs: [Float]) -> [UInt8] { xs.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }
        let unpacked: [UInt8] = [0x2D] + floats([7]) + [0x2D] + floats([8])
        let split: [UInt8] = [0x2A] + varint(8) + floats([1, 2]) + [0x2A] + varint(4) + floats([3])
        var odd: [UInt8] = [0x0A] + varint(3) + Array("odd".utf8)
        for blob in [unpacked, split] { odd += [0x3A] + varint(blob.count) + blob }
        data += Data([0xA2, 0x06] + varint(odd.count) + odd)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("streamed-\(UUID().uuidString).caffemodel")
        try data.write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        let (read, order) = try CaffeFiles.readCaffemodelWithLayerOrder(path.path)
        let whole = try Caffe_NetParameter(serializedBytes: data)
        let same = read == whole
        #expect(same)
        // (Protobuf writes fields by number: the V1 list, field 2, before the V2 one, field 100.)
        #expect(order == [true, false, false])
        #expect(read.layer.last?.blobs.map(\.data) == [[7, 8], [1, 2, 3]])
    }

    @Test func inPlaceChainsKeepTheBlobNameOnTheLastVersion() throws {
        let n = try net("""
            input: "x" input_shape { dim: 1 dim: 2 }
            layer { name: "a" type: "Sigmoid" bottom: "x" top: "y" }
            layer { name: "b" type: "ReLU" bottom: "y" top: "y" }
            layer { name: "c" type: "TanH" bottom: "y" top: "y" }
            """)
        let g = try CaffeImporter.importNet(n, weights: nil)
        #expect(g.outputs.map(\.name) == ["y"])
        #expect(g.nodes.map(\.outputs) == [["y/a"], ["y/b"], ["y"]])
    }

    @Test func testPhaseRules() throws {
        let n = try net("""
            input: "x" input_shape { dim: 1 dim: 2 }
            layer { name: "train_only" type: "ReLU" bottom: "x" top: "x" include { phase: TRAIN } }
            layer { name: "not_test" type: "ReLU" bottom: "x" top: "x" exclude { phase: TEST } }
            layer { name: "staged" type: "ReLU" bottom: "x" top: "x" include { stage: "deploy" } }
            layer { name: "kept" type: "Sigmoid" bottom: "x" top: "y" include { phase: TEST } }
            """)
        let g = try CaffeImporter.importNet(n, weights: nil)
        #expect(g.nodes.map(\.op) == [.sigmoid])
        #expect(g.metadata["warnings"]?.contains("train_only, not_test, staged") == true)
    }

    @Test func syntaxErrorsNameTheLineAndLayer() {
        let text = "name: \"n\"\nlayer { name: \"ok\" type: \"ReLU\" }\nlayer { name: \"bad\" type: \"ReLU\" bogus_field: 3 }\n"
        let message = CaffeFiles.describeTextError(TextFormatProbe.error(text), in: text)
        #expect(message.contains("line 3, column 1") && message.contains("'bad'"), "\(message)")
    }

    @Test func blobsAcceptLegacyDimsAndRejectWrongShapes() throws {
        let ctx = CaffeContext(name: "t", metadata: [:], hasWeightsFile: true, missingWeights: .error)
        var legacy = Caffe_BlobProto()
        (legacy.num, legacy.channels, legacy.height, legacy.width) = (1, 1, 3, 2)
        legacy.data = [1, 2, 3, 4, 5, 6]
        var shaped = Caffe_BlobProto()
        shaped.shape.dim = [2, 3]
        shaped.data = [1, 2, 3, 4, 5, 6]
        var layer = Caffe_LayerParameter()
        layer.name = "ip"
        layer.type = "InnerProduct"
        ctx.begin(layer, blobs: [legacy, shaped])
        #expect(try ctx.blob(0, role: "weight", shape: [3, 2]).shape == [3, 2])
        #expect(throws: FerryError.self) { try ctx.blob(1, role: "weight", shape: [3, 2]) }
        #expect(throws: FerryError.self) { try ctx.blob(2, role: "bias", shape: [3]) }
    }
}

/// The error swift-protobuf throws for a text.
enum TextFormatProbe {
    static func error(_ text: String) -> Error {
        do {
            _ = try Caffe_NetParameter(textFormatString: text)
            return FerryError("parsed")
        } catch {
            return error
        }
    }
}
