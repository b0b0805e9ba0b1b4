import FerryIR

/// Helpers shared by the reference kernels: typed element access, strides, window sizes.

/// Row-major (C order) strides of a shape, in elements.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = Array(repeating: 1, count: shape.count)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i] = s
        s *= shape[i]
    }
    return strides
}

/// Product of sizes (1 for an empty list).
func elementCount<C: Collection>(_ dims: C) -> Int where C.Element == Int {
    dims.reduce(1, *)
}

/// A fresh float array of `count` elements filled by `body` (which must write every element).
@inline(__always)
func makeFloats(_ count: Int, _ body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows -> [Float] {
    try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        try body(buffer)
        initialized = count
    }
}

extension Tensor {
    /// The float32 elements, or an error naming the op and the operand.
    func requireFloats(_ op: String, _ what: String) throws -> [Float] {
        guard case .float32(let values) = storage else {
            throw FerryError("\(op) supports float32 only; \(what) is \(dtype)")
        }
        return values
    }
}

/// Strides for reading an operand of shape `shape` broadcast to `target` (0 on broadcast axes).
/// `shape` is right-aligned against `target`; its rank must not exceed the target's.
func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
    let own = contiguousStrides(shape)
    let offset = target.count - shape.count
    var strides = Array(repeating: 0, count: target.count)
    for i in 0..<shape.count where shape[i] != 1 {
        strides[i + offset] = own[i]
    }
    return strides
}

/// The flat offset, under `strides`, of every element of `shape` visited in row-major order
/// (an odometer over the axes). Broadcasting and reductions read their operands through it.
func stridedOffsets(shape: [Int], strides: [Int]) -> [Int] {
    let count = elementCount(shape)
    var offsets = [Int](repeating: 0, count: count)
    var index = [Int](repeating: 0, count: shape.count)
    var offset = 0
    for i in 0..<count {
        offsets[i] = offset
        var axis = shape.count - 1
        while axis >= 0 {
            index[axis] += 1
            offset += strides[axis]
            if index[axis] < shape[axis] { break }
            offset -= strides[axis] * shape[axis]
            index[axis] = 0
            axis -= 1
        }
    }
    return offsets
}
