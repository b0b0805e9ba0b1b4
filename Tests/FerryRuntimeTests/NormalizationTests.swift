import FerryIR
import Foundation
@testable import FerryRuntime
import Testing

/// BatchNormalization straight from the ONNX formula, in Double, by multi-index.
func naiveBatchNormalization(_ x: Tensor, scale: [Float], bias: [Float], mean: [Float], variance: [Float], epsilon: Float) -> Tensor {
    let v = x.floats
    var out = [Float](repeating: 0, count: v.count)
    for flat in 0..<v.count {
        let c = unravel(flat, x.shape)[1]
        let normalized = (Double(v[flat]) - Double(mean[c])) / (Double(variance[c]) + Double(epsilon)).squareRoot()
        out[flat] = Float(normalized * Double(scale[c]) + Double(bias[c]))
    }
    return Tensor(shape: x.shape, floats: out)
}

@Suite struct NormalizationTests {
    @Test(arguments: [[2, 3], [2, 3, 5], [1, 4, 3, 5], [2, 2, 2, 3, 2]] as [[Int]])
    func batchNormalization(_ shape: [Int]) throws {
        let c = shape[1]
        let x = randomTensor(shape, seed: 60, range: -3...3)
        let scale = randomTensor([c], seed: 61), bias = randomTensor([c], seed: 62)
        let mean = randomTensor([c], seed: 63), variance = randomTensor([c], seed: 64, range: 0...2)
        for epsilon: Float in [1e-5, 1e-3, 0.5] {
            let y = try ReferenceKernels.batchNormalization(x, scale: scale, bias: bias, mean: mean, variance: variance, epsilon: epsilon)
            expectClose(y, naiveBatchNormalization(x, scale: scale.floats, bias: bias.floats, mean: mean.floats,
                                                   variance: variance.floats, epsilon: epsilon), atol: 1e-5)
        }
    }

    @Test func batchNormalizationEpsilonMatters() throws {
        // A zero variance: epsilon alone sets the scale.
        let x = Tensor(shape: [1, 1, 2], floats: [1, 3])
        let one = Tensor(shape: [1], floats: [1]), zero = Tensor(shape: [1], floats: [0])
        let small = try ReferenceKernels.batchNormalization(x, scale: one, bias: zero, mean: one, variance: zero, epsilon: 1e-4)
        let large = try ReferenceKernels.batchNormalization(x, scale: one, bias: zero, mean: one, variance: zero, epsilon: 4)
        expectClose(small, Tensor(shape: [1, 1, 2], floats: [0, 200]), atol: 1e-3)
        expectClose(large, Tensor(shape: [1, 1, 2], floats: [0, 1]), atol: 1e-6)
    }

    @Test func batchNormalizationRejectsMismatchedParameters() {
        let x = randomTensor([2, 3, 4], seed: 1)
        let three = randomTensor([3], seed: 2), four = randomTensor([4], seed: 3)
        #expect(throws: FerryError.self) {
            try ReferenceKernels.batchNormalization(x, scale: three, bias: three, mean: four, variance: three, epsilon: 1e-5)
        }
    }
}
