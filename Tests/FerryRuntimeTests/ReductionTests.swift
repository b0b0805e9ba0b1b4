import FerryIR
import Foundation
@testable import FerryRuntime
import Testing

/// A reduction by grouping the elements on their multi-index with the reduced axes dropped, in Double.
func naiveReduce(_ x: Tensor, _ operation: ReduceOperation, axes: [Int]?, keepDims: Bool) -> Tensor {
    let reduced = Set((axes ?? Array(0..<x.rank)).map { $0 < 0 ? $0 + x.rank : $0 })
    let keptShape = x.shape.enumerated().map { reduced.contains($0.offset) ? 1 : $0.element }
    var groups = [[Double]](repeating: [], count: keptShape.reduce(1, *))
    for (flat, v) in x.floats.enumerated() {
        let idx = unravel(flat, x.shape).enumerated().map { reduced.contains($0.offset) ? 0 : $0.element }
        groups[ravel(idx, keptShape)].append(Double(v))
    }
    let out = groups.map { g -> Float in
        switch operation {
        case .sum: return Float(g.reduce(0, +))
        case .mean: return Float(g.reduce(0, +) / Double(g.count))
        case .max: return Float(g.max()!)
        case .min: return Float(g.min()!)
        case .prod: return Float(g.reduce(1, *))
        case .l1: return Float(g.map { Swift.abs($0) }.reduce(0, +))
        case .l2: return Float(g.map { $0 * $0 }.reduce(0, +).squareRoot())
        case .sumSquare: return Float(g.map { $0 * $0 }.reduce(0, +))
        case .logSumExp: return Float(Foundation.log(g.map { Foundation.exp($0) }.reduce(0, +)))
        }
    }
    let shape = keepDims ? keptShape : x.shape.enumerated().filter { !reduced.contains($0.offset) }.map(\.element)
    return Tensor(shape: shape, floats: out)
}

@Suite struct ReductionTests {
    static let axesCases: [[Int]?] = [nil, [0], [1], [-1], [0, 2], [2, 0], [1, 2], [0, 1, 2], []]

    @Test(arguments: ReduceOperation.allCases)
    func reduce(_ operation: ReduceOperation) throws {
        let x = randomTensor([3, 4, 5], seed: 90, range: 0.5...1.5)
        for axes in Self.axesCases {
            for keepDims in [true, false] {
                let y = try ReferenceKernels.reduce(x, operation, axes: axes, keepDims: keepDims)
                // An empty axes list reduces everything (ONNX noop_with_empty_axes = 0).
                let expected = naiveReduce(x, operation, axes: axes?.isEmpty == true ? nil : axes, keepDims: keepDims)
                expectClose(y, expected, atol: 1e-5, rtol: 1e-5)
                let op: Op = .reduce(operation, axes: axes, keepDims: keepDims)
                #expect(try op.inferOutputTypes([x.type]) == [y.type])
            }
        }
    }

    @Test func logSumExpIsStableForLargeInputs() throws {
        let x = Tensor(shape: [2, 3], floats: [1000, 1001, 1002, -1000, -1000, -1000])
        let y = try ReferenceKernels.reduce(x, .logSumExp, axes: [1], keepDims: false).floats
        expectClose(Tensor(shape: [2], floats: y), Tensor(shape: [2], floats: [1002.40760596, -1000 + Float(Foundation.log(3.0))]), atol: 1e-3)
    }

    @Test func badAxes() {
        let x = randomTensor([2, 3], seed: 1)
        #expect(throws: FerryError.self) { try ReferenceKernels.reduce(x, .sum, axes: [2], keepDims: true) }
        #expect(throws: FerryError.self) { try ReferenceKernels.reduce(x, .sum, axes: [1, -1], keepDims: true) }
        #expect(throws: FerryError.self) { try Op.reduce(.mean, axes: [-3], keepDims: false).inferOutputTypes([x.type]) }
        #expect(throws: FerryError.self) { try Op.argMax(axis: 2, keepDims: true, selectLastIndex: false).inferOutputTypes([x.type]) }
    }

    @Test(arguments: [0, 1, -1, 2])
    func argMaxAndArgMin(_ axis: Int) throws {
        // Few distinct values so that ties happen.
        var x = randomTensor([3, 4, 5], seed: 91, range: 0...3)
        x.storage = .float32(x.floats.map { $0.rounded(.down) })
        let a = axis < 0 ? axis + 3 : axis
        for largest in [true, false] {
            for last in [false, true] {
                for keepDims in [true, false] {
                    let y = try ReferenceKernels.argExtreme(x, largest: largest, axis: axis, keepDims: keepDims, selectLastIndex: last)
                    var shape = x.shape
                    if keepDims { shape[a] = 1 } else { shape.remove(at: a) }
                    #expect(y.shape == shape)
                    #expect(y.dtype == .int64)
                    // Each result indexes an extreme value, and no other index (before or after it) holds one.
                    let v = x.floats
                    let keptShape = x.shape.enumerated().map { $0.offset == a ? 1 : $0.element }
                    for (flat, index) in y.int64s!.enumerated() {
                        var idx = unravel(flat, keptShape)
                        let slice = (0..<x.shape[a]).map { k -> Float in idx[a] = k; return v[ravel(idx, x.shape)] }
                        let extreme = largest ? slice.max()! : slice.min()!
                        let expected = last ? slice.lastIndex(of: extreme)! : slice.firstIndex(of: extreme)!
                        #expect(Int(index) == expected)
                    }
                    let op: Op = largest ? .argMax(axis: axis, keepDims: keepDims, selectLastIndex: last)
                                         : .argMin(axis: axis, keepDims: keepDims, selectLastIndex: last)
                    #expect(try ReferenceKernels.evaluate(op, [x]) == [y])
                    #expect(try op.inferOutputTypes([x.type]) == [y.type])
                }
            }
        }
    }

    @Test(arguments: [0, 1, -1])
    func topKListsTheBestValuesStablyWithTheirIndices(_ axis: Int) throws {
        // Few distinct values so that ties happen: equal values must keep index order (ONNX).
        var x = randomTensor([3, 4, 5], seed: 92, range: 0...3)
        x.storage = .float32(x.floats.map { $0.rounded(.down) })
        let a = axis < 0 ? axis + 3 : axis
        for largest in [true, false] {
            let k = x.shape[a] - 1
            let op = Op.topK(axis: axis, k: k, largest: largest)
            let outputs = try ReferenceKernels.evaluate(op, [x])
            var shape = x.shape
            shape[a] = k
            #expect(outputs.map(\.shape) == [shape, shape])
            #expect(try op.inferOutputTypes([x.type]) == outputs.map(\.type))
            let v = x.floats
            for flat in 0..<(outputs[0].count / k) {
                var keptShape = x.shape
                keptShape[a] = 1
                var idx = unravel(flat, keptShape)
                let slice = (0..<x.shape[a]).map { j -> Float in idx[a] = j; return v[ravel(idx, x.shape)] }
                let expected = slice.indices.sorted { i, j in
                    slice[i] != slice[j] ? (largest ? slice[i] > slice[j] : slice[i] < slice[j]) : i < j
                }.prefix(k)
                var got: [Int] = [], values: [Float] = []
                for slot in 0..<k {
                    idx[a] = slot
                    got.append(Int(outputs[1].int64s![ravel(idx, shape)]))
                    values.append(outputs[0].floats[ravel(idx, shape)])
                }
                #expect(got == Array(expected))
                #expect(values == expected.map { slice[$0] })
            }
        }
        #expect(throws: FerryError.self) { try Op.topK(axis: 0, k: 4, largest: true).inferOutputTypes([x.type]) }
        #expect(throws: FerryError.self) { try Op.topK(axis: 3, k: 1, largest: true).inferOutputTypes([x.type]) }
        #expect(throws: FerryError.self) { try ReferenceKernels.topK(x, axis: 1, k: 0, largest: true) }
    }
}
