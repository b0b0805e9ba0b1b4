import Foundation
import FerryIR
@testable import FerryONNX
import Testing

/// One Resize or recurrent node with its weights, for the export cross-checks.
struct SingleOpCase: Sendable, CustomStringConvertible {
    var name: String
    var op: Op
    /// Shape of the graph input "x" (float32).
    var input: [Int]
    /// Further inputs in ONNX order: a weight's shape (seeded floats), int32 values ("lens"), or absent.
    var operands: [Operand] = []
    /// Output names ("" for an unused optional output).
    var outputs: [String] = ["y"]

    enum Operand: Sendable { case floats([Int]), int32s([Int32]), absent }

    var description: String { name }

    func graph() throws -> Graph {
        var b = GraphBuilder(name: name)
        let x = b.addInput("x", TensorType(.float32, Shape(input)))
        var inputs = [x]
        for (i, operand) in operands.enumerated() {
            switch operand {
            case .floats(let shape):
                inputs.append(b.addInitializer("in\(i + 1)", Tensor(shape: shape, floats: Graphs.floats(shape.reduce(1, *), seed: 50 + UInt64(i)))))
            case .int32s(let values):
                inputs.append(b.addInitializer("in\(i + 1)", try Tensor(shape: [values.count], storage: .int32(values))))
            case .absent:
                inputs.append("")
            }
        }
        let outs = b.add(op, inputs: inputs, outputs: outputs, origin: Origin(layer: name, type: op.name))
        for o in outs where !o.isEmpty { b.addOutput(o) }
        return try b.finish()
    }

    static func lstm(_ name: String, _ a: RecurrentAttributes, batch: Int = 3, lens: [Int32]? = nil, states: Bool = false,
                     peepholes: Bool = false, outputs: [String] = ["y", "y_h", "y_c"]) -> SingleOpCase {
        let d = a.direction.count, h = a.hiddenSize
        let stateShape = a.layout == 0 ? [d, batch, h] : [batch, d, h]
        return SingleOpCase(name: name, op: .lstm(a), input: a.layout == 0 ? [5, batch, 4] : [batch, 5, 4],
                            operands: [.floats([d, 4 * h, 4]), .floats([d, 4 * h, h]), .floats([d, 8 * h]),
                                       lens.map { .int32s($0) } ?? .absent,
                                       states ? .floats(stateShape) : .absent, states ? .floats(stateShape) : .absent,
                                       peepholes ? .floats([d, 3 * h]) : .absent],
                            outputs: outputs)
    }

    static func gruOrRNN(_ name: String, _ op: Op, batch: Int = 3, lens: [Int32]? = nil,
                         states: Bool = false, outputs: [String] = ["y", "y_h"]) -> SingleOpCase {
        guard case .gru(let a) = op else {
            guard case .rnn(let a) = op else { preconditionFailure("GRU or RNN") }
            return gruOrRNN(name, op, a, batch: batch, lens: lens, states: states, outputs: outputs)
        }
        return gruOrRNN(name, op, a, batch: batch, lens: lens, states: states, outputs: outputs)
    }

    static func gruOrRNN(_ name: String, _ op: Op, _ a: RecurrentAttributes, batch: Int, lens: [Int32]?,
                         states: Bool, outputs: [String]) -> SingleOpCase {
        let d = a.direction.count, h = a.hiddenSize, g = op.recurrentGateCount
        let stateShape = a.layout == 0 ? [d, batch, h] : [batch, d, h]
        return SingleOpCase(name: name, op: op, input: a.layout == 0 ? [5, batch, 4] : [batch, 5, 4],
                            operands: [.floats([d, g * h, 4]), .floats([d, g * h, h]), .floats([d, 2 * g * h]),
                                       lens.map { .int32s($0) } ?? .absent, states ? .floats(stateShape) : .absent],
                            outputs: outputs)
    }

    static let recurrent: [SingleOpCase] = [
        lstm("lstm_defaults", RecurrentAttributes(hiddenSize: 3)),
        lstm("lstm_bidirectional_lens_states_peepholes", RecurrentAttributes(hiddenSize: 4, direction: .bidirectional),
             lens: [5, 2, 4], states: true, peepholes: true),
        lstm("lstm_reverse_hard_sigmoid_clip", RecurrentAttributes(hiddenSize: 3, direction: .reverse,
                                                                   activations: [.hardSigmoid(alpha: 0.2, beta: 0.5), .tanh, .tanh], clip: 1.5),
             lens: [3, 5, 1], states: true, outputs: ["", "y_h"]),
        lstm("lstm_input_forget", RecurrentAttributes(hiddenSize: 2, inputForget: true), peepholes: true, outputs: ["y"]),
        lstm("lstm_batch_first", RecurrentAttributes(hiddenSize: 3, direction: .bidirectional, layout: 1), states: true),
        gruOrRNN("gru_reset_before", .gru(RecurrentAttributes(hiddenSize: 4)), states: true, outputs: ["", "y_h"]),
        gruOrRNN("gru_linear_before_reset_bidirectional", .gru(RecurrentAttributes(hiddenSize: 3, direction: .bidirectional, linearBeforeReset: true)),
                 lens: [1, 5, 3]),
        gruOrRNN("gru_keras3_hard_sigmoid", .gru(RecurrentAttributes(hiddenSize: 2, direction: .reverse,
                                                                     activations: [.hardSigmoid(alpha: 1.0 / 6, beta: 0.5), .tanh], linearBeforeReset: true))),
        gruOrRNN("gru_batch_first", .gru(RecurrentAttributes(hiddenSize: 3, linearBeforeReset: true, layout: 1)), states: true, outputs: ["", "y_h"]),
        gruOrRNN("rnn_forward", .rnn(RecurrentAttributes(hiddenSize: 5)), states: true),
        gruOrRNN("rnn_bidirectional_relu_clip", .rnn(RecurrentAttributes(hiddenSize: 3, direction: .bidirectional, activations: [.relu, .tanh], clip: 2)),
                 lens: [4, 5, 2], states: true),
    ]

    static func resize(_ name: String, _ a: ResizeAttributes, input: [Int] = [2, 2, 4, 5]) -> SingleOpCase {
        SingleOpCase(name: name, op: .resize(a), input: input)
    }

    static let resizes: [SingleOpCase] = [
        resize("keras_upsampling_nearest", ResizeAttributes(mode: .nearest, coordinateTransformation: .asymmetric, nearestMode: .floor, scales: [1, 1, 2, 3])),
        resize("nearest_half_pixel_sizes", ResizeAttributes(mode: .nearest, sizes: [2, 2, 7, 3])),
        resize("nearest_prefer_ceil_align", ResizeAttributes(mode: .nearest, coordinateTransformation: .alignCorners, nearestMode: .roundPreferCeil, sizes: [2, 2, 3, 8])),
        resize("nearest_ceil_asymmetric", ResizeAttributes(mode: .nearest, coordinateTransformation: .asymmetric, nearestMode: .ceil, scales: [1, 1, 1.5, 0.8])),
        resize("bilinear_half_pixel", ResizeAttributes(mode: .linear, scales: [1, 1, 2, 2])),
        resize("bilinear_align_corners", ResizeAttributes(mode: .linear, coordinateTransformation: .alignCorners, sizes: [2, 2, 7, 9])),
        resize("linear_pytorch_half_pixel", ResizeAttributes(mode: .linear, coordinateTransformation: .pytorchHalfPixel, sizes: [2, 2, 1, 6])),
        resize("linear_asymmetric_down", ResizeAttributes(mode: .linear, coordinateTransformation: .asymmetric, scales: [1, 1, 0.5, 0.6])),
        resize("trilinear", ResizeAttributes(mode: .linear, scales: [1, 1, 2, 1.5, 2]), input: [1, 2, 3, 4, 2]),
        resize("bicubic_half_pixel", ResizeAttributes(mode: .cubic, scales: [1, 1, 2, 1.6])),
        resize("bicubic_tf_exclude_outside", ResizeAttributes(mode: .cubic, coordinateTransformation: .asymmetric, sizes: [2, 2, 9, 3],
                                                              cubicCoeffA: -0.5, excludeOutside: true)),
        // Keras Resizing / UpSampling2D bilinear: sizes of the spatial axes only.
        resize("bilinear_sizes_of_spatial_axes", ResizeAttributes(mode: .linear, sizes: [7, 3], axes: [2, 3])),
        resize("nearest_scale_of_last_axis", ResizeAttributes(mode: .nearest, nearestMode: .roundPreferCeil, scales: [2.5], axes: [3])),
        // tf_half_pixel_for_nn: written as half_pixel with the other rounding from opset 13 on.
        resize("nearest_tf_half_pixel_for_nn", ResizeAttributes(mode: .nearest, coordinateTransformation: .tfHalfPixelForNN, sizes: [2, 2, 3, 9])),
        resize("nearest_tf_half_pixel_for_nn_floor", ResizeAttributes(mode: .nearest, coordinateTransformation: .tfHalfPixelForNN,
                                                                      nearestMode: .floor, scales: [1, 1, 1.5, 0.6])),
        resize("bilinear_tf_crop_and_resize", ResizeAttributes(mode: .linear, coordinateTransformation: .tfCropAndResize, sizes: [2, 2, 3, 4],
                                                               roi: [0, 0, 0.2, -0.3, 1, 1, 0.9, 1.2], extrapolationValue: 9)),
    ]
}

@Suite struct ResizeRecurrentExportTests {
    func onlyNode(_ c: SingleOpCase, opset: Int = 17) throws -> Onnx_NodeProto {
        let m = try roundTrip(try c.graph(), opset: opset)
        return m.graph.node.first { $0.opType == c.op.name }!
    }

    func strings(_ n: Onnx_NodeProto, _ name: String) -> [String] {
        n.attribute.first { $0.name == name }.map { a in a.type == .string ? [String(decoding: a.s, as: UTF8.self)] : a.strings.map { String(decoding: $0, as: UTF8.self) } } ?? []
    }

    @Test func resizeOperands() throws {
        let scaled = try onlyNode(SingleOpCase.resizes[0])
        #expect(scaled.input == ["x", "", "y_scales"])
        #expect(strings(scaled, "coordinate_transformation_mode") == ["asymmetric"])
        #expect(strings(scaled, "nearest_mode") == ["floor"])
        let sized = try onlyNode(SingleOpCase.resizes[1])
        #expect(sized.input == ["x", "", "", "y_sizes"])
        // Opsets 11 and 12 need roi and scales, empty where unused.
        #expect(try onlyNode(SingleOpCase.resizes[1], opset: 11).input == ["x", "y_roi", "y_scales", "y_sizes"])
        #expect(throws: FerryError.self) { try roundTrip(try SingleOpCase.resizes[0].graph(), opset: 10) }
        let cubic = try onlyNode(SingleOpCase.resizes[10])
        #expect(attributes(cubic)["cubic_coeff_a"] == "-0.5")
        #expect(attributes(cubic)["exclude_outside"] == "1")
        // Sizes of some axes: ONNX's axes from opset 18, before that the full sizes.
        let partial = try onlyNode(SingleOpCase.resizes[11], opset: 18)
        #expect(partial.attribute.first { $0.name == "axes" }?.ints == [2, 3])
        let full = try roundTrip(try SingleOpCase.resizes[11].graph(), opset: 17)
        let sizes = try #require(full.graph.initializer.first { $0.name == full.graph.node.first { $0.opType == "Resize" }!.input[3] })
        #expect(try ONNXImportTensors.tensor(sizes, external: nil).int64s == [2, 2, 7, 3])
    }

    @Test func recurrentAttributesAndOutputs() throws {
        let lstm = try onlyNode(SingleOpCase.recurrent[2])
        #expect(lstm.output == ["", "y_h"])
        #expect(lstm.input == ["x", "in1", "in2", "in3", "in4", "in5", "in6"])
        #expect(strings(lstm, "activations") == ["HardSigmoid", "Tanh", "Tanh"])
        #expect(strings(lstm, "direction") == ["reverse"])
        #expect(lstm.attribute.first { $0.name == "activation_alpha" }?.floats == [0.2, 0, 0])
        #expect(attributes(lstm)["clip"] == "1.5")
        let gru = try onlyNode(SingleOpCase.recurrent[6])
        #expect(attributes(gru)["linear_before_reset"] == "1")
        #expect(gru.input == ["x", "in1", "in2", "in3", "in4"])
        // Batch-first layers become sequence-first ones between Transposes.
        let m = try roundTrip(try SingleOpCase.recurrent[4].graph())
        #expect(m.graph.node.map(\.opType) == ["Transpose", "Transpose", "Transpose", "LSTM", "Transpose", "Transpose", "Transpose"])
        #expect(m.graph.node[3].attribute.allSatisfy { $0.name != "layout" })
        #expect(m.graph.node.last!.output == ["y_c"])
    }
}

@Suite(.enabled(if: CrossCheck.available, "needs .venv/bin/python with onnx and onnxruntime"), .serialized)
struct ResizeRecurrentCrossCheckTests {
    func compare(_ c: SingleOpCase, opset: Int) throws {
        let graph = try c.graph()
        let x = Tensor(shape: c.input, floats: Graphs.floats(c.input.reduce(1, *), seed: 60).map { $0 * 2 })
        let r = try CrossCheck.compareWithReferenceRuntime(graph, inputs: ["x": x], opset: opset)
        #expect(r.status == 0, "\(c.name) opset \(opset): \(r.output)")
        #expect(r.output.components(separatedBy: ": ok max").count - 1 == graph.outputs.count, "\(r.output)")
    }

    @Test(arguments: SingleOpCase.recurrent)
    func recurrentMatchesReferenceRuntime(_ c: SingleOpCase) throws {
        try compare(c, opset: 17)
    }

    @Test(arguments: SingleOpCase.resizes)
    func resizeMatchesReferenceRuntime(_ c: SingleOpCase) throws {
        try compare(c, opset: 17)
    }

    @Test func otherOpsets() throws {
        for opset in [11, 13, 21, 24] {
            try compare(SingleOpCase.resizes[5], opset: opset)
            try compare(SingleOpCase.resizes[3], opset: opset)
            try compare(SingleOpCase.resizes[11], opset: opset)
            try compare(SingleOpCase.resizes[12], opset: opset)
            try compare(SingleOpCase.recurrent[1], opset: opset)
            try compare(SingleOpCase.recurrent[8], opset: opset)
            try compare(SingleOpCase.resizes[13], opset: opset)
            try compare(SingleOpCase.resizes[15], opset: opset)
        }
    }
}
