import FerryIR
import Foundation
@testable import FerryRuntime
import Testing

/// Softmax in Double by explicit multi-indexing over the axis.
func naiveSoftmax(_ x: Tensor, axis: Int) -> Tensor {
    let a = axis < 0 ? axis + x.rank : axis
    let v = x.floats
    var out = [Float](repeating: 0, count: v.count)
    for flat in 0..<v.count {
        var idx = unravel(flat, x.shape)
        var denominator: Double = 0
        for j in 0..<x.shape[a] {
            idx[a] = j
            denominator += Foundation.exp(Double(v[ravel(idx, x.shape)]))
        }
        out[flat] = Float(Foundation.exp(Double(v[flat])) / denominator)
    }
    return Tensor(shape: x.shape, floats: out)
}

@Suite struct ActivationTests {
    @Test func elementwise() throws {
        let x = randomTensor([3, 4, 5], seed: 30, range: -6...6)
        let v = x.floats
        #expect(try ReferenceKernels.relu(x).floats == v.map { max($0, 0) })
        #expect(try ReferenceKernels.leakyRelu(x, alpha: 0.1).floats == v.map { $0 >= 0 ? $0 : 0.1 * $0 })
        expectClose(try ReferenceKernels.sigmoid(x), Tensor(shape: x.shape, floats: v.map { Float(1 / (1 + Foundation.exp(-Double($0)))) }),
                    atol: 1e-6)
        expectClose(try ReferenceKernels.tanh(x), Tensor(shape: x.shape, floats: v.map { Float(Foundation.tanh(Double($0))) }),
                    atol: 1e-6)
    }

    @Test func sigmoidIsStableForLargeInputs() throws {
        let y = try ReferenceKernels.sigmoid(Tensor(shape: [4], floats: [-1000, -100, 100, 1000])).floats
        #expect(y.allSatisfy { $0.isFinite })
        #expect(y[0] == 0 && y[3] == 1)
    }

    @Test(arguments: [0, 1, -1, 2, -2])
    func softmax(_ axis: Int) throws {
        let x = randomTensor([3, 4, 5], seed: 31, range: -5...5)
        expectClose(try ReferenceKernels.softmax(x, axis: axis), naiveSoftmax(x, axis: axis), atol: 1e-6)
    }

    @Test func softmaxIsStableForLargeInputs() throws {
        let y = try ReferenceKernels.softmax(Tensor(shape: [2, 3], floats: [1000, 1001, 1002, -1000, -1000, -1000]), axis: 1)
        expectClose(y, Tensor(shape: [2, 3], floats: [0.09003057, 0.24472847, 0.66524096, 1.0 / 3, 1.0 / 3, 1.0 / 3]), atol: 1e-6)
    }

    @Test func softmaxRejectsBadAxis() {
        #expect(throws: FerryError.self) { try ReferenceKernels.softmax(randomTensor([2, 3], seed: 1), axis: 2) }
    }
}
