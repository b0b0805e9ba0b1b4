import Foundation
import Testing
import FerryIR
@testable import FerryKeras

/// Imports of the real tf_keras 2.21 and Keras 3.15 fixture files.
@Suite struct FixtureImportTests {
    @Test(arguments: fixtureVariants(expectError: false))
    func importsAndKeepsTheKerasInterface(_ v: FixtureVariant) throws {
        let g = try KerasImporter.load(path: v.path, weights: v.weightsPath)
        try g.verify()
        #expect(g.metadata["source_format"] == v.format)
        if v.format == "keras-json" && v.isKeras3 {
            // Keras 3's to_json() and .weights.h5 carry no version (Keras 2's to_json does).
            #expect(g.metadata["keras_version"] == nil)
        } else {
            #expect(g.metadata["keras_version"]?.hasPrefix(v.isKeras3 ? "3." : "2.") == true)
        }
        if v.format == "keras-h5" { #expect(g.metadata["backend"] == "tensorflow") }

        #expect(g.inputs.map(\.name) == v.inputs.map(\.name))
        for (value, expected) in zip(g.inputs, v.inputs) {
            let shape = try v.npyShape(expected.npy)
            #expect(value.type.dtype == (try v.npyDType(expected.npy)))
            #expect(value.type.shape.dims == [v.batchDim] + shape.dropFirst().map { .fixed($0) }, "\(value)")
        }
        #expect(g.outputs.map(\.name) == v.outputs.map(\.name))
        for (value, expected) in zip(g.outputs, v.outputs) {
            let shape = try v.npyShape(expected.npy)
            #expect(value.type.shape.dims == [v.batchDim] + shape.dropFirst().map { .fixed($0) }, "\(value)")
        }
        // Every node says which Keras layer it came from.
        for node in g.nodes {
            #expect(node.origins.count == 1 && !node.origins[0].layer.isEmpty, "\(node.name)")
        }
    }

    @Test(arguments: fixtureVariants(expectError: true))
    func refusesWithTheLayerAndFile(_ v: FixtureVariant) throws {
        let error = #expect(throws: FerryError.self) { try KerasImporter.load(path: v.path, weights: v.weightsPath) }
        #expect(error?.file == v.path)
        #expect(error?.layer == v.errorLayer)
        switch v.model {
        case "lambda_layer":
            #expect(error?.layerType == "Lambda")
            #expect(error?.message == "Lambda layers hold Python code; Ferry never runs code from a model file")
        case "unsupported_layer":
            #expect(error?.layerType == "ConvLSTM1D")
            #expect(error?.message == "layer type ConvLSTM1D is not supported yet")
        case "masking_rnn":
            #expect(error?.layerType == "LSTM")
            #expect(error?.message.contains("carries the mask of layer 'mask'") == true)
        default:
            break
        }
    }

    @Test func fixturesArePresent() {
        #expect(fixtureVariants(expectError: false).count >= 12)
        #expect(fixtureVariants(expectError: true).count >= 4)
    }

    @Test(arguments: ["keras2.h5", "keras3.h5"])
    func convKernelsBecomeOutInKhKw(_ file: String) throws {
        let path = kerasFixtures.appendingPathComponent("cnn_flatten/\(file)").path
        let g = try KerasImporter.load(path: path)
        for layer in ["conv1", "conv2"] {
            let keras = try kerasWeights(path, layer: layer)
            let k = keras[0] // (kh, kw, in, out)
            let (kh, kw, cin, cout) = (k.shape[0], k.shape[1], k.shape[2], k.shape[3])
            let conv = try #require(g.nodes("Conv").first { $0.origins.first?.layer == layer })
            let w = try #require(g.initializers[conv.inputs[1]])
            #expect(w.shape == [cout, cin, kh, kw])
            let wv = w.floats
            for o in 0..<cout { for i in 0..<cin { for y in 0..<kh { for x in 0..<kw {
                let ir = wv[((o * cin + i) * kh + y) * kw + x]
                let kv = k.values[((y * kw + x) * cin + i) * cout + o]
                if ir != kv { Issue.record("\(layer) W[\(o),\(i),\(y),\(x)] = \(ir), Keras \(kv)"); return }
            } } } }
            let b = try #require(g.initializers[conv.inputs[2]])
            #expect(b.floats == keras[1].values)
        }
        // Dense keeps Keras's (in, out) kernel with transB false.
        let gemm = try #require(g.nodes("Gemm").first)
        guard case .gemm(let a) = gemm.op else { return }
        #expect(!a.transB && !a.transA)
        let dense = try kerasWeights(path, layer: "dense")
        #expect(g.initializers[gemm.inputs[1]]?.shape == [560, 10])
        #expect(g.initializers[gemm.inputs[1]]?.floats == dense[0].values)
        #expect(g.initializers[gemm.inputs[2]]?.floats == dense[1].values)
    }

    @Test(arguments: ["keras2.h5", "keras3.h5"])
    func flattenSeesTheNHWCTensor(_ file: String) throws {
        let g = try KerasImporter.load(path: kerasFixtures.appendingPathComponent("cnn_flatten/\(file)").path)
        let flatten = try #require(g.nodes("Flatten").first)
        let before = try #require(g.node(producing: flatten.inputs[0]))
        #expect(before.op == .transpose(perm: [0, 2, 3, 1]))
        // One transpose in (the NHWC input), one back (before Flatten).
        #expect(g.nodes("Transpose").map(\.op) == [.transpose(perm: [0, 3, 1, 2]), .transpose(perm: [0, 2, 3, 1])])
        #expect(g.outputs.map(\.name) == ["softmax"])
        #expect(g.node(producing: "softmax")?.op == .softmax(axis: -1))
    }

    @Test(arguments: ["keras2.h5", "keras3.h5"])
    func samePaddingIsAsymmetricAndAveragesExcludePads(_ file: String) throws {
        let g = try KerasImporter.load(path: kerasFixtures.appendingPathComponent("cnn_gap/\(file)").path)
        let conv1 = try #require(g.nodes("Conv").first { $0.origins.first?.layer == "conv1" })
        guard case .conv(let c) = conv1.op else { return }
        // 31x33, kernel 5, stride 2: outputs 16x17, totals 4 and 4.
        #expect(c.pads == [2, 2, 2, 2] && c.strides == [2, 2])
        #expect(conv1.inputs.count == 2) // use_bias = False
        let avg = try #require(g.nodes("AveragePool").first)
        guard case .averagePool(let p) = avg.op else { return }
        // 16x17, window 3, stride 2: totals 1 and 2, the odd cell at the end.
        #expect(p.pads == [0, 1, 1, 1] && !p.countIncludePad && !p.ceilMode)
        let maxPool = try #require(g.nodes("MaxPool").first)
        guard case .maxPool(let m) = maxPool.op else { return }
        // conv2 valid: 8x9 -> 6x7; window 3 stride 2 same: outputs 3x4, totals 1 and 2.
        #expect(m.pads == [0, 1, 1, 1])
        #expect(g.nodes("GlobalAveragePool").count == 1)
        #expect(g.outputs.map(\.name) == ["head"])
    }

    @Test(arguments: ["keras2.h5", "keras3.h5"])
    func sharedTrunkIsTransposedOnceEachWay(_ file: String) throws {
        let g = try KerasImporter.load(path: kerasFixtures.appendingPathComponent("two_outputs/\(file)").path)
        #expect(g.outputs.map(\.name) == ["score", "probs"])
        #expect(g.nodes("Transpose").count == 2)
        #expect(g.outputs.map(\.type.shape) == [Shape([.symbolic("N"), .fixed(2)]), Shape([.symbolic("N"), .fixed(3)])])
    }

    @Test(arguments: ["keras2.h5", "keras3.h5"])
    func fourDimensionalOutputIsNHWC(_ file: String) throws {
        let g = try KerasImporter.load(path: kerasFixtures.appendingPathComponent("conv_out/\(file)").path)
        let out = try #require(g.outputs.first)
        #expect(out.name == "pool")
        #expect(g.node(producing: "pool")?.op == .transpose(perm: [0, 2, 3, 1]))
        #expect(g.node(producing: "pool")?.origins == [Origin(layer: "pool", type: "MaxPooling2D")])
        let conv2 = try #require(g.nodes("Conv").first { $0.origins.first?.layer == "conv2" })
        guard case .conv(let c) = conv2.op else { return }
        #expect(c.kernelShape == [3, 1] && c.strides == [2, 1] && c.pads == [0, 0, 0, 0])
    }

    @Test(arguments: ["keras2.h5", "keras3.h5"])
    func dropoutIsAnIdentityAndActivationsFollowDense(_ file: String) throws {
        let g = try KerasImporter.load(path: kerasFixtures.appendingPathComponent("mlp/\(file)").path)
        #expect(g.nodes.map(\.op.name) == ["Gemm", "Relu", "Identity", "Gemm", "Tanh", "Gemm", "Softmax"])
        #expect(g.nodes[2].origins == [Origin(layer: "dropout", type: "Dropout")])
        #expect(g.outputs.map(\.name) == ["logits"])
        #expect(g.inputs.map(\.name) == ["features"])
    }
}
