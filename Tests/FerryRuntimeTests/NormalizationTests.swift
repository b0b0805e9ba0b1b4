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

/// Normalizes x over the elements that share a key (computed from the multi-index), in Double,
/// then applies an affine map given the multi-index.
func naiveNormalize(_ x: Tensor, epsilon: Float, key: ([Int]) -> [Int], affine: ([Int], Double) -> Double) -> Tensor {
    let v = x.floats
    var groups: [[Int]: [Double]] = [:]
    for flat in 0..<v.count { groups[key(unravel(flat, x.shape)), default: []].append(Double(v[flat])) }
    var stats: [[Int]: (mean: Double, variance: Double)] = [:]
    for (k, values) in groups {
        let mean = values.reduce(0, +) / Double(values.count)
        stats[k] = (mean, values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count))
    }
    let out = (0..<v.count).map { flat -> Float in
        let idx = unravel(flat, x.shape)
        let s = stats[key(idx)]!
        return Float(affine(idx, (Double(v[flat]) - s.mean) / (s.variance + Double(epsilon)).squareRoot()))
    }
    return Tensor(shape: x.shape, floats: out)
}

@Suite struct MoreNormalizationTests {
    @Test(arguments: [[2, 3, 5], [1, 4, 3, 5], [2, 2, 2, 3, 2]] as [[Int]])
    func instanceNormalization(_ shape: [Int]) throws {
        let c = shape[1]
        let x = randomTensor(shape, seed: 70, range: -3...3)
        let scale = randomTensor([c], seed: 71), bias = randomTensor([c], seed: 72)
        for epsilon: Float in [1e-5, 0.5] {
            let expected = naiveNormalize(x, epsilon: epsilon, key: { Array($0[..<2]) }) {
                $1 * Double(scale.floats[$0[1]]) + Double(bias.floats[$0[1]])
            }
            expectClose(try ReferenceKernels.instanceNormalization(x, scale: scale, bias: bias, epsilon: epsilon), expected, atol: 1e-5)
        }
    }

    @Test(arguments: [(4, [2, 4, 3, 5]), (2, [2, 4, 3, 5]), (1, [1, 6, 7]), (6, [1, 6, 7]), (3, [2, 6, 2, 2, 2])])
    func groupNormalization(_ groups: Int, _ shape: [Int]) throws {
        let c = shape[1]
        let x = randomTensor(shape, seed: 73, range: -3...3)
        let scale = randomTensor([c], seed: 74), bias = randomTensor([c], seed: 75)
        let expected = naiveNormalize(x, epsilon: 1e-5, key: { [$0[0], $0[1] / (c / groups)] }) {
            $1 * Double(scale.floats[$0[1]]) + Double(bias.floats[$0[1]])
        }
        expectClose(try ReferenceKernels.groupNormalization(x, scale: scale, bias: bias, numGroups: groups, epsilon: 1e-5),
                    expected, atol: 1e-5)
        // One group per channel is InstanceNormalization.
        if groups == c {
            expectClose(try ReferenceKernels.groupNormalization(x, scale: scale, bias: bias, numGroups: groups, epsilon: 1e-5),
                        try ReferenceKernels.instanceNormalization(x, scale: scale, bias: bias, epsilon: 1e-5), atol: 1e-6)
        }
    }

    @Test(arguments: [(-1, [5]), (2, [3, 5]), (1, [4, 3, 5]), (-2, [1, 5]), (0, [2, 4, 3, 5])] as [(Int, [Int])])
    func layerNormalization(_ axis: Int, _ scaleShape: [Int]) throws {
        let shape = [2, 4, 3, 5]
        let a = axis < 0 ? axis + 4 : axis
        let x = randomTensor(shape, seed: 76, range: -3...3)
        let scale = randomTensor(scaleShape, seed: 77), bias = randomTensor(scaleShape, seed: 78)
        func at(_ t: Tensor, _ idx: [Int]) -> Double {
            let i = Array(idx.suffix(t.rank))
            return Double(t.floats[ravel(zip(i, t.shape).map { $1 == 1 ? 0 : $0 }, t.shape)])
        }
        for withBias in [true, false] {
            let expected = naiveNormalize(x, epsilon: 1e-3, key: { Array($0[..<a]) }) { idx, n in
                n * at(scale, idx) + (withBias ? at(bias, idx) : 0)
            }
            expectClose(try ReferenceKernels.layerNormalization(x, scale: scale, bias: withBias ? bias : nil, axis: axis, epsilon: 1e-3),
                        expected, atol: 1e-5)
        }
    }

    @Test func epsilonAndConstantSlices() throws {
        // A constant slice has zero variance: the result is 0 whatever epsilon, then + bias.
        let x = Tensor(shape: [1, 2, 3], floats: [2, 2, 2, 1, 2, 3])
        let one = Tensor(shape: [2], floats: [1, 1]), bias = Tensor(shape: [2], floats: [0.5, 0])
        let y = try ReferenceKernels.instanceNormalization(x, scale: one, bias: bias, epsilon: 1e-5).floats
        #expect(Array(y[..<3]) == [0.5, 0.5, 0.5])
        // Variance 2/3: epsilon 1/3 makes the denominator exactly 1.
        let wide = try ReferenceKernels.instanceNormalization(x, scale: one, bias: bias, epsilon: 1.0 / 3).floats
        expectClose(Tensor(shape: [3], floats: Array(wide[3...])), Tensor(shape: [3], floats: [-1, 0, 1]), atol: 1e-6)
    }

    @Test(arguments: [1, 2, 3, 5, 6])
    func lrn(_ size: Int) throws {
        let x = randomTensor([2, 7, 3, 2], seed: 79, range: -3...3)
        let (alpha, beta, bias): (Double, Double, Double) = (0.3, 0.75, 1.5)
        let v = x.floats
        let expected = (0..<v.count).map { flat -> Float in
            let idx = unravel(flat, x.shape)
            let c = idx[1]
            var squares = 0.0
            // ONNX: channels max(0, c - floor((size-1)/2)) ... min(C-1, c + ceil((size-1)/2)).
            let lo = max(0, c - (size - 1) / 2), hi = min(6, c + Int((Double(size - 1) / 2).rounded(.up)))
            for k in lo...hi {
                var j = idx
                j[1] = k
                squares += Double(v[ravel(j, x.shape)]) * Double(v[ravel(j, x.shape)])
            }
            return Float(Double(v[flat]) / Foundation.pow(bias + alpha / Double(size) * squares, beta))
        }
        expectClose(try ReferenceKernels.lrn(x, size: size, alpha: Float(alpha), beta: Float(beta), bias: Float(bias)),
                    Tensor(shape: x.shape, floats: expected), atol: 1e-6)
    }

    @Test(arguments: [(0, 1), (1, 2), (-1, 1), (2, 2)])
    func lpNormalization(_ axis: Int, _ p: Int) throws {
        let x = randomTensor([3, 4, 5], seed: 80, range: -3...3)
        let a = axis < 0 ? axis + 3 : axis
        let v = x.floats
        let expected = (0..<v.count).map { flat -> Float in
            var idx = unravel(flat, x.shape)
            var norm = 0.0
            for k in 0..<x.shape[a] {
                idx[a] = k
                let e = Double(v[ravel(idx, x.shape)])
                norm += p == 1 ? Swift.abs(e) : e * e
            }
            return Float(Double(v[flat]) / (p == 1 ? norm : norm.squareRoot()))
        }
        expectClose(try ReferenceKernels.lpNormalization(x, axis: axis, p: p), Tensor(shape: x.shape, floats: expected), atol: 1e-6)
        #expect(try ReferenceKernels.lpNormalization(Tensor(shape: [2, 2], floats: [0, 0, 3, 4]), axis: 1, p: 2).floats == [0, 0, 0.6, 0.8])
        #expect(throws: FerryError.self) { try ReferenceKernels.lpNormalization(x, axis: 0, p: 3) }
    }

    @Test func rejectsBadParameters() {
        let x = randomTensor([2, 4, 3], seed: 1)
        #expect(throws: FerryError.self) {
            try ReferenceKernels.groupNormalization(x, scale: randomTensor([4], seed: 2), bias: randomTensor([4], seed: 3), numGroups: 3, epsilon: 1e-5)
        }
        #expect(throws: FerryError.self) {
            try ReferenceKernels.instanceNormalization(x, scale: randomTensor([3], seed: 2), bias: randomTensor([4], seed: 3), epsilon: 1e-5)
        }
        #expect(throws: FerryError.self) {
            try ReferenceKernels.layerNormalization(x, scale: randomTensor([4], seed: 2), bias: nil, axis: -1, epsilon: 1e-5)
        }
        #expect(throws: FerryError.self) {
            try ReferenceKernels.layerNormalization(x, scale: randomTensor([3], seed: 2), bias: nil, axis: 3, epsilon: 1e-5)
        }
    }
}
