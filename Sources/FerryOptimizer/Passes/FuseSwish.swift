import FerryIR

/// Swish written out as Mul(x, Sigmoid(x)) (Keras swish/silu) or Mul(x, Sigmoid(Mul(x, beta)))
/// (Caffe Swish) after a Conv or Gemm becomes the Conv's or Gemm's epilogue, when nothing else
/// reads x, the gate or the scaled value. The fused node records every layer it absorbed.
public struct FuseSwish: Pass {
    public let name = "fuse-swish"
    public let unit = "swish activations fused"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var fused = 0
        var i = 0
        while i < graph.nodes.count {
            if fuse(at: i, in: &graph) { fused += 1 } else { i += 1 }
        }
        return fused
    }

    /// Fuses when node `m` is the final Mul of a swish over a Conv/Gemm result.
    func fuse(at m: Int, in graph: inout Graph) -> Bool {
        let mul = graph.nodes[m]
        guard case .mul = mul.op, mul.inputs.count == 2 else { return false }
        let producers = graph.producers(), consumers = graph.consumers(), outputs = graph.outputNames
        for (xi, gi) in [(0, 1), (1, 0)] {
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
            // Only this pattern reads x (the final Mul and the Sigmoid or the scaling Mul) and the intermediates, and none is a graph output.
            guard consumers[x]?.count == 2, !outputs.contains(x),
                  absorbed.allSatisfy({ consumers[graph.nodes[$0].outputs[0]]?.count == 1 && !outputs.contains(graph.nodes[$0].outputs[0]) })
            else { continue }
            let activation = FusedActivation.swish(beta: beta)
            switch graph.nodes[p].op {
            case .conv(var a): a.activation = activation; graph.nodes[p].op = .conv(a)
            case .gemm(var a): a.activation = activation; graph.nodes[p].op = .gemm(a)
            default: continue
            }
            graph.nodes[p].outputs = mul.outputs
            for n in absorbed + [m] { mergeOrigins(&graph.nodes[p], graph.nodes[n]) }
            for n in (absorbed + [m]).sorted(by: >) { graph.nodes.remove(at: n) }
            return true
        }
        return false
    }

    /// For Mul(other, c) or Mul(c, other) with a one-element float constant c: c's value.
    func scalarOperand(of node: Node, other: String, in graph: Graph) -> Float? {
        for (o, c) in [(0, 1), (1, 0)] where node.inputs[o] == other {
            if let t = graph.constant(node.inputs[c]), t.dtype == .float32, t.count == 1 { return t.floats[0] }
        }
        return nil
    }
}
