import FerryIR
import FerryRuntime

/// Moves a Transpose past the op that reads it, toward the graph's outputs, until it meets
/// another Transpose (cancel-transposes then merges the two, and a cancelling pair vanishes) or
/// an op that cares about layout. op(T(x)) = T'(op'(x)), where op' is:
/// - the same elementwise op, with constant operands permuted back; Softmax over the matching
///   axis; Pad with its pads permuted; Concat along the matching axis;
/// - a reduction over the matching axes (without keepdims, T' permutes only the axes left);
/// - a pooling whose window is permuted, when T keeps the batch and channel axes in place (a
///   global pooling then needs no T' at all);
/// - for a MatMul by a weight reading a value made channels last by T (Keras Dense on a
///   feature map): a 1x1 Conv by the transposed weight, which works on the channels-first
///   value directly.
/// The Keras importer's edge transposes (NHWC <-> NCHW) meet this way when such layers sit
/// between them, and `--layout nchw`'s inserted transposes cancel against the importer's.
///
/// A Transpose moves only when the op is its single reader and the op has no other non-constant
/// input, except that an op all of whose non-constant inputs are Transposes by the same
/// permutation takes one Transpose after it instead (fewer transposes). No move adds one.
public struct PushTransposes: NodeRewritePass {
    public let name = "push-transposes"
    public let unit = "transposes moved"
    public init() {}

    /// An op's form before the transpose, and the Transpose left after it (nil: none needed).
    struct Move {
        var op: Op
        var after: [Int]?
        /// Weights the moved op reads instead of the original's, by input position.
        var weights: [Int: Tensor] = [:]
    }

    /// Moves the Transposes feeding node `c` to after it, when that is exact and adds none.
    public func rewrite(at c: Int, in graph: inout Graph) throws -> Bool {
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
        guard let move = moved(node, perm: perm, transposed: transposes.count, in: graph) else { return false }
        // One Transpose moves only toward one it can meet (or a graph output): otherwise it
        // would only stand in the way of folds like Pad into Conv.
        if transposes.count == 1, let after = move.after,
           !meetsTranspose(after: node.outputs[0], perm: after, in: graph, producers, consumers) { return false }
        // Constant operands, broadcast against the transposed value, are permuted back.
        var inputs = node.inputs
        for (k, name) in node.inputs.enumerated() where transposes[k] == nil {
            if let weight = move.weights[k] {
                inputs[k] = graph.addInitializer(name + "/untransposed", weight)
                continue
            }
            guard let permuted = try untransposed(graph.constant(name)!, perm: perm, rank: rank) else { return false }
            if permuted != graph.constant(name) { inputs[k] = graph.addInitializer(name + "/untransposed", permuted) }
        }
        for (k, t) in transposes { inputs[k] = graph.nodes[t].inputs[0] }
        let first = graph.nodes[transposes.values.min()!]
        var op = graph.nodes[c]
        op.op = move.op
        op.inputs = inputs
        if let after = move.after {
            // The op now computes the untransposed result under a fresh name; the Transpose
            // after it takes the op's output name, so graph outputs keep their names.
            let inner = graph.freshName("\(node.outputs[0])/untransposed")
            op.outputs = [inner]
            graph.nodes[c] = op
            graph.nodes.insert(Node(name: first.name, op: .transpose(perm: after), inputs: [inner], outputs: node.outputs,
                                    origins: first.origins), at: c + 1)
        } else {
            mergeOrigins(&op, first)
            graph.nodes[c] = op
        }
        for t in transposes.values.sorted(by: >) { graph.nodes.remove(at: t) }
        return true
    }

    /// Whether a Transpose by `perm` moved to after `value` would travel on to a graph output,
    /// another Transpose, an op whose other inputs are Transposes by `perm` too, or vanish.
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
        guard let move = moved(d, perm: perm, transposed: transposed + 1, in: graph) else { return false }
        guard let after = move.after else { return true }
        return transposed > 0 || meetsTranspose(after: d.outputs[0], perm: after, in: graph, producers, consumers)
    }

    /// What `node` becomes when its transposed inputs (`transposed` of them, by `perm`) are read
    /// untransposed, if it can: see the type's comment.
    func moved(_ node: Node, perm: [Int], transposed: Int, in graph: Graph) -> Move? {
        let op = node.op, inputCount = node.inputs.count
        let rank = perm.count
        func axis(_ a: Int) -> Int? {
            let n = a < 0 ? a + rank : a
            return (0..<rank).contains(n) ? perm[n] : nil
        }
        switch op {
        case .relu, .sigmoid, .tanh, .leakyRelu, .gelu, .elu, .selu, .hardSigmoid, .thresholdedRelu, .clip,
             .softplus, .softsign, .hardSwish, .mish, .abs, .neg, .exp, .log, .sqrt, .reciprocal, .floor, .ceil,
             .erf, .identity, .cast, .not:
            return Move(op: op, after: perm)
        case .add, .sub, .mul, .div, .pow, .max, .min, .sum, .mean, .prelu,
             .equal, .greater, .less, .greaterOrEqual, .lessOrEqual, .and, .or, .where:
            return Move(op: op, after: perm)
        case .softmax(let a): return axis(a).map { Move(op: .softmax(axis: $0), after: perm) }
        case .logSoftmax(let a): return axis(a).map { Move(op: .logSoftmax(axis: $0), after: perm) }
        case .concat(let a):
            // Every input transposed alike (a constant piece would need its own transpose).
            guard transposed == inputCount else { return nil }
            return axis(a).map { Move(op: .concat(axis: $0), after: perm) }
        case .pad(var a):
            guard inputCount == 1, a.pads.count == 2 * rank else { return nil }
            var pads = a.pads
            for i in 0..<rank {
                pads[perm[i]] = a.pads[i]
                pads[rank + perm[i]] = a.pads[rank + i]
            }
            a.pads = pads
            return Move(op: .pad(a), after: perm)
        case .reduce(let operation, let axes, let keepDims):
            guard inputCount == 1 else { return nil }
            guard let axes else { return Move(op: op, after: nil) }  // all axes: nothing left to permute
            var reduced: [Int] = []
            for a in axes { guard let n = axis(a) else { return nil }; reduced.append(n) }
            let moved = Op.reduce(operation, axes: reduced.sorted(), keepDims: keepDims)
            if keepDims { return Move(op: moved, after: perm) }
            // The axes left, in the transposed order, among the axes left in the original order.
            let kept = (0..<rank).filter { !reduced.contains(perm[$0]) }.map { perm[$0] }
            let after = kept.map { a in kept.sorted().firstIndex(of: a)! }
            return Move(op: moved, after: after == Array(after.indices) ? nil : after)
        case .maxPool(var a), .averagePool(var a):
            guard inputCount == 1, let spatial = spatialPermutation(perm) else { return nil }
            a.kernelShape = permuted(a.kernelShape, spatial)
            a.strides = permuted(a.strides, spatial)
            a.dilations = permuted(a.dilations, spatial)
            let s = spatial.count
            a.pads = permuted(Array(a.pads[..<s]), spatial) + permuted(Array(a.pads[s...]), spatial)
            if case .maxPool = op { return Move(op: .maxPool(a), after: perm) }
            return Move(op: .averagePool(a), after: perm)
        case .globalAveragePool, .globalMaxPool:
            // Every spatial axis becomes 1: the result is the same without any transpose.
            guard spatialPermutation(perm) != nil else { return nil }
            return Move(op: op, after: nil)
        case .matMul:
            // MatMul(T(x), W) with T moving the channels (axis 1) last: a 1x1 Conv of x by Wᵀ.
            guard rank >= 3, rank <= 5, perm == channelsLastPermutation(rank: rank), transposed == 1,
                  let w = graph.constant(node.inputs[1]), w.rank == 2, w.dtype == .float32,
                  graph.constant(node.inputs[0]) == nil,
                  let wt = try? ReferenceKernels.transpose(w, perm: [1, 0]) else { return nil }
            let kernel = wt.reshaped([w.shape[1], w.shape[0]] + Array(repeating: 1, count: rank - 2))
            return Move(op: .conv(ConvAttributes(kernelShape: Array(repeating: 1, count: rank - 2))), after: perm,
                        weights: [1: kernel])
        default:
            return nil
        }
    }

    /// For a permutation keeping axes 0 and 1 in place, the permutation of the spatial axes
    /// (counted from 0); nil otherwise.
    func spatialPermutation(_ perm: [Int]) -> [Int]? {
        guard perm.count >= 3, perm[0] == 0, perm[1] == 1 else { return nil }
        return perm.dropFirst(2).map { $0 - 2 }
    }

    /// `values` given per transposed spatial axis, placed per original axis.
    func permuted(_ values: [Int], _ spatial: [Int]) -> [Int] {
        var result = values
        for (i, p) in spatial.enumerated() { result[p] = values[i] }
        return result
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
