import Testing
@testable import FerryOptimizer

/// fold-transpose-into-gemm permutes a Dense matrix's rows in place (following cycles), so the
/// matrix is never held twice: the result must equal a permuted copy.
@Suite struct PermuteRowsTests {
    @Test(arguments: [1, 2, 7, 48, 300])
    func matchesACopy(_ rows: Int) {
        var rng = SystemRandomNumberGenerator()
        for rowLength in [1, 3] {
            let destination = Array(0..<rows).shuffled(using: &rng)
            let matrix = (0..<(rows * rowLength)).map { Float($0) }
            var expected = [Float](repeating: -1, count: matrix.count)
            for j in 0..<rows { for c in 0..<rowLength { expected[destination[j] * rowLength + c] = matrix[j * rowLength + c] } }
            var permuted = matrix
            permuteRows(&permuted, rowLength: rowLength, destination: destination)
            #expect(permuted == expected, "destination \(destination)")
        }
    }
}
