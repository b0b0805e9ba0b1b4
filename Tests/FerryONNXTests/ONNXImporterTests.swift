import Foundation
import FerryIR
@testable import FerryONNX
import FerryRuntime
import Testing

/// Small ONNX models built field by field, as another producer would write them.
enum ONNXModels {
    static func valueInfo(_ name: String, _ elemType: Onnx_TensorProto.DataType, _ dims: [Any]) -> Onnx_ValueInfoProto {
        var t = Onnx_TypeProto.Tensor()
        t.elemType = Int32(elemType.rawValue)
        var shape = Onnx_TensorShapeProto()
        shape.dim = dims.map { d in
            var dim = Onnx_TensorShapeProto.Dimension()
            if let n = d as? Int { dim.dimValue = Int64(n) } else if let s = d as? String, !s.isEmpty { dim.dimParam = s }
            return dim
        }
        t.shape = shape
        var v = Onnx_ValueInfoProto()
        v.name = name
        v.type.tensorType = t
        return v
    }

    static func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String = "",
                     domain: String = "", _ attributes: [Onnx_AttributeProto] = []) -> Onnx_NodeProto {
        var n = Onnx_NodeProto()
        n.opType = op
        n.input = inputs
        n.output = outputs
        n.name = name
        if !domain.isEmpty { n.domain = domain }
        n.attribute = attributes
        return n
    }

    static func model(opset: Int = 17, inputs: [Onnx_ValueInfoProto], outputs: [String],
                      initializers: [Onnx_TensorProto] = [], nodes: [Onnx_NodeProto]) -> Onnx_ModelProto {
        var g = Onnx_GraphProto()
        g.name = "test"
        g.input = inputs
        g.output = outputs.map { valueInfo($0, .float, []) }
        for i in g.output.indices { g.output[i].type = Onnx_TypeProto() }
        g.initializer = initializers
        g.node = nodes
        var m = Onnx_ModelProto()
        m.irVersion = 8
        var o = Onnx_OperatorSetIdProto()
        o.domain = ""
        o.version = Int64(opset)
        m.opsetImport = [o]
        m.graph = g
        return m
    }

    static func floatTensor(_ name: String, _ dims: [Int], _ values: [Float], typed: Bool = false) -> Onnx_TensorProto {
        var t = typed ? Onnx_TensorProto() : ONNXTensors.tensor(name, Tensor(shape: dims, floats: values))
        if typed {
            t.name = name
            t.dims = dims.map(Int64.init)
            t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
            t.floatData = values
        }
        return t
    }
}

/// A constant evaluator for tests that need folding without the runtime: Identity only.
let identityEvaluator: ConstantEvaluator = { op, inputs in
    guard case .identity = op, let x = inputs.first ?? nil else { throw FerryError("not folded in tests") }
    return [x]
}

func sameGraph(_ a: Graph, _ b: Graph) {
    #expect(a.inputs == b.inputs)
    #expect(a.outputs == b.outputs)
    #expect(a.initializers == b.initializers)
    #expect(a.nodes == b.nodes)
    #expect(a.metadata == b.metadata)
}

@Suite struct ONNXImporterTests {
    /// Exported graphs read back and exported again give the same IR (ONNX -> IR -> ONNX -> IR).
    /// (Exports that decompose an op are checked by running them: the conformance suite and
    /// the cross-checks.)
    @Test(arguments: ["tiny_cnn", "broadcast", "every_op"])
    func roundTripIsStable(_ which: String) throws {
        let original = switch which {
        case "tiny_cnn": try Graphs.cnn()
        case "broadcast": try Graphs.broadcast()
        default: try Graphs.everyOp(coreOnly: true)
        }
        // Opset 21 has every IR op as one ONNX op (at 17, Gelu and Mish are decomposed).
        let first = try ONNXImporter.model(try roundTrip(original, opset: 21))
        let second = try ONNXImporter.model(try roundTrip(first, opset: 21))
        sameGraph(first, second)
        // The first import keeps the interface, the weights and the op sequence.
        #expect(first.inputs == original.inputs)
        #expect(first.outputs.map(\.name) == original.outputs.map(\.name))
        #expect(first.outputs.map(\.type) == original.outputs.map(\.type))
        #expect(first.initializers == original.initializers)
        #expect(first.nodes.map(\.op.name) == original.nodes.map(\.op.name))
        #expect(first.nodes.map(\.outputs) == original.nodes.map(\.outputs))
        #expect(first.metadata["source_format"] == "onnx")
        #expect(first.metadata["original_format"] == original.metadata["source_format"])
        #expect(first.metadata["onnx_producer"] == "ferry 0.1.0")
    }

    @Test func reshapeTargetAndAttributesComeBack() throws {
        let g = try ONNXImporter.model(try roundTrip(try Graphs.broadcast()))
        #expect(g.nodes.first?.op == .reshape(shape: [0, 3, 4]))
        // The shape initializer the exporter made is folded into the attribute, not kept.
        #expect(g.initializers.keys.sorted() == ["bias", "m", "scale", "two"])
    }

    @Test func typedFieldsAndRawDataReadAlike() throws {
        let model = ONNXModels.model(
            inputs: [ONNXModels.valueInfo("x", .float, ["N", 3])], outputs: ["y"],
            initializers: [ONNXModels.floatTensor("a", [3], [1, 2, 3], typed: true),
                           ONNXModels.floatTensor("b", [3], [4, 5, 6])],
            nodes: [ONNXModels.node("Add", ["x", "a"], ["t"]), ONNXModels.node("Mul", ["t", "b"], ["y"])])
        let g = try ONNXImporter.model(model)
        #expect(g.initializers["a"] == Tensor(shape: [3], floats: [1, 2, 3]))
        #expect(g.initializers["b"] == Tensor(shape: [3], floats: [4, 5, 6]))
        #expect(g.inputs == [Value(name: "x", type: TensorType(.float32, Shape([.symbolic("N"), .fixed(3)])))])
    }

    @Test func everyIRDTypeReadsFromRawAndTypedFields() throws {
        let tensors: [Tensor] = [
            Tensor(shape: [2], floats: [1.5, -2]),
            try Tensor(shape: [2], storage: .float16([0x3C00, 0xC000])),
            Tensor(shape: [2], int64s: [Int64.max, -3]),
            try Tensor(shape: [2], storage: .int32([7, -8])),
            try Tensor(shape: [2], storage: .int8([-128, 127])),
            try Tensor(shape: [2], storage: .uint8([0, 255])),
            try Tensor(shape: [2], storage: .bool([true, false])),
            try Tensor(shape: [2], storage: .float64([1e-300, -0.1])),
            try Tensor(shape: [2], storage: .int16([-32768, 32767])),
            try Tensor(shape: [2], storage: .uint16([0, 65535])),
            try Tensor(shape: [2], storage: .uint32([0, 4_294_967_295])),
            try Tensor(shape: [2], storage: .uint64([UInt64.max, 1])),
            try Tensor(shape: [2], storage: .bfloat16([0x3F80, 0xFF80])),
            try Tensor(shape: [2], storage: .string(["größe", ""])),
        ]
        for t in tensors {
            let raw = ONNXTensors.tensor("t", t)
            #expect(try ONNXImportTensors.tensor(raw, external: nil) == t)
            if t.dtype == .string {
                // string_data is the only form strings have: raw_data for them is refused.
                #expect(raw.stringData == [Data("größe".utf8), Data()] && !raw.hasRawData)
                var rawStrings = raw
                rawStrings.rawData = Data("ab".utf8)
                #expect(throws: FerryError.self) { try ONNXImportTensors.tensor(rawStrings, external: nil) }
                var notText = raw
                notText.stringData = [Data([0xFF, 0xFE]), Data()]
                #expect(throws: FerryError.self) { try ONNXImportTensors.tensor(notText, external: nil) }
                continue
            }
            var typed = raw
            typed.clearRawData()
            switch t.storage {
            case .float32(let a): typed.floatData = a
            case .float16(let a): typed.int32Data = a.map { Int32($0) }
            case .int64(let a): typed.int64Data = a
            case .int32(let a): typed.int32Data = a
            case .int8(let a): typed.int32Data = a.map { Int32($0) }
            case .uint8(let a): typed.int32Data = a.map { Int32($0) }
            case .bool(let a): typed.int32Data = a.map { $0 ? 1 : 0 }
            case .float64(let a): typed.doubleData = a
            case .int16(let a): typed.int32Data = a.map { Int32($0) }
            case .uint16(let a): typed.int32Data = a.map { Int32($0) }
            case .uint32(let a): typed.uint64Data = a.map { UInt64($0) }
            case .uint64(let a): typed.uint64Data = a
            case .bfloat16(let a): typed.int32Data = a.map { Int32($0) }
            case .string: break
            }
            #expect(try ONNXImportTensors.tensor(typed, external: nil) == t)
        }
        var complex = Onnx_TensorProto()
        complex.name = "c"
        complex.dataType = Int32(Onnx_TensorProto.DataType.complex64.rawValue)
        #expect(throws: FerryError.self) { try ONNXImportTensors.tensor(complex, external: nil) }
    }

    @Test func externalDataBesideTheModel() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-ext-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let values: [Float] = [0.25, -1, 3, 8]
        var bytes = Data([9, 9, 9, 9])  // an offset of 4
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
        try bytes.write(to: dir.appendingPathComponent("w.bin"))
        func external(_ location: String) -> Onnx_TensorProto {
            var t = Onnx_TensorProto()
            t.name = "w"
            t.dims = [4]
            t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
            t.dataLocation = .external
            t.externalData = [("location", location), ("offset", "4"), ("length", "16")].map { k, v in
                var e = Onnx_StringStringEntryProto()
                e.key = k
                e.value = v
                return e
            }
            return t
        }
        let read = try ONNXImportTensors.tensor(external("w.bin"), external: .init(directory: dir))
        #expect(read == Tensor(shape: [4], floats: values))
        for escaping in ["../w.bin", "/etc/passwd", "sub/../../w.bin"] {
            #expect(throws: FerryError.self) { try ONNXImportTensors.tensor(external(escaping), external: .init(directory: dir)) }
        }
        #expect(throws: FerryError.self) { try ONNXImportTensors.tensor(external("w.bin"), external: nil) }
    }

    @Test func initializersListedAsInputsAreWeights() throws {
        let model = ONNXModels.model(
            opset: 7,
            inputs: [ONNXModels.valueInfo("x", .float, [1, 3]), ONNXModels.valueInfo("b", .float, [3])],
            outputs: ["y"], initializers: [ONNXModels.floatTensor("b", [3], [1, 2, 3])],
            nodes: [ONNXModels.node("Add", ["x", "b"], ["y"])])
        let g = try ONNXImporter.model(model)
        #expect(g.inputs.map(\.name) == ["x"])
        #expect(g.initializers["b"] != nil)
    }

    @Test func unknownDimsGetNamesAndConstantsBecomeInitializers() throws {
        var value = Onnx_AttributeProto()
        value.name = "value"
        value.type = .tensor
        value.t = ONNXModels.floatTensor("", [1], [2])
        let model = ONNXModels.model(
            inputs: [ONNXModels.valueInfo("x", .float, ["", 4])], outputs: ["y"],
            nodes: [ONNXModels.node("Constant", [], ["c"], [value]), ONNXModels.node("Mul", ["x", "c"], ["y"])])
        let g = try ONNXImporter.model(model)
        #expect(g.inputs[0].type.shape == Shape([.symbolic("x_dim0"), .fixed(4)]))
        #expect(g.initializers["c"] == Tensor(shape: [1], floats: [2]))
        #expect(g.nodes.map(\.op) == [.mul])
    }

    @Test func missingOpNamesOpDomainOpsetAndNode() throws {
        let model = ONNXModels.model(
            opset: 15, inputs: [ONNXModels.valueInfo("x", .float, [2])], outputs: ["y"],
            nodes: [ONNXModels.node("Frobnicate", ["x"], ["y"], name: "frob1")])
        do {
            _ = try ONNXImporter.model(model)
            Issue.record("expected an error")
        } catch let e as FerryError {
            #expect(e.layer == "frob1")
            #expect(e.message.contains("Frobnicate"))
            #expect(e.message.contains("ai.onnx"))
            #expect(e.message.contains("opset 15"))
        }
        var other = model
        other.graph.node[0].domain = "com.example"
        var o = Onnx_OperatorSetIdProto()
        o.domain = "com.example"
        o.version = 3
        other.opsetImport.append(o)
        do {
            _ = try ONNXImporter.model(other)
            Issue.record("expected an error")
        } catch let e as FerryError {
            #expect(e.message.contains("domain com.example, opset 3"))
        }
    }

    @Test func softmaxBefore13CoercesTo2D() throws {
        var axis = Onnx_AttributeProto()
        axis.name = "axis"
        axis.type = .int
        axis.i = 1
        let model = ONNXModels.model(
            opset: 11, inputs: [ONNXModels.valueInfo("x", .float, ["N", 3, 4])], outputs: ["y"],
            nodes: [ONNXModels.node("Softmax", ["x"], ["y"], name: "sm", [axis])])
        let g = try ONNXImporter.model(model)
        #expect(g.nodes.map(\.op) == [.flatten(axis: 1), .softmax(axis: 1), .reshape(shape: [-1, 3, 4])])
        #expect(g.outputs[0].name == "y")
        // Over the last axis, or from opset 13 on, it is one Softmax.
        axis.i = 2
        var last = model
        last.graph.node[0].attribute = [axis]
        #expect(try ONNXImporter.model(last).nodes.map(\.op) == [.softmax(axis: -1)])
        var v13 = model
        v13.opsetImport[0].version = 13
        #expect(try ONNXImporter.model(v13).nodes.map(\.op) == [.softmax(axis: 1)])
    }

    @Test func reshapeShapeMustBeConstant() throws {
        let model = ONNXModels.model(
            inputs: [ONNXModels.valueInfo("x", .float, [2, 3]), ONNXModels.valueInfo("s", .int64, [2])], outputs: ["y"],
            nodes: [ONNXModels.node("Reshape", ["x", "s"], ["y"], name: "r")])
        #expect { try ONNXImporter.model(model) } throws: { e in
            (e as? FerryError)?.message.contains("must be a constant") == true && (e as? FerryError)?.layer == "r"
        }
    }

    @Test func shapeFoldsIntoReshape() throws {
        // y = Reshape(x, Shape(z)) with z's sizes known: the target becomes an attribute.
        let model = ONNXModels.model(
            inputs: [ONNXModels.valueInfo("x", .float, [2, 6]), ONNXModels.valueInfo("z", .float, [3, 4])], outputs: ["y"],
            nodes: [ONNXModels.node("Shape", ["z"], ["s"]), ONNXModels.node("Reshape", ["x", "s"], ["y"])])
        let g = try ONNXImporter.model(model)
        #expect(g.nodes.map(\.op) == [.reshape(shape: [3, 4])])
        #expect(g.initializers.isEmpty)
    }

    @Test func autoPadSameUpperAndLower() throws {
        func conv(_ autoPad: String) throws -> Op? {
            var a = Onnx_AttributeProto()
            a.name = "auto_pad"
            a.type = .string
            a.s = Data(autoPad.utf8)
            var s = Onnx_AttributeProto()
            s.name = "strides"
            s.type = .ints
            s.ints = [2, 2]
            let model = ONNXModels.model(
                inputs: [ONNXModels.valueInfo("x", .float, [1, 1, 5, 6])], outputs: ["y"],
                initializers: [ONNXModels.floatTensor("w", [1, 1, 2, 3], Array(repeating: 1, count: 6))],
                nodes: [ONNXModels.node("Conv", ["x", "w"], ["y"], [a, s])])
            return try ONNXImporter.model(model).nodes.first?.op
        }
        // H: out 3, total pad (3-1)*2+2-5 = 1; W: out 3, total (3-1)*2+3-6 = 1.
        #expect(try conv("SAME_UPPER") == .conv(ConvAttributes(kernelShape: [2, 3], strides: [2, 2], pads: [0, 0, 1, 1])))
        #expect(try conv("SAME_LOWER") == .conv(ConvAttributes(kernelShape: [2, 3], strides: [2, 2], pads: [1, 1, 0, 0])))
        #expect(try conv("VALID") == .conv(ConvAttributes(kernelShape: [2, 3], strides: [2, 2])))
    }

    @Test func foldsConstantSubgraphsWithTheEvaluator() throws {
        let model = ONNXModels.model(
            inputs: [ONNXModels.valueInfo("x", .float, [3])], outputs: ["y"],
            initializers: [ONNXModels.floatTensor("w", [3], [1, 2, 3])],
            nodes: [ONNXModels.node("Identity", ["w"], ["w2"]), ONNXModels.node("Add", ["x", "w2"], ["y"])])
        let folded = try ONNXImporter.model(model, evaluate: identityEvaluator)
        #expect(folded.nodes.map(\.op) == [.add])
        #expect(folded.initializers["w2"] == Tensor(shape: [3], floats: [1, 2, 3]))
        #expect(folded.initializers["w"] == nil)
        let kept = try ONNXImporter.model(model)
        #expect(kept.nodes.map(\.op) == [.identity, .add])
    }

    /// A Range limit computed from a graph input (as the window functions' expansions do): the
    /// binder's value for the input is bound, the nodes that compute the limit are evaluated,
    /// and they leave the graph; without a binder the Range is refused.
    @Test func bindsInputsThatAConstantOperandIsComputedFrom() throws {
        let model = ONNXModels.model(
            inputs: [ONNXModels.valueInfo("n", .float, []), ONNXModels.valueInfo("x", .float, [4])], outputs: ["y"],
            initializers: [ONNXModels.floatTensor("zero", [], [0]), ONNXModels.floatTensor("one", [], [1])],
            nodes: [ONNXModels.node("Add", ["n", "one"], ["limit"], name: "limit"),
                    ONNXModels.node("Range", ["zero", "limit", "one"], ["r"], name: "range"),
                    ONNXModels.node("Add", ["x", "r"], ["y"], name: "sum")])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-bind-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.onnx").path
        try model.serializedData().write(to: URL(fileURLWithPath: path))
        let g = try ONNXImporter.load(path: path, evaluate: { try ReferenceKernels.evaluate($0, $1) },
                                      bind: { $0 == "n" ? Tensor(shape: [], floats: [3]) : nil })
        #expect(g.inputs.map(\.name) == ["x"])
        #expect(g.nodes.map(\.name) == ["sum"])
        #expect(g.initializers[g.nodes[0].inputs[1]] == Tensor(shape: [4], floats: [0, 1, 2, 3]))
        #expect(throws: FerryError.self) { try ONNXImporter.load(path: path, evaluate: { try ReferenceKernels.evaluate($0, $1) }) }
    }

    @Test func legacyBroadcastAxisBeforeOpset7() throws {
        var b = Onnx_AttributeProto()
        b.name = "broadcast"
        b.type = .int
        b.i = 1
        var axis = Onnx_AttributeProto()
        axis.name = "axis"
        axis.type = .int
        axis.i = 1
        let model = ONNXModels.model(
            opset: 6, inputs: [ONNXModels.valueInfo("x", .float, [2, 3, 4])], outputs: ["y"],
            initializers: [ONNXModels.floatTensor("c", [3], [1, 2, 3])],
            nodes: [ONNXModels.node("Add", ["x", "c"], ["y"], name: "add", [b, axis])])
        let g = try ONNXImporter.model(model)
        #expect(g.nodes.map(\.op) == [.add])
        let bias = g.nodes[0].inputs[1]
        #expect(g.initializers[bias]?.shape == [3, 1])
    }

    @Test func refusesOpsetsOutsideTheRange() throws {
        let model = ONNXModels.model(opset: 25, inputs: [ONNXModels.valueInfo("x", .float, [2])], outputs: ["x"], nodes: [])
        #expect(throws: FerryError.self) { try ONNXImporter.model(model) }
    }

    /// Below opset 6 only ops whose old form computes the same are read; others are named.
    @Test func readsOpsetOneOnlyWhereTheFormIsTheSame() throws {
        let x = [ONNXModels.valueInfo("x", .float, [1, 2, 3, 3])]
        let same = ONNXModels.model(opset: 1, inputs: x, outputs: ["y"],
                                    nodes: [ONNXModels.node("GlobalAveragePool", ["x"], ["y"], name: "gap")])
        #expect(try ONNXImporter.model(same).nodes.map(\.op) == [.globalAveragePool])
        let older = ONNXModels.model(opset: 5, inputs: x, outputs: ["y"],
                                     nodes: [ONNXModels.node("LRN", ["x"], ["y"], name: "lrn")])
        #expect { try ONNXImporter.model(older) } throws: {
            guard let e = $0 as? FerryError else { return false }
            return e.layer == "lrn" && e.message.contains("LRN at opset 5")
        }
    }

    @Test func garbageFileIsAnError() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-bad-\(UUID().uuidString).onnx")
        try Data([0xFF, 0xFF, 0xFF, 0x07, 0x01]).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        #expect { try ONNXImporter.load(path: path.path) } throws: { ($0 as? FerryError)?.file == path.path }
    }
}
