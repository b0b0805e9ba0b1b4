import FerryIR

/// Resize of the two spatial axes of a 4-D value. Bilinear with the corners aligned ->
/// Interp (DeepLab's layer, which OpenCV reads): `zoom_factor` when one whole factor gives both
/// sizes, else `height` and `width`. Nearest by whole factors (input cell = output cell / factor,
/// rounded down) -> Upsample (the YOLOv3 forks' layer): `scale`, or `scale_h` and `scale_w`.
/// Other modes and coordinate mappings have no Caffe layer.
func writeResize(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .resize(let r) = node.op else { return }
    guard node.inputs.dropFirst().allSatisfy(\.isEmpty) else { throw ctx.error("scales or sizes given as inputs have no Caffe form") }
    let inSizes = try ctx.featureSizes(node.inputs[0]), outSizes = try ctx.featureSizes(node.outputs[0])
    guard inSizes.count == 3, outSizes.count == 3, inSizes[0] == outSizes[0] else {
        throw ctx.error("Caffe resizes the two spatial axes of a 4-D blob only (\(inSizes) -> \(outSizes))")
    }
    let (h, w, oh, ow) = (inSizes[1], inSizes[2], outSizes[1], outSizes[2])
    let x = try dataBottom(ctx, node)
    switch (r.mode, r.coordinateTransformation) {
    case (.linear, .alignCorners):
        // DeepLab's zoom gives in + (in - 1)(zoom - 1) cells.
        let zoom = h > 1 && (oh - 1) % (h - 1) == 0 ? (oh - 1) / (h - 1) : 0
        ctx.addLayer("Interp", bottoms: [x], outputs: node.outputs) { l in
            if zoom >= 2 && w > 1 && (w - 1) * zoom + 1 == ow {
                l.interpParam.zoomFactor = Int32(zoom)
            } else {
                l.interpParam.height = Int32(oh)
                l.interpParam.width = Int32(ow)
            }
        }
    case (.nearest, .asymmetric) where r.nearestMode == .floor && oh % h == 0 && ow % w == 0:
        let (sh, sw) = (oh / h, ow / w)
        ctx.addLayer("Upsample", bottoms: [x], outputs: node.outputs) { l in
            if sh == sw {
                l.upsampleParam.scale = UInt32(sh)
            } else {
                l.upsampleParam.scaleH = UInt32(sh)
                l.upsampleParam.scaleW = UInt32(sw)
            }
        }
    default:
        throw ctx.error("a \(r.mode.rawValue) resize with \(r.coordinateTransformation.rawValue) coordinates from \(h)x\(w) to "
                        + "\(oh)x\(ow) has no Caffe layer (Interp: bilinear with the corners aligned; Upsample: nearest by whole factors)")
    }
}

/// MaxUnpool (values and a Pooling mask) -> the SegNet / ENet forks' two-bottom Upsample:
/// `scale` when one whole factor gives both sizes, else `upsample_h` and `upsample_w`.
func writeMaxUnpool(_ ctx: inout CaffeExportContext, _ node: Node) throws {
    guard case .maxUnpool(let oh, let ow) = node.op else { return }
    let sizes = try ctx.featureSizes(node.inputs[0])
    guard sizes.count == 3 else { throw ctx.error("Caffe unpools 4-D blobs only") }
    let (h, w) = (sizes[1], sizes[2])
    let bottoms = [try ctx.bottom(node.inputs[0]), try ctx.bottom(node.inputs[1])]
    ctx.addLayer("Upsample", bottoms: bottoms, outputs: node.outputs) { l in
        if oh % h == 0, ow % w == 0, oh / h == ow / w {
            l.upsampleParam.scale = UInt32(oh / h)
        } else {
            l.upsampleParam.upsampleH = UInt32(oh)
            l.upsampleParam.upsampleW = UInt32(ow)
        }
    }
}
