import FerryIR
import Testing

/// Deterministic generator for reproducible random inputs.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func randomFloats(_ count: Int, seed: UInt64, range: ClosedRange<Float> = -1...1) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in Float.random(in: range, using: &rng) }
}

func randomTensor(_ shape: [Int], seed: UInt64, range: ClosedRange<Float> = -1...1) -> Tensor {
    Tensor(shape: shape, floats: randomFloats(shape.reduce(1, *), seed: seed, range: range))
}

/// Every activation the IR can fuse, with typical parameters.
let allActivations: [FusedActivation?] = [
    nil, .relu, .sigmoid, .tanh, .leakyRelu(alpha: 0.1), .clip(min: 0, max: 6), .clip(min: nil, max: 1),
    .hardSigmoid(alpha: 0.2, beta: 0.5), .hardSwish, .elu(alpha: 1.0), .gelu(approximate: false),
    .gelu(approximate: true), .swish(beta: 1), .swish(beta: 1.702),
]

/// Expects equal counts and elementwise |a − b| ≤ atol + rtol·|b| (NaN only where NaN).
func expectClose(_ actual: [Float], _ expected: [Float], atol: Float = 1e-5, rtol: Float = 1e-5,
                 _ what: @autoclosure () -> String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "count \(actual.count) vs \(expected.count)", sourceLocation: sourceLocation)
    guard actual.count == expected.count else { return }
    var worst = 0, worstExcess: Float = 0
    for i in 0..<actual.count {
        let a = actual[i], b = expected[i]
        let excess: Float
        if a.isNaN || b.isNaN { excess = a.isNaN == b.isNaN ? 0 : .infinity }
        else if a == b { excess = 0 }
        else { excess = abs(a - b) - (atol + rtol * abs(b)) }
        if excess > worstExcess { worst = i; worstExcess = excess }
    }
    #expect(worstExcess <= 0, "\(what()) element \(worst): \(actual[worst]) vs expected \(expected[worst])",
            sourceLocation: sourceLocation)
}
