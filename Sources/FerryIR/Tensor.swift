/// Contiguous, row-major element storage, one case per element type.
/// float16 is kept as raw IEEE half bits: Swift's Float16 is not available on every platform;
/// bfloat16 as its raw bits too (the upper half of a float32's, see `BFloat16`).
public enum TensorStorage: Sendable, Hashable {
    case float32([Float])
    case float16([UInt16])
    case bfloat16([UInt16])
    case float64([Double])
    case int64([Int64])
    case int32([Int32])
    case int16([Int16])
    case int8([Int8])
    case uint64([UInt64])
    case uint32([UInt32])
    case uint16([UInt16])
    case uint8([UInt8])
    case bool([Bool])
    case string([String])

    public var dtype: DType {
        switch self {
        case .float32: return .float32
        case .float16: return .float16
        case .bfloat16: return .bfloat16
        case .float64: return .float64
        case .int64: return .int64
        case .int32: return .int32
        case .int16: return .int16
        case .int8: return .int8
        case .uint64: return .uint64
        case .uint32: return .uint32
        case .uint16: return .uint16
        case .uint8: return .uint8
        case .bool: return .bool
        case .string: return .string
        }
    }

    public var count: Int { visit(ElementCount()) }

    /// Zero-filled storage of a type.
    public static func zeros(_ dtype: DType, count: Int) -> TensorStorage {
        .repeating(0, dtype, count: count)
    }
}

private struct ElementCount: StorageVisitor {
    func visit<T: TensorElement>(_ values: [T], _ wrap: @escaping ([T]) -> TensorStorage) -> Int { values.count }
}

/// A concrete tensor: element type, fixed shape and contiguous row-major (C order) elements.
public struct Tensor: Sendable, Hashable, CustomStringConvertible {
    public private(set) var shape: [Int]
    public var storage: TensorStorage

    public var dtype: DType { storage.dtype }
    public var count: Int { storage.count }
    public var rank: Int { shape.count }
    public var type: TensorType { TensorType(dtype, Shape(shape)) }

    /// Creates a tensor; the element count must match the shape.
    public init(shape: [Int], storage: TensorStorage) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw FerryError("tensor shape \(shape) has a negative dimension")
        }
        guard let n = checkedElementCount(shape), n == storage.count else {
            throw FerryError("tensor shape \(shape) does not match its \(storage.count) elements")
        }
        self.shape = shape
        self.storage = storage
    }

    public init(shape: [Int], floats: [Float]) {
        precondition(shape.reduce(1, *) == floats.count, "shape \(shape) vs \(floats.count) elements")
        self.shape = shape
        self.storage = .float32(floats)
    }

    public init(shape: [Int], int64s: [Int64]) {
        precondition(shape.reduce(1, *) == int64s.count, "shape \(shape) vs \(int64s.count) elements")
        self.shape = shape
        self.storage = .int64(int64s)
    }

    public static func zeros(_ dtype: DType, shape: [Int]) -> Tensor {
        try! Tensor(shape: shape, storage: .zeros(dtype, count: shape.reduce(1, *)))
    }

    /// The float32 elements. Precondition: dtype is float32.
    public var floats: [Float] {
        guard case .float32(let values) = storage else {
            preconditionFailure("tensor is \(dtype), not float32")
        }
        return values
    }

    /// The elements of a string tensor, else nil.
    public var strings: [String]? {
        if case .string(let a) = storage { return a }
        return nil
    }

    /// Elements as Int64 for integer tensors (shape operands, indices); nil for uint64 elements
    /// beyond Int64.max.
    public var int64s: [Int64]? {
        switch storage {
        case .int64(let a): return a
        case .int32(let a): return a.map(Int64.init)
        case .int16(let a): return a.map(Int64.init)
        case .int8(let a): return a.map(Int64.init)
        case .uint32(let a): return a.map(Int64.init)
        case .uint16(let a): return a.map(Int64.init)
        case .uint8(let a): return a.map(Int64.init)
        case .uint64(let a):
            // Only when every element fits: a huge index or size must not turn negative.
            let values = a.compactMap { Int64(exactly: $0) }
            return values.count == a.count ? values : nil
        default: return nil
        }
    }

    /// The same elements under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        var t = self
        t.shape = newShape
        return t
    }

    /// Bytes of the elements in storage (little-endian on every platform Ferry runs on).
    public var byteCount: Int { count * dtype.byteSize }

    public var description: String { "Tensor<\(dtype)>\(shape)" }
}

/// Product of sizes, or nil on overflow.
public func checkedElementCount(_ shape: [Int]) -> Int? {
    var n = 1
    for d in shape {
        let (p, overflow) = n.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        n = p
    }
    return n
}

/// The most elements a constant may have that an importer makes itself rather than reads from
/// the file (Caffe prior boxes and reduction weights, ONNX ConstantOfShape and folded
/// constant subgraphs). A damaged file's sizes must not become an allocation bomb: data read
/// from a file is bounded by the file, data made from its numbers by this.
public let largestMadeConstant = 1 << 26
