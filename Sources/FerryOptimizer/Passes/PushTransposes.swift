import FerryIR
import FerryRuntime

/// Moves a Transpose past the layout-blind op that reads it, toward the graph's outputs, until
/// it meets another Transpose (cancel-transposes then merges the two, and a cancelling pair
/// vanishes) or an op that cares about layout. op(T(x)) = T(op'(x)), where op' is the same
/// elementwise op with constant operands permuted back, Softmax over the matching axis, Pad
/// with its pads permuted, Concat along the matching axis. The Keras importer's edge
/// transposes (NHWC <-> NCHW) meet this way when elementwise layers sit between them, and
/// `--layout nchw`'s inserted transposes cancel against the importer's.
///
/// A Transpose moves only when the op is its single reader and the op has no other non-constant
/// input, except that an op all of whose non-constant inputs are Transposes by the same
/// permutation takes one Transpose after it instead (fewer transposes). No move adds one.
public struct PushTransposes: Pass {
    public let name = "push-transposes"
    public let unit = "transposes moved"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var moved = 0
        var i = 0
        while i < graph.nodes.count {
            if try push(into: i, in: &graph) { moved += 1 } else { i += 1 }
        }
        return moved
    }

    /// Moves the Transposes feeding node `c` to after it, when that is exact and adds none.
    func push(into c: Int, in graph: inout Graph) throws -> Bool {
        let node = graph.nodes[c]
        guard node.outputs.count == 1, node.inputs.allSatisfy({ !$0.isEmpty }) else { return false }
        let producers = graph.producers(), consumers = graph.consumers(), outputs = graph.outputNames
        // The transposed inputs and the constants; anything else stops the move.
        var perm: [Int]?
        var transposes: [Int: Int] = [:]  // input position -> Transpose node index
        for (k, name) in node.inputs.enumerated() {
            if graph.constant(name) != nil { continue }
            guard let t = producers[name], case .transpose(let p) = graph.nodes[t].op, perm == nil || perm == p,
                  consumers[name]?.count == 1, !outputs.contains(name) else { return false }
            perm = p
            transposes[k] = t
        }
        guard let perm, !transposes.isEmpty else { return false }
        let rank = perm.count
        guard let moved = movedOp(node.op, perm: perm, inputCount: node.inputs.count, transposed: transposes.count) else { return false }
        // One Transpose moves only toward one it can meet (or a graph output): otherwise it
        // would only stand in the way of folds like Pad into Conv.
        if transposes.count == 1, !meetsTranspose(after: node.outputs[0], perm: perm, in: graph, producers, consumers) { return false }
        // Constant operands, broadcast against the transposed value, are permuted back.
        var inputs = node.inputs
        for (k, name) in node.inputs.enumerated() where transposes[k] == nil {
            guard let permuted = try untransposed(graph.constant(name)!, perm: perm, rank: rank) else { return false }
            if permuted != graph.constant(name) { inputs[k] = graph.addInitializer(name + "/untransposed", permuted) }
        }
        for (k, t) in transposes { inputs[k] = graph.nodes[t].inputs[0] }
        // The op now computes the untransposed result under a fresh name; the Transpose after
        // it takes the op's output name, so graph outputs keep their names.
        let inner = graph.freshName("\(node.outputs[0])/untransposed")
        let first = graph.nodes[transposes.values.min()!]
        var op = graph.nodes[c]
        op.op = moved
        op.inputs = inputs
        op.outputs = [inner]
        let after = Node(name: first.name, op: .transpose(perm: perm), inputs: [inner], outputs: node.outputs, origins: first.origins)
        graph.nodes[c] = op
        graph.nodes.insert(after, at: c + 1)
        for t in transposes.values.sorted(by: >) { graph.nodes.remove(at: t) }
        return true
    }

    /// Whether a Transpose by `perm` moved to after `value` would travel on to a graph output,
    /// another Transpose, or an op whose other inputs are Transposes by `perm` too.
    func meetsTranspose(after value: String, perm: [Int], in graph: Graph, _ producers: [String: Int],
                        _ consumers: [String: [Int]]) -> Bool {
        if graph.outputNames.contains(value) { return true }
        guard let readers = consumers[value], readers.count == 1 else { return false }
        let d = graph.nodes[readers[0]]
        if case .transpose = d.op { return true }
        guard d.outputs.count == 1 else { return false }
        var transposed = 0
        for name in d.inputs where name != value && !name.isEmpty && graph.constant(name) == nil {
            guard let t = producers[name], case .transpose(let p) = graph.nodes[t].op, p == perm else { return false }
            transposed += 1
        }
        guard movedOp(d.op, perm: perm, inputCount: d.inputs.count, transposed: transposed + 1) != nil else { return false }
        return transposed > 0 || meetsTranspose(after: d.outputs[0], perm: perm, in: graph, producers, consumers)
    }

    /// The op computing `op`'s result before the transpose by `perm`, when `op` is layout-blind
    /// or has an axis to remap. `transposed` of the `inputCount` inputs are transposed.
    func movedOp(_ op: Op, perm: [Int], inputCount: Int, transposed: Int) -> Op? {
        let rank = perm.count
        func axis(_ a: Int) -> Int? {
            let n = a < 0 ? a + rank : a
            return (0..<rank).contains(n) ? perm[n] : nil
        }
        switch op {
        case .relu, .sigmoid, .tanh, .leakyRelu, .gelu, .elu, .selu, .hardSigmoid, .thresholdedRelu, .clip,
             .softplus, .softsign, .hardSwish, .mish, .abs, .neg, .exp, .log, .sqrt, .reciprocal, .floor, .ceil,
             .erf, .identity, .cast, .not:
            return op
        case .add, .sub, .mul, .div, .pow, .max, .min, .sum, .mean, .prelu,
             .equal, .greater, .less, .greaterOrEqual, .lessOrEqual, .and, .or, .where:
            return op
        case .softmax(let a): return axis(a).map { .softmax(axis: $0) }
        case .logSoftmax(let a): return axis(a).map { .logSoftmax(axis: $0) }
        case .concat(let a):
            // Every input transposed alike (a constant piece would need its own transpose).
            guard transposed == inputCount else { return nil }
            return axis(a).map { .concat(axis: $0) }
        case .pad(var a):
            guard inputCount == 1, a.pads.count == 2 * rank else { return nil }
            var pads = a.pads
            for i in 0..<rank {
                pads[perm[i]] = a.pads[i]
                pads[rank + perm[i]] = a.pads[rank + i]
            }
            a.pads = pads
            return .pad(a)
        default:
            return nil
        }
    }

    /// A constant that broadcasts against a value transposed by `perm`, made to broadcast the
    /// same way against the untransposed value: padded to the full rank with leading 1s, then
    /// transposed by the inverse permutation. One-element constants stay as they are.
    func untransposed(_ constant: Tensor, perm: [Int], rank: Int) throws -> Tensor? {
        if constant.count == 1 && constant.rank <= 1 { return constant }
        guard constant.rank <= rank else { return nil }
        let full = constant.reshaped(Array(repeating: 1, count: rank - constant.rank) + constant.shape)
        var inverse = Array(repeating: 0, count: rank)
        for (i, p) in perm.enumerated() { inverse[p] = i }
        return try ReferenceKernels.transpose(full, perm: inverse)
    }
}
