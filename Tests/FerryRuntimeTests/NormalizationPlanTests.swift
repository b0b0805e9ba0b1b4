import FerryIR
@testable import FerryRuntime
import Testing

@Suite struct NormalizationPlanTests {
    /// LRN across channels against the reference: windows narrower and wider than the channels,
    /// even sizes (more channels after than before), the vector betas (0.75, 0.5, 1) and another,
    /// planes of one position, of fewer than a vector, and over several 64-position blocks.
    @Test func localResponseNormalization() throws {
        let shapes = [[2, 7, 5, 3], [3, 5, 1, 1], [1, 4, 9, 13], [2, 3, 11]]
        let windows: [(size: Int, beta: Float)] = [(5, 0.75), (1, 0.5), (4, 1), (3, 0.6), (9, 0.75)]
        for shape in shapes {
            for (size, beta) in windows {
                let g = try singleNodeGraph(.lrn(size: size, alpha: 0.3, beta: beta, bias: 1.5), inputs: [("x", shape)])
                let plan = try expectPlanMatchesReference(g, ["x": randomTensor(shape, seed: 80, range: -3...3)], atol: 1e-6, rtol: 1e-5)
                #expect(plan.kernels[0].kernel == "lrn.channels", "\(shape) size \(size)")
            }
        }
    }
}
