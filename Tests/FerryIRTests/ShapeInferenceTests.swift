import Testing
@testable import FerryIR

@Suite struct ShapeInferenceTests {
    let x = TensorType(.float32, Shape([.symbolic("N"), .fixed(3), .fixed(31), .fixed(33)]))

    @Test func convKeepsSymbolicBatchAndAppliesAsymmetricPads() throws {
        let w = TensorType(.float32, Shape([12, 3, 5, 5]))
        // TF 'same' with stride 2 on 31x33: total pad 4 / 4 -> (2, 2), (1, 3) as Keras places them.
        let conv = Op.conv(ConvAttributes(kernelShape: [5, 5], strides: [2, 2], pads: [2, 1, 2, 3]))
        let out = try conv.inferOutputTypes([x, w, nil])
        #expect(out == [TensorType(.float32, Shape([.symbolic("N"), .fixed(12), .fixed(16), .fixed(17)]))])
    }

    @Test func convRejectsChannelMismatchAndWrongBias() {
        let w = TensorType(.float32, Shape([8, 4, 3, 3]))
        let conv = Op.conv(ConvAttributes(kernelShape: [3, 3]))
        #expect(throws: FerryError.self) { try conv.inferOutputTypes([x, w]) }
        let w3 = TensorType(.float32, Shape([8, 3, 3, 3]))
        #expect(throws: FerryError.self) { try conv.inferOutputTypes([x, w3, TensorType(.float32, Shape([7]))]) }
    }

    @Test func groupedConvChecksChannelsPerGroup() throws {
        let w = TensorType(.float32, Shape([6, 1, 3, 3]))
        let conv = Op.conv(ConvAttributes(kernelShape: [3, 3], group: 3))
        let out = try conv.inferOutputTypes([x, w])
        #expect(out[0].shape == Shape([.symbolic("N"), .fixed(6), .fixed(29), .fixed(31)]))
    }

    @Test func poolingCeilModeDropsAWindowStartingInThePadding() throws {
        let input = TensorType(.float32, Shape([1, 1, 6, 6]))
        // Caffe-style 3x3/2 with pad 1: ceil((6+2-3)/2)+1 = 4, and (4-1)*2 = 6 < 6+1 keeps it.
        let pool = Op.maxPool(PoolAttributes(kernelShape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true))
        #expect(try pool.inferOutputTypes([input])[0].shape == Shape([1, 1, 4, 4]))
        // 5x5 input, 2x2/2, pad 1, ceil: ceil((5+2-2)/2)+1 = 4, (4-1)*2 = 6 >= 5+1 -> 3.
        let pool2 = Op.maxPool(PoolAttributes(kernelShape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true))
        let small = TensorType(.float32, Shape([1, 1, 5, 5]))
        #expect(try pool2.inferOutputTypes([small])[0].shape == Shape([1, 1, 3, 3]))
        let floor = Op.maxPool(PoolAttributes(kernelShape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1]))
        #expect(try floor.inferOutputTypes([small])[0].shape == Shape([1, 1, 3, 3]))
    }

    @Test func gemmAndMatMul() throws {
        let a = TensorType(.float32, Shape([.symbolic("N"), .fixed(16)]))
        let b = TensorType(.float32, Shape([10, 16]))
        let gemm = Op.gemm(GemmAttributes(transB: true))
        #expect(try gemm.inferOutputTypes([a, b, TensorType(.float32, Shape([10]))])[0].shape
                == Shape([.symbolic("N"), .fixed(10)]))
        #expect(throws: FerryError.self) { try Op.gemm(GemmAttributes()).inferOutputTypes([a, b]) }
        let m = try Op.matMul.inferOutputTypes([TensorType(.float32, Shape([2, 1, 3, 4])),
                                                TensorType(.float32, Shape([5, 4, 6]))])
        #expect(m[0].shape == Shape([2, 5, 3, 6]))
        let v = try Op.matMul.inferOutputTypes([TensorType(.float32, Shape([4])), TensorType(.float32, Shape([3, 4, 6]))])
        #expect(v[0].shape == Shape([3, 6]))
    }

    @Test func flattenReshapeTranspose() throws {
        let nhwc = TensorType(.float32, Shape([.symbolic("N"), .fixed(9), .fixed(13), .fixed(16)]))
        #expect(try Op.flatten(axis: 1).inferOutputTypes([nhwc])[0].shape
                == Shape([.symbolic("N"), .fixed(9 * 13 * 16)]))
        #expect(try Op.reshape(shape: [0, -1]).inferOutputTypes([nhwc])[0].shape
                == Shape([.symbolic("N"), .fixed(9 * 13 * 16)]))
        #expect(try Op.reshape(shape: [0, 9, 208]).inferOutputTypes([nhwc])[0].shape
                == Shape([.symbolic("N"), .fixed(9), .fixed(208)]))
        #expect(throws: FerryError.self) { try Op.reshape(shape: [0, 7, -1]).inferOutputTypes([nhwc]) }
        #expect(try Op.transpose(perm: [0, 3, 1, 2]).inferOutputTypes([nhwc])[0].shape
                == Shape([.symbolic("N"), .fixed(16), .fixed(9), .fixed(13)]))
        #expect(throws: FerryError.self) { try Op.transpose(perm: [0, 1, 1, 2]).inferOutputTypes([nhwc]) }
    }

    @Test func broadcasting() throws {
        let s = try broadcastShapes(Shape([2, 3, 1, 5]), Shape([3, 4, 1]))
        #expect(s == Shape([2, 3, 4, 5]))
        #expect(throws: FerryError.self) { try broadcastShapes(Shape([2, 3]), Shape([4])) }
    }
}

@Suite struct GraphTests {
    func smallGraph() -> GraphBuilder {
        var b = GraphBuilder(name: "small")
        let x = b.addInput("x", TensorType(.float32, Shape([.symbolic("N"), .fixed(4)])))
        let w = b.addInitializer("w", Tensor(shape: [4, 2], floats: (0..<8).map(Float.init)))
        let y = b.add(.gemm(GemmAttributes()), inputs: [x, w], output: "y", origin: Origin(layer: "dense", type: "Dense"))
        let z = b.add(.relu, inputs: [y], output: "z", origin: Origin(layer: "dense", type: "Dense"))
        b.addOutput(z)
        return b
    }

    @Test func builderInfersOutputsAndVerifies() throws {
        let g = try smallGraph().finish()
        #expect(g.outputs == [Value(name: "z", type: TensorType(.float32, Shape([.symbolic("N"), .fixed(2)])))])
        #expect(g.parameterCount == 8)
        #expect(g.estimatedFLOPs(batch: 1) == 2 * 2 * 4 + 2)
        let text = g.dump()
        #expect(text.contains("%y: float32[N,2] = Gemm(%x, %w)"))
        #expect(text.contains("# dense (Dense)"))
    }

    @Test func verifyCatchesDoubleAssignmentAndUseBeforeDefinition() throws {
        var g = try smallGraph().finish()
        g.nodes[1].outputs = ["y"]
        #expect(throws: FerryError.self) { try g.verify() }

        var h = try smallGraph().finish()
        h.nodes.swapAt(0, 1)
        do {
            try h.verify()
            Issue.record("out-of-order graph verified")
        } catch let e as FerryError {
            #expect(e.layer == "dense")
            #expect(e.message.contains("not defined"))
        }
    }

    @Test func verifyCatchesWrongArityAndUndeclaredOutput() throws {
        var g = try smallGraph().finish()
        g.nodes[1].inputs = ["y", "y"]
        #expect(throws: FerryError.self) { try g.verify() }
        var h = try smallGraph().finish()
        h.outputs.append(Value(name: "nowhere", type: TensorType(.float32, Shape([1]))))
        #expect(throws: FerryError.self) { try h.verify() }
    }

    @Test func uniqueNames() {
        var b = GraphBuilder(name: "g")
        #expect(b.uniqueName("a") == "a")
        #expect(b.uniqueName("a") == "a_1")
        #expect(b.uniqueName("a") == "a_2")
    }

    @Test func errorLineFormat() {
        let e = FerryError("bad kernel", file: "m.h5", layer: "conv1", layerType: "Conv2D")
        #expect(e.description == "error: m.h5: conv1 (Conv2D): bad kernel")
        #expect(FerryError("no such file", file: "x.onnx").description == "error: x.onnx: no such file")
    }
}
