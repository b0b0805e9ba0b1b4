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
        // Merging the batch with an axis names the product; splitting it off again gives N back.
        let merged = try Op.reshape(shape: [-1, 13, 16]).inferOutputTypes([nhwc])[0]
        #expect(merged.shape == Shape([.symbolic("N*9"), .fixed(13), .fixed(16)]))
        #expect(try Op.reshape(shape: [-1, 9, 208]).inferOutputTypes([merged])[0].shape
                == Shape([.symbolic("N"), .fixed(9), .fixed(208)]))
        #expect(try Op.reshape(shape: [-1, 5]).inferOutputTypes([nhwc])[0].shape.dims[0] == .symbolic("?"))
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

@Suite struct ElementwiseShapeInferenceTests {
    let x = TensorType(.float32, Shape([.symbolic("N"), .fixed(3), .fixed(4)]))

    @Test func unaryKeepsType() throws {
        for op: Op in [.abs, .neg, .exp, .log, .sqrt, .reciprocal, .floor, .ceil, .erf, .softplus, .softsign, .hardSwish, .mish,
                       .gelu(approximate: true), .elu(alpha: 1), .selu(alpha: 1.67, gamma: 1.05),
                       .hardSigmoid(alpha: 0.2, beta: 0.5), .thresholdedRelu(alpha: 1), .clip(min: nil, max: 6), .logSoftmax(axis: -1)] {
            #expect(try op.inferOutputTypes([x]) == [x], "\(op.name)")
        }
        // Float-only math refuses integers; Abs and Neg take them.
        let ints = TensorType(.int64, Shape([2]))
        #expect(throws: FerryError.self) { try Op.exp.inferOutputTypes([ints]) }
        #expect(try Op.abs.inferOutputTypes([ints]) == [ints])
        #expect(try Op.neg.inferOutputTypes([ints]) == [ints])
        #expect(throws: FerryError.self) { try Op.neg.inferOutputTypes([TensorType(.uint8, Shape([2]))]) }
    }

    @Test func logSoftmaxAxis() {
        #expect(throws: FerryError.self) { try Op.logSoftmax(axis: 3).inferOutputTypes([x]) }
        #expect(throws: FerryError.self) { try Op.logSoftmax(axis: -4).inferOutputTypes([x]) }
    }

    @Test func broadcastingOps() throws {
        let row = TensorType(.float32, Shape([4]))
        let col = TensorType(.float32, Shape([3, 1]))
        #expect(try Op.pow.inferOutputTypes([x, row]) == [x])
        #expect(try Op.max.inferOutputTypes([row, col, x]) == [x])
        #expect(try Op.sum.inferOutputTypes([col]) == [col])
        #expect(try Op.mean.inferOutputTypes([col, row]) == [TensorType(.float32, Shape([3, 4]))])
        #expect(throws: FerryError.self) { try Op.min.inferOutputTypes([x, TensorType(.float32, Shape([5]))]) }
        #expect(throws: FerryError.self) { try Op.sum.inferOutputTypes([x, TensorType(.int64, Shape([4]))]) }
        #expect(throws: FerryError.self) { try Op.sum.inferOutputTypes([]) }
        // PRelu's slope broadcasts to X, never X to the slope.
        #expect(try Op.prelu.inferOutputTypes([x, TensorType(.float32, Shape([3, 1]))]) == [x])
        #expect(throws: FerryError.self) { try Op.prelu.inferOutputTypes([col, TensorType(.float32, Shape([3, 4]))]) }
    }

    @Test func batchNormalizationParameters() throws {
        let c = TensorType(.float32, Shape([3]))
        #expect(try Op.batchNormalization(epsilon: 1e-5).inferOutputTypes([x, c, c, c, c]) == [x])
        let bad = TensorType(.float32, Shape([4]))
        let e = #expect(throws: FerryError.self) { try Op.batchNormalization(epsilon: 1e-5).inferOutputTypes([x, c, c, bad, c]) }
        #expect(e?.message.contains("mean") == true)
        #expect(throws: FerryError.self) {
            try Op.batchNormalization(epsilon: 1e-5).inferOutputTypes([x, c, c, TensorType(.float32, Shape([3, 1])), c])
        }
        #expect(throws: FerryError.self) {
            try Op.batchNormalization(epsilon: 1e-5).inferOutputTypes([TensorType(.float32, Shape([3])), c, c, c, c])
        }
        #expect(Op.batchNormalization(epsilon: 1e-5).arity == (5, 5))
    }

    @Test func halfFloatBitsMatchSwiftFloat16() {
        #if arch(x86_64) || arch(arm64)
        var rng = SystemRandomNumberGenerator()
        var samples: [Float] = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e-8, 5.96e-8, 2.98e-8, 2.9802322e-8, 6.1e-5,
                                .infinity, -.infinity, .greatestFiniteMagnitude, 0.1, 1.0009766, 1.0004883, 1.0014648]
        for _ in 0..<20000 { samples.append(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))) }
        for _ in 0..<20000 { samples.append(Float.random(in: -70000...70000, using: &rng)) }
        for _ in 0..<20000 { samples.append(Float.random(in: -1e-4...1e-4, using: &rng)) }
        for v in samples {
            let expected = Float16(v)
            let bits = HalfFloat.bits(v)
            if v.isNaN {
                #expect(HalfFloat.value(bits).isNaN)
            } else {
                #expect(bits == expected.bitPattern, "\(v)")
                #expect(HalfFloat.value(bits) == Float(expected))
            }
        }
        // Every half value converts to float and back unchanged.
        for h in UInt16.min...UInt16.max where !Float16(bitPattern: h).isNaN {
            #expect(HalfFloat.value(h) == Float(Float16(bitPattern: h)))
            #expect(HalfFloat.bits(HalfFloat.value(h)) == h)
        }
        #endif
    }
}

@Suite struct NormalizationShapeInferenceTests {
    let x = TensorType(.float32, Shape([.symbolic("N"), .fixed(6), .fixed(4), .fixed(5)]))
    let c = TensorType(.float32, Shape([6]))

    @Test func normalizationParameters() throws {
        #expect(try Op.instanceNormalization(epsilon: 1e-5).inferOutputTypes([x, c, c]) == [x])
        #expect(throws: FerryError.self) { try Op.instanceNormalization(epsilon: 1e-5).inferOutputTypes([x, c, TensorType(.float32, Shape([5]))]) }
        #expect(try Op.groupNormalization(numGroups: 3, epsilon: 1e-5).inferOutputTypes([x, c, c]) == [x])
        let e = #expect(throws: FerryError.self) { try Op.groupNormalization(numGroups: 4, epsilon: 1e-5).inferOutputTypes([x, c, c]) }
        #expect(e?.message.contains("groups") == true)
        #expect(throws: FerryError.self) { try Op.groupNormalization(numGroups: 0, epsilon: 1e-5).inferOutputTypes([x, c, c]) }
        let row = TensorType(.float32, Shape([5]))
        #expect(try Op.layerNormalization(axis: -1, epsilon: 1e-5).inferOutputTypes([x, row]) == [x])
        #expect(try Op.layerNormalization(axis: -1, epsilon: 1e-5).inferOutputTypes([x, row, nil]) == [x])
        #expect(throws: FerryError.self) { try Op.layerNormalization(axis: 4, epsilon: 1e-5).inferOutputTypes([x, row]) }
        #expect(throws: FerryError.self) { try Op.layerNormalization(axis: -1, epsilon: 1e-5).inferOutputTypes([x, c]) }
        #expect(throws: FerryError.self) { try Op.lpNormalization(axis: 1, p: 3).inferOutputTypes([x]) }
        #expect(throws: FerryError.self) { try Op.lpNormalization(axis: -5, p: 2).inferOutputTypes([x]) }
        #expect(throws: FerryError.self) { try Op.lrn(size: 0, alpha: 1, beta: 0.75, bias: 1).inferOutputTypes([x]) }
        #expect(throws: FerryError.self) { try Op.lrn(size: 3, alpha: 1, beta: 0.75, bias: 1).inferOutputTypes([c]) }
    }

    @Test func reductionShapes() throws {
        #expect(try Op.reduce(.sum, axes: [1, -1], keepDims: true).inferOutputTypes([x])
                == [TensorType(.float32, Shape([.symbolic("N"), .fixed(1), .fixed(4), .fixed(1)]))])
        #expect(try Op.reduce(.max, axes: [0, 2], keepDims: false).inferOutputTypes([x]) == [TensorType(.float32, Shape([6, 5]))])
        #expect(try Op.reduce(.logSumExp, axes: nil, keepDims: false).inferOutputTypes([x]) == [TensorType(.float32, Shape([Int]()))])
        #expect(throws: FerryError.self) { try Op.reduce(.mean, axes: [1, 1], keepDims: true).inferOutputTypes([x]) }
        #expect(throws: FerryError.self) { try Op.reduce(.l2, axes: [2], keepDims: true).inferOutputTypes([TensorType(.int64, Shape([2, 3, 4]))]) }
        #expect(try Op.argMin(axis: 1, keepDims: false, selectLastIndex: true).inferOutputTypes([x])
                == [TensorType(.int64, Shape([.symbolic("N"), .fixed(4), .fixed(5)]))])
        #expect(Op.reduce(.sumSquare, axes: nil, keepDims: true).name == "ReduceSumSquare")
    }
}

@Suite struct LogicShapeInferenceTests {
    let x = TensorType(.float32, Shape([.symbolic("N"), .fixed(3), .fixed(4)]))
    let flags = TensorType(.bool, Shape([3, 1]))

    @Test func comparisonsGiveBool() throws {
        for op: Op in [.equal, .greater, .less, .greaterOrEqual, .lessOrEqual] {
            #expect(try op.inferOutputTypes([x, TensorType(.float32, Shape([4]))]) == [TensorType(.bool, x.shape)])
            #expect(throws: FerryError.self) { try op.inferOutputTypes([x, TensorType(.int64, Shape([4]))]) }
        }
        #expect(try Op.equal.inferOutputTypes([flags, flags]) == [flags])
        #expect(throws: FerryError.self) { try Op.less.inferOutputTypes([flags, flags]) }
    }

    @Test func logicAndWhere() throws {
        #expect(try Op.not.inferOutputTypes([flags]) == [flags])
        #expect(throws: FerryError.self) { try Op.not.inferOutputTypes([x]) }
        #expect(try Op.and.inferOutputTypes([flags, TensorType(.bool, Shape([2, 1, 5]))]) == [TensorType(.bool, Shape([2, 3, 5]))])
        #expect(throws: FerryError.self) { try Op.or.inferOutputTypes([flags, x]) }
        #expect(try Op.where.inferOutputTypes([flags, x, TensorType(.float32, Shape([4]))]) == [x])
        #expect(throws: FerryError.self) { try Op.where.inferOutputTypes([x, x, x]) }
        #expect(throws: FerryError.self) { try Op.where.inferOutputTypes([flags, x, TensorType(.int64, Shape([4]))]) }
        #expect(throws: FerryError.self) { try Op.where.inferOutputTypes([TensorType(.bool, Shape([2])), x, x]) }
        #expect(Op.where.arity == (3, 3))
        #expect(try Op.cast(to: .float16).inferOutputTypes([x]) == [TensorType(.float16, x.shape)])
        #expect(Op.cast(to: .int8).attributeSummary.first! == ("to", "int8"))
    }
}
