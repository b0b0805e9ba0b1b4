import FerryIR

/// Data movement: Transpose, Reshape, Flatten, Identity. These work on every dtype.
extension ReferenceKernels {
    /// ONNX Transpose: output axis i is input axis perm[i].
    public static func transpose(_ x: Tensor, perm: [Int]) throws -> Tensor {
        guard perm.sorted() == Array(0..<x.rank) else {
            throw FerryError("Transpose perm \(perm) is not a permutation of rank \(x.rank)")
        }
        let outShape = perm.map { x.shape[$0] }
        if perm == Array(0..<x.rank) { return x }
        let inStrides = contiguousStrides(x.shape)
        let strides = perm.map { inStrides[$0] }
        func permute<T>(_ a: [T]) -> [T] {
            let count = a.count
            return a.withUnsafeBufferPointer { src in
                [T](unsafeUninitializedCapacity: count) { dst, initialized in
                    defer { initialized = count }
                    if count == 0 { return }
                    let r = outShape.count
                    let inner = outShape[r - 1], innerStride = strides[r - 1]
                    var index = Array(repeating: 0, count: r)
                    var offset = 0, pos = 0
                    let base = dst.baseAddress!
                    while pos < count {
                        var p = offset
                        for _ in 0..<inner {
                            (base + pos).initialize(to: src[p])
                            pos += 1
                            p += innerStride
                        }
                        var axis = r - 2
                        while axis >= 0 {
                            index[axis] += 1
                            offset += strides[axis]
                            if index[axis] < outShape[axis] { break }
                            offset -= strides[axis] * outShape[axis]
                            index[axis] = 0
                            axis -= 1
                        }
                    }
                }
            }
        }
        let storage: TensorStorage
        switch x.storage {
        case .float32(let a): storage = .float32(permute(a))
        case .float16(let a): storage = .float16(permute(a))
        case .int64(let a): storage = .int64(permute(a))
        case .int32(let a): storage = .int32(permute(a))
        case .int8(let a): storage = .int8(permute(a))
        case .uint8(let a): storage = .uint8(permute(a))
        case .bool(let a): storage = .bool(permute(a))
        }
        return try Tensor(shape: outShape, storage: storage)
    }

    /// The concrete shape ONNX Reshape (allowzero = 0) gives `shape` for a target:
    /// 0 copies the input's dimension at that position, one -1 takes the remaining elements.
    public static func reshapedSizes(_ shape: [Int], target: [Int]) throws -> [Int] {
        guard target.filter({ $0 == -1 }).count <= 1, target.allSatisfy({ $0 >= -1 }) else {
            throw FerryError("Reshape target \(target) may hold one -1 and no other negative size")
        }
        var dims: [Int] = []
        for (i, t) in target.enumerated() {
            if t == 0 {
                guard i < shape.count else {
                    throw FerryError("Reshape target \(target): 0 at position \(i) is beyond the input rank \(shape.count)")
                }
                dims.append(shape[i])
            } else {
                dims.append(t)
            }
        }
        let total = elementCount(shape)
        if let unknown = dims.firstIndex(of: -1) {
            let known = dims.enumerated().reduce(1) { $1.offset == unknown ? $0 : $0 * $1.element }
            guard known > 0, total % known == 0 else {
                throw FerryError("cannot reshape \(shape) (\(total) elements) to \(target)")
            }
            dims[unknown] = total / known
        }
        guard elementCount(dims) == total else {
            throw FerryError("cannot reshape \(shape) (\(total) elements) to \(target)")
        }
        return dims
    }

    public static func reshape(_ x: Tensor, target: [Int]) throws -> Tensor {
        x.reshaped(try reshapedSizes(x.shape, target: target))
    }

    /// ONNX Flatten: [product of dims before axis, product of dims from axis on].
    public static func flatten(_ x: Tensor, axis: Int) throws -> Tensor {
        let a = axis < 0 ? axis + x.rank : axis
        guard a >= 0, a <= x.rank else {
            throw FerryError("Flatten axis \(axis) out of range for shape \(x.shape)")
        }
        return x.reshaped([elementCount(x.shape[..<a]), elementCount(x.shape[a...])])
    }

    public static func identity(_ x: Tensor) -> Tensor { x }
}
