extension Op {
    /// The activation fused into a Conv or Gemm, if any.
    public var fusedActivation: FusedActivation? {
        switch self {
        case .conv(let a): return a.activation
        case .gemm(let a): return a.activation
        default: return nil
        }
    }

    /// The same op without its fused activation.
    public var withoutFusedActivation: Op {
        switch self {
        case .conv(var a): a.activation = nil; return .conv(a)
        case .gemm(var a): a.activation = nil; return .gemm(a)
        default: return self
        }
    }
}

extension Graph {
    /// The graph with every fused activation written as its own node after the Conv or Gemm
    /// (for formats that have no fused form, like ONNX). The pair keeps the fused node's
    /// origins; the activation node is named "<node>/activation".
    public func splittingFusedActivations() -> Graph {
        guard nodes.contains(where: { $0.op.fusedActivation != nil }) else { return self }
        var g = self
        var taken = Set(inputs.map(\.name)).union(initializers.keys)
        for n in nodes { taken.formUnion(n.outputs) }
        g.nodes = []
        for node in nodes {
            guard let activation = node.op.fusedActivation else {
                g.nodes.append(node)
                continue
            }
            var inner = "\(node.outputs[0])/preactivation"
            var k = 1
            while taken.contains(inner) { inner = "\(node.outputs[0])/preactivation_\(k)"; k += 1 }
            taken.insert(inner)
            var core = node
            core.op = node.op.withoutFusedActivation
            core.outputs = [inner]
            g.nodes.append(core)
            g.nodes.append(Node(name: "\(node.name)/activation", op: activation.op, inputs: [inner],
                                outputs: node.outputs, origins: node.origins))
        }
        return g
    }
}
