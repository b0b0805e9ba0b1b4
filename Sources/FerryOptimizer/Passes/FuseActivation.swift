import FerryIR

/// Moves an activation into the Conv or Gemm producing its input, as the kernel's epilogue,
/// when nothing else reads the pre-activation value. The fused node records both layers. A
/// clamp after a fused Relu or clamp joins it (Relu then Clip(0, 6) becomes Clip(0, 6)).
public struct FuseActivation: NodeRewritePass {
    public let name = "fuse-activation"
    public let unit = "activations fused"
    public init() {}

    public func rewrite(at i: Int, in graph: inout Graph) throws -> Bool {
        let node = graph.nodes[i]
        guard let standalone = FusedActivation(node.op),
              let p = graph.producers()[node.inputs[0]],
              let activation = composed(graph.nodes[p].op.fusedActivation, then: standalone),
              graph.isPrivate(node.inputs[0]),
              let op = graph.nodes[p].op.withFusedActivation(activation) else { return false }
        var fused = graph.nodes[p]
        fused.op = op
        graph.replace(pattern: [p, i], with: fused)
        return true
    }

    /// The one activation computing `second` after `first` (nil: none yet), when there is one:
    /// Relu then Clip(0, 6) is Keras's ReLU(max_value=6); clamps compose into one clamp.
    func composed(_ first: FusedActivation?, then second: FusedActivation) -> FusedActivation? {
        guard let first else { return second }
        func bounds(_ a: FusedActivation) -> (Float, Float)? {
            switch a {
            case .relu: return (0, .infinity)
            case .clip(let lo, let hi): return (lo ?? -.infinity, hi ?? .infinity)
            default: return nil
            }
        }
        guard let (a, b) = bounds(first), let (c, d) = bounds(second) else { return nil }
        let lo = Swift.max(a, c), hi = Swift.min(b, d)
        guard lo <= hi else { return nil }
        if lo == 0 && hi == .infinity { return .relu }
        return .clip(min: lo == -.infinity ? nil : lo, max: hi == .infinity ? nil : hi)
    }
}
