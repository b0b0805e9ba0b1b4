import FerryIR
import FerryRuntime

/// Runs of Mul and Add by constants become one Mul and one Add: (x * a + b) * c + d =
/// x * (a * c) + (b * c + d). Keras's Rescaling and Normalization layers on an input write two
/// such pairs in a row. Sub and Div by a constant count as Add of -c and Mul by 1 / c. The
/// combined constants are computed once (they broadcast to no more than the originals did,
/// which a type check confirms).
public struct MergeAffineChains: NodeRewritePass {
    public let name = "merge-affine-chains"
    public let unit = "affine steps merged"
    public init() {}

    /// One step y = x * scale or y = x + shift by a constant.
    enum Step {
        case scale(Tensor)
        case shift(Tensor)
    }

    /// The step node `i` takes, and the index of its non-constant input.
    func step(_ node: Node, in graph: Graph) throws -> (Step, Int)? {
        guard node.inputs.count == 2 else { return nil }
        for (v, c) in operandOrders() {
            guard let k = graph.constant(node.inputs[c]), k.dtype == .float32, graph.constant(node.inputs[v]) == nil else { continue }
            switch node.op {
            case .mul: return (.scale(k), v)
            case .add: return (.shift(k), v)
            case .div where c == 1: return (.scale(Tensor(shape: k.shape, floats: k.floats.map { 1 / $0 })), v)
            case .sub where c == 1: return (.shift(Tensor(shape: k.shape, floats: k.floats.map { -$0 })), v)
            default: return nil
            }
        }
        return nil
    }

    /// Merges node `i` with the affine step producing its input, when that step has no other reader.
    public func rewrite(at i: Int, in graph: inout Graph) throws -> Bool {
        let second = graph.nodes[i]
        guard let (outer, v) = try step(second, in: graph), let p = graph.producers()[second.inputs[v]],
              let (inner, pv) = try step(graph.nodes[p], in: graph), graph.isPrivate(second.inputs[v]) else { return false }
        let first = graph.nodes[p]
        let x = first.inputs[pv]
        let types = try graph.inferTypes()
        guard let resultType = types[second.outputs[0]], let xType = types[x] else { return false }
        if case .scale = inner, case .shift = outer { return false }  // already x * a + b
        // The merged chain: x * scale + shift, with either part absent.
        var scale: Tensor?, shift: Tensor?
        switch (inner, outer) {
        case (.scale(let a), .scale(let c)): scale = try ReferenceKernels.mul(a, c)
        case (.shift(let b), .shift(let d)): shift = try ReferenceKernels.add(b, d)
        case (.scale(let a), .shift(let d)): scale = a; shift = d
        case (.shift(let b), .scale(let c)): scale = c; shift = try ReferenceKernels.mul(b, c)
        }
        var trial = graph
        var nodes: [Node] = []
        var current = x
        if let scale {
            let name = trial.addInitializer("\(first.name)/scale", scale)
            let out = shift == nil ? second.outputs[0] : trial.freshName("\(second.outputs[0])/scaled")
            nodes.append(Node(name: first.name, op: .mul, inputs: [current, name], outputs: [out], origins: first.origins))
            current = out
        }
        if let shift {
            let name = trial.addInitializer("\(second.name)/shift", shift)
            nodes.append(Node(name: second.name, op: .add, inputs: [current, name], outputs: second.outputs, origins: second.origins))
        }
        for k in nodes.indices {
            for o in first.origins + second.origins where !nodes[k].origins.contains(o) { nodes[k].origins.append(o) }
        }
        // The merged constants must not widen the result (they broadcast as the originals did).
        trial.nodes.replaceSubrange(i...i, with: nodes)
        trial.nodes.remove(at: p)
        guard let after = try? trial.inferTypes(), after[second.outputs[0]] == resultType, xType.dtype == .float32 else { return false }
        graph = trial
        return true
    }
}
