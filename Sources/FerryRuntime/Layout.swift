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
        return try Tensor(shape: outShape, storage: x.storage.visit(Permutation(outShape: outShape, strides: strides)))
    }

    /// The concrete shape ONNX Reshape gives `shape` for a target: 0 copies the input's
    /// dimension at that position (with `allowZero`: a size 0), one -1 takes the remaining elements.
    public static func reshapedSizes(_ shape: [Int], target: [Int], allowZero: Bool = false) throws -> [Int] {
        guard target.filter({ $0 == -1 }).count <= 1, target.allSatisfy({ $0 >= -1 }) else {
            throw FerryError("Reshape target \(target) may hold one -1 and no other negative size")
        }
        if allowZero, target.contains(0), target.contains(-1) {
            throw FerryError("Reshape target \(target) with allowzero may not hold both 0 and -1")
        }
        var dims: [Int] = []
        for (i, t) in target.enumerated() {
            if t == 0 && !allowZero {
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

    public static func reshape(_ x: Tensor, target: [Int], allowZero: Bool = false) throws -> Tensor {
        x.reshaped(try reshapedSizes(x.shape, target: target, allowZero: allowZero))
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

/// Element selection shared by the data-movement kernels: each kernel computes, for every
/// output element, the flat position of the input element it copies (or -1 for a fill), and
/// `picking` applies that map to storage of any element type.
extension TensorStorage {
    /// Element k of the result is element positions[k] of self, or `fill` (converted to the
    /// element type) where positions[k] < 0.
    func picking(_ positions: [Int], fill: Float = 0) -> TensorStorage {
        let filler = positions.contains { $0 < 0 } ? TensorStorage.repeating(fill, dtype, count: 1) : nil
        return visit(Picking(positions: positions, filler: filler))
    }

    /// The elements of several storages of one element type, one after another.
    static func joined(_ parts: [TensorStorage]) throws -> TensorStorage {
        guard let first = parts.first else { return .float32([]) }
        return try first.visit(Joining(parts: parts))
    }
}

/// Source positions for an output of `shape` whose element at (i0, i1, ...) reads input flat
/// position offsets[0][i0] + offsets[1][i1] + ..., or is a fill (-1) when any term is negative.
/// A result with no elements, or nil. Slice, Pad, Tile and Expand build a table of offsets per
/// axis, as long as the axis: with another axis of 0, a damaged file's huge axis (Tile repeats
/// of 2^28) would be tabulated for nothing.
func emptyResult(_ x: Tensor, _ shape: [Int]) throws -> Tensor? {
    guard shape.contains(0) else { return nil }
    return try Tensor(shape: shape, storage: x.storage.picking([]))
}

func separablePositions(_ shape: [Int], _ offsets: [[Int]]) -> [Int] {
    let total = elementCount(shape)
    if total == 0 { return [] }
    let r = shape.count
    if r == 0 { return [0] }
    var result: [Int] = []
    result.reserveCapacity(total)
    var index = Array(repeating: 0, count: r)
    let last = offsets[r - 1]
    while true {
        var base = 0, inside = true
        for a in 0..<(r - 1) {
            let o = offsets[a][index[a]]
            if o < 0 { inside = false; break }
            base += o
        }
        if inside {
            for o in last { result.append(o < 0 ? -1 : base + o) }
        } else {
            result.append(contentsOf: repeatElement(-1, count: last.count))
        }
        var axis = r - 2
        while axis >= 0 {
            index[axis] += 1
            if index[axis] < shape[axis] { break }
            index[axis] = 0
            axis -= 1
        }
        if axis < 0 { return result }
    }
}

/// Concat, Split, Slice, Pad, Squeeze, Unsqueeze, Tile, Expand, DepthToSpace, SpaceToDepth:
/// any element type. Sizes follow the same rules as shape inference (FerryIR).
extension ReferenceKernels {
    /// ONNX Concat along an axis.
    public static func concat(_ xs: [Tensor], axis: Int) throws -> Tensor {
        guard let first = xs.first else { throw FerryError("Concat needs at least one input") }
        let types = try Op.concat(axis: axis).inferOutputTypes(xs.map { $0.type })
        let outShape = types[0].shape.fixedSizes!
        let a = normalizeAxis(axis, rank: first.rank)!
        let outer = elementCount(first.shape[..<a])
        let chunks = xs.map { elementCount($0.shape[a...]) }
        var starts: [Int] = [], start = 0
        for x in xs { starts.append(start); start += x.count }
        var positions: [Int] = []
        positions.reserveCapacity(start)
        for o in 0..<outer {
            for (i, chunk) in chunks.enumerated() {
                let base = starts[i] + o * chunk
                positions.append(contentsOf: base..<(base + chunk))
            }
        }
        return try Tensor(shape: outShape, storage: try TensorStorage.joined(xs.map(\.storage)).picking(positions))
    }

    /// ONNX Split into pieces of the given sizes along an axis.
    public static func split(_ x: Tensor, axis: Int, sizes: [Int]) throws -> [Tensor] {
        let types = try Op.split(axis: axis, sizes: sizes).inferOutputTypes([x.type])
        let a = normalizeAxis(axis, rank: x.rank)!
        let outer = elementCount(x.shape[..<a]), inner = elementCount(x.shape[(a + 1)...])
        var offset = 0
        return try zip(sizes, types).map { size, type in
            var positions: [Int] = []
            positions.reserveCapacity(outer * size * inner)
            for o in 0..<outer {
                let base = (o * x.shape[a] + offset) * inner
                positions.append(contentsOf: base..<(base + size * inner))
            }
            offset += size
            return try Tensor(shape: type.shape.fixedSizes!, storage: x.storage.picking(positions))
        }
    }

    /// ONNX Slice (clamped starts and ends, negative steps).
    public static func slice(_ x: Tensor, _ attr: SliceAttributes) throws -> Tensor {
        let ranges = try attr.ranges(x.shape)
        let strides = contiguousStrides(x.shape)
        let outShape = ranges.map(\.count)
        if let empty = try emptyResult(x, outShape) { return empty }
        let offsets = ranges.enumerated().map { a, r in (0..<r.count).map { (r.start + $0 * r.step) * strides[a] } }
        return try Tensor(shape: outShape, storage: x.storage.picking(separablePositions(outShape, offsets)))
    }

    /// ONNX Pad: constant, reflect or edge; negative pads crop.
    public static func pad(_ x: Tensor, _ attr: PadAttributes) throws -> Tensor {
        let outShape = try attr.outputSizes(x.shape)
        if let empty = try emptyResult(x, outShape) { return empty }
        let r = x.rank
        let strides = contiguousStrides(x.shape)
        let offsets = (0..<r).map { a -> [Int] in
            let n = x.shape[a]
            return (0..<outShape[a]).map { o in
                var i = o - attr.pads[a]
                if i < 0 || i >= n {
                    switch attr.mode {
                    case .constant: return -1
                    case .edge: i = min(max(i, 0), n - 1)
                    case .reflect:
                        // Mirror about the edge cells; n == 1 leaves only the cell itself.
                        let period = max(2 * (n - 1), 1)
                        i = ((i % period) + period) % period
                        if i >= n { i = period - i }
                    }
                }
                return i * strides[a]
            }
        }
        return try Tensor(shape: outShape, storage: x.storage.picking(separablePositions(outShape, offsets), fill: attr.value))
    }

    /// ONNX Squeeze and Unsqueeze: the same elements under the inferred shape.
    public static func reshapeAs(_ op: Op, _ x: Tensor) throws -> Tensor {
        let type = try op.inferOutputTypes([x.type])[0]
        return x.reshaped(type.shape.fixedSizes!)
    }

    /// ONNX Tile.
    public static func tile(_ x: Tensor, repeats: [Int]) throws -> Tensor {
        let outShape = try Op.tile(repeats: repeats).inferOutputTypes([x.type])[0].shape.fixedSizes!
        if let empty = try emptyResult(x, outShape) { return empty }
        let strides = contiguousStrides(x.shape)
        let offsets = outShape.enumerated().map { a, n in (0..<n).map { ($0 % x.shape[a]) * strides[a] } }
        return try Tensor(shape: outShape, storage: x.storage.picking(separablePositions(outShape, offsets)))
    }

    /// ONNX Expand: numpy broadcasting of the input with a shape.
    public static func expand(_ x: Tensor, shape: [Int]) throws -> Tensor {
        let outShape = try broadcastSizes(x.shape, shape)
        if let empty = try emptyResult(x, outShape) { return empty }
        let strides = broadcastStrides(x.shape, to: outShape)
        let offsets = outShape.enumerated().map { a, n in (0..<n).map { $0 * strides[a] } }
        return try Tensor(shape: outShape, storage: x.storage.picking(separablePositions(outShape, offsets)))
    }

    /// ONNX DepthToSpace (DCR or CRD).
    public static func depthToSpace(_ x: Tensor, blockSize: Int, mode: DepthToSpaceMode) throws -> Tensor {
        _ = try Op.depthToSpace(blockSize: blockSize, mode: mode).inferOutputTypes([x.type])
        let (view, perm, output) = BlockRearrangement.depthToSpace(x.shape, blockSize: blockSize, mode: mode)
        return try transpose(x.reshaped(view), perm: perm).reshaped(output)
    }

    /// ONNX SpaceToDepth.
    public static func spaceToDepth(_ x: Tensor, blockSize: Int) throws -> Tensor {
        _ = try Op.spaceToDepth(blockSize: blockSize).inferOutputTypes([x.type])
        let (view, perm, output) = BlockRearrangement.spaceToDepth(x.shape, blockSize: blockSize)
        return try transpose(x.reshaped(view), perm: perm).reshaped(output)
    }
}

/// Transpose's element copy: output element i reads the input at the strides of its axes.
private struct Permutation: StorageVisitor {
    let outShape: [Int]
    let strides: [Int]

    func visit<T: TensorElement>(_ values: [T], _ wrap: @escaping ([T]) -> TensorStorage) -> TensorStorage { wrap(permute(values)) }

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
}

/// Element k of the result is element positions[k] of the storage, or the filler's one element
/// where positions[k] < 0.
private struct Picking: StorageVisitor {
    let positions: [Int]
    let filler: TensorStorage?

    func visit<T: TensorElement>(_ values: [T], _ wrap: @escaping ([T]) -> TensorStorage) -> TensorStorage {
        let fill = filler?.elements(as: T.self)?.first
        return wrap(values.withUnsafeBufferPointer { src in positions.map { $0 < 0 ? fill! : src[$0] } })
    }
}

/// The elements of several storages of the first one's element type, one after another.
private struct Joining: StorageVisitor {
    let parts: [TensorStorage]

    func visit<T: TensorElement>(_ values: [T], _ wrap: @escaping ([T]) -> TensorStorage) throws(FerryError) -> TensorStorage {
        var all: [T] = []
        for p in parts {
            guard p.dtype == parts[0].dtype, let a = p.elements(as: T.self) else {
                throw FerryError("cannot join \(parts[0].dtype) and \(p.dtype) elements")
            }
            all += a
        }
        return wrap(all)
    }
}
