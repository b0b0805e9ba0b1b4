import FerryIR
@testable import FerryRuntime
import Testing

/// alpha · A' · B' + beta · C by triple loop; C broadcast by reading index (i mod rows, j mod cols).
func naiveGemm(_ a: Tensor, _ b: Tensor, _ c: Tensor?, _ attr: GemmAttributes) -> Tensor {
    let m = attr.transA ? a.shape[1] : a.shape[0]
    let k = attr.transA ? a.shape[0] : a.shape[1]
    let n = attr.transB ? b.shape[0] : b.shape[1]
    let av = a.floats, bv = b.floats
    var out = [Float](repeating: 0, count: m * n)
    for i in 0..<m {
        for j in 0..<n {
            var acc: Double = 0
            for p in 0..<k {
                let x = attr.transA ? av[p * a.shape[1] + i] : av[i * a.shape[1] + p]
                let y = attr.transB ? bv[j * b.shape[1] + p] : bv[p * b.shape[1] + j]
                acc += Double(x) * Double(y)
            }
            var v = Double(attr.alpha) * acc
            if let c {
                let cs = c.rank == 0 ? [1, 1] : c.rank == 1 ? [1, c.shape[0]] : c.shape
                v += Double(attr.beta) * Double(c.floats[(i % cs[0]) * cs[1] + j % cs[1]])
            }
            out[i * n + j] = Float(v)
        }
    }
    return Tensor(shape: [m, n], floats: out)
}

/// numpy matmul by explicit multi-indexing.
func naiveMatMul(_ a: Tensor, _ b: Tensor) -> Tensor {
    let a2 = a.rank == 1 ? [1] + a.shape : a.shape
    let b2 = b.rank == 1 ? b.shape + [1] : b.shape
    let m = a2[a2.count - 2], k = a2[a2.count - 1], n = b2[b2.count - 1]
    let ab = Array(a2.dropLast(2)), bb = Array(b2.dropLast(2))
    let r = max(ab.count, bb.count)
    let pa = Array(repeating: 1, count: r - ab.count) + ab
    let pb = Array(repeating: 1, count: r - bb.count) + bb
    let batch = zip(pa, pb).map { max($0, $1) }
    let full = batch + [m, n]
    let total = full.reduce(1, *)
    var out = [Float](repeating: 0, count: total)
    for flat in 0..<total {
        let idx = unravel(flat, full)
        let bi = Array(idx.prefix(r)), i = idx[r], j = idx[r + 1]
        let ia = zip(bi, pa).map { $1 == 1 ? 0 : $0 }
        let ib = zip(bi, pb).map { $1 == 1 ? 0 : $0 }
        var acc: Double = 0
        for p in 0..<k {
            acc += Double(a.floats[ravel(ia + [i, p], pa + [m, k])]) * Double(b.floats[ravel(ib + [p, j], pb + [k, n])])
        }
        out[flat] = Float(acc)
    }
    var shape = batch
    if a.rank != 1 { shape.append(m) }
    if b.rank != 1 { shape.append(n) }
    return Tensor(shape: shape, floats: out)
}

@Suite struct GemmTests {
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func transposeCombinations(_ transA: Bool, _ transB: Bool) throws {
        let (m, k, n) = (5, 7, 4)
        let a = randomTensor(transA ? [k, m] : [m, k], seed: 10)
        let b = randomTensor(transB ? [n, k] : [k, n], seed: 11)
        let c = randomTensor([n], seed: 12)
        let attr = GemmAttributes(alpha: 0.7, beta: 1.3, transA: transA, transB: transB)
        expectClose(try ReferenceKernels.gemm(a, b, c, attr), naiveGemm(a, b, c, attr))
        expectClose(try ReferenceKernels.gemm(a, b, nil, attr), naiveGemm(a, b, nil, attr))
    }

    @Test(arguments: [[Int](), [1], [4], [1, 4], [5, 1], [5, 4], [1, 1]])
    func broadcastsC(_ cShape: [Int]) throws {
        let a = randomTensor([5, 3], seed: 13), b = randomTensor([3, 4], seed: 14)
        let c = randomTensor(cShape, seed: 15)
        let attr = GemmAttributes(alpha: 1, beta: 0.5)
        expectClose(try ReferenceKernels.gemm(a, b, c, attr), naiveGemm(a, b, c, attr))
    }

    @Test func rejectsBadC() {
        let a = randomTensor([5, 3], seed: 13), b = randomTensor([3, 4], seed: 14)
        #expect(throws: FerryError.self) {
            try ReferenceKernels.gemm(a, b, randomTensor([3], seed: 1), GemmAttributes())
        }
        #expect(throws: FerryError.self) {
            try ReferenceKernels.gemm(a, b, randomTensor([5, 2], seed: 1), GemmAttributes())
        }
    }

    static let matMulShapes: [([Int], [Int])] = [
        ([3, 4], [4, 5]),
        ([4], [4, 5]),            // 1-D left operand
        ([3, 4], [4]),            // 1-D right operand
        ([4], [4]),               // dot product
        ([2, 3, 4], [4, 5]),      // shared right matrix
        ([4, 5], [2, 3, 5, 2]),    // shared left matrix
        ([2, 1, 3, 4], [3, 4, 2]), // both batches broadcast
        ([1, 3, 4], [2, 4, 5]),
        ([2, 3, 4], [4]),
        ([5], [2, 5, 3]),
    ]

    @Test(arguments: matMulShapes)
    func matMulBroadcasting(_ aShape: [Int], _ bShape: [Int]) throws {
        let a = randomTensor(aShape, seed: 16), b = randomTensor(bShape, seed: 17)
        expectClose(try ReferenceKernels.matMul(a, b), naiveMatMul(a, b))
    }

    @Test func matMulRejectsMismatch() {
        #expect(throws: FerryError.self) {
            try ReferenceKernels.matMul(randomTensor([2, 3], seed: 1), randomTensor([4, 2], seed: 2))
        }
        #expect(throws: FerryError.self) {
            try ReferenceKernels.matMul(randomTensor([2, 2, 3], seed: 1), randomTensor([3, 3, 2], seed: 2))
        }
    }
}
