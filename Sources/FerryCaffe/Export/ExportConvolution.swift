import FerryIR

/// Sets 2-D kernel, pad, stride and dilation on a ConvolutionParameter in the short form when
/// both axes agree (`kernel_size: 3`), else the `_h` / `_w` form.
func setGeometry(_ p: inout Caffe_ConvolutionParameter, kernel: [Int], pads: [Int], strides: [Int], dilations: [Int]) {
    if kernel[0] == kernel[1] { p.kernelSize = [UInt32(kernel[0])] } else { p.kernelH = UInt32(kernel[0]); p.kernelW = UInt32(kernel[1]) }
    if pads[0] == pads[1] { if pads[0] != 0 { p.pad = [UInt32(pads[0])] } } else { p.padH = UInt32(pads[0]); p.padW = UInt32(pads[1]) }
    if strides[0] == strides[1] { if strides[0] != 1 { p.stride = [UInt32(strides[0])] } } else {
        p.strideH = UInt32(strides[0]); p.strideW = UInt32(strides[1])
    }
    if dilations != [1, 1] { p.dilation = dilations[0] == dilations[1] ? [UInt32(dilations[0])] : dilations.map { UInt32($0) } }
}

/// Conv (2-D) -> Convolution. Caffe pads symmetrically; where the IR pads one side more (TF's
/// `same` with a stride), the kernel grows by zero taps on the side padded less and both sides
/// get the larger pad: the windows then read exactly the same cells (any stride), so the
/// outputs are the same, at the cost of the zero taps.
func writeConvolution(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .conv(let a) = node.op else { return }
    guard a.activation == nil, node.inputs.count <= 3 || node.inputs[3].isEmpty else {
        throw ctx.error("a fused epilogue reached the writer (it should have been split off)")
    }
    guard a.kernelShape.count == 2 else {
        throw ctx.error("\(a.kernelShape.count)-D convolution: the exporter writes 2-D convolutions only")
    }
    guard var w = ctx.constant(node.inputs[1]) else { throw ctx.error("the weights must be a constant") }
    let bias = node.inputs.count > 2 && !node.inputs[2].isEmpty ? node.inputs[2] : nil
    var b: Tensor?
    if let bias {
        guard let t = ctx.constant(bias) else { throw ctx.error("the bias must be a constant") }
        b = t
    }
    var kernel = a.kernelShape
    var pads = [0, 0]
    for axis in 0..<2 {
        let begin = a.pads[axis], end = a.pads[axis + 2]
        pads[axis] = max(begin, end)
        guard begin != end else { continue }
        let extra = abs(end - begin)
        guard extra % a.dilations[axis] == 0 else {
            throw ctx.error("padding \(begin) before and \(end) after on axis \(axis + 2) with dilation \(a.dilations[axis]) "
                            + "has no symmetric Caffe equivalent")
        }
        let taps = extra / a.dilations[axis]
        w = zeroExtended(w, axis: 2 + axis, by: taps, atFront: begin < end)
        kernel[axis] += taps
    }
    let m = w.shape[0]
    let x = try dataBottom(ctx, node)
    ctx.addLayer("Convolution", bottoms: [x], outputs: node.outputs, blobs: [w] + (b.map { [$0.reshaped([m])] } ?? [])) { l in
        l.convolutionParam.numOutput = UInt32(m)
        if b == nil { l.convolutionParam.biasTerm = false }
        if a.group != 1 { l.convolutionParam.group = UInt32(a.group) }
        setGeometry(&l.convolutionParam, kernel: kernel, pads: pads, strides: a.strides, dilations: a.dilations)
    }
}

/// A weight tensor with `count` zero slices added along `axis`, before or after its cells.
func zeroExtended(_ t: Tensor, axis: Int, by count: Int, atFront: Bool) -> Tensor {
    var shape = t.shape
    let outer = shape[..<axis].reduce(1, *), n = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
    shape[axis] = n + count
    let src = t.floats
    var out = [Float](repeating: 0, count: outer * (n + count) * inner)
    let offset = atFront ? count : 0
    for o in 0..<outer {
        for i in 0..<n {
            let s = (o * n + i) * inner, d = (o * (n + count) + i + offset) * inner
            for k in 0..<inner { out[d + k] = src[s + k] }
        }
    }
    return Tensor(shape: shape, floats: out)
}

/// ConvTranspose (2-D, symmetric pads, no output padding) -> Deconvolution; the weight layout
/// (C_in, M / group, kh, kw) is the same in both.
func writeDeconvolution(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .convTranspose(let a) = node.op else { return }
    guard a.kernelShape.count == 2 else { throw ctx.error("the exporter writes 2-D deconvolutions only") }
    guard a.pads[0] == a.pads[2], a.pads[1] == a.pads[3] else {
        throw ctx.error("pads \(a.pads) are asymmetric; Caffe's Deconvolution crops the same on both sides")
    }
    guard a.outputPadding.allSatisfy({ $0 == 0 }) else {
        throw ctx.error("output_padding \(a.outputPadding) has no Caffe equivalent")
    }
    guard let w = ctx.constant(node.inputs[1]) else { throw ctx.error("the weights must be a constant") }
    let b = node.inputs.count > 2 && !node.inputs[2].isEmpty ? ctx.constant(node.inputs[2]) : nil
    if node.inputs.count > 2 && !node.inputs[2].isEmpty && b == nil { throw ctx.error("the bias must be a constant") }
    let m = w.shape[1] * a.group
    ctx.addLayer("Deconvolution", bottoms: [try dataBottom(ctx, node)], outputs: node.outputs,
                 blobs: [w] + (b.map { [$0.reshaped([m])] } ?? [])) { l in
        l.convolutionParam.numOutput = UInt32(m)
        if b == nil { l.convolutionParam.biasTerm = false }
        if a.group != 1 { l.convolutionParam.group = UInt32(a.group) }
        setGeometry(&l.convolutionParam, kernel: a.kernelShape, pads: [a.pads[0], a.pads[1]], strides: a.strides,
                    dilations: a.dilations)
    }
}

/// Gemm (A not transposed, constant B, constant C of N values) -> InnerProduct with weight
/// (N, K); alpha and beta scale the stored weight and bias.
func writeInnerProduct(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .gemm(let a) = node.op else { return }
    guard a.activation == nil else { throw ctx.error("a fused activation reached the writer") }
    guard !a.transA else { throw ctx.error("a transposed A has no InnerProduct form") }
    guard let b = ctx.constant(node.inputs[1]), b.rank == 2 else { throw ctx.error("B must be a constant matrix") }
    var w = a.transB ? b : transposed2D(b)
    let n = w.shape[0]
    if a.alpha != 1 { w = Tensor(shape: w.shape, floats: w.floats.map { $0 * a.alpha }) }
    var bias: Tensor?
    if node.inputs.count > 2 && !node.inputs[2].isEmpty {
        guard let c = ctx.constant(node.inputs[2]), c.count == n || c.count == 1 else {
            throw ctx.error("C must be a constant of \(n) values (one per output)")
        }
        let values = c.count == n ? c.floats : Array(repeating: c.floats[0], count: n)
        bias = Tensor(shape: [n], floats: a.beta == 1 ? values : values.map { $0 * a.beta })
    }
    ctx.addLayer("InnerProduct", bottoms: [try dataBottom(ctx, node)], outputs: node.outputs,
                 blobs: [w] + (bias.map { [$0] } ?? [])) { l in
        l.innerProductParam.numOutput = UInt32(n)
        if bias == nil { l.innerProductParam.biasTerm = false }
    }
}

/// MatMul by a constant (K, N) matrix -> InnerProduct over the last axis, no bias.
func writeMatMulAsInnerProduct(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard let b = ctx.constant(node.inputs[1]), b.rank == 2 else {
        throw ctx.error("only a product with a constant matrix has a Caffe layer (InnerProduct)")
    }
    let rank = try ctx.rank(node.inputs[0])
    guard rank >= 2 else { throw ctx.error("a vector input has no InnerProduct form") }
    let w = transposed2D(b)
    ctx.addLayer("InnerProduct", bottoms: [try dataBottom(ctx, node)], outputs: node.outputs, blobs: [w]) { l in
        l.innerProductParam.numOutput = UInt32(w.shape[0])
        l.innerProductParam.biasTerm = false
        if rank != 2 { l.innerProductParam.axis = Int32(rank - 1) }
    }
}

/// Per output position along one axis: the input cells a window reads and its divisor.
struct PoolWindow: Equatable {
    var lo: Int
    var hi: Int
    var divisor: Int
}

/// The IR's windows (ONNX rules: ceil or floor, count_include_pad clipped to the padded input,
/// else the real cells).
func irPoolWindows(size n: Int, kernel k: Int, stride s: Int, padBegin pb: Int, padEnd pe: Int, ceil: Bool,
                   countIncludePad: Bool) throws -> [PoolWindow] {
    let out = try windowOutputLength(n, kernel: k, stride: s, dilation: 1, padBegin: pb, padEnd: pe, ceil: ceil)
    return (0..<out).map { o in
        let start = o * s - pb, end = start + k
        let lo = max(start, 0), hi = min(end, n)
        return PoolWindow(lo: lo, hi: hi, divisor: countIncludePad ? min(end, n + pe) - start : hi - lo)
    }
}

/// Caffe's windows (pooling_layer.cpp): ceil rounding, a last window starting in the padding
/// dropped when there is padding, the divisor the window clipped to the input plus the pad.
func caffePoolWindows(size n: Int, kernel k: Int, stride s: Int, pad p: Int) -> [PoolWindow] {
    var out = (n + 2 * p - k + s - 1) / s + 1
    if p > 0, (out - 1) * s >= n + p { out -= 1 }
    guard out > 0 else { return [] }
    return (0..<out).map { o in
        let start = o * s - p, end = min(start + k, n + p)
        return PoolWindow(lo: max(start, 0), hi: min(end, n), divisor: end - start)
    }
}

/// MaxPool / AveragePool (2-D) -> Pooling, only when Caffe's windows (its ceil rounding, its
/// symmetric pad) read the same cells as the IR's, axis by axis; otherwise an error saying where
/// they differ. An average whose windows Caffe divides by other counts (padding counted, Keras
/// `same` not) is followed by a Scale by Caffe's count over the model's, per output cell.
func writePooling(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    let a: PoolAttributes
    let isMax: Bool
    var maskOnly = false
    switch node.op {
    case .maxPool(let p): a = p; isMax = true
    case .averagePool(let p): a = p; isMax = false
    case .maxPoolIndices(let p): a = p; isMax = true; maskOnly = true
    default: return
    }
    guard a.kernelShape.count == 2 else { throw ctx.error("the exporter writes 2-D pooling only") }
    guard a.isDense, node.outputs.count == 1 else { throw ctx.error("Caffe pooling has no dilations and no Indices output") }
    let sizes = try ctx.featureSizes(node.inputs[0])
    // Average pooling whose windows read the model's cells but divide by Caffe's padded count:
    // per axis and window, Caffe's divisor over the model's (Caffe's 2-D divisor is the product
    // of the axes' ones, as the model's).
    var countRatios: [[Double]] = [[], []]
    for axis in 0..<2 {
        let n = sizes[1 + axis], pb = a.pads[axis], pe = a.pads[axis + 2]
        let ir = try irPoolWindows(size: n, kernel: a.kernelShape[axis], stride: a.strides[axis], padBegin: pb, padEnd: pe,
                                   ceil: a.ceilMode, countIncludePad: a.countIncludePad)
        let caffe = caffePoolWindows(size: n, kernel: a.kernelShape[axis], stride: a.strides[axis], pad: pb)
        let same = ir.count == caffe.count && zip(ir, caffe).allSatisfy { i, c in i.lo == c.lo && i.hi == c.hi }
        countRatios[axis] = zip(ir, caffe).map { i, c in Double(c.divisor) / Double(i.divisor) }
        guard same else {
            let why: String
            if ir.count != caffe.count {
                why = "Caffe's pooling (ceil rounding, pad \(pb) on both sides) makes \(caffe.count) outputs where the model has \(ir.count)"
            } else {
                let k = ir.indices.first(where: { ir[$0].lo != caffe[$0].lo || ir[$0].hi != caffe[$0].hi })!
                why = "window \(k) reads cells \(caffe[k].lo)..<\(caffe[k].hi) in Caffe but \(ir[k].lo)..<\(ir[k].hi) in the model"
            }
            throw ctx.error("\(isMax ? "max" : "average") pooling on axis \(axis + 2) (size \(n), kernel \(a.kernelShape[axis]), "
                            + "stride \(a.strides[axis]), pads \(pb),\(pe)) has no Caffe equivalent: \(why)")
        }
    }
    func configure(_ l: inout Caffe_LayerParameter) {
        var p = Caffe_PoolingParameter()
        p.pool = isMax ? .max : .ave
        if a.kernelShape[0] == a.kernelShape[1] { p.kernelSize = UInt32(a.kernelShape[0]) } else {
            p.kernelH = UInt32(a.kernelShape[0]); p.kernelW = UInt32(a.kernelShape[1])
        }
        if a.strides[0] == a.strides[1] { p.stride = UInt32(a.strides[0]) } else {
            p.strideH = UInt32(a.strides[0]); p.strideW = UInt32(a.strides[1])
        }
        if a.pads[0] == a.pads[1] { if a.pads[0] != 0 { p.pad = UInt32(a.pads[0]) } } else {
            p.padH = UInt32(a.pads[0]); p.padW = UInt32(a.pads[1])
        }
        l.poolingParam = p
    }
    let x = try dataBottom(ctx, node)
    if !isMax, countRatios.joined().contains(where: { $0 != 1 }) {
        // Caffe's average (padding counted) times Caffe's count over the model's, per output cell.
        let ratios = countRatios[0].flatMap { h in countRatios[1].map { w in Float(h * w) } }
        let name = ctx.mainLayerName(producing: node.outputs)
        let pooled = ctx.intermediateBlob("\(node.outputs[0])/padded_average")
        ctx.addRawLayer("Pooling", name: name, bottoms: [x], tops: [pooled], configure)
        ctx.addLayer("Scale", bottoms: [pooled], outputs: node.outputs,
                     blobs: [Tensor(shape: [countRatios[0].count, countRatios[1].count], floats: ratios)],
                     name: ctx.uniqueLayerName("\(name)/uncount_padding")) { l in
            l.scaleParam.axis = 2
            l.scaleParam.numAxes = 2
        }
        return
    }
    if maskOnly {
        // A mask whose pooled values nothing reads: Caffe's Pooling makes both tops anyway.
        let name = ctx.mainLayerName(producing: node.outputs)
        let pooled = ctx.intermediateBlob("\(node.outputs[0])/pooled")
        ctx.addRawLayer("Pooling", name: name, bottoms: [x], tops: [pooled, ctx.topBlob(node.outputs[0])], configure)
        return
    }
    // The mask of the same windows, from the same source layer (the SegNet / ENet forks' MAX
    // Pooling with a second top), is the layer's second top.
    var outputs = node.outputs
    if isMax, let m = ctx.graph.nodes.indices.first(where: { i in
        let n = ctx.graph.nodes[i]
        return i > ctx.index && !ctx.absorbed.contains(i) && n.op == .maxPoolIndices(a) && n.inputs == node.inputs
            && n.origins.first?.layer == node.origins.first?.layer
    }) {
        ctx.absorbed.insert(m)
        outputs.append(ctx.graph.nodes[m].outputs[0])
    }
    ctx.addLayer("Pooling", bottoms: [x], outputs: outputs, configure)
}

/// GlobalAveragePool / GlobalMaxPool (2-D) -> Pooling with global_pooling.
func writeGlobalPooling(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard try ctx.rank(node.inputs[0]) == 4 else { throw ctx.error("the exporter writes 2-D global pooling only") }
    let isMax: Bool
    if case .globalMaxPool = node.op { isMax = true } else { isMax = false }
    ctx.addLayer("Pooling", bottoms: [try dataBottom(ctx, node)], outputs: node.outputs) { l in
        l.poolingParam.pool = isMax ? .max : .ave
        l.poolingParam.globalPooling = true
    }
}
