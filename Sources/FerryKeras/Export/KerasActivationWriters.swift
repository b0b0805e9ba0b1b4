import Foundation
import FerryIR

/// The Keras 3 hard_sigmoid's slope: relu6(x + 3) / 6 (Keras 2's is 0.2: clip(0.2 x + 0.5)).
private let keras3HardSigmoidSlope: Float = 1.0 / 6.0

/// The Keras activation name (`activation=` or an Activation layer) of an IR activation node,
/// when the Keras that reads `target` as its own has one meaning the same.
func kerasActivationName(_ op: Op, rank: Int, layout: [Int], target: KerasExporter.Target) -> String? {
    let lastAxis = { (axis: Int) in normalizeAxis(axis, rank: rank).map { layout.last == $0 } ?? false }
    switch op {
    case .relu: return "relu"
    case .sigmoid: return "sigmoid"
    case .tanh: return "tanh"
    case .elu(let alpha) where alpha == 1: return "elu"
    case .selu(let alpha, let gamma) where abs(alpha - 1.6732632) < 1e-6 && abs(gamma - 1.050701) < 1e-6: return "selu"
    case .softplus: return "softplus"
    case .softsign: return "softsign"
    case .exp: return "exponential"
    // Both Keras versions' gelu activation is the exact (erf) form.
    case .gelu(approximate: false): return "gelu"
    case .mish: return "mish"
    case .clip(0, 6): return "relu6"
    // The leaky_relu activation's slope is fixed at 0.2 (other slopes: LeakyReLU layers).
    case .leakyRelu(0.2): return "leaky_relu"
    // Keras's softmax and log_softmax activations work on the last axis of the Keras tensor.
    case .softmax(let axis) where lastAxis(axis): return "softmax"
    case .logSoftmax(let axis) where lastAxis(axis): return "log_softmax"
    // The same name, two functions: written only where the reading Keras means this one.
    case .hardSigmoid(let alpha, 0.5) where target == .keras2H5 && alpha == 0.2: return "hard_sigmoid"
    case .hardSigmoid(let alpha, 0.5) where target == .keras3Zip && alpha == keras3HardSigmoidSlope: return "hard_sigmoid"
    // x * relu6(x + 3) / 6: Keras 3 only (tf_keras has no hard_silu).
    case .hardSwish where target == .keras3Zip: return "hard_silu"
    default: return nil
    }
}

/// Why an activation node has no Keras name in `target` (the error's text).
func kerasActivationRefusal(_ op: Op, target: KerasExporter.Target) -> String {
    switch op {
    case .hardSigmoid(let alpha, 0.5) where alpha == keras3HardSigmoidSlope:
        return "Keras 3's hard_sigmoid (relu6(x + 3) / 6): a Keras 2 layout .h5 names Keras 2's (clip(0.2 x + 0.5)); "
            + "written as hard_sigmoid only in a .keras zip"
    case .hardSigmoid(0.2, 0.5):
        return "Keras 2's hard_sigmoid (clip(0.2 x + 0.5)): Keras 3's is relu6(x + 3) / 6; written only in a .h5 (Keras 2 layout)"
    case .hardSwish:
        return "tf_keras has no hard_silu / hard_swish, which a Keras 2 layout .h5 must name; written only in a .keras zip"
    case .gelu(approximate: true):
        return "Keras's gelu activation is the exact form; the tanh approximation has no Keras layer"
    default:
        return "Keras has no activation computing \(op.name) with these parameters"
    }
}

/// The Sigmoid and Mul of one source layer making x * sigmoid(x) from `value` (Keras's swish).
func swishAfter(_ ctx: KerasExportContext, value: String, layer: String) -> (sigmoid: Int, mul: Int, output: String)? {
    guard !ctx.isGraphOutput(value), let readers = ctx.consumers[value], readers.count == 2 else { return nil }
    let nodes = readers.map { ($0, ctx.graph.nodes[$0]) }
    guard nodes.allSatisfy({ $0.0 > ctx.index && !ctx.absorbed.contains($0.0) && $0.1.origins.first?.layer == layer }),
          let sig = nodes.first(where: { if case .sigmoid = $0.1.op { return true }; return false }),
          let mul = nodes.first(where: { if case .mul = $0.1.op { return true }; return false }),
          Set(mul.1.inputs) == [value, sig.1.outputs[0]], ctx.consumers[sig.1.outputs[0]] == [mul.0],
          !ctx.isGraphOutput(sig.1.outputs[0]) else { return nil }
    return (sig.0, mul.0, mul.1.outputs[0])
}

/// A following activation of the same source layer, folded into `activation=`.
func foldedActivation(_ ctx: inout KerasExportContext, after node: Node, rank: Int, layout: [Int]) -> (name: String, output: String) {
    if let next = ctx.soleSameLayerReader(of: node.outputs[0]),
       let name = kerasActivationName(next.node.op, rank: rank, layout: layout, target: ctx.target) {
        ctx.absorbed.insert(next.index)
        return (name, next.node.outputs[0])
    }
    if let layer = node.origins.first?.layer, let swish = swishAfter(ctx, value: node.outputs[0], layer: layer) {
        ctx.absorbed.formUnion([swish.sigmoid, swish.mul])
        return ("swish", swish.output)
    }
    return ("linear", node.outputs[0])
}

/// Elementwise activations -> Activation layers (any layout); an ELU with another alpha -> ELU;
/// an Activation('swish') (the Sigmoid and Mul of one source layer) -> Activation('swish').
func writeKerasActivation(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard let have = ctx.layout[node.inputs[0]], let x = ctx.tensor[node.inputs[0]] else { throw ctx.error("input not written") }
    if case .elu(let alpha) = node.op, alpha != 1 {
        ctx.add("ELU", config: ["alpha": Double(alpha)], inbound: [x], output: node.outputs[0], layout: have)
        return
    }
    if case .sigmoid = node.op, let layer = node.origins.first?.layer, let reader = ctx.soleSameLayerReader(of: node.outputs[0]),
       case .mul = reader.node.op, Set(reader.node.inputs) == [node.inputs[0], node.outputs[0]],
       ctx.consumers[node.inputs[0]]?.allSatisfy({ $0 == ctx.index || $0 == reader.index || ctx.graph.nodes[$0].origins.first?.layer != layer }) == true {
        ctx.absorbed.insert(reader.index)
        ctx.add("Activation", config: ["activation": "swish"], inbound: [x], output: reader.node.outputs[0], layout: have)
        return
    }
    guard let name = kerasActivationName(node.op, rank: have.count, layout: have, target: ctx.target) else {
        throw ctx.error(kerasActivationRefusal(node.op, target: ctx.target))
    }
    ctx.add("Activation", config: ["activation": name], inbound: [x], output: node.outputs[0], layout: have)
}

/// Relu, LeakyRelu, ThresholdedRelu, each with a following Clip of the same source layer that
/// caps it -> ReLU(max_value, negative_slope, threshold) when the source layer was a ReLU (or a
/// cap or threshold needs one), ThresholdedReLU in a `.h5` from a ThresholdedReLU (Keras 3 has
/// none: its ReLU(threshold) computes the same), LeakyReLU, or Activation('relu').
func writeKerasReLU(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard let have = ctx.layout[node.inputs[0]], let x = ctx.tensor[node.inputs[0]] else { throw ctx.error("input not written") }
    var slope: Float = 0, threshold: Float = 0
    switch node.op {
    case .relu: break
    case .leakyRelu(let alpha): slope = alpha
    case .thresholdedRelu(let alpha): threshold = alpha
    default: return
    }
    var output = node.outputs[0]
    var maxValue: Float?
    // Keras caps the positive part only: a Clip of the IR's result means the same where the
    // values below its cap are left alone (no lower bound, or 0 over values already >= 0).
    if let next = ctx.soleSameLayerReader(of: output), case .clip(let lo, let hi?) = next.node.op, hi >= 0,
       lo == nil || (lo == 0 && slope == 0 && threshold >= 0) {
        maxValue = hi
        output = next.node.outputs[0]
        ctx.absorbed.insert(next.index)
    }
    let source = node.origins.first?.type
    if threshold != 0, source == "ThresholdedReLU", maxValue == nil, ctx.target == .keras2H5 {
        ctx.add("ThresholdedReLU", config: ["theta": Double(threshold)], inbound: [x], output: output, layout: have)
    } else if source == "ReLU" || maxValue != nil || threshold != 0 {
        ctx.add("ReLU", config: ["max_value": maxValue.map { Double($0) as Any } ?? NSNull(), "negative_slope": Double(slope),
                                 "threshold": Double(threshold)], inbound: [x], output: output, layout: have)
    } else if slope != 0 {
        ctx.add("LeakyReLU", config: ["alpha": Double(slope)], inbound: [x], output: output, layout: have)
    } else {
        ctx.add("Activation", config: ["activation": "relu"], inbound: [x], output: output, layout: have)
    }
}

/// Clip at 0 below (and optionally above) -> ReLU(max_value).
func writeKerasClip(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .clip(let lo, let hi) = node.op, let have = ctx.layout[node.inputs[0]], let x = ctx.tensor[node.inputs[0]] else { return }
    guard lo == 0 else { throw ctx.error("a clip with a lower bound other than 0 has no Keras layer") }
    ctx.add("ReLU", config: ["max_value": hi.map { Double($0) as Any } ?? NSNull(), "negative_slope": 0.0, "threshold": 0.0],
            inbound: [x], output: node.outputs[0], layout: have)
}

/// PRelu with constant slopes -> PReLU: the slopes in the Keras tensor's order (without the
/// batch axis), `shared_axes` the Keras axes they do not vary along.
func writeKerasPReLU(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard let alpha = ctx.constant(node.inputs[1]) else { throw ctx.error("the slopes must be a constant") }
    guard let have = ctx.layout[node.inputs[0]], let x = ctx.tensor[node.inputs[0]] else { throw ctx.error("input not written") }
    let rank = have.count
    // The batch size may be open; the other sizes decide which axes the slopes are shared along.
    guard rank >= 2, alpha.rank <= rank, let shape = ctx.types[node.inputs[0]]?.shape,
          shape.dims.dropFirst().allSatisfy({ $0.value != nil }) else {
        throw ctx.error("PReLU needs an input of known sizes")
    }
    let aligned = Array(repeating: 1, count: rank - alpha.rank) + alpha.shape
    let keras = permuted(alpha.reshaped(aligned), have)
    let kerasDims = have.map { shape.dims[$0].value ?? 1 }
    guard keras.shape[0] == 1 else { throw ctx.error("slopes varying along the batch axis have no Keras layer") }
    var shared: [Int] = []
    for i in 1..<rank where keras.shape[i] != kerasDims[i] {
        guard keras.shape[i] == 1 else { throw ctx.error("slopes of shape \(alpha.shape) do not broadcast along the input") }
        shared.append(i)
    }
    ctx.add("PReLU", config: ["shared_axes": shared.isEmpty ? NSNull() : shared as Any], inbound: [x],
            weights: [("alpha", keras.reshaped(Array(keras.shape.dropFirst())))], output: node.outputs[0], layout: have)
}

func writeKerasSoftmax(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .softmax(let axis) = node.op, let have = ctx.layout[node.inputs[0]], let x = ctx.tensor[node.inputs[0]] else { return }
    guard let a = normalizeAxis(axis, rank: have.count) else { throw ctx.error("axis \(axis) out of range") }
    // Activation('softmax') is Keras's softmax over the last axis, unless the source layer was a Softmax layer.
    if have.last == a, node.origins.first?.type != "Softmax" {
        ctx.add("Activation", config: ["activation": "softmax"], inbound: [x], output: node.outputs[0], layout: have)
        return
    }
    ctx.add("Softmax", config: ["axis": have.firstIndex(of: a)!], inbound: [x], output: node.outputs[0], layout: have)
}
