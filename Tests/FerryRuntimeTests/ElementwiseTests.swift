import FerryIR
import Foundation
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

@Suite struct ElementwiseMathTests {
    @Test func unaryMath() throws {
        let x = randomTensor([3, 4, 5], seed: 42, range: -4...4)
        let positive = randomTensor([3, 4, 5], seed: 43, range: 0.01...8)
        let cases: [(Op, Tensor, (Double) -> Double)] = [
            (.abs, x, { Swift.abs($0) }), (.neg, x, { -$0 }), (.exp, x, { Foundation.exp($0) }),
            (.log, positive, { Foundation.log($0) }), (.sqrt, positive, { $0.squareRoot() }),
            (.reciprocal, positive, { 1 / $0 }), (.floor, x, { Foundation.floor($0) }),
            (.ceil, x, { Foundation.ceil($0) }), (.erf, x, { Foundation.erf($0) }),
        ]
        for (op, input, f) in cases {
            let expected = Tensor(shape: input.shape, floats: input.floats.map { Float(f(Double($0))) })
            expectClose(try ReferenceKernels.unaryMath(op, input), expected, atol: 1e-6, rtol: 1e-6)
            expectClose(try ReferenceKernels.evaluate(op, [input])[0], expected, atol: 1e-6, rtol: 1e-6)
        }
        // Outside the domain: NaN, as ONNX.
        #expect(try ReferenceKernels.unaryMath(.log, Tensor(shape: [1], floats: [-1])).floats[0].isNaN)
        #expect(try ReferenceKernels.unaryMath(.sqrt, Tensor(shape: [1], floats: [-1])).floats[0].isNaN)
        #expect(try ReferenceKernels.unaryMath(.log, Tensor(shape: [1], floats: [0])).floats[0] == -.infinity)
        #expect(throws: FerryError.self) { try ReferenceKernels.unaryMath(.relu, x) }
    }

    @Test(arguments: ElementwiseTests.shapes)
    func pow(_ aShape: [Int], _ bShape: [Int]) throws {
        let a = randomTensor(aShape, seed: 44, range: 0.1...3), b = randomTensor(bShape, seed: 45, range: -2...2)
        expectClose(try ReferenceKernels.power(a, b), naiveBinary(a, b) { Float(Foundation.pow(Double($0), Double($1))) },
                    atol: 1e-6, rtol: 1e-5)
    }

    @Test func powOfNegativeBaseWithIntegerExponent() throws {
        let y = try ReferenceKernels.power(Tensor(shape: [3], floats: [-2, -3, -0.5]), Tensor(shape: [3], floats: [3, 2, 0.5]))
        #expect(y.floats[0] == -8 && y.floats[1] == 9 && y.floats[2].isNaN)
    }

    static let variadicShapes: [[[Int]]] = [
        [[2, 3, 4]],
        [[2, 3, 4], [2, 3, 4]],
        [[2, 1, 4], [3, 1], [1]],
        [[4], [2, 3, 4], [3, 1], [2, 1, 1]],
    ]

    @Test(arguments: variadicShapes)
    func variadic(_ shapes: [[Int]]) throws {
        let inputs = shapes.enumerated().map { randomTensor($0.element, seed: 46 + UInt64($0.offset)) }
        func fold(_ f: @escaping (Float, Float) -> Float) -> Tensor {
            inputs.dropFirst().reduce(inputs[0]) { naiveBinary($0, $1, f) }
        }
        #expect(try ReferenceKernels.maximum(inputs) == fold { Swift.max($0, $1) })
        #expect(try ReferenceKernels.minimum(inputs) == fold { Swift.min($0, $1) })
        let sum = fold(+)
        expectClose(try ReferenceKernels.sum(inputs), sum, atol: 1e-6)
        expectClose(try ReferenceKernels.mean(inputs), Tensor(shape: sum.shape, floats: sum.floats.map { $0 / Float(inputs.count) }),
                    atol: 1e-6)
        let op: Op = .mean
        #expect(try op.inferOutputTypes(inputs.map(\.type)) == [TensorType(.float32, Shape(sum.shape))])
    }

    @Test func maxAndMinPropagateNaN() throws {
        let a = Tensor(shape: [3], floats: [.nan, 1, 2]), b = Tensor(shape: [3], floats: [1, .nan, 0])
        for op in [ReferenceKernels.maximum, ReferenceKernels.minimum] {
            let y = try op([a, b]).floats
            #expect(y[0].isNaN && y[1].isNaN && !y[2].isNaN)
        }
    }

    @Test func variadicRejectsIncompatibleShapes() {
        #expect(throws: FerryError.self) { try ReferenceKernels.sum([randomTensor([2, 3], seed: 1), randomTensor([4], seed: 2)]) }
        #expect(throws: FerryError.self) { try ReferenceKernels.maximum([]) }
    }
}
