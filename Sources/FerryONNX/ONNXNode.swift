import Foundation
import FerryIR

/// One ONNX node as the op builders see it: its inputs (with their types and, when constant,
/// their values), its attributes read with the ONNX defaults, and `emit` to add IR nodes.
struct ONNXNode {
    let proto: Onnx_NodeProto
    let state: ImportState
    /// The opset of the node's domain.
    let opset: Int
    /// The name used for the IR node and in errors: the node's name, else its first output.
    let layer: String

    /// Source layers: those a Ferry-written file records in the node's doc_string
    /// ("from conv1 (Conv2D), bn (BatchNormalization)"), else the node itself.
    var origins: [Origin] {
        let recorded = parseOrigins(proto.docString)
        return recorded.isEmpty ? [Origin(layer: layer, type: proto.opType)] : recorded
    }
    var opType: String { proto.opType }

    // MARK: Inputs

    var inputCount: Int { proto.input.count }

    /// The name of a required input.
    func input(_ i: Int) throws -> String {
        guard i < proto.input.count, !proto.input[i].isEmpty else {
            throw FerryError("\(opType) needs input \(i), which is missing")
        }
        return proto.input[i]
    }

    /// The name of an optional input, nil when absent or "".
    func optionalInput(_ i: Int) -> String? {
        i < proto.input.count && !proto.input[i].isEmpty ? proto.input[i] : nil
    }

    func type(_ name: String) throws -> TensorType {
        guard let t = state.types[name] else { throw FerryError("input '\(name)' is not defined before this node") }
        return t
    }

    func inputType(_ i: Int) throws -> TensorType { try type(try input(i)) }

    /// The value of an input when it is a constant (initializer, Constant node, folded subgraph).
    func constant(_ i: Int) -> Tensor? { optionalInput(i).flatMap(state.constant) }

    /// An input that must be a constant because the IR keeps it as a typed attribute.
    func requireConstant(_ i: Int, _ what: String) throws -> Tensor {
        let name = try input(i)
        guard let t = state.constant(name) ?? state.bindInput(name) else {
            throw FerryError("\(opType) input \(i) ('\(name)', \(what)) must be a constant (an initializer or "
                             + "computable from initializers) because Ferry's IR keeps it as an attribute")
        }
        return t
    }

    /// A constant integer input as Ints (shape operands, axes, pads...).
    func constantInts(_ i: Int, _ what: String) throws -> [Int] {
        let t = try requireConstant(i, what)
        guard let values = t.int64s else { throw FerryError("\(opType) \(what) must be integers, got \(t.dtype)") }
        return values.map { Int(clamping: $0) }
    }

    /// An optional constant integer input, nil when absent.
    func optionalConstantInts(_ i: Int, _ what: String) throws -> [Int]? {
        optionalInput(i) == nil ? nil : try constantInts(i, what)
    }

    /// A constant scalar (or one-element) float input, nil when absent.
    func optionalConstantFloat(_ i: Int, _ what: String) throws -> Float? {
        guard optionalInput(i) != nil else { return nil }
        let t = try requireConstant(i, what)
        guard t.count == 1 else { throw FerryError("\(opType) \(what) must hold one value, has \(t.count)") }
        switch t.storage {
        case .float32(let a): return a[0]
        case .float16(let a): return Float(float16Bits: a[0])
        case .float64(let a): return Float(a[0])
        default:
            guard let v = t.int64s?.first else { throw FerryError("\(opType) \(what) has type \(t.dtype)") }
            return Float(v)
        }
    }

    // MARK: Attributes

    func attribute(_ name: String) -> Onnx_AttributeProto? {
        proto.attribute.first { $0.name == name }
    }

    func has(_ name: String) -> Bool { attribute(name) != nil }

    func int(_ name: String, _ defaultValue: Int) throws -> Int {
        guard let a = attribute(name) else { return defaultValue }
        guard a.type == .int || (a.type == .undefined && a.hasI) else {
            throw FerryError("\(opType) attribute '\(name)' should be an int, is \(a.type)")
        }
        return Int(clamping: a.i)
    }

    func bool(_ name: String, _ defaultValue: Bool) throws -> Bool {
        try int(name, defaultValue ? 1 : 0) != 0
    }

    func float(_ name: String, _ defaultValue: Float) throws -> Float {
        guard let a = attribute(name) else { return defaultValue }
        guard a.type == .float || (a.type == .undefined && a.hasF) else {
            throw FerryError("\(opType) attribute '\(name)' should be a float, is \(a.type)")
        }
        return a.f
    }

    func ints(_ name: String) throws -> [Int]? {
        guard let a = attribute(name) else { return nil }
        guard a.type == .ints || (a.type == .undefined && !a.ints.isEmpty) else {
            throw FerryError("\(opType) attribute '\(name)' should be a list of ints, is \(a.type)")
        }
        return a.ints.map { Int(clamping: $0) }
    }

    func floats(_ name: String) throws -> [Float]? {
        guard let a = attribute(name) else { return nil }
        guard a.type == .floats || (a.type == .undefined && !a.floats.isEmpty) else {
            throw FerryError("\(opType) attribute '\(name)' should be a list of floats, is \(a.type)")
        }
        return a.floats
    }

    func strings(_ name: String) throws -> [String]? {
        guard let a = attribute(name) else { return nil }
        guard a.type == .strings || (a.type == .undefined && !a.strings.isEmpty) else {
            throw FerryError("\(opType) attribute '\(name)' should be a list of strings, is \(a.type)")
        }
        return a.strings.map { String(decoding: $0, as: UTF8.self) }
    }

    func string(_ name: String, _ defaultValue: String) throws -> String {
        guard let a = attribute(name) else { return defaultValue }
        guard a.type == .string || (a.type == .undefined && a.hasS) else {
            throw FerryError("\(opType) attribute '\(name)' should be a string, is \(a.type)")
        }
        return String(decoding: a.s, as: UTF8.self)
    }

    func tensor(_ name: String) throws -> Tensor? {
        guard let a = attribute(name) else { return nil }
        guard a.type == .tensor || (a.type == .undefined && a.hasT) else {
            throw FerryError("\(opType) attribute '\(name)' should be a tensor, is \(a.type)")
        }
        return try ONNXImportTensors.tensor(a.t, external: nil)
    }

    /// Refuses an attribute value the IR cannot express.
    func unsupported(_ what: String) -> FerryError {
        FerryError("\(opType) with \(what) is not supported by Ferry (opset \(opset))")
    }

    // MARK: Outputs

    /// The node's outputs, "" for absent optional ones.
    var outputs: [String] { proto.output }

    /// Output i's name; throws for a missing required output.
    func output(_ i: Int) throws -> String {
        guard i < proto.output.count, !proto.output[i].isEmpty else {
            throw FerryError("\(opType) output \(i) is missing")
        }
        return proto.output[i]
    }

    /// Whether the model asks for output i.
    func wantsOutput(_ i: Int) -> Bool { i < proto.output.count && !proto.output[i].isEmpty }

    /// Refuses optional outputs from `first` on that the IR does not compute.
    func refuseOutputs(from first: Int, _ what: String) throws {
        for i in first..<max(first, proto.output.count) where !proto.output[i].isEmpty {
            throw FerryError("\(opType) output \(i) ('\(proto.output[i])', \(what)) is not supported by Ferry")
        }
    }

    /// Adds the IR op computing the node's outputs (the first `count` of them).
    func emit(_ op: Op, _ inputs: [String], outputs count: Int = 1) throws {
        let outs = Array(proto.output.prefix(count))
        guard outs.count == count, outs.allSatisfy({ !$0.isEmpty }) else {
            throw FerryError("\(opType) should name \(count) output\(count == 1 ? "" : "s")")
        }
        try refuseOutputs(from: count, "not computed by the IR's \(op.name)")
        try state.emit(op, inputs: inputs, outputs: outs, name: layer, origins: origins)
    }

    /// Adds an IR op computing an intermediate value; returns its (fresh) name.
    @discardableResult
    func emitTemporary(_ op: Op, _ inputs: [String], _ base: String) throws -> String {
        let name = state.freshName("\(layer)_\(base)")
        try state.emit(op, inputs: inputs, outputs: [name], name: name, origins: origins)
        return name
    }

    /// Makes an output a known constant (ops the importer evaluates itself: Shape, Constant...).
    func define(_ i: Int, _ tensor: Tensor) throws {
        state.addConstant(try output(i), tensor)
    }

    /// Adds a constant under a fresh name; returns the name.
    func addConstant(_ base: String, _ tensor: Tensor) -> String {
        let name = state.freshName("\(layer)_\(base)")
        state.addConstant(name, tensor)
        return name
    }
}

extension Float {
    /// The value of IEEE half-precision bits.
    public init(float16Bits h: UInt16) {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            self = sign != 0 ? -magnitude : magnitude
        } else if exponent == 31 {
            self = Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        } else {
            self = Float(bitPattern: sign | (UInt32(exponent - 15 + 127) << 23) | (mantissa << 13))
        }
    }
}

/// Parses the exporter's "from a (TypeA), b (TypeB)[; note]" doc_string into origins.
func parseOrigins(_ doc: String) -> [Origin] {
    guard doc.hasPrefix("from ") else { return [] }
    let list = doc.dropFirst(5).split(separator: ";", maxSplits: 1).first ?? ""
    return list.components(separatedBy: "), ").compactMap { part in
        let item = part.hasSuffix(")") ? String(part.dropLast()) : part
        guard let open = item.range(of: " (", options: .backwards) else { return nil }
        return Origin(layer: String(item[..<open.lowerBound]), type: String(item[open.upperBound...]))
    }
}
