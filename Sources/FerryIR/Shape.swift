/// One dimension of a shape: a fixed size, or a named size only known at run time
/// (the batch dimension a Keras model leaves open, ONNX's `dim_param`).
public enum Dim: Sendable, Hashable, CustomStringConvertible {
    case fixed(Int)
    case symbolic(String)

    public var value: Int? {
        if case .fixed(let n) = self { return n }
        return nil
    }

    public var description: String {
        switch self {
        case .fixed(let n): return String(n)
        case .symbolic(let name): return name
        }
    }
}

/// The shape of a value in the graph. Dimensions may be symbolic; tensors always have fixed shapes.
public struct Shape: Sendable, Hashable, CustomStringConvertible, ExpressibleByArrayLiteral {
    public var dims: [Dim]

    public init(_ dims: [Dim]) { self.dims = dims }
    public init(_ sizes: [Int]) { self.dims = sizes.map { .fixed($0) } }
    public init(arrayLiteral elements: Int...) { self.init(elements) }

    public var rank: Int { dims.count }

    /// The sizes when every dimension is fixed, else nil.
    public var fixedSizes: [Int]? {
        var sizes: [Int] = []
        sizes.reserveCapacity(dims.count)
        for d in dims {
            guard let n = d.value else { return nil }
            sizes.append(n)
        }
        return sizes
    }

    public var isFullyFixed: Bool { fixedSizes != nil }

    /// Number of elements when every dimension is fixed (nil too when the product overflows).
    public var elementCount: Int? { fixedSizes.flatMap(checkedElementCount) }

    public subscript(axis: Int) -> Dim {
        get { dims[axis] }
        set { dims[axis] = newValue }
    }

    /// Replaces symbolic dimensions by the sizes bound to their names.
    public func binding(_ sizes: [String: Int]) -> Shape {
        Shape(dims.map { d in
            if case .symbolic(let name) = d, let n = sizes[name] { return .fixed(n) }
            return d
        })
    }

    public var description: String { "[" + dims.map(\.description).joined(separator: ",") + "]" }
}

/// The static type of a value: element type and shape.
public struct TensorType: Sendable, Hashable, CustomStringConvertible {
    public var dtype: DType
    public var shape: Shape

    public init(_ dtype: DType, _ shape: Shape) {
        self.dtype = dtype
        self.shape = shape
    }

    public var description: String { "\(dtype)\(shape)" }
}

/// Normalises a possibly negative axis against a rank (numpy / ONNX convention).
public func normalizeAxis(_ axis: Int, rank: Int) -> Int? {
    let a = axis < 0 ? axis + rank : axis
    return (0..<max(rank, 1)).contains(a) || (rank == 0 && a == 0) ? a : nil
}
