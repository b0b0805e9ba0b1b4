import FerryIR

/// Interp (DeepLab): bilinear resize of (N, C, H, W) with the corners aligned (Caffe's
/// caffe_cpu_interp2: input position = output position * (in - 1) / (out - 1)), after
/// cutting -pad_beg cells from the start and -pad_end from the end of H and W (DeepLab allows
/// only pads <= 0). The output size, from the cropped size H': shrink_factor s gives
/// (H' - 1) / s + 1, zoom_factor z gives H' + (H' - 1)(z - 1), both apply shrink then zoom,
/// height and width give it directly, and a second bottom gives its own H and W.
func buildInterp(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    guard inputs.count == 1 || inputs.count == 2 else { throw ctx.error("expects one or two bottoms, has \(inputs.count)") }
    let x = inputs[0]
    let p = ctx.layer.interpParam
    guard x.rank == 4, let h = x.size(2), let w = x.size(3) else {
        throw ctx.error("expects a 4-D input (N, C, H, W) with known H and W, got \(x.shape)")
    }
    guard p.padBeg <= 0, p.padEnd <= 0 else {
        throw ctx.error("pad_beg \(p.padBeg) and pad_end \(p.padEnd) must be <= 0 (Caffe's Interp only crops)")
    }
    let padBeg = Int(p.padBeg), padEnd = Int(p.padEnd)
    let hIn = h + padBeg + padEnd, wIn = w + padBeg + padEnd
    guard hIn > 0, wIn > 0 else { throw ctx.error("pads \(padBeg), \(padEnd) leave nothing of \(h)x\(w)") }
    let zoom = Int(p.zoomFactor), shrink = Int(p.shrinkFactor)
    var out: (h: Int, w: Int)
    if inputs.count == 2 {
        guard inputs[1].rank == 4, let rh = inputs[1].size(2), let rw = inputs[1].size(3) else {
            throw ctx.error("the second bottom must be 4-D with known H and W, got \(inputs[1].shape)")
        }
        out = (rh, rw)
    } else if p.hasShrinkFactor || p.hasZoomFactor {
        guard shrink >= 1, zoom >= 1 else { throw ctx.error("shrink_factor \(shrink) and zoom_factor \(zoom) must be >= 1") }
        out = (hIn, wIn)
        if p.hasShrinkFactor { out = ((out.h - 1) / shrink + 1, (out.w - 1) / shrink + 1) }
        if p.hasZoomFactor { out = (out.h + (out.h - 1) * (zoom - 1), out.w + (out.w - 1) * (zoom - 1)) }
    } else if p.hasHeight && p.hasWidth {
        out = (Int(p.height), Int(p.width))
    } else {
        throw ctx.error("interp_param needs zoom_factor, shrink_factor, or height and width (or a second bottom)")
    }
    guard out.h > 0, out.w > 0, out.h <= 1 << 16, out.w <= 1 << 16 else {
        throw ctx.error("output size \(out.h)x\(out.w) is not valid")
    }
    var source = x
    if padBeg != 0 || padEnd != 0 {
        source = try ctx.emit(.slice(SliceAttributes(starts: [-padBeg, -padBeg], ends: [h + padEnd, w + padEnd], axes: [2, 3])),
                              [x], role: "crop")
    }
    if out == (hIn, wIn) { return [source] }
    // Scales rather than sizes keep the batch open; align_corners maps by the lengths alone.
    let resize = ResizeAttributes(mode: .linear, coordinateTransformation: .alignCorners,
                                  scales: [1, 1, scaleGiving(out.h, from: hIn), scaleGiving(out.w, from: wIn)])
    return [try ctx.emit(.resize(resize), [source], role: "interp")]
}

/// A float scale whose product with `n`, rounded down, is `m` whether the product is taken in
/// float (Ferry, onnxruntime) or in double (ONNX shape inference).
func scaleGiving(_ m: Int, from n: Int) -> Float {
    func lengths(_ s: Float) -> (Int, Int) {
        (Int((Float(n) * s).rounded(.down)), Int((Double(n) * Double(s)).rounded(.down)))
    }
    var s = Float(m) / Float(n)
    while lengths(s).0 < m || lengths(s).1 < m { s = s.nextUp }
    return s
}

/// Whether `value` is a Pooling layer's mask top (MaxPoolIndices, possibly padded with -1 for
/// Caffe's empty windows).
private func isPoolingMask(_ value: IRValue, _ ctx: CaffeContext) -> Bool {
    var name = value.name
    while let node = ctx.graph.nodes.last(where: { $0.outputs.contains(name) }) {
        switch node.op {
        case .maxPoolIndices: return true
        case .pad: name = node.inputs[0]
        default: return false
        }
    }
    return false
}

/// Upsample. With one bottom, the YOLOv3 forks' nearest-neighbour form: every cell repeated
/// scale (or scale_h x scale_w) times -> Resize nearest. With two, the SegNet / ENet forks'
/// max unpooling: the second bottom is a MAX Pooling's mask, and each value goes to its
/// index in a zero plane of upsample_h x upsample_w, or H * scale_h (less 1 with pad_out_h)
/// by W * scale_w (less 1 with pad_out_w) -> MaxUnpool.
func buildUpsample(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    guard inputs.count == 1 || inputs.count == 2 else { throw ctx.error("expects one or two bottoms, has \(inputs.count)") }
    let x = inputs[0]
    let p = ctx.layer.upsampleParam
    guard x.rank == 4 else { throw ctx.error("expects a 4-D input (N, C, H, W), got \(x.shape)") }
    guard !p.hasScale || (!p.hasScaleH && !p.hasScaleW) else { throw ctx.error("scale goes without scale_h / scale_w") }
    let sh = Int(p.hasScaleH ? p.scaleH : p.scale), sw = Int(p.hasScaleW ? p.scaleW : p.scale)
    guard sh >= 1, sw >= 1, sh <= 1 << 10, sw <= 1 << 10 else { throw ctx.error("scale \(sh)x\(sw) must be positive") }
    if inputs.count == 2 {
        guard let h = x.size(2), let w = x.size(3) else { throw ctx.error("expects known H and W, got \(x.shape)") }
        guard p.hasUpsampleH == p.hasUpsampleW else { throw ctx.error("upsample_h and upsample_w go together") }
        guard (!p.padOutH || sh == 2), (!p.padOutW || sw == 2) else {
            throw ctx.error("pad_out_h / pad_out_w need a scale of 2 on their axis (the fork's rule)")
        }
        let outH = p.hasUpsampleH ? Int(p.upsampleH) : h * sh - (p.padOutH ? 1 : 0)
        let outW = p.hasUpsampleW ? Int(p.upsampleW) : w * sw - (p.padOutW ? 1 : 0)
        guard outH >= 1, outW >= 1, outH <= 1 << 16, outW <= 1 << 16 else {
            throw ctx.error("output size \(outH)x\(outW) is not valid")
        }
        // Other forks' two-bottom Upsample layers (bilinear resizing to the second bottom's size)
        // share the type name: only a MAX Pooling's mask top is taken as the mask.
        guard isPoolingMask(inputs[1], ctx) else {
            throw ctx.error("the second bottom \(ctx.layer.bottom[1]) is not a MAX Pooling's mask top: only the "
                            + "SegNet / ENet max-unpooling form of a two-bottom Upsample is supported")
        }
        return [try ctx.emit(.maxUnpool(outputHeight: outH, outputWidth: outW), [x, inputs[1]], role: "unpool")]
    }
    guard !p.hasUpsampleH, !p.hasUpsampleW, !p.padOutH, !p.padOutW else {
        throw ctx.error("upsample_h / upsample_w / pad_out belong to the max-unpooling form, which needs the mask as a second bottom")
    }
    let resize = ResizeAttributes(mode: .nearest, coordinateTransformation: .asymmetric, nearestMode: .floor,
                                  scales: [1, 1, Float(sh), Float(sw)])
    return [try ctx.emit(.resize(resize), [x], role: "upsample")]
}
