import FerryIR

/// A constant operand that broadcasts against a value over a run of its axes: the first axis
/// it covers and its values (shape = the value's dims over those axes), or a scalar.
struct AxisOperand {
    var axis: Int
    var dims: [Int]
    var values: [Float]
    var isScalar: Bool { dims.isEmpty }
}

/// The constant `c` seen as covering axes [axis, axis + k) of a value of rank `rank` with
/// feature sizes `sizes` (axis 0 the batch): the non-1 dims of c (aligned to the right) must be
/// contiguous and equal to the value's, and never the batch axis.
func axisOperand(_ c: Tensor, rank: Int, sizes: [Int], _ ctx: CaffeExportContext) throws -> AxisOperand {
    guard c.rank <= rank else { throw ctx.error("the constant \(c.shape) has a higher rank than the data") }
    let aligned = Array(repeating: 1, count: rank - c.rank) + c.shape
    let covered = aligned.indices.filter { aligned[$0] != 1 }
    guard let first = covered.first, let last = covered.last else {
        return AxisOperand(axis: 1, dims: [], values: c.floats)
    }
    guard first >= 1 else { throw ctx.error("the constant \(c.shape) varies along the batch axis") }
    let dims = Array(aligned[first...last])
    guard dims == Array(sizes[(first - 1)...(last - 1)]) else {
        throw ctx.error("the constant \(c.shape) does not cover whole axes of the data [N,\(sizes.map(String.init).joined(separator: ","))]")
    }
    return AxisOperand(axis: first, dims: dims, values: c.floats)
}

/// Add, Sub, Mul, Div. Two data inputs of one shape -> Eltwise (SUM, SUM with coefficients
/// 1 and -1, PROD); a product broadcasting one over the other -> a two-bottom Scale; one
/// constant operand -> Power (a scalar) or Scale (per channel or per any run of axes; addition
/// as a Scale by ones with a bias, since OpenCV has no Bias layer; a constant minus data as a
/// Scale by -1 with a bias). A Mul
/// followed by an Add of the same source layer (Caffe's Scale with bias_term as Ferry reads
/// it) is written back as one Scale.
func writeBinary(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    let (a, b) = (node.inputs[0], node.inputs[1])
    let aConst = ctx.constant(a), bConst = ctx.constant(b)
    if aConst == nil && bConst == nil {
        if case .mul = node.op, let ta = ctx.type(a), let tb = ctx.type(b), ta.shape != tb.shape {
            try writeBroadcastProduct(&ctx, node)
            return
        }
        guard let ta = ctx.type(a), let tb = ctx.type(b), ta.shape == tb.shape else {
            throw ctx.error("inputs of shapes \(ctx.type(a)?.shape.description ?? "?") and \(ctx.type(b)?.shape.description ?? "?") "
                            + "broadcast; Caffe's Eltwise needs equal shapes")
        }
        // One Caffe Eltwise that Ferry read as a chain of Adds (or Muls) with coefficient
        // Muls: the chain's last node writes it with every term.
        if case .add = node.op, let next = ctx.soleSameLayerReader(of: node.outputs[0]), case .add = next.node.op,
           ctx.constant(next.node.inputs[0]) == nil, ctx.constant(next.node.inputs[1]) == nil {
            ctx.deferredTerms[node.outputs[0]] = try sumTerms(a, &ctx) + sumTerms(b, &ctx)
            return
        }
        if case .mul = node.op, let next = ctx.soleSameLayerReader(of: node.outputs[0]), case .mul = next.node.op,
           ctx.constant(next.node.inputs[0]) == nil, ctx.constant(next.node.inputs[1]) == nil,
           ctx.type(next.node.inputs[0])?.shape == ctx.type(next.node.inputs[1])?.shape {
            ctx.deferredTerms[node.outputs[0]] = try productTerms(a, &ctx) + productTerms(b, &ctx)
            return
        }
        if case .add = node.op {
            let terms = try sumTerms(a, &ctx) + sumTerms(b, &ctx)
            ctx.addLayer("Eltwise", bottoms: terms.map(\.blob), outputs: node.outputs) { l in
                l.eltwiseParam.operation = .sum
                if terms.contains(where: { $0.coeff != 1 }) { l.eltwiseParam.coeff = terms.map(\.coeff) }
            }
            return
        }
        if case .mul = node.op {
            let terms = try productTerms(a, &ctx) + productTerms(b, &ctx)
            ctx.addLayer("Eltwise", bottoms: terms.map(\.blob), outputs: node.outputs) { $0.eltwiseParam.operation = .prod }
            return
        }
        let bottoms = [try ctx.bottom(a), try ctx.bottom(b)]
        switch node.op {
        case .sub:
            ctx.addLayer("Eltwise", bottoms: bottoms, outputs: node.outputs) { l in
                l.eltwiseParam.operation = .sum
                l.eltwiseParam.coeff = [1, -1]
            }
        default: throw ctx.error("a division of two data inputs has no Caffe layer")
        }
        return
    }
    guard (aConst == nil) != (bConst == nil) else { throw ctx.error("both operands are constants") }
    // x * scalar read only by an Add of the same source layer: a coefficient of a Caffe Eltwise SUM.
    if case .mul = node.op, let c = aConst ?? bConst, c.count == 1, let next = ctx.soleSameLayerReader(of: node.outputs[0]),
       case .add = next.node.op, ctx.constant(next.node.inputs[0]) == nil, ctx.constant(next.node.inputs[1]) == nil,
       ctx.type(next.node.inputs[0])?.shape == ctx.type(next.node.inputs[1])?.shape {
        let data = aConst == nil ? a : b
        ctx.deferredTerms[node.outputs[0]] = try sumTerms(data, &ctx).map { ($0.blob, $0.coeff * c.floats[0]) }
        return
    }
    let commutative: Bool
    switch node.op {
    case .add, .mul: commutative = true
    default: commutative = false
    }
    // c - x = -x + c: the data negated by the Scale or Power that adds c.
    let negatesData = !commutative && aConst != nil && isSubtraction(node.op)
    guard bConst != nil || commutative || negatesData else { throw ctx.error("a constant divided by data has no Caffe layer") }
    let data = aConst == nil ? a : b
    var c = (aConst ?? bConst)!
    let rank = try ctx.rank(data)
    let sizes = try ctx.featureSizes(data)
    guard let outType = ctx.type(node.outputs[0]), outType.shape == ctx.type(data)?.shape else {
        throw ctx.error("the constant operand \(c.shape) makes the result larger than the data")
    }
    let isMul: Bool
    switch node.op {
    case .mul: isMul = true
    case .div: isMul = true; c = Tensor(shape: c.shape, floats: c.floats.map { 1 / $0 })
    case .sub: isMul = false; if !negatesData { c = Tensor(shape: c.shape, floats: c.floats.map { -$0 }) }
    default: isMul = false
    }
    let operand = try axisOperand(c, rank: rank, sizes: sizes, ctx)
    let x = try ctx.bottom(data)
    if operand.isScalar {
        let v = operand.values[0]
        try powerForm(scale: isMul ? v : (negatesData ? -1 : 1), shift: isMul ? 0 : v)(&ctx, Node(name: node.name, op: node.op, inputs: [data],
                                                                        outputs: node.outputs, origins: node.origins))
        return
    }
    let scale = isMul ? operand.values : Array(repeating: negatesData ? -1 : 1, count: operand.values.count)
    var bias: [Float]? = isMul ? nil : operand.values
    var outputs = node.outputs
    // A following Add of the same source layer over the same axes joins this Scale as its bias.
    if isMul, !negatesData, let next = ctx.soleSameLayerReader(of: node.outputs[0]) {
        let n = next.node
        let other: String? = {
            switch n.op {
            case .add: return n.inputs[0] == node.outputs[0] ? n.inputs[1] : n.inputs[0]
            case .sub: return n.inputs[0] == node.outputs[0] ? n.inputs[1] : nil
            default: return nil
            }
        }()
        if let other, let t = ctx.constant(other), let o = try? axisOperand(t, rank: rank, sizes: sizes, ctx),
           o.axis == operand.axis, o.dims == operand.dims, ctx.type(n.outputs[0])?.shape == ctx.type(data)?.shape {
            bias = isSubtraction(n.op) ? o.values.map { -$0 } : o.values
            outputs = n.outputs
            ctx.absorbed.insert(next.index)
        }
    }
    let blobs = [Tensor(shape: operand.dims, floats: scale)] + (bias.map { [Tensor(shape: operand.dims, floats: $0)] } ?? [])
    ctx.addLayer("Scale", bottoms: [x], outputs: outputs, blobs: blobs) { l in
        if operand.axis != 1 { l.scaleParam.axis = Int32(operand.axis) }
        if operand.dims.count != 1 { l.scaleParam.numAxes = Int32(operand.dims.count) }
        if bias != nil { l.scaleParam.biasTerm = true }
    }
}

private func isSubtraction(_ op: Op) -> Bool {
    if case .sub = op { return true }
    return false
}

/// Max, Sum, Mean of data inputs of one shape -> Eltwise MAX, SUM, SUM with coefficients 1/n.
func writeVariadic(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    let shapes = node.inputs.map { ctx.type($0)?.shape }
    guard node.inputs.allSatisfy({ !ctx.isConstant($0) }), Set(shapes.map { $0?.description ?? "?" }).count == 1 else {
        throw ctx.error("Caffe's Eltwise needs data inputs of one shape")
    }
    let bottoms = try node.inputs.map { try ctx.bottom($0) }
    if bottoms.count == 1 {
        ctx.addLayer("Split", bottoms: bottoms, outputs: node.outputs)
        return
    }
    ctx.addLayer("Eltwise", bottoms: bottoms, outputs: node.outputs) { l in
        switch node.op {
        case .max: l.eltwiseParam.operation = .max
        case .mean:
            l.eltwiseParam.operation = .sum
            l.eltwiseParam.coeff = Array(repeating: 1 / Float(bottoms.count), count: bottoms.count)
        default: l.eltwiseParam.operation = .sum
        }
    }
}

/// The terms of a Caffe Eltwise SUM a value stands for: a deferred chain's terms, else the
/// value's blob with coefficient 1.
func sumTerms(_ value: String, _ ctx: inout CaffeExportContext) throws -> [(blob: String, coeff: Float)] {
    if let terms = ctx.deferredTerms.removeValue(forKey: value) { return terms }
    return [(try ctx.bottom(value), 1)]
}

/// The factors of a Caffe Eltwise PROD a value stands for.
func productTerms(_ value: String, _ ctx: inout CaffeExportContext) throws -> [(blob: String, coeff: Float)] {
    if let terms = ctx.deferredTerms.removeValue(forKey: value) { return terms }
    return [(try ctx.bottom(value), 1)]
}

/// x * v where v broadcasts over some axes of x (v's other axes, the batch among them, equal
/// x's: a squeeze-excitation gate (N, C, 1, 1), Keras's (N, 1, 1, C)) -> Caffe's two-bottom
/// Scale, whose scale covers a run of x's axes from `axis`: v reshaped to its kept axes, and x
/// permuted so that they come first (and back after) when they are not already a leading run.
/// Permutes and reshapes move values without arithmetic, so the products are the same.
func writeBroadcastProduct(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    let (a, b) = (node.inputs[0], node.inputs[1])
    guard let ta = ctx.type(a), let tb = ctx.type(b), let out = ctx.type(node.outputs[0]), ta.shape.rank == tb.shape.rank else {
        throw ctx.error("a product of two data inputs of different ranks has no Caffe layer")
    }
    let (x, v) = out.shape == ta.shape ? (a, b) : (b, a)
    let xDims = ctx.type(x)!.shape.dims, vDims = ctx.type(v)!.shape.dims
    guard out.shape.dims == xDims, xDims.indices.allSatisfy({ vDims[$0] == xDims[$0] || vDims[$0] == .fixed(1) }),
          vDims[0] == xDims[0] else {
        throw ctx.error("inputs of shapes \(ta.shape) and \(tb.shape) broadcast both ways or along the batch; "
                        + "Caffe's Scale broadcasts one data input over the other")
    }
    let kept = xDims.indices.filter { vDims[$0] != .fixed(1) || xDims[$0] == .fixed(1) }
    let perm = kept + xDims.indices.filter { !kept.contains($0) }
    let keptSizes = try kept.dropFirst().map { i -> Int64 in
        guard let n = vDims[i].value else { throw ctx.error("'\(v)' has an unknown size at axis \(i)") }
        return Int64(n)
    }
    let xBlob = try ctx.bottom(x), vBlob = try ctx.bottom(v)
    let chain = LayerChain(&ctx, role: "broadcast_product")
    let scaleBlob = kept.count == vDims.count ? vBlob : chain.inner(&ctx, "Reshape", "gate", [vBlob]) { l in
        l.reshapeParam.shape.dim = [0] + keptSizes
    }
    func scale(_ l: inout Caffe_LayerParameter) {
        l.scaleParam.axis = 0
        if kept.count != 1 { l.scaleParam.numAxes = Int32(kept.count) }
    }
    if perm == Array(xDims.indices) {
        chain.last(&ctx, "Scale", "scale", [xBlob, scaleBlob], scale)
        return
    }
    let front = chain.inner(&ctx, "Permute", "to_front", [xBlob]) { $0.permuteParam.order = perm.map { UInt32($0) } }
    let scaled = chain.inner(&ctx, "Scale", "scale", [front, scaleBlob], scale)
    var inverse = [Int](repeating: 0, count: perm.count)
    for (i, p) in perm.enumerated() { inverse[p] = i }
    chain.last(&ctx, "Permute", "back", [scaled]) { $0.permuteParam.order = inverse.map { UInt32($0) } }
}
