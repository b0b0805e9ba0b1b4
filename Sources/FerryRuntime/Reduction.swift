import FerryIR
import Foundation

/// Reductions (ReduceSum ... ReduceLogSumExp; floats, and integers for Sum, Max, Min, Prod) and
/// ArgMax / ArgMin.
extension ReferenceKernels {
    /// For each input element, the flat position of the output element it reduces into
    /// (the reduced axes collapsed), and the output shape with reduced axes kept as 1.
    static func reductionMap(_ shape: [Int], reduced: [Int]) -> (positions: [Int], keptShape: [Int]) {
        var kept = shape
        for a in reduced { kept[a] = 1 }
        let outStrides = contiguousStrides(kept)
        var strides = outStrides
        for a in reduced { strides[a] = 0 }
        let positions = stridedOffsets(shape: shape, strides: strides)
        return (positions, kept)
    }

    /// One reduction over `axes` (nil or empty: all axes).
    public static func reduce(_ x: Tensor, _ operation: ReduceOperation, axes: [Int]?, keepDims: Bool) throws -> Tensor {
        let name = operation.onnxName
        let reduced = try reducedAxes(axes, rank: x.rank)
        let (positions, kept) = reductionMap(x.shape, reduced: reduced)
        let outCount = elementCount(kept)
        let shape = keepDims ? kept : x.shape.enumerated().filter { !reduced.contains($0.offset) }.map(\.element)
        // Sum, Max, Min and Prod of integers (wrapping), for folded shape arithmetic.
        if allInteger([x]), [.sum, .max, .min, .prod].contains(operation), let values = x.int64s {
            let initial: Int64 = operation == .max ? (x.dtype == .int32 ? Int64(Int32.min) : .min)
                : operation == .min ? (x.dtype == .int32 ? Int64(Int32.max) : .max) : operation == .prod ? 1 : 0
            var acc = [Int64](repeating: initial, count: outCount)
            for (i, v) in values.enumerated() {
                let j = positions[i]
                switch operation {
                case .max: acc[j] = Swift.max(acc[j], v)
                case .min: acc[j] = Swift.min(acc[j], v)
                case .prod: acc[j] = acc[j] &* v
                default: acc[j] = acc[j] &+ v
                }
            }
            return try integerTensor(acc, shape: shape, dtype: x.dtype)
        }
        let groupSize = elementCount(reduced.map { x.shape[$0] })
        let kernel = FloatingReduction(operation: operation, positions: positions, outCount: outCount, groupSize: groupSize)
        return try Tensor(shape: shape, storage: try TensorStorage.visitNumeric([x.storage], name, kernel))
    }

    /// ArgMax (`largest`) or ArgMin along one axis: the first index of the extreme value, or
    /// the last with `selectLastIndex`.
    public static func argExtreme(_ x: Tensor, largest: Bool, axis: Int, keepDims: Bool, selectLastIndex: Bool) throws -> Tensor {
        let name = largest ? "ArgMax" : "ArgMin"
        if allInteger([x]), let values = x.int64s {
            return try argExtreme(values, x.shape, name, largest: largest, axis: axis, keepDims: keepDims, selectLastIndex: selectLastIndex)
        }
        return try argExtreme(try x.requireFloats(name, "X"), x.shape, name, largest: largest, axis: axis, keepDims: keepDims,
                              selectLastIndex: selectLastIndex)
    }

    static func argExtreme<T: Comparable>(_ values: [T], _ xShape: [Int], _ name: String, largest: Bool, axis: Int, keepDims: Bool,
                                          selectLastIndex: Bool) throws -> Tensor {
        guard xShape.count > 0, let a = normalizeAxis(axis, rank: xShape.count) else {
            throw FerryError("\(name) axis \(axis) out of range for shape \(xShape)")
        }
        let outer = elementCount(xShape[..<a]), n = xShape[a], inner = elementCount(xShape[(a + 1)...])
        guard n > 0 else { throw FerryError("\(name) over an empty axis \(a) of shape \(xShape)") }
        var out = [Int64](repeating: 0, count: outer * inner)
        for q in 0..<outer {
            for r in 0..<inner {
                let base = q * n * inner + r
                var best = 0, bestValue = values[base]
                for i in 1..<n {
                    let v = values[base + i * inner]
                    let better = largest ? (selectLastIndex ? v >= bestValue : v > bestValue)
                                         : (selectLastIndex ? v <= bestValue : v < bestValue)
                    if better {
                        best = i
                        bestValue = v
                    }
                }
                out[q * inner + r] = Int64(best)
            }
        }
        var shape = xShape
        if keepDims { shape[a] = 1 } else { shape.remove(at: a) }
        return Tensor(shape: shape, int64s: out)
    }

    /// ONNX TopK, sorted: the k largest (or smallest) values along `axis`, best first, and
    /// their int64 indices; equal values keep index order (a stable sort), NaN counts as the
    /// largest value.
    public static func topK(_ x: Tensor, axis: Int, k: Int, largest: Bool) throws -> [Tensor] {
        let values = try x.requireFloats("TopK", "X")
        guard x.shape.count > 0, let a = normalizeAxis(axis, rank: x.shape.count) else {
            throw FerryError("TopK axis \(axis) out of range for shape \(x.shape)")
        }
        let outer = elementCount(x.shape[..<a]), n = x.shape[a], inner = elementCount(x.shape[(a + 1)...])
        guard k >= 1, k <= n else { throw FerryError("TopK k \(k) is not within 1...\(n) (axis \(a) of \(x.shape))") }
        func before(_ p: Float, _ q: Float) -> Bool {
            if p.isNaN || q.isNaN { return largest ? (p.isNaN && !q.isNaN) : (!p.isNaN && q.isNaN) }
            return largest ? p > q : p < q
        }
        var outValues = [Float](repeating: 0, count: outer * k * inner)
        var outIndices = [Int64](repeating: 0, count: outer * k * inner)
        for q in 0..<outer {
            for r in 0..<inner {
                let base = q * n * inner + r
                let order = (0..<n).sorted { i, j in
                    let p = values[base + i * inner], s = values[base + j * inner]
                    return before(p, s) || (!before(s, p) && i < j)
                }
                for (slot, i) in order.prefix(k).enumerated() {
                    outValues[(q * k + slot) * inner + r] = values[base + i * inner]
                    outIndices[(q * k + slot) * inner + r] = Int64(i)
                }
            }
        }
        var shape = x.shape
        shape[a] = k
        return [Tensor(shape: shape, floats: outValues), Tensor(shape: shape, int64s: outIndices)]
    }
}

/// A reduction of floating-point elements (float32, float64), in the element type.
private struct FloatingReduction: NumericVisitor {
    let operation: ReduceOperation
    let positions: [Int]
    let outCount: Int
    let groupSize: Int

    func integer<T: FixedWidthInteger & TensorElement>(_ operands: [[T]], _ wrap: @escaping ([T]) -> TensorStorage) throws -> TensorStorage {
        throw FerryError("\(operation.onnxName) of integers supports sum, max, min and prod only")
    }

    func floating<T: FloatingElement>(_ operands: [[T]], _ wrap: @escaping ([T]) -> TensorStorage) -> TensorStorage {
        let values = operands[0]
        let initial: T
        switch operation {
        case .max: initial = -.infinity
        case .min: initial = .infinity
        case .prod: initial = 1
        default: initial = 0
        }
        var acc = [T](repeating: initial, count: outCount)
        // LogSumExp subtracts each group's maximum first so that exp never overflows.
        var shift = [T](repeating: 0, count: outCount)
        if operation == .logSumExp {
            shift = [T](repeating: -.infinity, count: outCount)
            for (i, v) in values.enumerated() { shift[positions[i]] = Swift.max(shift[positions[i]], v) }
            for j in 0..<outCount where !shift[j].isFinite { shift[j] = 0 }
        }
        for (i, v) in values.enumerated() {
            let j = positions[i]
            switch operation {
            case .sum, .mean: acc[j] += v
            case .max: acc[j] = v.isNaN || acc[j].isNaN ? .nan : Swift.max(acc[j], v)
            case .min: acc[j] = v.isNaN || acc[j].isNaN ? .nan : Swift.min(acc[j], v)
            case .prod: acc[j] *= v
            case .l1: acc[j] += Swift.abs(v)
            case .l2, .sumSquare: acc[j] += v * v
            case .logSumExp: acc[j] += T.exp(v - shift[j])
            }
        }
        switch operation {
        case .mean: acc = acc.map { $0 / T(groupSize) }
        case .l2: acc = acc.map { $0.squareRoot() }
        case .logSumExp: acc = zip(acc, shift).map { T.log($0) + $1 }
        default: break
        }
        return wrap(acc)
    }
}
