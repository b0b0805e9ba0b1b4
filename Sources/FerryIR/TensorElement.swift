import Foundation

/// Element types seen through their Swift types, so that a kernel is written once, generic
/// over elements, instead of once per case of `TensorStorage`. The two switches over the
/// storage cases below are the only places that list them for generic code.

/// A Swift type that holds the elements of an IR element type. (UInt16 holds both uint16 and
/// float16's and bfloat16's bits: generic code that computes goes through `NumericVisitor`,
/// which hands both over as Float.)
public protocol TensorElement: Sendable, Hashable {}
extension Float: TensorElement {}
extension Double: TensorElement {}
extension Int64: TensorElement {}
extension Int32: TensorElement {}
extension Int16: TensorElement {}
extension Int8: TensorElement {}
extension UInt64: TensorElement {}
extension UInt32: TensorElement {}
extension UInt16: TensorElement {}
extension UInt8: TensorElement {}
extension Bool: TensorElement {}
extension String: TensorElement {}

/// A floating-point element type with the elementary functions kernels need.
public protocol FloatingElement: BinaryFloatingPoint & TensorElement {
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    static func pow(_ x: Self, _ y: Self) -> Self
}
extension Float: FloatingElement {
    public static func exp(_ x: Float) -> Float { Foundation.exp(x) }
    public static func log(_ x: Float) -> Float { Foundation.log(x) }
    public static func pow(_ x: Float, _ y: Float) -> Float { Foundation.pow(x, y) }
}
extension Double: FloatingElement {
    public static func exp(_ x: Double) -> Double { Foundation.exp(x) }
    public static func log(_ x: Double) -> Double { Foundation.log(x) }
    public static func pow(_ x: Double, _ y: Double) -> Double { Foundation.pow(x, y) }
}

/// Code that works on elements of any type (data movement): called with the elements and the
/// function that wraps elements of that type back into storage of the same element type.
public protocol StorageVisitor {
    associatedtype Result
    /// Never for visitors that cannot fail.
    associatedtype Failure: Error = Never
    func visit<T: TensorElement>(_ values: [T], _ wrap: @escaping ([T]) -> TensorStorage) throws(Failure) -> Result
}

/// Numeric code generic over element types, on one or more operands of one element type:
/// `floating` for float32, float64, float16 and bfloat16 (the 16-bit types widened to Float,
/// exactly; `wrap` rounds results back to nearest even), `integer` for the signed and unsigned integer types.
public protocol NumericVisitor {
    associatedtype Result
    func floating<T: FloatingElement>(_ operands: [[T]], _ wrap: @escaping ([T]) -> TensorStorage) throws -> Result
    func integer<T: FixedWidthInteger & TensorElement>(_ operands: [[T]], _ wrap: @escaping ([T]) -> TensorStorage) throws -> Result
}

extension TensorStorage {
    /// Runs `visitor` on the elements as their Swift type.
    public func visit<V: StorageVisitor>(_ visitor: V) throws(V.Failure) -> V.Result {
        switch self {
        case .float32(let a): return try visitor.visit(a, TensorStorage.float32)
        case .float16(let a): return try visitor.visit(a, TensorStorage.float16)
        case .bfloat16(let a): return try visitor.visit(a, TensorStorage.bfloat16)
        case .float64(let a): return try visitor.visit(a, TensorStorage.float64)
        case .int64(let a): return try visitor.visit(a, TensorStorage.int64)
        case .int32(let a): return try visitor.visit(a, TensorStorage.int32)
        case .int16(let a): return try visitor.visit(a, TensorStorage.int16)
        case .int8(let a): return try visitor.visit(a, TensorStorage.int8)
        case .uint64(let a): return try visitor.visit(a, TensorStorage.uint64)
        case .uint32(let a): return try visitor.visit(a, TensorStorage.uint32)
        case .uint16(let a): return try visitor.visit(a, TensorStorage.uint16)
        case .uint8(let a): return try visitor.visit(a, TensorStorage.uint8)
        case .bool(let a): return try visitor.visit(a, TensorStorage.bool)
        case .string(let a): return try visitor.visit(a, TensorStorage.string)
        }
    }

    /// The elements if they are of Swift type T and element type `dtype` (UInt16 alone
    /// cannot tell uint16 from float16's bits).
    public func elements<T: TensorElement>(as _: T.Type) -> [T]? {
        visit(ElementExtraction<T>())
    }

    /// The first element `count` times, in the same element type. Precondition: not empty.
    public func repeatingFirst(count: Int) -> TensorStorage { visit(FirstRepeated(count: count)) }

    /// Runs `visitor` on operands that share one numeric element type; `what` names the
    /// operation in the error for bool or mixed element types.
    public static func visitNumeric<V: NumericVisitor>(_ operands: [TensorStorage], _ what: String, _ visitor: V) throws -> V.Result {
        guard let dtype = operands.first?.dtype else { throw FerryError("\(what) needs at least one operand") }
        guard operands.allSatisfy({ $0.dtype == dtype }) else {
            throw FerryError("\(what) takes operands of one element type, got \(operands.map(\.dtype.description).joined(separator: ", "))")
        }
        func all<T: TensorElement>(_: T.Type) -> [[T]] { operands.map { $0.elements(as: T.self)! } }
        switch dtype {
        case .float32: return try visitor.floating(all(Float.self), TensorStorage.float32)
        case .float64: return try visitor.floating(all(Double.self), TensorStorage.float64)
        case .float16:
            return try visitor.floating(all(UInt16.self).map { $0.map(HalfFloat.value) }, { .float16($0.map(HalfFloat.bits)) })
        case .bfloat16:
            return try visitor.floating(all(UInt16.self).map { $0.map(BFloat16.value) }, { .bfloat16($0.map(BFloat16.bits)) })
        case .int64: return try visitor.integer(all(Int64.self), TensorStorage.int64)
        case .int32: return try visitor.integer(all(Int32.self), TensorStorage.int32)
        case .int16: return try visitor.integer(all(Int16.self), TensorStorage.int16)
        case .int8: return try visitor.integer(all(Int8.self), TensorStorage.int8)
        case .uint64: return try visitor.integer(all(UInt64.self), TensorStorage.uint64)
        case .uint32: return try visitor.integer(all(UInt32.self), TensorStorage.uint32)
        case .uint16: return try visitor.integer(all(UInt16.self), TensorStorage.uint16)
        case .uint8: return try visitor.integer(all(UInt8.self), TensorStorage.uint8)
        case .bool: throw FerryError("\(what) does not take bool operands")
        case .string: throw FerryError("\(what) does not take string operands")
        }
    }
}

private struct ElementExtraction<T: TensorElement>: StorageVisitor {
    func visit<U: TensorElement>(_ values: [U], _ wrap: @escaping ([U]) -> TensorStorage) -> [T]? { values as? [T] }
}

private struct FirstRepeated: StorageVisitor {
    let count: Int
    func visit<T: TensorElement>(_ values: [T], _ wrap: @escaping ([T]) -> TensorStorage) -> TensorStorage {
        wrap(Array(repeating: values[0], count: count))
    }
}
