import FerryIR
@testable import FerryRuntime
import Testing

/// numpy broadcasting by explicit multi-indexing of every output element.
func naiveBinary(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
    let r = max(a.rank, b.rank)
    let pa = Array(repeating: 1, count: r - a.rank) + a.shape
    let pb = Array(repeating: 1, count: r - b.rank) + b.shape
    let shape = zip(pa, pb).map { $0 == 1 ? $1 : $0 }
    let total = shape.reduce(1, *)
    var out = [Float](repeating: 0, count: total)
    for flat in 0..<total {
        let idx = unravel(flat, shape)
        let ia = zip(idx, pa).map { $1 == 1 ? 0 : $0 }
        let ib = zip(idx, pb).map { $1 == 1 ? 0 : $0 }
        out[flat] = f(a.floats[ravel(ia, pa)], b.floats[ravel(ib, pb)])
    }
    return Tensor(shape: shape, floats: out)
}

@Suite struct ElementwiseTests {
    static let shapes: [([Int], [Int])] = [
        ([2, 3, 1, 5], [3, 4, 1]),
        ([3, 4, 1], [2, 3, 1, 5]),
        ([2, 3, 4], [2, 3, 4]),
        ([2, 3, 4], [1]),
        ([], [2, 3]),
        ([2, 8, 5, 5], [8, 1, 1]),   // channel bias
        ([4, 6], [6]),               // trailing
        ([4, 1], [1, 6]),
        ([1, 1], [3]),
    ]

    @Test(arguments: shapes)
    func broadcasting(_ aShape: [Int], _ bShape: [Int]) throws {
        let a = randomTensor(aShape, seed: 40), b = randomTensor(bShape, seed: 41, range: 0.5...2)
        #expect(try ReferenceKernels.add(a, b) == naiveBinary(a, b, +))
        #expect(try ReferenceKernels.sub(a, b) == naiveBinary(a, b, -))
        #expect(try ReferenceKernels.mul(a, b) == naiveBinary(a, b, *))
        #expect(try ReferenceKernels.div(a, b) == naiveBinary(a, b, /))
    }

    @Test func addOfExampleShapes() throws {
        let y = try ReferenceKernels.add(randomTensor([2, 3, 1, 5], seed: 1), randomTensor([3, 4, 1], seed: 2))
        #expect(y.shape == [2, 3, 4, 5])
    }

    @Test func rejectsIncompatibleShapes() {
        #expect(throws: FerryError.self) {
            try ReferenceKernels.add(randomTensor([2, 3], seed: 1), randomTensor([4], seed: 2))
        }
    }
}
