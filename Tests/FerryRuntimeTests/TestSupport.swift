import FerryIR
import Foundation
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

func randomTensor(_ shape: [Int], seed: UInt64, range: ClosedRange<Float> = -1...1) -> Tensor {
    var rng = SplitMix64(seed: seed)
    let n = shape.reduce(1, *)
    return Tensor(shape: shape, floats: (0..<n).map { _ in Float.random(in: range, using: &rng) })
}

/// Row-major multi-index of a flat position.
func unravel(_ flat: Int, _ shape: [Int]) -> [Int] {
    var index = Array(repeating: 0, count: shape.count)
    var rem = flat
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        index[i] = rem % shape[i]
        rem /= shape[i]
    }
    return index
}

/// Flat position of a multi-index.
func ravel(_ index: [Int], _ shape: [Int]) -> Int {
    var flat = 0
    for (i, n) in zip(index, shape) { flat = flat * n + i }
    return flat
}

/// Expects equal shapes and elementwise |a − b| ≤ atol + rtol·|b|.
func expectClose(_ actual: Tensor, _ expected: Tensor, atol: Float = 1e-4, rtol: Float = 1e-4,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.shape == expected.shape, "shape \(actual.shape) vs \(expected.shape)", sourceLocation: sourceLocation)
    guard actual.shape == expected.shape else { return }
    let a = actual.floats, b = expected.floats
    var worst = 0, worstExcess: Float = 0
    for i in 0..<a.count {
        let excess = a[i].isNaN != b[i].isNaN ? Float.infinity : abs(a[i] - b[i]) - (atol + rtol * abs(b[i]))
        if excess > worstExcess { worst = i; worstExcess = excess }
    }
    #expect(worstExcess <= 0,
            "element \(unravel(worst, expected.shape)): \(a[worst]) vs expected \(b[worst])",
            sourceLocation: sourceLocation)
}
