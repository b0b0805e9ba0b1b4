import Foundation
import FerryIR
@testable import FerryONNX
import FerryRuntime
import Testing

extension Graphs {
    /// ConvTranspose and every data-movement op on float32, in three chains with four outputs.
    static func dataMovement() throws -> Graph {
        var b = GraphBuilder(name: "data_movement", metadata: ["source_format": "test"])
        func o(_ name: String, _ type: String) -> Origin { Origin(layer: name, type: type) }
        let x = b.addInput("x", TensorType(.float32, Shape([.symbolic("N"), .fixed(4), .fixed(5), .fixed(6)])))

        // ConvTranspose -> SpaceToDepth -> DepthToSpace(CRD) -> Slice (negative steps) -> three Pads.
        let w = b.addInitializer("ct_W", Tensor(shape: [4, 3, 3, 3], floats: floats(108, seed: 20)))
        let bias = b.addInitializer("ct_B", Tensor(shape: [6], floats: floats(6, seed: 21)))
        let ct = b.add(.convTranspose(ConvTransposeAttributes(kernelShape: [3, 3], strides: [2, 2], pads: [1, 0, 1, 2],
                                                              group: 2, outputPadding: [1, 1])),
                       inputs: [x, w, bias], output: "ct", origin: o("up", "Conv2DTranspose"))            // [N,6,10,12]
        let s2d = b.add(.spaceToDepth(blockSize: 2), inputs: [ct], output: "s2d", origin: o("s2d", "SpaceToDepth"))  // [N,24,5,6]
        let d2s = b.add(.depthToSpace(blockSize: 2, mode: .crd), inputs: [s2d], output: "d2s_crd", origin: o("d2s", "PixelShuffle"))
        let sl = b.add(.slice(SliceAttributes(starts: [8, -1, 0], ends: [1, Int(Int64.min), 4], axes: [2, 3, 1], steps: [-2, -3, 1])),
                       inputs: [d2s], output: "sliced", origin: o("slice", "Slice"))                  // [N,4,4,4]
        let pr = b.add(.pad(PadAttributes(pads: [0, 0, 1, 2, 0, 0, 3, 1], mode: .reflect)), inputs: [sl], output: "reflected",
                       origin: o("pad1", "ReflectionPad2d"))                                          // [N,4,8,7]
        let pe = b.add(.pad(PadAttributes(pads: [0, 1, 0, 0, 0, 0, 2, 1], mode: .edge)), inputs: [pr], output: "edged",
                       origin: o("pad2", "ReplicationPad2d"))                                         // [N,5,10,8]
        let pc = b.add(.pad(PadAttributes(pads: [0, 0, 1, 1, 0, 2, 0, 3], value: 0.5)), inputs: [pe], output: "padded",
                       origin: o("pad3", "ZeroPadding2D"))                                            // [N,7,11,12]

        // Gather (int32 indices) -> Tile -> Concat -> Split -> (Unsqueeze -> Squeeze -> Expand | DepthToSpace DCR).
        let idx = b.addInitializer("rows", try Tensor(shape: [3], storage: .int32([4, -5, 2])))
        let gathered = b.add(.gather(axis: 2), inputs: [x, idx], output: "gathered", origin: o("gather", "Gather"))  // [N,4,3,6]
        let tiled = b.add(.tile(repeats: [1, 1, 2, 1]), inputs: [gathered], output: "tiled", origin: o("tile", "Tile"))  // [N,4,6,6]
        let cat = b.add(.concat(axis: -2), inputs: [tiled, x], output: "cat", origin: o("cat", "Concatenate"))  // [N,4,11,6]
        let parts = b.add(.split(axis: 2, sizes: [3, 8]), inputs: [cat], outputs: ["top", "bottom"], origin: o("split", "Split"))
        let un = b.add(.unsqueeze(axes: [2, -1]), inputs: [parts[0]], output: "unsqueezed", origin: o("un", "Unsqueeze"))  // [N,4,1,3,6,1]
        let sq = b.add(.squeeze(axes: [-1]), inputs: [un], output: "squeezed", origin: o("sq", "Squeeze"))    // [N,4,1,3,6]
        let ex = b.add(.expand(shape: [1, 4, 2, 1, 1]), inputs: [sq], output: "expanded", origin: o("ex", "Expand"))  // [N,4,2,3,6]
        let dcr = b.add(.depthToSpace(blockSize: 2, mode: .dcr), inputs: [parts[1]], output: "d2s_dcr", origin: o("d2s2", "DepthToSpace"))

        // Gather with a scalar index drops the axis.
        let last = b.addInitializer("last", try Tensor(shape: [], storage: .int64([-1])))
        let col = b.add(.gather(axis: 3), inputs: [x, last], output: "last_col", origin: o("col", "Gather"))  // [N,4,5]

        for out in [pc, ex, dcr, col] { b.addOutput(out) }
        return try b.finish()
    }

    /// Data movement on int64 and bool tensors.
    static func integerMovement() throws -> Graph {
        var b = GraphBuilder(name: "integer_movement", metadata: ["source_format": "test"])
        func o(_ name: String) -> Origin { Origin(layer: name, type: name) }
        let ids = b.addInput("ids", TensorType(.int64, Shape([2, 3, 4])))
        let mask = b.addInput("mask", TensorType(.bool, Shape([3, 4])))
        let cat = b.add(.concat(axis: 0), inputs: [ids, ids], output: "cat", origin: o("Concat"))             // [4,3,4]
        let rev = b.add(.slice(SliceAttributes(starts: [-1], ends: [Int(Int64.min)], axes: [0], steps: [-1])), inputs: [cat],
                        output: "reversed", origin: o("Slice"))
        let pad = b.add(.pad(PadAttributes(pads: [0, 1, 0, 1, 0, 2], value: 7)), inputs: [rev], output: "padded", origin: o("Pad"))  // [5,4,6]
        let tile = b.add(.tile(repeats: [1, 1, 2]), inputs: [pad], output: "tiled", origin: o("Tile"))      // [5,4,12]
        let gi = b.addInitializer("pick", Tensor(shape: [2], int64s: [0, -1]))
        let g = b.add(.gather(axis: 2), inputs: [tile, gi], output: "picked", origin: o("Gather"))          // [5,4,2]
        let parts = b.add(.split(axis: 0, sizes: [2, 3]), inputs: [g], outputs: ["first", "rest"], origin: o("Split"))
        let ex = b.add(.expand(shape: [2, 1, 1, 1]), inputs: [parts[1]], output: "expanded", origin: o("Expand"))  // [2,3,4,2]
        let mpad = b.add(.pad(PadAttributes(pads: [1, 0, 0, 2], mode: .edge)), inputs: [mask], output: "mask_padded", origin: o("PadBool"))
        let mcat = b.add(.concat(axis: 1), inputs: [mpad, mpad], output: "mask_cat", origin: o("ConcatBool"))  // [4,12]
        let mpc = b.add(.pad(PadAttributes(pads: [0, 1, 0, 0], value: 1)), inputs: [mcat], output: "mask_out", origin: o("PadBoolConst"))
        for out in [parts[0], ex, mpc] { b.addOutput(out) }
        return try b.finish()
    }
}

extension CrossCheck {
    /// Exports the graph at `opset`, runs it in ReferenceRuntime and in onnxruntime on the same
    /// inputs, and returns the tool's status and output (0: the full checker passed and every
    /// output matched within rtol).
    static func compareWithReferenceRuntime(_ graph: Graph, inputs: [String: Tensor], opset: Int = 17,
                                            rtol: Double = 1e-5) throws -> (status: Int32, output: String) {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("\(graph.name)-\(opset).onnx")
        try ONNXExporter.write(graph, to: model, opset: opset)
        let outputs = try ReferenceRuntime(graph: graph).run(inputs)
        var arguments = [model.path, "--rtol", String(rtol)]
        for (name, t) in inputs {
            let file = dir.appendingPathComponent("in_\(name).npy")
            try npy(t).write(to: file)
            arguments += ["--input", "\(name)=\(file.path)"]
        }
        for (name, t) in outputs {
            let file = dir.appendingPathComponent("out_\(name).npy")
            try npy(t).write(to: file)
            arguments += ["--expect", "\(name)=\(file.path)"]
        }
        return try run(arguments)
    }
}

@Suite struct DataMovementExportTests {
    func node(_ m: Onnx_ModelProto, _ opType: String) -> Onnx_NodeProto { m.graph.node.first { $0.opType == opType }! }

    func initializer(_ m: Onnx_ModelProto, _ name: String) -> Onnx_TensorProto? { m.graph.initializer.first { $0.name == name } }

    func int64s(_ t: Onnx_TensorProto?) -> [Int64] {
        guard let t else { return [] }
        return t.rawData.withUnsafeBytes { raw in (0..<(raw.count / 8)).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self) } }
    }

    @Test func operandsBecomeInitializersAtOpset17() throws {
        let m = try roundTrip(try Graphs.dataMovement())
        let slice = node(m, "Slice")
        #expect(slice.input == ["d2s_crd", "sliced_starts", "sliced_ends", "sliced_axes", "sliced_steps"])
        #expect(int64s(initializer(m, "sliced_ends")) == [1, Int64.min, 4])
        #expect(int64s(initializer(m, "sliced_steps")) == [-2, -3, 1])
        let pad = m.graph.node.first { $0.name == "padded" }!
        #expect(pad.input == ["edged", "padded_pads", "padded_value"])
        #expect(int64s(initializer(m, "padded_pads")) == [0, 0, 1, 1, 0, 2, 0, 3])
        #expect(floats(initializer(m, "padded_value")!) == [0.5])
        #expect(initializer(m, "padded_value")!.dims.isEmpty)
        let reflect = m.graph.node.first { $0.name == "reflected" }!
        #expect(reflect.input == ["sliced", "reflected_pads"])
        #expect(reflect.attribute.first { $0.name == "mode" }.map { String(decoding: $0.s, as: UTF8.self) } == "reflect")
        #expect(node(m, "Split").input == ["cat", "top_split"])
        #expect(node(m, "Split").output == ["top", "bottom"])
        #expect(int64s(initializer(m, "top_split")) == [3, 8])
        #expect(node(m, "Unsqueeze").input == ["top", "unsqueezed_axes"])
        #expect(int64s(initializer(m, "unsqueezed_axes")) == [2, -1])
        #expect(int64s(initializer(m, "tiled_repeats")) == [1, 1, 2, 1])
        #expect(int64s(initializer(m, "expanded_shape")) == [1, 4, 2, 1, 1])
        let ct = attributes(node(m, "ConvTranspose"))
        #expect(ct["output_padding"] == "1,1")
        #expect(ct["pads"] == "1,0,1,2")
        #expect(ct["group"] == "2")
        #expect(attributes(node(m, "Concat")) == ["axis": "-2"])
        let d2s = m.graph.node.filter { $0.opType == "DepthToSpace" }
        #expect(d2s.map { String(decoding: $0.attribute.first { $0.name == "mode" }!.s, as: UTF8.self) } == ["CRD", "DCR"])
        // The constant of an integer Pad has the data's element type.
        let ints = try roundTrip(try Graphs.integerMovement())
        #expect(initializer(ints, "padded_value")?.dataType == 7)
        #expect(int64s(initializer(ints, "padded_value")) == [7])
        #expect(initializer(ints, "mask_out_value")?.dataType == 9)
    }

    @Test func olderOpsetsTakeAttributes() throws {
        let m = try roundTrip(try Graphs.dataMovement(), opset: 11)
        #expect(attributes(node(m, "Split")) == ["axis": "2", "split": "3,8"])
        #expect(node(m, "Split").input == ["cat"])
        #expect(attributes(node(m, "Unsqueeze")) == ["axes": "2,-1"])
        #expect(attributes(node(m, "Squeeze")) == ["axes": "-1"])
    }

    @Test func refusesWhatOlderOpsetsCannotSay() throws {
        // Slice steps need opset 10, CRD DepthToSpace opset 11, an int64 Pad opset 11, a bool Pad opset 13.
        let e1 = #expect(throws: FerryError.self) { try ONNXExporter.model(try Graphs.dataMovement(), opset: 10) }
        #expect(e1?.layer == "d2s")
        let e2 = #expect(throws: FerryError.self) { try ONNXExporter.model(try Graphs.dataMovement(), opset: 9) }
        #expect(e2?.layer == "d2s")
        let e3 = #expect(throws: FerryError.self) { try ONNXExporter.model(try Graphs.integerMovement(), opset: 12) }
        #expect(e3?.layer == "PadBool")
        let e4 = #expect(throws: FerryError.self) { try ONNXExporter.model(try Graphs.integerMovement(), opset: 10) }
        #expect(e4?.layer == "Pad")
    }
}

@Suite(.enabled(if: CrossCheck.available, "needs .venv/bin/python with onnx and onnxruntime"), .serialized)
struct DataMovementCrossCheckTests {
    static func floatInputs(batch: Int) -> [String: Tensor] {
        ["x": Tensor(shape: [batch, 4, 5, 6], floats: Graphs.floats(batch * 120, seed: 30))]
    }

    /// onnxruntime computes what the reference runtime computes, at opset 17 and the other
    /// opsets the exporter writes these ops at.
    @Test(arguments: [17, 11, 13, 21, 24])
    func floatGraphMatchesReferenceRuntime(_ opset: Int) throws {
        let r = try CrossCheck.compareWithReferenceRuntime(try Graphs.dataMovement(), inputs: Self.floatInputs(batch: 2), opset: opset)
        #expect(r.status == 0, "opset \(opset): \(r.output)")
        #expect(r.output.components(separatedBy: ": ok max").count - 1 == 4, "\(r.output)")
    }

    @Test(arguments: [17, 13, 24])
    func integerAndBoolGraphMatchesReferenceRuntime(_ opset: Int) throws {
        let ids = Tensor(shape: [2, 3, 4], int64s: (0..<24).map { Int64($0 * 7 % 11) - 5 })
        let mask = try Tensor(shape: [3, 4], storage: .bool((0..<12).map { $0 % 3 == 1 }))
        let r = try CrossCheck.compareWithReferenceRuntime(try Graphs.integerMovement(), inputs: ["ids": ids, "mask": mask], opset: opset)
        #expect(r.status == 0, "opset \(opset): \(r.output)")
        #expect(r.output.components(separatedBy: ": ok max").count - 1 == 3, "\(r.output)")
    }
}
