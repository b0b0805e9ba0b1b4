import FerryIR

/// Where each element of a weight as the file stores it goes in an IR tensor: the element at
/// index (i0, i1, ...) of the stored weight goes to `base + offsets[0][i0] + offsets[1][i1] + ...`.
/// A permutation of the axes (a Keras kernel (k..., in, out) to the IR's (out, in, k...)), a
/// reordering of blocks along an axis (a recurrent kernel's gates) and a place in a larger
/// tensor (one direction of a bidirectional layer) are all such placements, so the importer
/// reads every converted weight by one routine, a slab at a time, without holding the stored
/// tensor and its converted copy both whole (`H5File.readFloats(_:into:placement:)`).
struct WeightPlacement {
    /// Per axis of the stored weight, the destination offset each of its indices adds.
    var offsets: [[Int]]
    /// The destination offset of the element at index (0, 0, ...).
    var base = 0

    /// The stored shape.
    var shape: [Int] { offsets.map(\.count) }

    /// The stored weight as it is (row-major), at `base`.
    static func identity(_ shape: [Int], base: Int = 0) -> WeightPlacement {
        permuted(shape, Array(shape.indices), base: base)
    }

    /// numpy's `transpose(perm)`: destination axis k is stored axis perm[k].
    static func permuted(_ shape: [Int], _ perm: [Int], base: Int = 0) -> WeightPlacement {
        precondition(perm.sorted() == Array(shape.indices), "perm \(perm) for rank \(shape.count)")
        let outShape = perm.map { shape[$0] }
        var outStrides = [Int](repeating: 1, count: shape.count)
        for k in stride(from: shape.count - 2, through: 0, by: -1) { outStrides[k] = outStrides[k + 1] * outShape[k + 1] }
        var offsets = shape.map { [Int](repeating: 0, count: $0) }
        for (k, axis) in perm.enumerated() {
            for i in 0..<shape[axis] { offsets[axis][i] = i * outStrides[k] }
        }
        return WeightPlacement(offsets: offsets, base: base)
    }

    /// Whether the stored elements land in order, one after another from `base`: read straight
    /// into the destination, without a slab buffer.
    var isContiguous: Bool {
        var stride = 1
        for axis in offsets.indices.reversed() {
            for (i, o) in offsets[axis].enumerated() where o != i * stride { return false }
            stride *= offsets[axis].count
        }
        return true
    }

    /// The highest destination offset the placement writes (nil when the weight is empty).
    var lastOffset: Int? {
        guard offsets.allSatisfy({ !$0.isEmpty }) else { return nil }
        return offsets.reduce(base) { $0 + $1.max()! }
    }

    /// Writes a box of the stored weight, held row-major in `slab` (the box starts at index
    /// `start` and spans `count` indices per axis), to its places in `destination`.
    func scatter(_ slab: UnsafeBufferPointer<Float>, start: [Int], count: [Int], into destination: UnsafeMutableBufferPointer<Float>) {
        let rank = offsets.count
        guard rank > 0 else {
            if !slab.isEmpty { destination[base] = slab[0] }
            return
        }
        guard count.allSatisfy({ $0 > 0 }) else { return }
        let last = offsets[rank - 1][start[rank - 1]..<(start[rank - 1] + count[rank - 1])]
        // The row base of every axis but the last, advanced like an odometer.
        var index = [Int](repeating: 0, count: rank - 1)
        var rowBase = base
        for axis in 0..<(rank - 1) { rowBase += offsets[axis][start[axis]] }
        var k = 0
        while true {
            for o in last {
                destination[rowBase + o] = slab[k]
                k += 1
            }
            var axis = rank - 2
            while axis >= 0 {
                let table = offsets[axis]
                rowBase -= table[start[axis] + index[axis]]
                index[axis] += 1
                if index[axis] < count[axis] {
                    rowBase += table[start[axis] + index[axis]]
                    break
                }
                index[axis] = 0
                rowBase += table[start[axis]]
                axis -= 1
            }
            if axis < 0 { return }
        }
    }
}

/// An IR weight put together from weights the file holds for a layer: a zero-filled tensor of
/// `shape` in which each part's stored weight (an index into the layer's `WeightSpec`s) is
/// placed.
struct PlacedWeight {
    var role: String
    var shape: [Int]
    var parts: [(weight: Int, placement: WeightPlacement)]

    /// One stored weight permuted (numpy `transpose(perm)`), then seen as `shape` (the same
    /// count of elements; the permuted shape when nil).
    static func permuted(_ role: String, weight: Int, stored: [Int], _ perm: [Int], as shape: [Int]? = nil) -> PlacedWeight {
        PlacedWeight(role: role, shape: shape ?? perm.map { stored[$0] }, parts: [(weight, .permuted(stored, perm))])
    }

    /// One stored weight as it is.
    static func stored(_ role: String, weight: Int, shape: [Int]) -> PlacedWeight {
        PlacedWeight(role: role, shape: shape, parts: [(weight, .identity(shape))])
    }
}
