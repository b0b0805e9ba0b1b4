import FerryIR
@testable import FerryRuntime
import Testing

func naiveTranspose(_ x: Tensor, _ perm: [Int]) -> Tensor {
    let shape = perm.map { x.shape[$0] }
    var out = [Float](repeating: 0, count: x.count)
    for flat in 0..<x.count {
        let idx = unravel(flat, shape)
        var src = Array(repeating: 0, count: x.rank)
        for (i, p) in perm.enumerated() { src[p] = idx[i] }
        out[flat] = x.floats[ravel(src, x.shape)]
    }
    return Tensor(shape: shape, floats: out)
}

@Suite struct LayoutTests {
    static let perms: [[Int]] = [
        [1, 0], [0, 1], [0, 3, 1, 2], [0, 2, 3, 1], [3, 2, 1, 0], [2, 0, 1, 3], [1, 3, 0, 2],
    ]

    @Test(arguments: perms)
    func transpose(_ perm: [Int]) throws {
        let shape = Array([2, 3, 4, 5].prefix(perm.count))
        let x = randomTensor(shape, seed: 50)
        #expect(try ReferenceKernels.transpose(x, perm: perm) == naiveTranspose(x, perm))
    }

    @Test func transpose5DAndIntegers() throws {
        let x = randomTensor([2, 1, 3, 2, 4], seed: 51)
        #expect(try ReferenceKernels.transpose(x, perm: [4, 0, 3, 1, 2]) == naiveTranspose(x, [4, 0, 3, 1, 2]))
        let i = Tensor(shape: [2, 3], int64s: [1, 2, 3, 4, 5, 6])
        #expect(try ReferenceKernels.transpose(i, perm: [1, 0]) == Tensor(shape: [3, 2], int64s: [1, 4, 2, 5, 3, 6]))
        #expect(throws: FerryError.self) { try ReferenceKernels.transpose(x, perm: [0, 1, 2]) }
    }

    @Test func reshape() throws {
        let x = randomTensor([2, 3, 4], seed: 52)
        #expect(try ReferenceKernels.reshape(x, target: [0, -1]).shape == [2, 12])
        #expect(try ReferenceKernels.reshape(x, target: [-1, 4]).shape == [6, 4])
        #expect(try ReferenceKernels.reshape(x, target: [0, 0, 2, 2]).shape == [2, 3, 2, 2])
        #expect(try ReferenceKernels.reshape(x, target: [4, 0, -1]).shape == [4, 3, 2])
        #expect(try ReferenceKernels.reshape(x, target: [24]).floats == x.floats)
        #expect(throws: FerryError.self) { try ReferenceKernels.reshape(x, target: [5, -1]) }
        #expect(throws: FerryError.self) { try ReferenceKernels.reshape(x, target: [-1, -1]) }
        #expect(throws: FerryError.self) { try ReferenceKernels.reshape(x, target: [7]) }
    }

    @Test func flatten() throws {
        let x = randomTensor([2, 3, 4, 5], seed: 53)
        #expect(try ReferenceKernels.flatten(x, axis: 1).shape == [2, 60])
        #expect(try ReferenceKernels.flatten(x, axis: 0).shape == [1, 120])
        #expect(try ReferenceKernels.flatten(x, axis: 4).shape == [120, 1])
        #expect(try ReferenceKernels.flatten(x, axis: -2).shape == [6, 20])
        #expect(try ReferenceKernels.flatten(x, axis: 2).floats == x.floats)
        #expect(throws: FerryError.self) { try ReferenceKernels.flatten(x, axis: 5) }
    }
}
