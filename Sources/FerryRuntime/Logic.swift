import FerryIR

/// Comparisons (Equal, Greater, Less, GreaterOrEqual, LessOrEqual), logic (Not, And, Or) and
/// Where, with numpy broadcasting, on the element types ONNX gives them.
extension ReferenceKernels {
    /// The broadcast shape of several operands and, for each, the source position of every
    /// output element.
    static func broadcastPositions(_ shapes: [[Int]]) throws -> (shape: [Int], positions: [[Int]]) {
        var shape: [Int] = []
        for s in shapes { shape = try broadcastSizes(shape, s) }
        return (shape, shapes.map { stridedOffsets(shape: shape, strides: broadcastStrides($0, to: shape)) })
    }

    /// Whether the comparison op holds for a and b.
    @inline(__always)
    static func holds<T: Comparable>(_ op: Op, _ a: T, _ b: T) -> Bool {
        switch op {
        case .equal: return a == b
        case .greater: return a > b
        case .less: return a < b
        case .greaterOrEqual: return a >= b
        default: return a <= b
        }
    }

    /// Equal, Greater, Less, GreaterOrEqual or LessOrEqual of two tensors of one element type
    /// (numbers; Equal also bool).
    public static func compare(_ op: Op, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        guard [.equal, .greater, .less, .greaterOrEqual, .lessOrEqual].contains(op) else {
            throw FerryError("\(op.name) is not a comparison")
        }
        let (shape, p) = try broadcastPositions([a.shape, b.shape])
        func map<T: Comparable>(_ x: [T], _ y: [T]) -> [Bool] {
            (0..<elementCount(shape)).map { holds(op, x[p[0][$0]], y[p[1][$0]]) }
        }
        let result: [Bool]
        switch (a.storage, b.storage) {
        case let (.float32(x), .float32(y)): result = map(x, y)
        case let (.float16(x), .float16(y)): result = map(x.map(HalfFloat.value), y.map(HalfFloat.value))
        case let (.int64(x), .int64(y)): result = map(x, y)
        case let (.int32(x), .int32(y)): result = map(x, y)
        case let (.int8(x), .int8(y)): result = map(x, y)
        case let (.uint8(x), .uint8(y)): result = map(x, y)
        case let (.bool(x), .bool(y)) where op == .equal:
            result = (0..<elementCount(shape)).map { x[p[0][$0]] == y[p[1][$0]] }
        default:
            throw FerryError("\(op.name) of \(a.dtype) and \(b.dtype) is not supported")
        }
        return try Tensor(shape: shape, storage: .bool(result))
    }

    /// The bool elements, or an error naming the op and the operand.
    static func bools(_ t: Tensor, _ op: String, _ what: String) throws -> [Bool] {
        guard case .bool(let values) = t.storage else { throw FerryError("\(op) expects bool \(what), got \(t.dtype)") }
        return values
    }

    public static func not(_ x: Tensor) throws -> Tensor {
        try Tensor(shape: x.shape, storage: .bool(try bools(x, "Not", "X").map { !$0 }))
    }

    /// And (`conjunction`) or Or of two bool tensors.
    public static func logical(_ a: Tensor, _ b: Tensor, conjunction: Bool) throws -> Tensor {
        let name = conjunction ? "And" : "Or"
        let x = try bools(a, name, "A"), y = try bools(b, name, "B")
        let (shape, p) = try broadcastPositions([a.shape, b.shape])
        let out = (0..<elementCount(shape)).map { i in
            conjunction ? x[p[0][i]] && y[p[1][i]] : x[p[0][i]] || y[p[1][i]]
        }
        return try Tensor(shape: shape, storage: .bool(out))
    }

    /// Where(condition, X, Y): X's element where the condition holds, else Y's; any element type.
    public static func select(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        let c = try bools(condition, "Where", "condition")
        let (shape, p) = try broadcastPositions([condition.shape, a.shape, b.shape])
        func pick<T>(_ x: [T], _ y: [T]) -> [T] {
            (0..<elementCount(shape)).map { c[p[0][$0]] ? x[p[1][$0]] : y[p[2][$0]] }
        }
        let storage: TensorStorage
        switch (a.storage, b.storage) {
        case let (.float32(x), .float32(y)): storage = .float32(pick(x, y))
        case let (.float16(x), .float16(y)): storage = .float16(pick(x, y))
        case let (.int64(x), .int64(y)): storage = .int64(pick(x, y))
        case let (.int32(x), .int32(y)): storage = .int32(pick(x, y))
        case let (.int8(x), .int8(y)): storage = .int8(pick(x, y))
        case let (.uint8(x), .uint8(y)): storage = .uint8(pick(x, y))
        case let (.bool(x), .bool(y)): storage = .bool(pick(x, y))
        default: throw FerryError("Where of \(a.dtype) and \(b.dtype)")
        }
        return try Tensor(shape: shape, storage: storage)
    }
}
