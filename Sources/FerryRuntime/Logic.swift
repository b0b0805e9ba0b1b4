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
        let result: [Bool]
        if case let (.bool(x), .bool(y)) = (a.storage, b.storage) {
            guard op == .equal else { throw FerryError("\(op.name) of bool is not supported") }
            result = (0..<elementCount(shape)).map { x[p[0][$0]] == y[p[1][$0]] }
        } else {
            result = try TensorStorage.visitNumeric([a.storage, b.storage], op.name, Comparison(op: op, positions: p))
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
        guard a.dtype == b.dtype else { throw FerryError("Where of \(a.dtype) and \(b.dtype)") }
        let storage = a.storage.visit(Selection(condition: c, positions: p, other: b.storage))
        return try Tensor(shape: shape, storage: storage)
    }
}

/// A comparison of two numeric operands, element by element at broadcast positions.
private struct Comparison: NumericVisitor {
    let op: Op
    let positions: [[Int]]

    func floating<T: FloatingElement>(_ operands: [[T]], _ wrap: @escaping ([T]) -> TensorStorage) -> [Bool] { compare(operands) }
    func integer<T: FixedWidthInteger & TensorElement>(_ operands: [[T]], _ wrap: @escaping ([T]) -> TensorStorage) -> [Bool] {
        compare(operands)
    }

    private func compare<T: Comparable>(_ operands: [[T]]) -> [Bool] {
        let x = operands[0], y = operands[1]
        return positions[0].indices.map { ReferenceKernels.holds(op, x[positions[0][$0]], y[positions[1][$0]]) }
    }
}

/// Where: the visited operand's element where the condition holds, else the other's.
private struct Selection: StorageVisitor {
    let condition: [Bool]
    let positions: [[Int]]
    let other: TensorStorage

    func visit<T: TensorElement>(_ values: [T], _ wrap: @escaping ([T]) -> TensorStorage) -> TensorStorage {
        let y = other.elements(as: T.self)!
        return wrap(positions[0].indices.map { condition[positions[0][$0]] ? values[positions[1][$0]] : y[positions[2][$0]] })
    }
}
