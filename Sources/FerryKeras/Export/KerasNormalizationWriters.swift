import Foundation
import FerryIR

// Normalizations and lookups as Keras layers. A Keras layer built with `scale=False` or
// `center=False` is imported with a constant gamma of ones or beta of zeros: such constants are
// written back as the flag, not as weights (a trained gamma of exactly ones, or beta of zeros,
// is written the same way; the outputs are the same).

/// The optional operand `i` of `node` as a constant: nil when absent, an error when data.
private func optionalConstant(_ ctx: KerasExportContext, _ node: Node, _ i: Int, _ what: String) throws -> Tensor? {
    guard node.inputs.count > i, !node.inputs[i].isEmpty else { return nil }
    guard let t = ctx.constant(node.inputs[i]) else { throw ctx.error("\(what) must be a constant") }
    return t
}

/// LayerNormalization over the trailing IR axes -> LayerNormalization over the same axes of
/// the Keras tensor (a Permute first when the Keras layout does not keep them trailing, in order).
func writeKerasLayerNormalization(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .layerNormalization(let axis, let epsilon) = node.op else { return }
    let rank = try ctx.rank(node.inputs[0])
    guard let first = normalizeAxis(axis, rank: rank), first >= 1 else { throw ctx.error("normalizing over the batch axis") }
    guard let gamma = try optionalConstant(ctx, node, 1, "gamma") else { throw ctx.error("gamma must be a constant") }
    let beta = try optionalConstant(ctx, node, 2, "beta")
    guard let have = ctx.layout[node.inputs[0]] else { throw ctx.error("input not written") }
    let axes = Array(first..<rank)
    let layout = axes.map { have.firstIndex(of: $0)! } == Array(first..<rank) ? have : Array(0..<rank)
    let x = try ctx.input(node.inputs[0], layout: layout)
    guard let sizes = ctx.types[node.inputs[0]].map({ t in axes.compactMap { t.shape.dims[$0].value } }), sizes.count == axes.count else {
        throw ctx.error("the normalized sizes must be known")
    }
    let scale = !gamma.floats.allSatisfy { $0 == 1 }
    let center = beta.map { !$0.floats.allSatisfy { $0 == 0 } } ?? false
    var weights: [(String, Tensor)] = []
    if scale { weights.append(("gamma", gamma.reshaped(sizes))) }
    if center, let beta { weights.append(("beta", beta.reshaped(sizes))) }
    ctx.add("LayerNormalization", config: ["axis": axes, "epsilon": Double(epsilon), "center": center, "scale": scale],
            inbound: [x], weights: weights, output: node.outputs[0], layout: layout)
}

/// GroupNormalization (groups of contiguous channels) -> GroupNormalization over the
/// channels-last axis.
func writeKerasGroupNormalization(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .groupNormalization(let groups, let epsilon) = node.op else { return }
    let rank = try ctx.rank(node.inputs[0])
    guard rank >= 3 else { throw ctx.error("group normalization of a \(rank)-D value") }
    guard let gamma = try optionalConstant(ctx, node, 1, "scale"), let beta = try optionalConstant(ctx, node, 2, "bias"),
          gamma.count == beta.count, gamma.count == ctx.types[node.inputs[0]]?.shape.dims[1].value else {
        throw ctx.error("scale and bias must be per-channel constants (the IR's opset-21 form)")
    }
    let cl = channelsLastLayout(rank)
    let x = try ctx.input(node.inputs[0], layout: cl)
    let scale = !gamma.floats.allSatisfy { $0 == 1 }, center = !beta.floats.allSatisfy { $0 == 0 }
    var weights: [(String, Tensor)] = []
    if scale { weights.append(("gamma", gamma.reshaped([gamma.count]))) }
    if center { weights.append(("beta", beta.reshaped([beta.count]))) }
    ctx.add("GroupNormalization", config: ["groups": groups, "axis": -1, "epsilon": Double(epsilon), "center": center, "scale": scale],
            inbound: [x], weights: weights, output: node.outputs[0], layout: cl)
}

/// LpNormalization with p = 2 -> UnitNormalization along the same axis of the Keras tensor
/// (Keras clamps the squared norm at 1e-12 where ONNX gives 0 for a zero norm).
func writeKerasUnitNormalization(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .lpNormalization(let axis, let p) = node.op else { return }
    guard p == 2 else { throw ctx.error("an L\(p) normalization: Keras's UnitNormalization is L2") }
    guard let have = ctx.layout[node.inputs[0]], let x = ctx.tensor[node.inputs[0]] else { throw ctx.error("input not written") }
    guard let a = normalizeAxis(axis, rank: have.count), a >= 1 else { throw ctx.error("normalizing along the batch axis") }
    ctx.add("UnitNormalization", config: ["axis": have.firstIndex(of: a)!], inbound: [x], output: node.outputs[0], layout: have)
}

/// Gather from a constant 2-D table along axis 0 -> Embedding (ids in the IR's order).
func writeKerasEmbedding(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .gather(let axis) = node.op else { return }
    guard axis == 0, let table = ctx.constant(node.inputs[0]), table.rank == 2 else {
        throw ctx.error("only a lookup of data ids in a constant 2-D table (axis 0) is a Keras layer (Embedding)")
    }
    let rank = try ctx.rank(node.inputs[1])
    let ids = try ctx.input(node.inputs[1], layout: Array(0..<rank))
    ctx.add("Embedding", config: ["input_dim": table.shape[0], "output_dim": table.shape[1], "mask_zero": false],
            inbound: [ids], weights: [("embeddings", table)], output: node.outputs[0], layout: Array(0..<(rank + 1)))
}

/// A Cast to int32 or int64 read only as an Embedding's ids: Keras's Embedding casts its ids
/// itself (float ids to int32, truncated as the IR's Cast and Caffe's Embed truncate them).
func writeKerasCast(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .cast(let to) = node.op, to == .int32 || to == .int64, !ctx.isGraphOutput(node.outputs[0]),
          let readers = ctx.consumers[node.outputs[0]], !readers.isEmpty, readers.allSatisfy({ r in
              if case .gather(0) = ctx.graph.nodes[r].op, ctx.graph.nodes[r].inputs[1] == node.outputs[0],
                 ctx.graph.nodes[r].inputs[0] != node.outputs[0], ctx.constant(ctx.graph.nodes[r].inputs[0]) != nil { return true }
              return false
          }) else {
        throw ctx.error("Keras has no built-in layer for Cast")
    }
    guard let have = ctx.layout[node.inputs[0]], let x = ctx.tensor[node.inputs[0]] else { throw ctx.error("input not written") }
    ctx.tensor[node.outputs[0]] = x
    ctx.layout[node.outputs[0]] = have
}

extension Graph {
    /// ONNX opset 17's form of GroupNormalization as Ferry's ONNX exporter writes it — Reshape to
    /// (N, groups, -1), InstanceNormalization with a scale of ones and a bias of zeros, Reshape
    /// back, Mul by the per-channel gamma, Add of the per-channel beta — back as the IR's
    /// GroupNormalization, which the Keras writer maps to GroupNormalization with gamma and beta.
    func groupNormalizationOps() -> Graph {
        guard let types = try? inferTypes() else { return self }
        let readers = consumerIndices()
        let graphOutputs = Set(outputs.map(\.name))
        func sole(_ v: String) -> Int? {
            guard !graphOutputs.contains(v), let r = readers[v], r.count == 1 else { return nil }
            return r[0]
        }
        /// The constant operand of a binary node holding one value per channel, and the other operand.
        func perChannel(_ n: Node, channels: Int) -> (data: String, values: [Float])? {
            for (a, b) in [(0, 1), (1, 0)] {
                guard let t = initializers[n.inputs[b]], t.dtype == .float32, initializers[n.inputs[a]] == nil,
                      t.count == channels, t.shape.filter({ $0 != 1 }).count <= 1, t.rank <= 3 else { continue }
                return (n.inputs[a], t.floats)
            }
            return nil
        }
        var g = self
        var replaced: [Int: Node] = [:]
        var removed = Set<Int>()
        for (i, n) in nodes.enumerated() {
            guard case .reshape(let split, _) = n.op, split.count == 3, split[0] == 0, split[2] == -1, let groups = Optional(split[1]),
                  let x = types[n.inputs[0]], x.shape.rank >= 3, let c = x.shape.dims[1].value, groups > 0, c % groups == 0,
                  let ii = sole(n.outputs[0]), case .instanceNormalization(let epsilon) = nodes[ii].op,
                  let scale = initializers[nodes[ii].inputs[1]], scale.floats.allSatisfy({ $0 == 1 }),
                  nodes[ii].inputs.count > 2, let bias = initializers[nodes[ii].inputs[2]], bias.floats.allSatisfy({ $0 == 0 }),
                  let bi = sole(nodes[ii].outputs[0]), case .reshape = nodes[bi].op, types[nodes[bi].outputs[0]] == x,
                  let mi = sole(nodes[bi].outputs[0]), case .mul = nodes[mi].op,
                  let gamma = perChannel(nodes[mi], channels: c), gamma.data == nodes[bi].outputs[0],
                  let ai = sole(nodes[mi].outputs[0]), case .add = nodes[ai].op,
                  let beta = perChannel(nodes[ai], channels: c), beta.data == nodes[mi].outputs[0] else { continue }
            let gammaName = nodes[ii].name + "/gamma", betaName = nodes[ii].name + "/beta"
            g.initializers[gammaName] = Tensor(shape: [c], floats: gamma.values)
            g.initializers[betaName] = Tensor(shape: [c], floats: beta.values)
            replaced[i] = Node(name: nodes[ii].name, op: .groupNormalization(numGroups: groups, epsilon: epsilon),
                               inputs: [n.inputs[0], gammaName, betaName], outputs: nodes[ai].outputs, origins: nodes[ii].origins)
            removed.formUnion([ii, bi, mi, ai])
        }
        if replaced.isEmpty { return self }
        g.nodes = nodes.enumerated().compactMap { i, n in removed.contains(i) ? nil : replaced[i] ?? n }
        return g
    }
}
