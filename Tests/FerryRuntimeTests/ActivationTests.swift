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

/// log(softmax) in Double by explicit multi-indexing: log(exp(x) / sum exp), shifted by the
/// slice maximum only so that Double's exp does not overflow.
func naiveLogSoftmax(_ x: Tensor, axis: Int) -> Tensor {
    let a = axis < 0 ? axis + x.rank : axis
    let v = x.floats
    var out = [Float](repeating: 0, count: v.count)
    for flat in 0..<v.count {
        var idx = unravel(flat, x.shape)
        var slice: [Double] = []
        for j in 0..<x.shape[a] {
            idx[a] = j
            slice.append(Double(v[ravel(idx, x.shape)]))
        }
        let m = slice.max()!
        let total = slice.reduce(0) { $0 + Foundation.exp($1 - m) }
        out[flat] = Float(Double(v[flat]) - m - Foundation.log(total))
    }
    return Tensor(shape: x.shape, floats: out)
}

/// The ONNX definitions of the parameterised activations, in Double.
enum NaiveActivation {
    static func softplus(_ x: Double) -> Double { Foundation.log(1 + Foundation.exp(x)) }
    static func gelu(_ x: Double, approximate: Bool) -> Double {
        approximate ? 0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
                    : 0.5 * x * (1 + Foundation.erf(x / 2.0.squareRoot()))
    }
}

@Suite struct MoreActivationTests {
    static let x = randomTensor([2, 3, 4, 5], seed: 32, range: -6...6)

    func check(_ actual: Tensor, _ f: (Double) -> Double, atol: Float = 1e-6, rtol: Float = 1e-5,
               sourceLocation: SourceLocation = #_sourceLocation) {
        let x = Self.x
        expectClose(actual, Tensor(shape: x.shape, floats: x.floats.map { Float(f(Double($0))) }), atol: atol, rtol: rtol,
                    sourceLocation: sourceLocation)
    }

    @Test func parameterless() throws {
        let x = Self.x
        check(try ReferenceKernels.softplus(x), NaiveActivation.softplus)
        check(try ReferenceKernels.softsign(x)) { $0 / (1 + Swift.abs($0)) }
        check(try ReferenceKernels.hardSwish(x)) { $0 * Swift.min(Swift.max($0 + 3, 0), 6) / 6 }
        check(try ReferenceKernels.mish(x)) { $0 * Foundation.tanh(NaiveActivation.softplus($0)) }
    }

    @Test(arguments: [false, true])
    func gelu(_ approximate: Bool) throws {
        check(try ReferenceKernels.gelu(Self.x, approximate: approximate)) { NaiveActivation.gelu($0, approximate: approximate) }
    }

    @Test func geluForms() throws {
        // The two forms differ (by up to ~5e-4 near |x| = 2): each kernel follows its own formula.
        let exact = try ReferenceKernels.gelu(Self.x, approximate: false).floats
        let tanh = try ReferenceKernels.gelu(Self.x, approximate: true).floats
        #expect(zip(exact, tanh).contains { Swift.abs($0 - $1) > 1e-4 })
    }

    @Test(arguments: [0.5, 1.0, 2.0] as [Float])
    func parameterised(_ alpha: Float) throws {
        let a = Double(alpha)
        check(try ReferenceKernels.elu(Self.x, alpha: alpha)) { $0 >= 0 ? $0 : a * (Foundation.exp($0) - 1) }
        check(try ReferenceKernels.selu(Self.x, alpha: alpha, gamma: 1.5)) { $0 > 0 ? 1.5 * $0 : 1.5 * a * (Foundation.exp($0) - 1) }
        check(try ReferenceKernels.hardSigmoid(Self.x, alpha: alpha / 4, beta: 0.4)) { Swift.max(0, Swift.min(1, a / 4 * $0 + 0.4)) }
        check(try ReferenceKernels.thresholdedRelu(Self.x, alpha: alpha)) { $0 > a ? $0 : 0 }
    }

    @Test func clip() throws {
        let x = Self.x
        #expect(try ReferenceKernels.clip(x, min: -1, max: 2).floats == x.floats.map { Swift.min(Swift.max($0, -1), 2) })
        #expect(try ReferenceKernels.clip(x, min: nil, max: 0.5).floats == x.floats.map { Swift.min($0, 0.5) })
        #expect(try ReferenceKernels.clip(x, min: -0.5, max: nil).floats == x.floats.map { Swift.max($0, -0.5) })
        #expect(try ReferenceKernels.clip(x, min: nil, max: nil).floats == x.floats)
        // min > max: every element becomes max (ONNX Clip).
        #expect(try ReferenceKernels.clip(x, min: 2, max: 1).floats.allSatisfy { $0 == 1 })
    }

    @Test(arguments: [[1], [4, 1, 1], [1, 4, 1, 1], [3, 5], [5], [2, 4, 3, 5]] as [[Int]])
    func prelu(_ slopeShape: [Int]) throws {
        let x = randomTensor([2, 4, 3, 5], seed: 33)
        let slope = randomTensor(slopeShape, seed: 34, range: 0...0.5)
        #expect(try ReferenceKernels.prelu(x, slope: slope) == naiveBinary(x, slope) { $0 < 0 ? $1 * $0 : $0 })
    }

    @Test func preluSlopeMustBroadcastToX() {
        #expect(throws: FerryError.self) {
            try ReferenceKernels.prelu(randomTensor([2, 3], seed: 1), slope: randomTensor([2, 2, 3], seed: 2))
        }
    }

    @Test(arguments: [0, 1, -1, 2, -3])
    func logSoftmax(_ axis: Int) throws {
        let x = randomTensor([3, 4, 5], seed: 35, range: -5...5)
        expectClose(try ReferenceKernels.logSoftmax(x, axis: axis), naiveLogSoftmax(x, axis: axis), atol: 1e-5)
    }

    @Test func stableForLargeInputs() throws {
        let big = Tensor(shape: [2, 3], floats: [1000, 1001, 1002, -1000, -1000, -1000])
        let ls = try ReferenceKernels.logSoftmax(big, axis: 1)
        expectClose(ls, naiveLogSoftmax(big, axis: 1), atol: 1e-5)
        #expect(ls.floats.allSatisfy { $0.isFinite })
        let sp = try ReferenceKernels.softplus(Tensor(shape: [4], floats: [-200, -90, 90, 200])).floats
        #expect(sp[0] >= 0 && sp[0] < 1e-30)
        #expect(sp[2] == 90 && sp[3] == 200)
        let mish = try ReferenceKernels.mish(Tensor(shape: [2], floats: [-200, 200])).floats
        #expect(mish.allSatisfy { $0.isFinite })
        #expect(mish[1] == 200)
    }
}
