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
    /// The graph with every fused epilogue written as its own nodes after the Conv or Gemm
    /// (for formats that have no fused form, like ONNX): a fused residual becomes an Add
    /// ("<node>/residual"), a fused activation its op ("<node>/activation"; swish its Sigmoid and
    /// Mul), and a Gemm's fused Flatten a Flatten before it ("<node>/flatten", naming the fused
    /// node's first layer). The other nodes keep the fused node's origins.
    public func splittingFusedActivations() -> Graph {
        func hasResidual(_ n: Node) -> Bool {
            if case .conv = n.op { return n.inputs.count > 3 && !n.inputs[3].isEmpty }
            return false
        }
        func flattensA(_ n: Node) -> Bool {
            if case .gemm(let a) = n.op { return a.flattensA }
            return false
        }
        guard nodes.contains(where: { $0.op.fusedActivation != nil || hasResidual($0) || flattensA($0) }) else { return self }
        var g = self
        var names = ValueNames(self)
        func fresh(_ base: String) -> String { names.fresh(base) }
        g.nodes = []
        for var node in nodes {
            if case .gemm(var a) = node.op, a.flattensA {
                let flat = fresh("\(node.name)/flattened")
                // The optimizer lists the Flatten's layer first among the Gemm's.
                g.nodes.append(Node(name: "\(node.name)/flatten", op: .flatten(axis: 1), inputs: [node.inputs[0]],
                                    outputs: [flat], origins: Array(node.origins.prefix(1))))
                a.flattensA = false
                node.op = .gemm(a)
                node.inputs[0] = flat
            }
            let activation = node.op.fusedActivation
            let residual = hasResidual(node) ? node.inputs[3] : nil
            guard activation != nil || residual != nil else {
                g.nodes.append(node)
                continue
            }
            var core = node
            core.op = node.op.withoutFusedActivation
            core.inputs = Array(node.inputs.prefix(3))
            while core.inputs.last == "" { core.inputs.removeLast() }
            var current = activation != nil || residual != nil ? fresh("\(node.outputs[0])/preactivation") : node.outputs[0]
            core.outputs = [current]
            g.nodes.append(core)
            if let residual {
                let out = activation == nil ? node.outputs[0] : fresh("\(node.outputs[0])/residual")
                g.nodes.append(Node(name: "\(node.name)/residual", op: .add, inputs: [current, residual],
                                    outputs: [out], origins: node.origins))
                current = out
            }
            if let activation {
                let name = "\(node.name)/activation"
                if let op = activation.op {
                    g.nodes.append(Node(name: name, op: op, inputs: [current], outputs: node.outputs, origins: node.origins))
                } else if case .swish(let beta) = activation {
                    // x * sigmoid(beta * x), with the Mul by beta only when beta is not 1.
                    var gateInput = current
                    if beta != 1 {
                        let betaName = fresh("\(name)/beta")
                        g.initializers[betaName] = Tensor(shape: [1], floats: [beta])
                        gateInput = fresh("\(node.outputs[0])/scaled")
                        g.nodes.append(Node(name: "\(name)/scale", op: .mul, inputs: [current, betaName],
                                            outputs: [gateInput], origins: node.origins))
                    }
                    let gate = fresh("\(node.outputs[0])/gate")
                    g.nodes.append(Node(name: "\(name)/sigmoid", op: .sigmoid, inputs: [gateInput], outputs: [gate],
                                        origins: node.origins))
                    g.nodes.append(Node(name: name, op: .mul, inputs: [current, gate], outputs: node.outputs,
                                        origins: node.origins))
                }
            }
        }
        return g
    }
}
