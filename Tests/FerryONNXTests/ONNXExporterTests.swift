import Foundation
import FerryIR
@testable import FerryONNX
import Testing

/// Exports a graph and decodes the bytes again, as a reader of the file would see it.
func roundTrip(_ graph: Graph, opset: Int = ONNXExporter.defaultOpset) throws -> Onnx_ModelProto {
    let bytes = try ONNXExporter.serialize(graph, opset: opset)
    return try Onnx_ModelProto(serializedBytes: bytes)
}

func dims(_ v: Onnx_ValueInfoProto) -> [String] {
    v.type.tensorType.shape.dim.map { d in
        switch d.value {
        case .dimValue(let n): return String(n)
        case .dimParam(let s): return s
        case nil: return "?"
        }
    }
}

func attributes(_ node: Onnx_NodeProto) -> [String: String] {
    var result: [String: String] = [:]
    for a in node.attribute {
        switch a.type {
        case .int: result[a.name] = String(a.i)
        case .ints: result[a.name] = a.ints.map(String.init).joined(separator: ",")
        case .float: result[a.name] = String(a.f)
        default: result[a.name] = "type \(a.type)"
        }
    }
    return result
}

func floats(_ t: Onnx_TensorProto) -> [Float] {
    t.rawData.withUnsafeBytes { raw in
        (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
    }
}

@Suite struct ONNXExporterTests {
    @Test func modelHeader() throws {
        let graph = try Graphs.cnn()
        let m = try roundTrip(graph)
        #expect(m.irVersion == 8)
        #expect(m.opsetImport.count == 1)
        #expect(m.opsetImport[0].domain == "")
        #expect(m.opsetImport[0].version == 17)
        #expect(m.producerName == "ferry")
        #expect(m.producerVersion == "0.1.0")
        #expect(m.metadataProps.map { "\($0.key)=\($0.value)" } == ["keras_version=2.15.0", "source_format=keras"])
        #expect(m.graph.name == "tiny_cnn")
    }

    @Test func irVersionFollowsOpset() throws {
        #expect(ONNXExporter.irVersion(forOpset: 7) == 3)
        #expect(ONNXExporter.irVersion(forOpset: 9) == 4)
        #expect(ONNXExporter.irVersion(forOpset: 11) == 6)
        #expect(ONNXExporter.irVersion(forOpset: 13) == 7)
        #expect(ONNXExporter.irVersion(forOpset: 15) == 8)
        #expect(ONNXExporter.irVersion(forOpset: 18) == 8)
        #expect(ONNXExporter.irVersion(forOpset: 19) == 9)
        #expect(ONNXExporter.irVersion(forOpset: 20) == 9)
        #expect(ONNXExporter.irVersion(forOpset: 21) == 10)
        #expect(ONNXExporter.irVersion(forOpset: 23) == 11)
        #expect(ONNXExporter.irVersion(forOpset: 24) == 12)
        let m = try roundTrip(try Graphs.cnn(), opset: 13)
        #expect(m.irVersion == 7)
        #expect(m.opsetImport[0].version == 13)
    }

    @Test func inputsAndOutputsKeepNamesAndSymbolicDims() throws {
        let m = try roundTrip(try Graphs.cnn())
        #expect(m.graph.input.map(\.name) == ["input"])
        #expect(dims(m.graph.input[0]) == ["N", "6", "5", "3"])
        #expect(m.graph.input[0].type.tensorType.elemType == 1)
        #expect(m.graph.output.map(\.name) == ["probs"])
        #expect(dims(m.graph.output[0]) == ["N", "5"])
        // Initializers are not graph inputs (IR version >= 4).
        #expect(m.graph.input.count == 1)
    }

    @Test func initializersInUseOrderWithExactRawData() throws {
        let graph = try Graphs.cnn()
        let m = try roundTrip(graph)
        #expect(m.graph.initializer.map(\.name) == graph.initializerNamesInUseOrder)
        #expect(m.graph.initializer.map(\.name) == ["conv1_W", "conv1_B", "dense_W", "dense_B"])
        for t in m.graph.initializer {
            let ir = graph.initializers[t.name]!
            #expect(t.dims == ir.shape.map(Int64.init))
            #expect(t.dataType == 1)
            #expect(t.floatData.isEmpty)
            #expect(t.rawData.count == ir.byteCount)
            let back = floats(t)
            #expect(back.map(\.bitPattern) == ir.floats.map(\.bitPattern))
        }
    }

    @Test func nodesWithTypedAttributes() throws {
        let m = try roundTrip(try Graphs.cnn())
        let nodes = m.graph.node
        #expect(nodes.map(\.opType) == ["Transpose", "Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool",
                                        "Flatten", "Gemm", "Softmax"])
        #expect(nodes.allSatisfy { $0.domain.isEmpty })
        let byOp = Dictionary(uniqueKeysWithValues: nodes.map { ($0.opType, $0) })

        let conv = byOp["Conv"]!
        #expect(conv.name == "conv1")
        #expect(conv.input == ["input_nchw", "conv1_W", "conv1_B"])
        #expect(conv.output == ["conv1"])
        #expect(attributes(conv) == ["kernel_shape": "3,3", "strides": "2,1", "pads": "1,0,2,1",
                                     "dilations": "1,1", "group": "1"])
        #expect(conv.docString == "from conv1 (Conv2D)")

        #expect(attributes(byOp["Transpose"]!) == ["perm": "0,3,1,2"])
        #expect(attributes(byOp["MaxPool"]!) == ["kernel_shape": "2,2", "strides": "1,1", "pads": "0,0,0,0", "ceil_mode": "0"])
        #expect(attributes(byOp["AveragePool"]!) == ["kernel_shape": "2,2", "strides": "1,1", "pads": "1,1,0,0",
                                                      "ceil_mode": "0", "count_include_pad": "0"])
        #expect(attributes(byOp["Flatten"]!) == ["axis": "1"])
        #expect(attributes(byOp["Gemm"]!) == ["alpha": "1.0", "beta": "1.0", "transA": "0", "transB": "1"])
        #expect(attributes(byOp["Softmax"]!) == ["axis": "-1"])
        #expect(byOp["Relu"]!.attribute.isEmpty)
        #expect(byOp["Softmax"]!.docString == "from dense (Dense)")

        // Attribute types are ONNX's: INT, INTS, FLOAT.
        #expect(conv.attribute.first { $0.name == "group" }?.type == .int)
        #expect(conv.attribute.first { $0.name == "pads" }?.type == .ints)
        #expect(byOp["Gemm"]!.attribute.first { $0.name == "alpha" }?.type == .float)
    }

    @Test func intermediateValueInfo() throws {
        let m = try roundTrip(try Graphs.cnn())
        let info = Dictionary(uniqueKeysWithValues: m.graph.valueInfo.map { ($0.name, dims($0)) })
        #expect(info["input_nchw"] == ["N", "3", "6", "5"])
        #expect(info["conv1"] == ["N", "4", "4", "4"])
        #expect(info["pool1"] == ["N", "4", "3", "3"])
        #expect(info["flat"] == ["N", "4"])
        #expect(info["probs"] == nil)  // graph outputs are described in graph.output
        #expect(info["input"] == nil)
    }

    @Test func reshapeTargetBecomesInt64Initializer() throws {
        let graph = try Graphs.broadcast()
        let m = try roundTrip(graph)
        let reshapes = m.graph.node.filter { $0.opType == "Reshape" }
        #expect(reshapes.map(\.input) == [["x", "r_shape"], ["mm", "y_shape"]])
        #expect(reshapes.allSatisfy { $0.attribute.isEmpty })
        let shapes = m.graph.initializer.filter { $0.name.hasSuffix("_shape") }
        #expect(shapes.map(\.name) == ["r_shape", "y_shape"])
        for (t, want) in zip(shapes, [[Int64(0), 3, 4], [0, -1]]) {
            #expect(t.dataType == 7)
            #expect(t.dims == [Int64(want.count)])
            let values = t.rawData.withUnsafeBytes { raw in
                (0..<want.count).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
            }
            #expect(values == want)
        }
        // The graph's own weights come first, in use order.
        #expect(m.graph.initializer.map(\.name) == ["bias", "scale", "two", "m", "r_shape", "y_shape"])
        #expect(m.graph.node.map(\.opType) == ["Reshape", "Add", "Mul", "Sub", "Div", "MatMul", "Reshape"])
        #expect(dims(m.graph.output[0]) == ["N", "6"])
        let two = m.graph.initializer.first { $0.name == "two" }!
        #expect(two.dims.isEmpty)
        #expect(floats(two) == [2])
    }

    @Test func reshapeShapeNameAvoidsTakenNames() throws {
        var b = GraphBuilder(name: "clash")
        let x = b.addInput("x", TensorType(.float32, Shape([2, 6])))
        let taken = b.addInitializer("r_shape", Tensor(shape: [1], floats: [1]))
        let r = b.add(.reshape(shape: [3, 4]), inputs: [x], output: "r", origin: nil)
        let y = b.add(.add, inputs: [r, taken], output: "y", origin: nil)
        b.addOutput(y)
        let m = try roundTrip(try b.finish())
        #expect(m.graph.node[0].input == ["x", "r_shape_1"])
        #expect(Set(m.graph.initializer.map(\.name)) == ["r_shape", "r_shape_1"])
    }

    @Test func absentOptionalInputStaysEmpty() throws {
        let m = try roundTrip(try Graphs.everyOp())
        let conv = m.graph.node.first { $0.opType == "Conv" }!
        #expect(conv.input == ["image", "w", ""])
        #expect(attributes(conv)["group"] == "3")
        #expect(attributes(conv)["dilations"] == "2,1")
        let gemm = m.graph.node.first { $0.opType == "Gemm" }!
        #expect(gemm.input == ["flat", "gw"])
        #expect(attributes(gemm)["alpha"] == "0.5")
        #expect(dims(m.graph.input[0]) == ["batch", "3", "9", "8"])
        // Reshape's -1 over (batch, 4) to (-1, 2, 2) keeps the symbolic batch.
        #expect(dims(m.graph.output[0]) == ["batch", "2", "3"])
        #expect(dims(m.graph.output[1]) == ["batch", "4"])
        #expect(m.graph.node.count == Graphs.everyOpCount)
        // Only the batch is open: GroupNormalization's decomposition restores X's shape from a
        // constant, not Shape(X), which a reader could not fold.
        #expect(!m.graph.node.contains { $0.opType == "Shape" })
    }

    @Test func everyDTypeAsRawData() throws {
        let tensors: [(Tensor, Int32, [UInt8])] = [
            (try Tensor(shape: [2], storage: .int64([1, -2])), 7, [1, 0, 0, 0, 0, 0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            (try Tensor(shape: [2], storage: .int32([258, -1])), 6, [2, 1, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]),
            (try Tensor(shape: [1], storage: .float16([0x3C00])), 10, [0x00, 0x3C]),
            (try Tensor(shape: [2], storage: .int8([-1, 5])), 3, [0xFF, 5]),
            (try Tensor(shape: [2], storage: .uint8([200, 7])), 2, [200, 7]),
            (try Tensor(shape: [3], storage: .bool([true, false, true])), 9, [1, 0, 1]),
            (Tensor(shape: [1, 1], floats: [1.5]), 1, [0, 0, 0xC0, 0x3F]),
        ]
        for (tensor, dataType, bytes) in tensors {
            let proto = ONNXTensors.tensor("t", tensor)
            #expect(proto.dataType == dataType)
            #expect(proto.dims == tensor.shape.map(Int64.init))
            #expect(Array(proto.rawData) == bytes)
        }
    }

    @Test func oldOpsetsRewriteOrRefuse() throws {
        // Opset 9: Gemm needs C (a zero is added), initializers are also graph inputs before
        // IR version 4 (opset 7 / 8), Flatten's negative axis is made positive (opset < 11).
        var b = GraphBuilder(name: "old")
        let x = b.addInput("x", TensorType(.float32, Shape([.symbolic("N"), .fixed(2), .fixed(3)])))
        let f = b.add(.flatten(axis: -2), inputs: [x], output: "f", origin: Origin(layer: "flatten", type: "Flatten"))
        let w = b.addInitializer("w", Tensor(shape: [6, 2], floats: Graphs.floats(12, seed: 9)))
        let g = b.add(.gemm(GemmAttributes()), inputs: [f, w], output: "g", origin: Origin(layer: "fc", type: "Dense"))
        let s = b.add(.softmax(axis: -1), inputs: [g], output: "s", origin: Origin(layer: "fc", type: "Dense"))
        b.addOutput(s)
        let graph = try b.finish()

        let m9 = try roundTrip(graph, opset: 9)
        #expect(m9.irVersion == 4)
        #expect(m9.graph.node[1].input == ["f", "w", "g_C"])
        #expect(m9.graph.initializer.map(\.name) == ["w", "g_C"])
        #expect(attributes(m9.graph.node[0]) == ["axis": "1"])
        #expect(attributes(m9.graph.node[2]) == ["axis": "1"])
        #expect(m9.graph.input.map(\.name) == ["x"])

        let m7 = try roundTrip(graph, opset: 7)
        #expect(m7.irVersion == 3)
        #expect(m7.graph.input.map(\.name) == ["x", "w", "g_C"])

        let m17 = try roundTrip(graph)
        #expect(m17.graph.node[1].input == ["f", "w"])
        #expect(attributes(m17.graph.node[0]) == ["axis": "-2"])
    }

    @Test func refusesWhatTheOpsetCannotSay() throws {
        let every = try Graphs.everyOp()
        // Softmax over a middle axis needs opset 13.
        let e1 = #expect(throws: FerryError.self) { try ONNXExporter.model(every, opset: 12) }
        #expect(e1?.layer == "softmax")
        #expect(e1?.layerType == "Softmax")
        #expect(e1?.description.contains("opset 13") == true)
        // MaxPool's ceil_mode is restated for opset 9.
        let m9 = try ONNXExporter.model(try Graphs.cnnCeil(), opset: 9)
        #expect(attributes(m9.graph.node[3]) == ["kernel_shape": "2,2", "strides": "2,2", "pads": "0,0,0,0"])
        // Opsets outside the supported range.
        #expect(throws: FerryError.self) { try ONNXExporter.model(every, opset: 6) }
        #expect(throws: FerryError.self) { try ONNXExporter.model(every, opset: 99) }
        // Opset 13 is fine for everything.
        _ = try ONNXExporter.model(every, opset: 13)
    }

    @Test func refusesElementTypesTheOpDoesNotTake() throws {
        var b = GraphBuilder(name: "ints")
        let x = b.addInput("x", TensorType(.int32, Shape([2, 3])))
        let y = b.add(.relu, inputs: [x], output: "y", origin: Origin(layer: "act", type: "ReLU"))
        b.addOutput(y)
        let graph = try b.finish()
        let e = #expect(throws: FerryError.self) { try ONNXExporter.model(graph, opset: 13) }
        #expect(e?.layer == "act")
        _ = try ONNXExporter.model(graph, opset: 14)
    }

    /// Add takes uint32 and uint64 from opset 7, the 8- and 16-bit integers from opset 14; Pow
    /// takes int16 or unsigned exponents (opset 12), never such a base.
    @Test func elementTypesByOpset() throws {
        func graph(_ op: Op, _ x: DType, _ y: DType) throws -> Graph {
            var b = GraphBuilder(name: "typed")
            let a = b.addInput("a", TensorType(x, Shape([2])))
            let c = b.addInput("c", TensorType(y, Shape([2])))
            b.addOutput(b.add(op, inputs: [a, c], output: "z", origin: Origin(layer: "op", type: op.name)))
            return try b.finish()
        }
        _ = try ONNXExporter.model(try graph(.add, .uint32, .uint32), opset: 13)
        _ = try ONNXExporter.model(try graph(.add, .float64, .float64), opset: 13)
        #expect(throws: FerryError.self) { try ONNXExporter.model(try graph(.add, .int16, .int16), opset: 13) }
        _ = try ONNXExporter.model(try graph(.add, .int16, .int16), opset: 14)
        _ = try ONNXExporter.model(try graph(.pow, .float32, .uint64), opset: 13)
        #expect(throws: FerryError.self) { try ONNXExporter.model(try graph(.pow, .uint16, .float32), opset: 21) }
    }

    /// One node with a single activation, exported at an opset.
    func exportedActivation(_ op: Op, opset: Int = ONNXExporter.defaultOpset) throws -> Onnx_ModelProto {
        var b = GraphBuilder(name: "act")
        let x = b.addInput("x", TensorType(.float32, Shape([.symbolic("N"), .fixed(3)])))
        let y = b.add(op, inputs: [x], output: "y", origin: Origin(layer: "act", type: "Activation"))
        b.addOutput(y)
        return try roundTrip(try b.finish(), opset: opset)
    }

    @Test func newerOpsDecomposeAtOlderOpsets() throws {
        // Gelu is opset 20: before, the ONNX function body (erf or tanh form).
        let gelu17 = try exportedActivation(.gelu(approximate: false))
        #expect(gelu17.graph.node.map(\.opType) == ["Mul", "Erf", "Add", "Mul", "Mul"])
        #expect(gelu17.graph.node.last!.output == ["y"])
        #expect(gelu17.graph.node.allSatisfy { $0.docString == "from act (Activation)" })
        let geluTanh17 = try exportedActivation(.gelu(approximate: true))
        #expect(geluTanh17.graph.node.contains { $0.opType == "Tanh" })
        #expect(!geluTanh17.graph.node.contains { $0.opType == "Erf" })
        let gelu20 = try exportedActivation(.gelu(approximate: true), opset: 20)
        #expect(gelu20.graph.node.map(\.opType) == ["Gelu"])
        #expect(String(decoding: gelu20.graph.node[0].attribute[0].s, as: UTF8.self) == "tanh")
        #expect(try exportedActivation(.mish).graph.node.map(\.opType) == ["Softplus", "Tanh", "Mul"])
        #expect(try exportedActivation(.mish, opset: 18).graph.node.map(\.opType) == ["Mish"])
        #expect(try exportedActivation(.hardSwish).graph.node.map(\.opType) == ["HardSwish"])
        #expect(try exportedActivation(.hardSwish, opset: 13).graph.node.map(\.opType) == ["HardSigmoid", "Mul"])
        // Ops the opset cannot say at all are refused, naming the layer.
        let e = #expect(throws: FerryError.self) { try exportedActivation(.thresholdedRelu(alpha: 1), opset: 9) }
        #expect(e?.layer == "act")
        #expect(e?.description.contains("opset 10") == true)
        #expect(throws: FerryError.self) { try exportedActivation(.gelu(approximate: false), opset: 8) }
    }

    @Test func reductionAxesAsAttributeOrInput() throws {
        func reduceNode(_ operation: ReduceOperation, axes: [Int]?, opset: Int) throws -> (Onnx_NodeProto, Onnx_ModelProto) {
            let m = try exportedActivation(.reduce(operation, axes: axes, keepDims: false), opset: opset)
            return (m.graph.node[0], m)
        }
        // Opset 13-17: ReduceSum takes axes as an input, the others as an attribute.
        let (sum17, m17) = try reduceNode(.sum, axes: [1], opset: 17)
        #expect(sum17.opType == "ReduceSum")
        #expect(sum17.input == ["x", "y_axes"])
        #expect(m17.graph.initializer[0].dataType == 7)
        #expect(attributes(sum17) == ["keepdims": "0"])
        let (mean17, _) = try reduceNode(.mean, axes: [-1], opset: 17)
        #expect(mean17.input == ["x"])
        #expect(attributes(mean17) == ["axes": "-1", "keepdims": "0"])
        // Opset 18: every reduction takes the input; before 13 ReduceSum took the attribute.
        #expect(try reduceNode(.logSumExp, axes: [1], opset: 18).0.input == ["x", "y_axes"])
        #expect(attributes(try reduceNode(.sum, axes: [1], opset: 11).0) == ["axes": "1", "keepdims": "0"])
        // No axes: every axis, in every form.
        #expect(try reduceNode(.sum, axes: nil, opset: 17).0.input == ["x"])
        #expect(attributes(try reduceNode(.l2, axes: nil, opset: 17).0) == ["keepdims": "0"])
        // select_last_index arrived in opset 12.
        let argMax = Op.argMax(axis: 1, keepDims: true, selectLastIndex: true)
        #expect(attributes(try exportedActivation(argMax).graph.node[0]) == ["axis": "1", "keepdims": "1", "select_last_index": "1"])
        #expect(throws: FerryError.self) { try exportedActivation(argMax, opset: 11) }
        // TopK: K an attribute before opset 10, an input from 10; largest and sorted from 11.
        let topK = Op.topK(axis: 1, k: 2, largest: true)
        func topKNode(_ op: Op, opset: Int) throws -> Onnx_NodeProto {
            var b = GraphBuilder(name: "topk")
            let x = b.addInput("x", TensorType(.float32, Shape([2, 3])))
            let outs = b.add(op, inputs: [x], outputs: ["values", "indices"], origin: Origin(layer: "top", type: "TopK"))
            b.addOutput(outs[0])
            b.addOutput(outs[1])
            return try roundTrip(try b.finish(), opset: opset).graph.node[0]
        }
        #expect(attributes(try topKNode(topK, opset: 9)) == ["axis": "1", "k": "2"])
        #expect(try topKNode(topK, opset: 10).input.count == 2)
        #expect(attributes(try topKNode(topK, opset: 13)) == ["axis": "1", "largest": "1", "sorted": "1"])
        #expect(throws: FerryError.self) { try topKNode(.topK(axis: 1, k: 2, largest: false), opset: 10) }
        // Read back (K as an attribute and as an input), the op is the same.
        for opset in [9, 13] {
            var b = GraphBuilder(name: "topk")
            let x = b.addInput("x", TensorType(.float32, Shape([2, 3])))
            let outs = b.add(.topK(axis: 1, k: 2, largest: opset == 9), inputs: [x], outputs: ["values", "indices"],
                             origin: Origin(layer: "top", type: "TopK"))
            b.addOutput(outs[0])
            b.addOutput(outs[1])
            let back = try ONNXImporter.model(try roundTrip(try b.finish(), opset: opset))
            #expect(back.nodes.map(\.op) == [.topK(axis: 1, k: 2, largest: opset == 9)])
        }
    }

    @Test func comparisonsLogicAndCast() throws {
        let cast = try exportedActivation(.cast(to: .float16)).graph.node[0]
        #expect(attributes(cast) == ["to": "10"])
        #expect(attributes(try exportedActivation(.cast(to: .bool)).graph.node[0]) == ["to": "9"])
        func compared(_ op: Op, opset: Int) throws -> Onnx_ModelProto {
            var b = GraphBuilder(name: "cmp")
            let x = b.addInput("x", TensorType(.float32, Shape([2, 3])))
            let y = b.add(op, inputs: [x, x], output: "y", origin: Origin(layer: "cmp", type: "Compare"))
            let z = b.add(.where, inputs: [y, x, x], output: "z", origin: Origin(layer: "pick", type: "Where"))
            b.addOutput(z)
            return try roundTrip(try b.finish(), opset: opset)
        }
        #expect(try compared(.greaterOrEqual, opset: 12).graph.node.map(\.opType) == ["GreaterOrEqual", "Where"])
        // GreaterOrEqual arrived in opset 12, Where in 9, Equal on floats in 11.
        let e = #expect(throws: FerryError.self) { try compared(.lessOrEqual, opset: 11) }
        #expect(e?.layer == "cmp")
        #expect(e?.description.contains("opset 12") == true)
        #expect(throws: FerryError.self) { try compared(.greater, opset: 8) }
        #expect(throws: FerryError.self) { try compared(.equal, opset: 10) }
        _ = try compared(.equal, opset: 11)
    }

    @Test func layerNormalizationBeforeOpset17() throws {
        var b = GraphBuilder(name: "ln")
        let x = b.addInput("x", TensorType(.float32, Shape([.symbolic("N"), .fixed(3), .fixed(4)])))
        let scale = b.addInitializer("s", Tensor(shape: [4], floats: [1, 2, 3, 4]))
        let y = b.add(.layerNormalization(axis: -1, epsilon: 1e-5), inputs: [x, scale, ""], output: "y",
                      origin: Origin(layer: "ln", type: "LayerNormalization"))
        b.addOutput(y)
        let graph = try b.finish()
        let m17 = try roundTrip(graph)
        #expect(m17.graph.node.map(\.opType) == ["LayerNormalization"])
        #expect(m17.graph.node[0].input == ["x", "s"])
        let m16 = try roundTrip(graph, opset: 16)
        #expect(m16.graph.node.map(\.opType) == ["ReduceMean", "Sub", "Mul", "ReduceMean", "Add", "Sqrt", "Div", "Mul"])
        #expect(attributes(m16.graph.node[0]) == ["axes": "2", "keepdims": "1"])
        #expect(m16.graph.node.last!.output == ["y"])
    }

    @Test func clipBoundsAreInputsFromOpset11() throws {
        let m17 = try exportedActivation(.clip(min: nil, max: 6))
        #expect(m17.graph.node[0].input == ["x", "", "y_max"])
        #expect(m17.graph.initializer.map(\.name) == ["y_max"])
        #expect(m17.graph.initializer[0].dims.isEmpty)
        #expect(floats(m17.graph.initializer[0]) == [6])
        #expect(try exportedActivation(.clip(min: -1, max: nil)).graph.node[0].input == ["x", "y_min"])
        #expect(try exportedActivation(.clip(min: nil, max: nil)).graph.node[0].input == ["x"])
        let m9 = try exportedActivation(.clip(min: -1, max: 6), opset: 9)
        #expect(m9.graph.node[0].input == ["x"])
        #expect(attributes(m9.graph.node[0]) == ["min": "-1.0", "max": "6.0"])
    }

    @Test func emptyGraphNameGetsOne() throws {
        var b = GraphBuilder(name: "")
        let x = b.addInput("x", TensorType(.float32, Shape([1])))
        let y = b.add(.identity, inputs: [x], output: "y", origin: nil)
        b.addOutput(y)
        let m = try roundTrip(try b.finish())
        #expect(m.graph.name == "ferry")
        #expect(m.graph.node[0].docString.isEmpty)
        #expect(m.metadataProps.isEmpty)
    }
}

extension Graphs {
    /// ONNX nodes of the every-op graph at opset 17: one per IR node, but Gelu (opset 20), Mish
    /// (opset 18) and GroupNormalization (per-channel scale: opset 21) are written as their
    /// decompositions.
    static let everyOpCount = 110

    /// The CNN with ceil-mode max pooling.
    static func cnnCeil() throws -> Graph {
        var g = try cnn()
        let i = g.nodes.firstIndex { $0.op.name == "MaxPool" }!
        g.nodes[i].op = .maxPool(PoolAttributes(kernelShape: [2, 2], strides: [2, 2], ceilMode: true))
        return try g.withInferredOutputTypes()
    }
}

@Suite struct PoolExportTests {
    func exported(_ name: String, opset: Int = ONNXExporter.defaultOpset) throws -> Onnx_ModelProto {
        try roundTrip(try PoolCase.all.first { $0.name == name }!.graph(), opset: opset)
    }

    func poolAttributes(_ m: Onnx_ModelProto) -> [String: String] {
        attributes(m.graph.node.first { $0.opType.hasSuffix("Pool") }!)
    }

    @Test func ceilModeKeptWhenNoWindowIsDropped() throws {
        let a = poolAttributes(try exported("max_ceil_plain"))
        #expect(a["ceil_mode"] == "1")
        #expect(a["pads"] == "0,0,0,0")
        let caffe = poolAttributes(try exported("avg_include_ceil_caffe"))
        #expect(caffe["ceil_mode"] == "1")
        #expect(caffe["pads"] == "1,1,1,1")
        #expect(caffe["count_include_pad"] == "1")
    }

    @Test func droppedWindowRestatedWithoutCeilMode() throws {
        let cases = [("max_ceil_drop", "0,1,0,1"), ("max_ceil_stride_gt_kernel", "0,0,0,1"),
                     ("avg_exclude_ceil_drop", "1,1,0,0"), ("avg_include_ceil_drop_floor", "0,0,0,0")]
        for (name, pads) in cases {
            let m = try exported(name)
            let a = poolAttributes(m)
            #expect(a["ceil_mode"] == "0", "\(name)")
            #expect(a["pads"] == pads, "\(name)")
            // Sizes stay stated.
            #expect(!dims(m.graph.output[0]).contains("?"), "\(name)")
            #expect(m.graph.valueInfo.map(\.name) == ["pool"], "\(name)")
        }
        #expect(dims(try exported("max_ceil_drop").graph.output[0]) == ["1", "2", "3", "3"])
        #expect(try exported("max_ceil_drop").graph.node[0].docString
                == "from pool (MAX); ceil_mode=1 pads=[0, 1, 1, 1] restated for ONNX")
        #expect(try exported("max_ceil_plain").graph.node[0].docString == "from pool (MAX)")
    }

    @Test func includePadAverageShortensEndPad() throws {
        let a = poolAttributes(try exported("avg_include_ceil_drop_shorter_pad"))
        #expect(a["ceil_mode"] == "1")
        #expect(a["pads"] == "0,0,0,0")
    }

    @Test func unstatableSizesLeftOut() throws {
        let m = try exported("avg_include_ceil_unstated")
        #expect(poolAttributes(m)["ceil_mode"] == "1")
        #expect(poolAttributes(m)["pads"] == "0,0,1,0")
        #expect(dims(m.graph.output[0]) == ["?", "?", "?", "?"])
        #expect(m.graph.valueInfo.isEmpty)
    }

    @Test func ceilModeBeforeOpset10() throws {
        // Opset 9 has no ceil_mode: restated with floor rounding where that keeps the windows.
        let plain = try exported("max_ceil_plain", opset: 9)
        #expect(poolAttributes(plain) == ["kernel_shape": "2,2", "strides": "2,2", "pads": "0,0,1,1"])
        #expect(dims(plain.graph.output[0]) == ["1", "2", "3", "3"])
        // An average counting padding with a clipped last window cannot be said without it.
        let e = #expect(throws: FerryError.self) { try exported("avg_include_ceil_caffe", opset: 9) }
        #expect(e?.layer == "pool")
        #expect(e?.description.contains("opset 10") == true)
    }
}
