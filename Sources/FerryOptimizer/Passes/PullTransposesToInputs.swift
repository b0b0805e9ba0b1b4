import FerryIR
import FerryRuntime

/// A Transpose after elementwise layers that read a graph input moves before them, onto the
/// input itself: T(op(x, c)) = op(T(x), T(c)), constants transposed alike (Keras's Rescaling
/// or per-channel Normalization in NHWC before the first Conv). A converted CNN then keeps its
/// only Transpose right at its input, where `--layout nchw` cancels it. It moves only when it
/// would not meet another Transpose downstream, where push-transposes takes it instead.
public struct PullTransposesToInputs: NodeRewritePass {
    public let name = "pull-transposes-to-inputs"
    public let unit = "transposes moved"
    public init() {}

    public func rewrite(at t: Int, in graph: inout Graph) throws -> Bool {
        let node = graph.nodes[t]
        guard case .transpose(let perm) = node.op else { return false }
        let producers = graph.producers()
        guard let p = producers[node.inputs[0]], isElementwise(graph.nodes[p], in: graph), graph.isPrivate(node.inputs[0]),
              let k = graph.nodes[p].inputs.firstIndex(where: { graph.constant($0) == nil }),
              comesFromInput(graph.nodes[p].inputs[k], in: graph, producers),
              !PushTransposes().meetsTranspose(after: node.outputs[0], perm: perm, in: graph, producers, graph.consumers())
        else { return false }
        var op = graph.nodes[p]
        let rank = perm.count
        for (j, name) in op.inputs.enumerated() where j != k && !name.isEmpty {
            let c = graph.constant(name)!
            if c.count == 1 && c.rank <= 1 { continue }
            guard c.rank <= rank else { return false }
            let full = c.reshaped(Array(repeating: 1, count: rank - c.rank) + c.shape)
            op.inputs[j] = graph.addInitializer(name + "/transposed", try ReferenceKernels.transpose(full, perm: perm))
        }
        let moved = graph.freshName("\(op.inputs[k])/transposed")
        let transpose = Node(name: node.name, op: node.op, inputs: [op.inputs[k]], outputs: [moved], origins: node.origins)
        op.inputs[k] = moved
        op.outputs = node.outputs
        graph.nodes[t] = op
        graph.nodes[p] = transpose
        return true
    }

    /// An elementwise op with one non-constant input (constants broadcast along whole axes).
    func isElementwise(_ node: Node, in graph: Graph) -> Bool {
        switch node.op {
        case .softmax, .logSoftmax: return false  // they have an axis
        default: return node.outputs.count == 1 && graph.isLayoutBlindOnOneValue(node)
        }
    }

    /// Whether `value` is a graph input, or made from one by elementwise ops nothing else reads.
    func comesFromInput(_ value: String, in graph: Graph, _ producers: [String: Int]) -> Bool {
        if graph.inputNames.contains(value) { return true }
        guard let p = producers[value], isElementwise(graph.nodes[p], in: graph), graph.isPrivate(value),
              let k = graph.nodes[p].inputs.first(where: { graph.constant($0) == nil }) else { return false }
        return comesFromInput(k, in: graph, producers)
    }
}
