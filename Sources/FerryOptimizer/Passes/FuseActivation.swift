import FerryIR

/// Moves an activation into the Conv or Gemm producing its input, as the kernel's epilogue,
/// when nothing else reads the pre-activation value. The fused node records both layers.
public struct FuseActivation: Pass {
    public let name = "fuse-activation"
    public let unit = "activations fused"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var fused = 0
        var i = 0
        while i < graph.nodes.count {
            let node = graph.nodes[i]
            guard let activation = FusedActivation(node.op),
                  let p = graph.producers()[node.inputs[0]],
                  graph.nodes[p].op.fusedActivation == nil,
                  graph.consumers()[node.inputs[0]]?.count == 1,
                  !graph.outputNames.contains(node.inputs[0]) else {
                i += 1
                continue
            }
            switch graph.nodes[p].op {
            case .conv(var a):
                a.activation = activation
                graph.nodes[p].op = .conv(a)
            case .gemm(var a):
                a.activation = activation
                graph.nodes[p].op = .gemm(a)
            default:
                i += 1
                continue
            }
            graph.nodes[p].outputs = node.outputs
            mergeOrigins(&graph.nodes[p], node)
            graph.nodes.remove(at: i)
            fused += 1
        }
        return fused
    }
}
