import FerryIR

// IR activations Caffe has no single layer for, written as chains of standard layers that
// OpenCV 4.x reads (Power, AbsVal, ReLU, ReLU6, ELU, BNLL, TanH, Softmax, Log, Scale, Eltwise).
// Each chain computes the op's formula itself, not an approximation: only float rounding
// differs. Its layers are named `<layer>/<part>` after the node's Caffe layer name.

/// The layers of one node's chain: inner layers write fresh blobs named after the node's output,
/// the last one writes the node's output.
struct LayerChain {
    let base: String

    init(_ ctx: inout CaffeExportContext, role: String) {
        base = ctx.chainBaseName(role: role)
    }

    /// An inner layer of the chain; returns its top.
    func inner(_ ctx: inout CaffeExportContext, _ type: String, _ part: String, _ bottoms: [String],
               blobs weights: [Tensor] = [], _ configure: (inout Caffe_LayerParameter) -> Void = { _ in }) -> String {
        let top = ctx.intermediateBlob("\(ctx.node.outputs[0])/\(part)")
        ctx.addRawLayer(type, name: ctx.uniqueLayerName("\(base)/\(part)"), bottoms: bottoms, tops: [top], blobs: weights, configure)
        return top
    }

    /// The chain's last layer, writing the node's output.
    func last(_ ctx: inout CaffeExportContext, _ type: String, _ part: String, _ bottoms: [String],
              blobs weights: [Tensor] = [], _ configure: (inout Caffe_LayerParameter) -> Void = { _ in }) {
        ctx.addLayer(type, bottoms: bottoms, outputs: ctx.node.outputs, blobs: weights,
                     name: ctx.uniqueLayerName("\(base)/\(part)"), configure)
    }
}

/// Power's parameters: (shift + scale * x) ^ power, defaults left unwritten.
func powerParams(power: Float = 1, scale: Float = 1, shift: Float = 0) -> (inout Caffe_LayerParameter) -> Void {
    { l in
        if power != 1 { l.powerParam.power = power }
        if scale != 1 { l.powerParam.scale = scale }
        if shift != 0 { l.powerParam.shift = shift }
    }
}

/// clip(alpha * x + beta, 0, 1) = relu6(6 alpha * x + 6 beta) / 6 (Keras 3's own form,
/// relu6(x + 3) / 6, when alpha is 1/6 and beta 1/2). Returns the chain's result blob, or writes
/// the node's output when `last`.
private func hardSigmoidLayers(_ ctx: inout CaffeExportContext, _ chain: LayerChain, _ x: String,
                               alpha: Float, beta: Float, last: Bool) -> String? {
    let affine = chain.inner(&ctx, "Power", "affine", [x], powerParams(scale: 6 * alpha, shift: 6 * beta))
    let clipped = chain.inner(&ctx, "ReLU6", "relu6", [affine])
    if last {
        chain.last(&ctx, "Power", "divide", [clipped], powerParams(scale: 1 / 6))
        return nil
    }
    return chain.inner(&ctx, "Power", "divide", [clipped], powerParams(scale: 1 / 6))
}

func writeHardSigmoid(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .hardSigmoid(let alpha, let beta) = node.op else { return }
    let x = try dataBottom(ctx, node)
    _ = hardSigmoidLayers(&ctx, LayerChain(&ctx, role: "hard_sigmoid"), x, alpha: alpha, beta: beta, last: true)
}

/// x * hard_sigmoid(x) with ONNX's alpha 1/6, beta 1/2 (Keras 3's hard_silu).
func writeHardSwish(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    let x = try dataBottom(ctx, node)
    let chain = LayerChain(&ctx, role: "hard_swish")
    let gate = hardSigmoidLayers(&ctx, chain, x, alpha: 1 / 6, beta: 0.5, last: false)!
    chain.last(&ctx, "Eltwise", "product", [x, gate]) { $0.eltwiseParam.operation = .prod }
}

/// x / (1 + |x|): AbsVal, Power (power -1, shift 1), Eltwise PROD.
func writeSoftsign(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    let x = try dataBottom(ctx, node)
    let chain = LayerChain(&ctx, role: "softsign")
    let magnitude = chain.inner(&ctx, "AbsVal", "abs", [x])
    let reciprocal = chain.inner(&ctx, "Power", "reciprocal", [magnitude], powerParams(power: -1, shift: 1))
    chain.last(&ctx, "Eltwise", "product", [x, reciprocal]) { $0.eltwiseParam.operation = .prod }
}

/// log(softmax(x)): Softmax then Log along the same axis.
func writeLogSoftmax(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .logSoftmax(let axis) = node.op else { return }
    let a = try exportAxis(axis, of: node.inputs[0], ctx)
    let x = try dataBottom(ctx, node)
    let chain = LayerChain(&ctx, role: "log_softmax")
    let probabilities = chain.inner(&ctx, "Softmax", "softmax", [x]) { l in
        if a != 1 { l.softmaxParam.axis = Int32(a) }
    }
    chain.last(&ctx, "Log", "log", [probabilities])
}

/// gamma * elu(x, alpha): ELU then Power (scale gamma).
func writeSelu(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .selu(let alpha, let gamma) = node.op else { return }
    let x = try dataBottom(ctx, node)
    let chain = LayerChain(&ctx, role: "selu")
    let elu = chain.inner(&ctx, "ELU", "elu", [x]) { $0.eluParam.alpha = alpha }
    chain.last(&ctx, "Power", "scale", [elu], powerParams(scale: gamma))
}

/// x * tanh(softplus(x)): BNLL (Caffe's softplus), TanH, Eltwise PROD.
func writeMish(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    let x = try dataBottom(ctx, node)
    let chain = LayerChain(&ctx, role: "mish")
    let softplus = chain.inner(&ctx, "BNLL", "softplus", [x])
    let gate = chain.inner(&ctx, "TanH", "tanh", [softplus])
    chain.last(&ctx, "Eltwise", "product", [x, gate]) { $0.eltwiseParam.operation = .prod }
}

/// min(a, b, ...) = -max(-a, -b, ...): Power (scale -1) per input, Eltwise MAX, Power (scale -1).
func writeMin(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    let shapes = node.inputs.map { ctx.type($0)?.shape }
    guard node.inputs.allSatisfy({ !ctx.isConstant($0) }), Set(shapes.map { $0?.description ?? "?" }).count == 1 else {
        throw ctx.error("Caffe's Eltwise needs data inputs of one shape")
    }
    let bottoms = try node.inputs.map { try ctx.bottom($0) }
    let chain = LayerChain(&ctx, role: "min")
    if bottoms.count == 1 {
        chain.last(&ctx, "Split", "copy", bottoms)
        return
    }
    let negated = bottoms.enumerated().map { i, b in chain.inner(&ctx, "Power", "negate\(i)", [b], powerParams(scale: -1)) }
    let largest = chain.inner(&ctx, "Eltwise", "max", negated) { $0.eltwiseParam.operation = .max }
    chain.last(&ctx, "Power", "negate", [largest], powerParams(scale: -1))
}

/// Clip with one bound: min(x, hi) = hi - relu(hi - x), max(x, lo) = lo + relu(x - lo).
func writeOneSidedClip(_ ctx: inout CaffeExportContext, _ node: Node, lo: Float?, hi: Float?) throws {
    let x = try dataBottom(ctx, node)
    let chain = LayerChain(&ctx, role: "clip")
    if let hi {
        let headroom = chain.inner(&ctx, "Power", "headroom", [x], powerParams(scale: -1, shift: hi))
        let kept = chain.inner(&ctx, "ReLU", "relu", [headroom])
        chain.last(&ctx, "Power", "min", [kept], powerParams(scale: -1, shift: hi))
    } else if let lo {
        let excess = chain.inner(&ctx, "Power", "excess", [x], powerParams(shift: -lo))
        let kept = chain.inner(&ctx, "ReLU", "relu", [excess])
        chain.last(&ctx, "Power", "max", [kept], powerParams(shift: lo))
    } else {
        ctx.addLayer("Split", bottoms: [x], outputs: node.outputs)
    }
}

/// PRelu whose slope varies over whole axes other than the channel alone (Keras's PReLU without
/// shared_axes: one slope per cell): relu(x) - slope * relu(-x) as ReLU; Power (scale -1), ReLU,
/// Scale by -slope over those axes; Eltwise SUM. Negation is exact, so for x < 0 the sum is
/// 0 + (-slope) * (-x) = slope * x, for x >= 0 it is x.
func writeSlopePerCellPReLU(_ ctx: inout CaffeExportContext, _ node: Node, slope: Tensor) throws {
    let operand = try axisOperand(slope, rank: try ctx.rank(node.inputs[0]), sizes: try ctx.featureSizes(node.inputs[0]), ctx)
    let x = try dataBottom(ctx, node)
    let chain = LayerChain(&ctx, role: "prelu")
    let positive = chain.inner(&ctx, "ReLU", "positive", [x])
    let negated = chain.inner(&ctx, "Power", "negate", [x], powerParams(scale: -1))
    let negative = chain.inner(&ctx, "ReLU", "negative", [negated])
    let sloped = chain.inner(&ctx, "Scale", "slope", [negative], blobs: [Tensor(shape: operand.dims, floats: operand.values.map { -$0 })]) { l in
        if operand.axis != 1 { l.scaleParam.axis = Int32(operand.axis) }
        if operand.dims.count != 1 { l.scaleParam.numAxes = Int32(operand.dims.count) }
    }
    chain.last(&ctx, "Eltwise", "sum", [positive, sloped]) { $0.eltwiseParam.operation = .sum }
}

/// Gelu's tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): Power (power 3),
/// Eltwise SUM with the two coefficients, TanH, Power (scale and shift 0.5), Eltwise PROD.
/// The exact Gelu needs erf, which no Caffe layer computes.
func writeGelu(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .gelu(let approximate) = node.op else { return }
    guard approximate else { throw ctx.error("Caffe has no layer for Gelu with erf (the exact form; its tanh approximation is a chain)") }
    let x = try dataBottom(ctx, node)
    let k = Float((2 / Double.pi).squareRoot())
    let chain = LayerChain(&ctx, role: "gelu")
    let cube = chain.inner(&ctx, "Power", "cube", [x], powerParams(power: 3))
    let inner = chain.inner(&ctx, "Eltwise", "inner", [x, cube]) { l in
        l.eltwiseParam.operation = .sum
        l.eltwiseParam.coeff = [k, k * 0.044715]
    }
    let tanh = chain.inner(&ctx, "TanH", "tanh", [inner])
    let gate = chain.inner(&ctx, "Power", "gate", [tanh], powerParams(scale: 0.5, shift: 0.5))
    chain.last(&ctx, "Eltwise", "product", [x, gate]) { $0.eltwiseParam.operation = .prod }
}
