import FerryIR

/// Comparison, logic, Where and Cast builders. Binary ones share `binary` (legacy broadcast
/// before opset 7).
extension ONNXOpTable {
    static func Equal(_ n: ONNXNode) throws { try binary(n, .equal) }
    static func Greater(_ n: ONNXNode) throws { try binary(n, .greater) }
    static func Less(_ n: ONNXNode) throws { try binary(n, .less) }
    static func GreaterOrEqual(_ n: ONNXNode) throws { try binary(n, .greaterOrEqual) }
    static func LessOrEqual(_ n: ONNXNode) throws { try binary(n, .lessOrEqual) }
    static func And(_ n: ONNXNode) throws { try binary(n, .and) }
    static func Or(_ n: ONNXNode) throws { try binary(n, .or) }
    static func Not(_ n: ONNXNode) throws { try n.emit(.not, [try n.input(0)]) }

    /// a xor b = not (a == b) on bools.
    static func Xor(_ n: ONNXNode) throws {
        let same = try n.emitTemporary(.equal, [try n.input(0), try n.input(1)], "same")
        try n.emit(.not, [same])
    }

    static func Where(_ n: ONNXNode) throws {
        try n.emit(.where, [try n.input(0), try n.input(1), try n.input(2)])
    }

    /// `to` is a TensorProto data type number (opset 6+).
    static func Cast(_ n: ONNXNode) throws {
        guard let to = n.attribute("to"), to.type == .int || (to.type == .undefined && to.hasI) else {
            throw FerryError("Cast needs an integer 'to' attribute")
        }
        let dtype = try ONNXImportTensors.dtype(Int32(clamping: to.i), what: "Cast target")
        try n.emit(.cast(to: dtype), [try n.input(0)])
    }

    /// Cast to the element type of input 1.
    static func CastLike(_ n: ONNXNode) throws {
        try n.emit(.cast(to: try n.inputType(1).dtype), [try n.input(0)])
    }
}
