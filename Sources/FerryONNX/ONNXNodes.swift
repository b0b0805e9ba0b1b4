import FerryIR

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

    init(opset: Int, types: [String: TensorType], taken: Set<String>) {
        self.opset = opset
        self.types = types
        self.taken = taken
    }

    /// The ONNX node for an IR node. Errors name the node's source layer.
    mutating func node(_ node: Node) throws -> Onnx_NodeProto {
        let (layer, layerType) = node.sourceLayer
        do {
            return try convert(node)
        } catch let e as FerryError {
            throw e.atLayer(layer, type: layerType)
        }
    }

    private mutating func convert(_ node: Node) throws -> Onnx_NodeProto {
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
            proto.attribute = [.ints("kernel_shape", a.kernelShape), .ints("strides", a.strides), .ints("pads", a.pads)]
            if opset >= 10 {
                proto.attribute.append(.int("ceil_mode", a.ceilMode ? 1 : 0))
            } else if a.ceilMode {
                throw FerryError("\(node.op.name) with ceil_mode needs ONNX opset 10 or later, not \(opset)")
            }
            if case .averagePool = node.op {
                proto.attribute.append(.int("count_include_pad", a.countIncludePad ? 1 : 0))
            }

        case .leakyRelu(let alpha):
            proto.attribute = [.float("alpha", alpha)]

        case .softmax(let axis):
            let rank = try inputType(node, 0).shape.rank
            guard let a = normalizeAxis(axis, rank: rank) else {
                throw FerryError("Softmax axis \(axis) is out of range for rank \(rank)")
            }
            if opset >= 13 {
                proto.attribute = [.int("axis", axis)]
            } else {
                // Before opset 13 Softmax flattened the input to 2-D at the axis and normalised
                // each row: the same as the IR's Softmax only over the last axis.
                guard a == rank - 1 else {
                    throw FerryError("Softmax over axis \(axis) of a rank-\(rank) input needs ONNX opset 13 or "
                                     + "later; opset \(opset) Softmax normalises over all axes from \(axis) on")
                }
                proto.attribute = [.int("axis", a)]
            }

        case .flatten(let axis):
            let rank = try inputType(node, 0).shape.rank
            // Negative axes arrived in opset 11.
            proto.attribute = [.int("axis", opset < 11 && axis < 0 ? axis + rank : axis)]

        case .reshape(let shape):
            let target = Tensor(shape: [shape.count], int64s: shape.map(Int64.init))
            proto.input = [node.inputs[0], addInitializer("\(node.name)_shape", target)]

        case .transpose(let perm):
            proto.attribute = [.ints("perm", perm)]

        case .matMul, .globalAveragePool, .globalMaxPool, .relu, .sigmoid, .tanh,
             .add, .sub, .mul, .div, .identity:
            break
        }
        return proto
    }

    private func inputType(_ node: Node, _ i: Int) throws -> TensorType {
        guard i < node.inputs.count, let t = types[node.inputs[i]] else {
            throw FerryError("node '\(node.name)': the type of input \(i) is unknown")
        }
        return t
    }

    private mutating func addInitializer(_ base: String, _ tensor: Tensor) -> String {
        var name = base
        var i = 1
        while taken.contains(name) {
            name = "\(base)_\(i)"
            i += 1
        }
        taken.insert(name)
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
            allowed = dtype.isFloatingPoint || [.int32, .int64].contains(dtype)
                || (opset >= 14 && [.int8, .uint8].contains(dtype))
        case .gemm:
            allowed = dtype.isFloatingPoint || (opset >= 9 && [.int32, .int64].contains(dtype))
        case .matMul:
            allowed = dtype.isFloatingPoint || (opset >= 9 && [.int32, .int64].contains(dtype))
        case .flatten:
            allowed = dtype.isFloatingPoint || opset >= 9
        case .reshape, .transpose, .identity:
            allowed = true
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

    static func float(_ name: String, _ value: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .float
        a.f = value
        return a
    }
}
