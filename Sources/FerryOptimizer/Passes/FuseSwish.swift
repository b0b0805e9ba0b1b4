import FerryIR

/// Swish written out as Mul(x, Sigmoid(x)) (Keras swish/silu) or Mul(x, Sigmoid(Mul(x, beta)))
/// (Caffe Swish) after a Conv or Gemm becomes the Conv's or Gemm's epilogue, when nothing else
/// reads x, the gate or the scaled value. The fused node records every layer it absorbed.
public struct FuseSwish: NodeRewritePass {
    public let name = "fuse-swish"
    public let unit = "swish activations fused"
    public init() {}

    /// Fuses when node `m` is the final Mul of a swish over a Conv/Gemm result.
    public func rewrite(at m: Int, in graph: inout Graph) throws -> Bool {
        let mul = graph.nodes[m]
        guard case .mul = mul.op, mul.inputs.count == 2 else { return false }
        let producers = graph.producers()
        for (xi, gi) in operandOrders() {
            let x = mul.inputs[xi]
            guard let s = producers[mul.inputs[gi]], case .sigmoid = graph.nodes[s].op,
                  let p = producers[x], graph.nodes[p].op.fusedActivation == nil else { continue }
            var absorbed = [s]
            var beta: Float = 1
            if graph.nodes[s].inputs[0] != x {
                // Sigmoid(Mul(x, beta)) with one constant beta.
                guard let k = producers[graph.nodes[s].inputs[0]], case .mul = graph.nodes[k].op,
                      let b = scalarOperand(of: graph.nodes[k], other: x, in: graph) else { continue }
                beta = b
                absorbed.insert(k, at: 0)
            }
            // Only this pattern reads x (the final Mul and the Sigmoid or the scaling Mul) and
            // the intermediates, and none is a graph output.
            guard graph.isPrivate(x, readers: 2), absorbed.allSatisfy({ graph.isPrivate(graph.nodes[$0].outputs[0]) }),
                  let op = graph.nodes[p].op.withFusedActivation(.swish(beta: beta)) else { continue }
            var fused = graph.nodes[p]
            fused.op = op
            graph.replace(pattern: [p] + absorbed + [m], with: fused)
            return true
        }
        return false
    }

    /// For Mul(other, c) or Mul(c, other) with a one-element float constant c: c's value.
    func scalarOperand(of node: Node, other: String, in graph: Graph) -> Float? {
        for (o, c) in operandOrders() where node.inputs[o] == other {
            if let t = graph.constant(node.inputs[c]), t.dtype == .float32, t.count == 1 { return t.floats[0] }
        }
        return nil
    }
}
