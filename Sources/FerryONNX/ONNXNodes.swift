import FerryIR
import Foundation

/// Turns IR nodes into ONNX nodes for one opset, collecting the initializers that ONNX wants
/// as inputs where the IR has attributes.
struct NodeContext {
    let opset: Int
    /// Inferred types of every value in the graph.
    let types: [String: TensorType]
    /// Names in use; new initializer names avoid them.
    var taken: Set<String>
    /// Initializers made while converting nodes, in the order made.
    var extraInitializers: [(name: String, tensor: Tensor)] = []
    /// Values whose shape ONNX's static shape inference gets wrong (see `pool`): their sizes
    /// are left out of value_info and graph outputs so that a strict checker does not object.
    var unreliableShapes: Set<String> = []

    init(opset: Int, types: [String: TensorType], taken: Set<String>) {
        self.opset = opset
        self.types = types
        self.taken = taken
    }

    /// The ONNX nodes for an IR node: one node of the same op type, or, where the opset
    /// predates the op, the decomposition the ONNX operator documentation gives for it.
    /// Errors name the node's source layer.
    mutating func nodes(_ node: Node) throws -> [Onnx_NodeProto] {
        let (layer, layerType) = node.sourceLayer
        if node.inputs.contains(where: unreliableShapes.contains) { unreliableShapes.formUnion(node.outputs) }
        do {
            return try convert(node)
        } catch let e as FerryError {
            throw e.atLayer(layer, type: layerType)
        }
    }

    private mutating func convert(_ node: Node) throws -> [Onnx_NodeProto] {
        var proto = Onnx_NodeProto()
        proto.opType = node.op.name
        proto.name = node.name
        proto.input = node.inputs
        proto.output = node.outputs
        if !node.origins.isEmpty {
            proto.docString = "from " + node.origins.map(\.description).joined(separator: ", ")
        }
        try checkElementType(node)

        switch node.op {
        case .conv(let a):
            proto.attribute = [.ints("kernel_shape", a.kernelShape), .ints("strides", a.strides),
                               .ints("pads", a.pads), .ints("dilations", a.dilations), .int("group", a.group)]

        case .convTranspose(let a):
            proto.attribute = [.ints("kernel_shape", a.kernelShape), .ints("strides", a.strides),
                               .ints("pads", a.pads), .ints("dilations", a.dilations), .int("group", a.group),
                               .ints("output_padding", a.outputPadding)]

        case .gemm(let a):
            proto.attribute = [.float("alpha", a.alpha), .float("beta", a.beta),
                               .int("transA", a.transA ? 1 : 0), .int("transB", a.transB ? 1 : 0)]
            // C became optional in opset 11; before, a zero C (broadcast) says the same.
            if opset < 11, node.inputs.count < 3 || node.inputs[2].isEmpty {
                let a = try inputType(node, 0)
                let zero = Tensor.zeros(a.dtype, shape: [1])
                proto.input = Array(node.inputs.prefix(2)) + [addInitializer("\(node.name)_C", zero)]
            }

        case .maxPool(let a), .averagePool(let a):
            let isAverage: Bool
            if case .averagePool = node.op { isAverage = true } else { isAverage = false }
            let x = try inputType(node, 0)
            let sizes = x.shape.dims.dropFirst(2).compactMap(\.value)
            guard sizes.count == a.kernelShape.count else {
                throw FerryError("\(node.op.name) needs fixed spatial sizes, got \(x.shape)")
            }
            let stated = try pool(a, sizes: sizes, countIncludePad: isAverage && a.countIncludePad, opName: node.op.name)
            if !stated.shapeExact { unreliableShapes.formUnion(node.outputs) }
            if stated.pads != a.pads || stated.ceilMode != a.ceilMode {
                let note = "ceil_mode=\(a.ceilMode ? 1 : 0) pads=\(a.pads) restated for ONNX"
                proto.docString = proto.docString.isEmpty ? note : proto.docString + "; " + note
            }
            proto.attribute = [.ints("kernel_shape", a.kernelShape), .ints("strides", a.strides), .ints("pads", stated.pads)]
            if opset >= 10 { proto.attribute.append(.int("ceil_mode", stated.ceilMode ? 1 : 0)) }
            if isAverage { proto.attribute.append(.int("count_include_pad", a.countIncludePad ? 1 : 0)) }
            if !a.isDense {
                guard opset >= 10 else { throw FerryError("MaxPool with dilations needs ONNX opset 10 or later, not \(opset)") }
                proto.attribute.append(.ints("dilations", a.dilations))
            }
            if a.indicesOrder == .columnMajor { proto.attribute.append(.int("storage_order", 1)) }

        case .leakyRelu(let alpha):
            proto.attribute = [.float("alpha", alpha)]

        case .softmax(let axis), .logSoftmax(let axis):
            let rank = try inputType(node, 0).shape.rank
            guard let a = normalizeAxis(axis, rank: rank) else {
                throw FerryError("\(node.op.name) axis \(axis) is out of range for rank \(rank)")
            }
            if opset >= 13 {
                proto.attribute = [.int("axis", axis)]
            } else {
                // Before opset 13 (Log)Softmax flattened the input to 2-D at the axis and
                // normalised each row: the same as the IR's only over the last axis.
                guard a == rank - 1 else {
                    throw FerryError("\(node.op.name) over axis \(axis) of a rank-\(rank) input needs ONNX opset 13 or "
                                     + "later; opset \(opset) \(node.op.name) normalises over all axes from \(axis) on")
                }
                proto.attribute = [.int("axis", a)]
            }

        case .gelu(let approximate):
            if opset >= 20 {
                proto.attribute = [.string("approximate", approximate ? "tanh" : "none")]
            } else {
                return try geluDecomposition(node, approximate: approximate, proto)
            }

        case .elu(let alpha), .thresholdedRelu(let alpha):
            if case .thresholdedRelu = node.op { try requireOpset(10, node) }
            proto.attribute = [.float("alpha", alpha)]

        case .selu(let alpha, let gamma):
            proto.attribute = [.float("alpha", alpha), .float("gamma", gamma)]

        case .hardSigmoid(let alpha, let beta):
            proto.attribute = [.float("alpha", alpha), .float("beta", beta)]

        case .clip(let lo, let hi):
            if opset >= 11 {
                // Bounds are optional inputs, scalars of X's type.
                let dtype = try inputType(node, 0).dtype
                var inputs = [node.inputs[0]]
                func bound(_ v: Float) -> Tensor {
                    dtype.isFloatingPoint ? scalar(v, dtype) : try! Tensor(shape: [], storage: .repeating(v, dtype, count: 1))
                }
                inputs.append(lo.map { addInitializer("\(node.name)_min", bound($0)) } ?? "")
                if let hi { inputs.append(addInitializer("\(node.name)_max", bound(hi))) }
                while inputs.last == "" { inputs.removeLast() }
                proto.input = inputs
            } else {
                proto.attribute = [lo.map { .float("min", $0) }, hi.map { .float("max", $0) }].compactMap { $0 }
            }

        case .hardSwish where opset < 14:
            // HardSwish(x) = x * HardSigmoid(x) with alpha 1/6, beta 1/2.
            var helper = Helper(node: node, doc: proto.docString)
            let h = helper.add(&self, "HardSigmoid", [node.inputs[0]], attributes: [.float("alpha", 1.0 / 6), .float("beta", 0.5)])
            helper.add(&self, "Mul", [node.inputs[0], h], output: node.outputs[0])
            return helper.nodes

        case .mish where opset < 18:
            // Mish(x) = x * Tanh(Softplus(x)).
            var helper = Helper(node: node, doc: proto.docString)
            let sp = helper.add(&self, "Softplus", [node.inputs[0]])
            let t = helper.add(&self, "Tanh", [sp])
            helper.add(&self, "Mul", [node.inputs[0], t], output: node.outputs[0])
            return helper.nodes

        case .erf:
            try requireOpset(9, node)

        case .max, .min, .sum, .mean:
            // Numpy broadcasting among the inputs arrived in opset 8.
            if opset < 8 {
                let shapes = Set(try node.inputs.indices.map { try inputType(node, $0).shape })
                guard shapes.count == 1 else {
                    throw FerryError("\(node.op.name) of inputs of different shapes needs ONNX opset 8 or later, not \(opset)")
                }
            }

        case .batchNormalization(let epsilon), .instanceNormalization(let epsilon):
            proto.attribute = [.float("epsilon", epsilon)]

        case .batchNormalizationTraining(let epsilon, let momentum):
            guard opset >= 14 else {
                throw FerryError("BatchNormalization in training mode needs ONNX opset 14 or later, not \(opset)")
            }
            proto.attribute = [.float("epsilon", epsilon), .float("momentum", momentum), .int("training_mode", 1)]

        case .layerNormalization(let axis, let epsilon):
            if opset >= 17 {
                proto.attribute = [.int("axis", axis), .float("epsilon", epsilon)]
                while proto.input.last == "" { proto.input.removeLast() }
            } else {
                return try layerNormalizationDecomposition(node, axis: axis, epsilon: epsilon, proto)
            }

        case .groupNormalization(let groups, let epsilon):
            // Opset 18's GroupNormalization scales per group; the IR's per-channel form is opset 21's.
            if opset >= 21 {
                proto.attribute = [.int("num_groups", groups), .float("epsilon", epsilon)]
            } else {
                return try groupNormalizationDecomposition(node, groups: groups, epsilon: epsilon, proto)
            }

        case .lrn(let size, let alpha, let beta, let bias):
            proto.attribute = [.int("size", size), .float("alpha", alpha), .float("beta", beta), .float("bias", bias)]

        case .lpNormalization(let axis, let p):
            proto.attribute = [.int("axis", axis), .int("p", p)]

        case .reduce(let operation, let axes, let keepDims):
            proto.attribute = [.int("keepdims", keepDims ? 1 : 0)]
            // Axes became an input in opset 13 for ReduceSum and in opset 18 for the others.
            if let axes, !axes.isEmpty {
                if opset >= 18 || (operation == .sum && opset >= 13) {
                    let tensor = Tensor(shape: [axes.count], int64s: axes.map(Int64.init))
                    proto.input = [node.inputs[0], addInitializer("\(node.name)_axes", tensor)]
                } else {
                    proto.attribute.insert(.ints("axes", axes), at: 0)
                }
            }

        case .argMax(let axis, let keepDims, let last), .argMin(let axis, let keepDims, let last):
            proto.attribute = [.int("axis", axis), .int("keepdims", keepDims ? 1 : 0)]
            if last {
                try requireOpset(12, node, what: "\(node.op.name) with select_last_index")
                proto.attribute.append(.int("select_last_index", 1))
            }

        case .topK(let axis, let k, let largest):
            // K is an input from opset 10, `largest` and `sorted` (always 1 here) from 11.
            if !largest { try requireOpset(11, node, what: "TopK of the smallest values") }
            let rank = types[node.inputs[0]]?.shape.rank ?? 0
            proto.attribute = [.int("axis", opset < 11 && axis < 0 ? axis + rank : axis)]
            if opset >= 10 {
                proto.input = [node.inputs[0], addInitializer("\(node.name)_k", int64s([k]))]
            } else {
                proto.attribute.append(.int("k", k))
            }
            if opset >= 11 { proto.attribute += [.int("largest", largest ? 1 : 0), .int("sorted", 1)] }

        case .greaterOrEqual, .lessOrEqual:
            try requireOpset(12, node)

        case .where:
            try requireOpset(9, node)

        case .cast(let to):
            proto.attribute = [.int("to", Int(ONNXTensors.dataType(to).rawValue))]

        case .equal, .greater, .less, .not, .and, .or:
            break

        case .flatten(let axis):
            let rank = try inputType(node, 0).shape.rank
            // Negative axes arrived in opset 11.
            proto.attribute = [.int("axis", opset < 11 && axis < 0 ? axis + rank : axis)]

        case .reshape(let shape, let allowZero):
            let target = Tensor(shape: [shape.count], int64s: shape.map(Int64.init))
            proto.input = [node.inputs[0], addInitializer("\(node.name)_shape", target)]
            if allowZero && shape.contains(0) {
                guard opset >= 14 else { throw FerryError("Reshape with allowzero needs ONNX opset 14 or later, not \(opset)") }
                proto.attribute = [.int("allowzero", 1)]
            }

        case .transpose(let perm):
            proto.attribute = [.ints("perm", perm)]

        case .concat(let axis):
            proto.attribute = [.int("axis", axis)]

        case .split(let axis, let sizes):
            proto.attribute = [.int("axis", axis)]
            if opset >= 13 {
                proto.input = [node.inputs[0], addInitializer("\(node.name)_split", int64s(sizes))]
            } else {
                proto.attribute.append(.ints("split", sizes))
            }

        case .slice(let a):
            if opset >= 10 {
                proto.input = [node.inputs[0], addInitializer("\(node.name)_starts", int64s(a.starts)),
                               addInitializer("\(node.name)_ends", int64s(a.ends)),
                               addInitializer("\(node.name)_axes", int64s(a.axes)),
                               addInitializer("\(node.name)_steps", int64s(a.steps))]
            } else {
                guard a.steps.allSatisfy({ $0 == 1 }) else {
                    throw FerryError("Slice with steps \(a.steps) needs ONNX opset 10 or later, not \(opset)")
                }
                proto.attribute = [.ints("starts", a.starts), .ints("ends", a.ends), .ints("axes", a.axes)]
            }

        case .pad(let a):
            proto.attribute = [.string("mode", a.mode.rawValue)]
            if opset >= 11 {
                proto.input = [node.inputs[0], addInitializer("\(node.name)_pads", int64s(a.pads))]
                if a.mode == .constant {
                    let x = try inputType(node, 0)
                    let value = try Tensor(shape: [], storage: .repeating(a.value, x.dtype, count: 1))
                    proto.input.append(addInitializer("\(node.name)_value", value))
                }
            } else {
                proto.attribute += [.ints("pads", a.pads), .float("value", a.value)]
            }

        case .squeeze(let axes), .unsqueeze(let axes):
            if opset >= 13 {
                if !axes.isEmpty { proto.input = [node.inputs[0], addInitializer("\(node.name)_axes", int64s(axes))] }
            } else {
                // Negative axes arrived in opset 11.
                let rank = try inputType(node, 0).shape.rank + (node.op.name == "Unsqueeze" ? axes.count : 0)
                if !axes.isEmpty { proto.attribute = [.ints("axes", opset < 11 ? axes.map { $0 < 0 ? $0 + rank : $0 } : axes)] }
            }

        case .tile(let repeats):
            proto.input = [node.inputs[0], addInitializer("\(node.name)_repeats", int64s(repeats))]

        case .expand(let shape):
            guard opset >= 8 else { throw FerryError("Expand needs ONNX opset 8 or later, not \(opset)") }
            proto.input = [node.inputs[0], addInitializer("\(node.name)_shape", int64s(shape))]

        case .gather(let axis):
            proto.attribute = [.int("axis", axis)]

        case .depthToSpace(let blockSize, let mode):
            proto.attribute = [.int("blocksize", blockSize)]
            if opset >= 11 {
                proto.attribute.append(.string("mode", mode.rawValue))
            } else if mode != .dcr {
                throw FerryError("DepthToSpace mode CRD needs ONNX opset 11 or later, not \(opset)")
            }

        case .spaceToDepth(let blockSize):
            proto.attribute = [.int("blocksize", blockSize)]

        case .resize(let a):
            guard opset >= 11 else {
                throw FerryError("Resize with coordinate_transformation_mode needs ONNX opset 11 or later, not \(opset)")
            }
            var transform = a.coordinateTransformation.rawValue, nearestMode = a.nearestMode.rawValue
            if a.coordinateTransformation == .tfHalfPixelForNN && opset >= 13 {
                // Gone from opset 13: round((x + 0.5) / scale) is the half-pixel coordinate
                // (0.5 less) rounded the other way at ties; floor((x + 0.5) / scale) likewise.
                switch (a.mode, a.nearestMode) {
                case (.nearest, .roundPreferFloor): transform = "half_pixel"; nearestMode = "ceil"
                case (.nearest, .floor): transform = "half_pixel"; nearestMode = "round_prefer_ceil"
                default:
                    throw FerryError("Resize tf_half_pixel_for_nn with mode \(a.mode.rawValue) and nearest_mode \(nearestMode) "
                                     + "needs ONNX opset 11 or 12, not \(opset)")
                }
            }
            proto.attribute = [.string("mode", a.mode.rawValue), .string("coordinate_transformation_mode", transform)]
            if a.mode == .nearest { proto.attribute.append(.string("nearest_mode", nearestMode)) }
            if a.mode == .cubic {
                proto.attribute += [.float("cubic_coeff_a", a.cubicCoeffA), .int("exclude_outside", a.excludeOutside ? 1 : 0)]
            }
            let rank = try inputType(node, 0).shape.rank
            // roi and scales became optional in opset 13; before, empty tensors stand for them.
            let empty = Tensor(shape: [0], floats: [])
            var roi = opset >= 13 ? "" : addInitializer("\(node.name)_roi", empty)
            if a.coordinateTransformation == .tfCropAndResize {
                var region = a.roi ?? Array(repeating: 0, count: rank) + Array(repeating: 1, count: rank)
                if let axes = a.axes, opset >= 18 { region = axes.map { region[$0] } + axes.map { region[rank + $0] } }
                roi = addInitializer("\(node.name)_roi", Tensor(shape: [region.count], floats: region))
                proto.attribute.append(.float("extrapolation_value", a.extrapolationValue))
            }
            if let axes = a.axes, opset >= 18 {
                proto.attribute.append(.ints("axes", axes))
            }
            let partial = a.axes != nil && opset < 18
            if var scales = a.scales {
                if partial {
                    // The other axes keep their size: scale 1, exactly.
                    scales = (0..<rank).map { i in a.entry(axis: i).map { scales[$0] } ?? 1 }
                }
                proto.input = [node.inputs[0], roi, addInitializer("\(node.name)_scales", Tensor(shape: [scales.count], floats: scales))]
            } else if let sizes = a.sizes {
                let noScales = opset >= 13 ? "" : addInitializer("\(node.name)_scales", empty)
                if partial {
                    return try resizeWithSizesOfSomeAxes(node, a, sizes, proto, inputs: [node.inputs[0], roi, noScales])
                }
                proto.input = [node.inputs[0], roi, noScales, addInitializer("\(node.name)_sizes", int64s(sizes))]
            }

        case .maxPoolIndices, .maxUnpool:
            // ONNX's MaxPool indices and MaxUnpool count over the whole (N, C, H, W) tensor, Caffe's
            // within each plane: converting needs the open batch size as a constant.
            throw FerryError("ONNX has no max-pooling mask or max unpooling with Caffe's per-plane indices "
                             + "(the SegNet / ENet Upsample); the net cannot be exported to ONNX with this layer")

        case .detectionOutput:
            // ONNX's NonMaxSuppression differs (no per-class top_k before NMS, no keep_top_k
            // across classes, other box coding and outputs): no faithful decomposition.
            throw FerryError("ONNX has no DetectionOutput (SSD decoding with per-class NMS and keep_top_k); "
                             + "the net cannot be exported to ONNX with this layer: cut the graph before it")

        case .lstm(let a), .gru(let a), .rnn(let a):
            // Trailing absent inputs are left out, as ONNX allows.
            while proto.input.last == "" { proto.input.removeLast() }
            proto.attribute = [.int("hidden_size", a.hiddenSize), .string("direction", a.direction.rawValue)]
            // Written in full (one list per direction) so that no reader has to guess.
            let activations = try a.activationsPerDirection(node.op).flatMap { $0 }
            if !a.activations.isEmpty { proto.attribute.append(.strings("activations", activations.map(\.onnxName))) }
            if activations.contains(where: \.hasParameters) {
                // One alpha and one beta per activation, in the activations' order.
                proto.attribute += [.floats("activation_alpha", activations.map(\.parameters.alpha)),
                                    .floats("activation_beta", activations.map(\.parameters.beta))]
            }
            if let clip = a.clip { proto.attribute.append(.float("clip", clip)) }
            if case .gru = node.op { proto.attribute.append(.int("linear_before_reset", a.linearBeforeReset ? 1 : 0)) }
            if a.inputForget { proto.attribute.append(.int("input_forget", 1)) }
            if a.layout == 1 {
                // Batch-first, written as the sequence-first op between Transposes: onnxruntime
                // (1.31) refuses layout 1, and opsets before 14 cannot say it.
                var helper = Helper(node: node, doc: proto.docString)
                var inputs = node.inputs
                for i in [0, 5, 6] where i < inputs.count && !inputs[i].isEmpty {
                    inputs[i] = helper.add(&self, "Transpose", [inputs[i]], attributes: [.ints("perm", [1, 0, 2])])
                }
                var core = proto
                core.input = inputs
                core.output = node.outputs.map { $0.isEmpty ? "" : freshName("\($0)_seq_first") }
                helper.nodes.append(core)
                for (i, name) in node.outputs.enumerated() where !name.isEmpty {
                    helper.add(&self, "Transpose", [core.output[i]], output: name,
                               attributes: [.ints("perm", i == 0 ? [2, 0, 1, 3] : [1, 0, 2])])
                }
                return helper.nodes
            }

        case .matMul, .globalAveragePool, .globalMaxPool, .relu, .sigmoid, .tanh,
             .add, .sub, .mul, .div, .identity:
            break

        case .prelu, .softplus, .softsign, .hardSwish, .mish,
             .abs, .neg, .exp, .log, .sqrt, .reciprocal, .floor, .ceil, .pow:
            break
        }
        return [proto]
    }

    /// Gelu before opset 20, as the ONNX Gelu function body:
    /// x * 0.5 * (1 + Erf(x / sqrt 2)), or with approximate = "tanh"
    /// x * 0.5 * (1 + Tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))).
    private mutating func geluDecomposition(_ node: Node, approximate: Bool, _ proto: Onnx_NodeProto) throws -> [Onnx_NodeProto] {
        if !approximate { try requireOpset(9, node, what: "Gelu as Erf") }
        let x = node.inputs[0]
        let dtype = try inputType(node, 0).dtype
        var helper = Helper(node: node, doc: proto.docString)
        let inner: String
        if approximate {
            let x2 = helper.add(&self, "Mul", [x, x])
            let x3 = helper.add(&self, "Mul", [x2, x])
            let k = addInitializer("\(node.name)_c", scalar(0.044715, dtype))
            let kx3 = helper.add(&self, "Mul", [x3, k])
            let sum = helper.add(&self, "Add", [x, kx3])
            let s = addInitializer("\(node.name)_sqrt_2_over_pi", scalar(Float((2 / Double.pi).squareRoot()), dtype))
            let scaled = helper.add(&self, "Mul", [sum, s])
            inner = helper.add(&self, "Tanh", [scaled])
        } else {
            let s = addInitializer("\(node.name)_sqrt_half", scalar(Float(0.5.squareRoot()), dtype))
            let scaled = helper.add(&self, "Mul", [x, s])
            inner = helper.add(&self, "Erf", [scaled])
        }
        let one = addInitializer("\(node.name)_one", scalar(1, dtype))
        let onePlus = helper.add(&self, "Add", [inner, one])
        let half = addInitializer("\(node.name)_half", scalar(0.5, dtype))
        let halfX = helper.add(&self, "Mul", [x, half])
        helper.add(&self, "Mul", [halfX, onePlus], output: node.outputs[0])
        return helper.nodes
    }

    /// LayerNormalization before opset 17, as its ONNX function body: the mean and the
    /// (population) variance over axes axis..<rank, then (x - mean) / sqrt(var + epsilon) * Scale + B.
    private mutating func layerNormalizationDecomposition(_ node: Node, axis: Int, epsilon: Float,
                                                          _ proto: Onnx_NodeProto) throws -> [Onnx_NodeProto] {
        let xType = try inputType(node, 0)
        let rank = xType.shape.rank
        guard let a = normalizeAxis(axis, rank: rank) else {
            throw FerryError("LayerNormalization axis \(axis) is out of range for rank \(rank)")
        }
        let x = node.inputs[0]
        let axes: [Onnx_AttributeProto] = [.ints("axes", Array(a..<rank)), .int("keepdims", 1)]
        var helper = Helper(node: node, doc: proto.docString)
        let mean = helper.add(&self, "ReduceMean", [x], attributes: axes)
        let centered = helper.add(&self, "Sub", [x, mean])
        let squared = helper.add(&self, "Mul", [centered, centered])
        let variance = helper.add(&self, "ReduceMean", [squared], attributes: axes)
        let eps = addInitializer("\(node.name)_epsilon", scalar(epsilon, xType.dtype))
        let shifted = helper.add(&self, "Add", [variance, eps])
        let deviation = helper.add(&self, "Sqrt", [shifted])
        let normalized = helper.add(&self, "Div", [centered, deviation])
        let hasBias = node.inputs.count > 2 && !node.inputs[2].isEmpty
        let scaled = helper.add(&self, "Mul", [normalized, node.inputs[1]], output: hasBias ? nil : node.outputs[0])
        if hasBias { helper.add(&self, "Add", [scaled, node.inputs[2]], output: node.outputs[0]) }
        return helper.nodes
    }

    /// GroupNormalization (per-channel scale, opset 21) before opset 21: X reshaped to
    /// (N, groups, -1) and normalized by InstanceNormalization with unit scale and zero bias,
    /// reshaped back to X's shape, then scale and bias applied per channel.
    private mutating func groupNormalizationDecomposition(_ node: Node, groups: Int, epsilon: Float,
                                                          _ proto: Onnx_NodeProto) throws -> [Onnx_NodeProto] {
        let xType = try inputType(node, 0)
        let rank = xType.shape.rank
        guard let channels = xType.shape[1].value else {
            throw FerryError("GroupNormalization needs a known channel count to be written before opset 21, X is \(xType.shape)")
        }
        let x = node.inputs[0]
        var helper = Helper(node: node, doc: proto.docString)
        let groupShape = addInitializer("\(node.name)_group_shape", Tensor(shape: [3], int64s: [0, Int64(groups), -1]))
        let grouped = helper.add(&self, "Reshape", [x, groupShape])
        let ones = Tensor(shape: [groups], floats: Array(repeating: 1, count: groups))
        let zeros = Tensor(shape: [groups], floats: Array(repeating: 0, count: groups))
        let unitScale = addInitializer("\(node.name)_unit_scale", xType.dtype == .float16 ? halfTensor(ones) : ones)
        let zeroBias = addInitializer("\(node.name)_zero_bias", xType.dtype == .float16 ? halfTensor(zeros) : zeros)
        let normalized = helper.add(&self, "InstanceNormalization", [grouped, unitScale, zeroBias],
                                    attributes: [.float("epsilon", epsilon)])
        // X's shape back: a constant when only the batch size is open (0 copies it from the
        // grouped value), so that readers need not evaluate Shape; else Shape(X).
        let shape: String
        if xType.shape.dims.dropFirst().allSatisfy({ $0.value != nil }) {
            let sizes = [Int64(0)] + xType.shape.dims.dropFirst().map { Int64($0.value!) }
            shape = addInitializer("\(node.name)_shape", Tensor(shape: [rank], int64s: sizes))
        } else {
            shape = helper.add(&self, "Shape", [x])
        }
        let restored = helper.add(&self, "Reshape", [normalized, shape])
        let channelShape = addInitializer("\(node.name)_channel_shape",
                                          Tensor(shape: [rank - 1], int64s: [Int64(channels)] + Array(repeating: 1, count: rank - 2)))
        let scale = helper.add(&self, "Reshape", [node.inputs[1], channelShape])
        let scaled = helper.add(&self, "Mul", [restored, scale])
        let bias = helper.add(&self, "Reshape", [node.inputs[2], channelShape])
        helper.add(&self, "Add", [scaled, bias], output: node.outputs[0])
        return helper.nodes
    }

    /// Resize with sizes for some axes only, before opset 18 (which has no axes): the full
    /// sizes when the other axes' sizes are known. With an open batch, sizes would have to be
    /// computed from Shape(X), which readers without shape evaluation (Ferry's importer among
    /// them) cannot fold; scales are written instead, 1 for the other axes and for the resized
    /// ones the float m / n raised by ulps until floor(n * scale) = m in float and in double
    /// (so that onnxruntime and ONNX shape inference both count m cells). The coordinate
    /// mapping then divides by that scale rather than m / n: a few ulps apart.
    private mutating func resizeWithSizesOfSomeAxes(_ node: Node, _ a: ResizeAttributes, _ sizes: [Int],
                                                    _ proto: Onnx_NodeProto, inputs: [String]) throws -> [Onnx_NodeProto] {
        let dims = try inputType(node, 0).shape.dims
        var resize = proto
        let full = dims.indices.map { i in a.entry(axis: i).map { sizes[$0] } ?? dims[i].value }
        if full.allSatisfy({ $0 != nil }) {
            resize.input = inputs + [addInitializer("\(node.name)_sizes", int64s(full.map { $0! }))]
            return [resize]
        }
        let scales = try dims.indices.map { i -> Float in
            guard let e = a.entry(axis: i) else { return 1 }
            guard let n = dims[i].value, n > 0 else {
                throw FerryError("Resize of axis \(i) needs its input size known to be written before opset 18")
            }
            return ResizeAttributes.scale(giving: sizes[e], from: n)
        }
        resize.input = [inputs[0], inputs[1], addInitializer("\(node.name)_scales", Tensor(shape: [scales.count], floats: scales))]
        return [resize]
    }

    /// A float32 tensor's values as float16.
    private func halfTensor(_ t: Tensor) -> Tensor {
        try! Tensor(shape: t.shape, storage: .float16(t.floats.map(HalfFloat.bits)))
    }

    /// Collects the nodes of a decomposition: fresh value names, the IR node's doc string.
    private struct Helper {
        let node: Node
        let doc: String
        var nodes: [Onnx_NodeProto] = []

        init(node: Node, doc: String) {
            self.node = node
            self.doc = doc
        }

        /// Adds an ONNX node with one output (a fresh name unless given); returns the output.
        @discardableResult
        mutating func add(_ context: inout NodeContext, _ opType: String, _ inputs: [String], output: String? = nil,
                          attributes: [Onnx_AttributeProto] = []) -> String {
            let out = output ?? context.freshName("\(node.name)_\(opType.lowercased())")
            var proto = Onnx_NodeProto()
            proto.opType = opType
            proto.name = "\(node.name)/\(nodes.count)_\(opType)"
            proto.input = inputs
            proto.output = [out]
            proto.attribute = attributes
            proto.docString = doc
            nodes.append(proto)
            return out
        }
    }

    /// Throws unless the opset has the op (or the operator a decomposition needs).
    private func requireOpset(_ minimum: Int, _ node: Node, what: String? = nil) throws {
        guard opset >= minimum else {
            throw FerryError("\(what ?? node.op.name) needs ONNX opset \(minimum) or later, not \(opset)")
        }
    }

    /// A rank-0 constant of a floating-point dtype.
    private func scalar(_ value: Float, _ dtype: DType) -> Tensor {
        dtype == .float16 ? try! Tensor(shape: [], storage: .float16([HalfFloat.bits(value)]))
                          : Tensor(shape: [], floats: [value])
    }

    /// A value name no other value has; reserves it.
    mutating func freshName(_ base: String) -> String {
        var name = base
        var i = 1
        while taken.contains(name) {
            name = "\(base)_\(i)"
            i += 1
        }
        taken.insert(name)
        return name
    }

    /// How ONNX should state a pooling window: end pads, ceil_mode, and whether ONNX's static
    /// shape inference will agree with the output size.
    ///
    /// With ceil_mode, a window that would start in the end padding is dropped. The IR, Caffe,
    /// PyTorch, onnxruntime and onnx's reference evaluator all do that; onnx's static shape
    /// inference (onnx 1.23) does not and counts one more output, so a model stating the true
    /// size fails `check_model(full_check=True)`. Where a window is dropped (and for opsets
    /// before 10, which have no ceil_mode) the window is restated without ceil_mode: the end
    /// pads are set so that floor rounding gives the same windows. Max pooling and averages that
    /// exclude padding see only the input's cells, so nothing changes; an average that counts
    /// padding is restated only when no window's divisor changes, else (opset >= 10) the end pad
    /// is shortened to `kernel - stride` where that keeps the divisors; if neither works the
    /// node keeps its attributes and its output is marked shape-unreliable.
    private func pool(_ a: PoolAttributes, sizes: [Int], countIncludePad: Bool, opName: String) throws
        -> (pads: [Int], ceilMode: Bool, shapeExact: Bool) {
        guard a.ceilMode else { return (a.pads, false, true) }
        let rank = a.kernelShape.count
        var outputs: [Int] = [], dropped = false
        for i in 0..<rank {
            let n = sizes[i], k = (a.kernelShape[i] - 1) * a.dilations[i] + 1, s = a.strides[i], pb = a.pads[i], pe = a.pads[i + rank]
            let ceilCount = (n + pb + pe - k + s - 1) / s + 1
            let count = (ceilCount - 1) * s >= n + pb ? ceilCount - 1 : ceilCount
            dropped = dropped || count != ceilCount
            outputs.append(count)
        }
        if !dropped && opset >= 10 { return (a.pads, true, true) }

        /// The divisor of the last window along axis i with end pad `pe` (ceil rounding keeps
        /// windows that run past the padding, clipped to it).
        func lastDivisor(_ i: Int, endPad pe: Int) -> Int {
            let start = (outputs[i] - 1) * a.strides[i]
            return min(start + a.kernelShape[i], sizes[i] + a.pads[i] + pe) - start
        }

        // Without ceil_mode: end pads that make floor rounding give the same windows.
        var floorPads = a.pads
        for i in 0..<rank {
            let need = (outputs[i] - 1) * a.strides[i] + (a.kernelShape[i] - 1) * a.dilations[i] + 1 - sizes[i] - a.pads[i]
            floorPads[i + rank] = max(0, need)
        }
        let floorKeepsDivisors = (0..<rank).allSatisfy { lastDivisor($0, endPad: a.pads[$0 + rank]) == a.kernelShape[$0] }
        if !countIncludePad || floorKeepsDivisors { return (floorPads, false, true) }

        guard opset >= 10 else {
            throw FerryError("\(opName) with ceil_mode and count_include_pad needs ONNX opset 10 or later, not \(opset)")
        }
        // With ceil_mode: the end pad shortened so that no window starts in it.
        var ceilPads = a.pads
        for i in 0..<rank {
            let k = a.kernelShape[i], s = a.strides[i], pe = a.pads[i + rank]
            let ceilCount = (sizes[i] + a.pads[i] + pe - k + s - 1) / s + 1
            guard ceilCount != outputs[i] else { continue }
            let shorter = k - s
            guard shorter >= 0, lastDivisor(i, endPad: shorter) == lastDivisor(i, endPad: pe) else {
                return (a.pads, true, false)
            }
            ceilPads[i + rank] = shorter
        }
        return (ceilPads, true, true)
    }

    private func inputType(_ node: Node, _ i: Int) throws -> TensorType {
        guard i < node.inputs.count, let t = types[node.inputs[i]] else {
            throw FerryError("node '\(node.name)': the type of input \(i) is unknown")
        }
        return t
    }

    /// A 1-D int64 tensor (the shape operands ONNX takes as inputs).
    private func int64s(_ values: [Int]) -> Tensor {
        Tensor(shape: [values.count], int64s: values.map(Int64.init))
    }

    private mutating func addInitializer(_ base: String, _ tensor: Tensor) -> String {
        let name = freshName(base)
        extraInitializers.append((name, tensor))
        return name
    }

    /// Refuses element types the op's ONNX schema does not allow at this opset (the checker
    /// would reject the model with a less helpful message).
    private func checkElementType(_ node: Node) throws {
        guard let first = node.inputs.first, let dtype = types[first]?.dtype else { return }
        let op = node.op
        let allowed: Bool
        switch op {
        case .conv, .averagePool, .globalAveragePool, .globalMaxPool, .sigmoid, .tanh, .leakyRelu, .softmax:
            allowed = dtype.isFloatingPoint
        case .maxPool:
            allowed = dtype.isFloatingPoint || (opset >= 12 && (dtype == .int8 || dtype == .uint8))
        case .relu:
            allowed = dtype.isFloatingPoint || (opset >= 14 && [.int8, .int32, .int64].contains(dtype))
        case .add, .sub, .mul, .div:
            // The 8- and 16-bit integers arrived in opset 14.
            allowed = dtype.isFloatingPoint || [.int32, .int64, .uint32, .uint64].contains(dtype)
                || (opset >= 14 && dtype.isInteger)
        case .gemm:
            allowed = dtype.isFloatingPoint || (opset >= 9 && [.int32, .int64].contains(dtype))
        case .matMul:
            allowed = dtype.isFloatingPoint || (opset >= 9 && [.int32, .int64].contains(dtype))
        case .flatten:
            allowed = dtype.isFloatingPoint || opset >= 9
        case .reshape, .transpose, .identity:
            allowed = true
        case .logSoftmax, .gelu, .elu, .selu, .hardSigmoid, .thresholdedRelu, .prelu,
             .softplus, .softsign, .hardSwish, .mish,
             .exp, .log, .sqrt, .reciprocal, .floor, .ceil, .erf, .sum, .mean, .batchNormalization,
             .batchNormalizationTraining:
            allowed = dtype.isFloatingPoint
        case .clip:
            allowed = dtype.isFloatingPoint || (opset >= 12 && dtype != .bool)
        case .pow:
            // Integer bases and an exponent of another type arrived in opset 12.
            let exponent = node.inputs.count > 1 ? types[node.inputs[1]]?.dtype : nil
            allowed = (dtype.isFloatingPoint && exponent == dtype)
                || (opset >= 12 && [.float32, .float64, .int32, .int64].contains(dtype) && exponent != .bool)
        case .instanceNormalization, .layerNormalization, .groupNormalization, .lrn, .lpNormalization:
            allowed = dtype.isFloatingPoint
        case .reduce, .argMax, .argMin:
            allowed = dtype.isFloatingPoint || [.int32, .int64].contains(dtype)
        case .topK:
            allowed = dtype.isFloatingPoint || (opset >= 11 && [.int32, .int64].contains(dtype))
        case .equal:
            // Floats and 8-bit integers arrived in opset 11.
            allowed = [.bool, .int32, .int64].contains(dtype) || opset >= 11
        case .greater, .less:
            allowed = dtype.isFloatingPoint || (opset >= 9 && dtype != .bool)
        case .greaterOrEqual, .lessOrEqual:
            allowed = dtype != .bool
        case .not, .and, .or:
            allowed = dtype == .bool
        case .where, .cast:
            allowed = true
        case .abs:
            allowed = dtype != .bool
        case .neg:
            allowed = dtype.isFloatingPoint || [.int8, .int32, .int64].contains(dtype)
        case .max, .min:
            allowed = dtype.isFloatingPoint || (opset >= 12 && dtype != .bool)
        case .convTranspose:
            allowed = dtype.isFloatingPoint
        case .concat, .split, .slice, .squeeze, .unsqueeze, .tile, .expand, .gather, .depthToSpace, .spaceToDepth:
            allowed = true
        case .resize:
            allowed = true
        case .lstm, .gru, .rnn:
            allowed = dtype.isFloatingPoint
        case .detectionOutput, .maxPoolIndices, .maxUnpool:
            allowed = true
        case .pad:
            // Pad-2 takes floats, Pad-11 every number, Pad-13 bool as well.
            allowed = dtype.isFloatingPoint || (opset >= 11 && dtype != .bool) || opset >= 13
        }
        guard allowed else {
            throw FerryError("ONNX \(op.name) (opset \(opset)) does not take \(dtype) inputs")
        }
    }
}

extension Onnx_AttributeProto {
    static func int(_ name: String, _ value: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = Int64(value)
        return a
    }

    static func ints(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = values.map(Int64.init)
        return a
    }

    static func strings(_ name: String, _ values: [String]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .strings
        a.strings = values.map { Data($0.utf8) }
        return a
    }

    static func floats(_ name: String, _ values: [Float]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .floats
        a.floats = values
        return a
    }

    static func string(_ name: String, _ value: String) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .string
        a.s = Data(value.utf8)
        return a
    }

    static func float(_ name: String, _ value: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .float
        a.f = value
        return a
    }
}
