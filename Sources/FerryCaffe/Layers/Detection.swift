import Foundation
import FerryIR

/// PriorBox (SSD): the default boxes of a feature map, which depend only on the feature map's
/// and the image's sizes, so they are computed here and become a constant of shape
/// (1, 2, H * W * priors * 4): channel 0 the boxes (xmin, ymin, xmax, ymax, relative to the
/// image), channel 1 their variances. Order per cell: for each min_size, the min box, the
/// sqrt(min * max) box, then one box per aspect ratio other than 1 (and 1/ratio with flip).
func buildPriorBox(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    guard inputs.count == 2 else { throw ctx.error("expects two bottoms (feature map, image), has \(inputs.count)") }
    let p = ctx.layer.priorBoxParam
    let feature = inputs[0], image = inputs[1]
    guard feature.rank == 4, image.rank == 4, let layerH = feature.size(2), let layerW = feature.size(3),
          let imageH0 = image.size(2), let imageW0 = image.size(3) else {
        throw ctx.error("expects 4-D bottoms with known sizes, got \(feature.shape) and \(image.shape)")
    }
    let minSizes = p.minSize.map(Double.init)
    let maxSizes = p.maxSize.map(Double.init)
    guard !minSizes.isEmpty, minSizes.allSatisfy({ $0 > 0 }) else { throw ctx.error("min_size must be given and positive") }
    guard maxSizes.isEmpty || maxSizes.count == minSizes.count else {
        throw ctx.error("\(maxSizes.count) max_size values for \(minSizes.count) min_size values")
    }
    for (lo, hi) in zip(minSizes, maxSizes) where hi <= lo {
        throw ctx.error("max_size \(hi) must be larger than min_size \(lo)")
    }
    var ratios: [Double] = [1]
    for r in p.aspectRatio.map(Double.init) {
        guard r > 0 else { throw ctx.error("aspect_ratio \(r) must be positive") }
        if ratios.contains(where: { abs($0 - r) < 1e-6 }) { continue }
        ratios.append(r)
        if p.flip { ratios.append(1 / r) }
    }
    let variance: [Float]
    switch p.variance.count {
    case 0: variance = [0.1]
    case 1, 4: variance = p.variance
    default: throw ctx.error("variance has \(p.variance.count) values (1 or 4)")
    }
    let imageH = p.hasImgSize ? Double(p.imgSize) : p.hasImgH ? Double(p.imgH) : Double(imageH0)
    let imageW = p.hasImgSize ? Double(p.imgSize) : p.hasImgW ? Double(p.imgW) : Double(imageW0)
    let stepH = p.hasStep ? Double(p.step) : p.hasStepH ? Double(p.stepH) : imageH / Double(layerH)
    let stepW = p.hasStep ? Double(p.step) : p.hasStepW ? Double(p.stepW) : imageW / Double(layerW)
    let offset = Double(p.offset)

    // The boxes are made here, not read from the file: bound their number before making them.
    let perCell = minSizes.count * (1 + (maxSizes.isEmpty ? 0 : 1) + ratios.count - 1)
    guard let cells = checkedElementCount([layerH, layerW, perCell, 8]), cells <= largestMadeConstant else {
        throw ctx.error("a \(layerH) x \(layerW) feature map with \(perCell) priors per cell is too many boxes")
    }
    var boxes: [Float] = []
    boxes.reserveCapacity(cells / 2)
    for h in 0..<layerH {
        for w in 0..<layerW {
            let cx = (Double(w) + offset) * stepW, cy = (Double(h) + offset) * stepH
            func add(_ bw: Double, _ bh: Double) {
                boxes += [Float((cx - bw / 2) / imageW), Float((cy - bh / 2) / imageH),
                          Float((cx + bw / 2) / imageW), Float((cy + bh / 2) / imageH)]
            }
            for (s, minSize) in minSizes.enumerated() {
                add(minSize, minSize)
                if !maxSizes.isEmpty {
                    let size = (minSize * maxSizes[s]).squareRoot()
                    add(size, size)
                }
                for r in ratios where abs(r - 1) >= 1e-6 {
                    add(minSize * r.squareRoot(), minSize / r.squareRoot())
                }
            }
        }
    }
    if p.clip { boxes = boxes.map { min(max($0, 0), 1) } }
    let variances = (0..<(boxes.count / 4)).flatMap { _ in variance.count == 1 ? Array(repeating: variance[0], count: 4) : variance }
    // An Identity of the constant: the layer's own node, so that its record can write it back.
    return [try ctx.emit(.identity, [ctx.constant("priors", shape: [1, 2, boxes.count], boxes + variances)], role: "boxes")]
}

/// DetectionOutput (SSD): bottoms loc, conf (scores, after the net's softmax) and the priors
/// of the PriorBox layers -> the IR's DetectionOutput (decode, per-class NMS, keep_top_k).
/// nms_param's top_k limits each class's candidates before NMS, keep_top_k the image's
/// detections after it; a confidence_threshold left out keeps every score.
func buildDetectionOutput(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    guard inputs.count == 3 else {
        throw ctx.error("expects three bottoms (loc, conf, priors), has \(inputs.count)")
    }
    let p = ctx.layer.detectionOutputParam
    guard p.hasNumClasses, p.numClasses > 0 else { throw ctx.error("num_classes must be given and positive") }
    guard !p.hasSaveOutputParam || p.saveOutputParam.outputDirectory.isEmpty else {
        throw ctx.error("save_output_param writes result files during a run: remove it to import the net")
    }
    let nms = p.nmsParam
    let code: BoxCodeType
    switch p.codeType {
    case .corner: code = .corner
    case .centerSize: code = .centerSize
    case .cornerSize: code = .cornerSize
    }
    let attributes = DetectionOutputAttributes(
        numClasses: Int(p.numClasses), shareLocation: p.shareLocation, backgroundLabelId: Int(p.backgroundLabelID),
        codeType: code, varianceEncodedInTarget: p.varianceEncodedInTarget,
        confidenceThreshold: p.hasConfidenceThreshold ? p.confidenceThreshold : nil,
        nmsThreshold: nms.nmsThreshold, eta: nms.eta,
        topK: nms.hasTopK && nms.topK >= 0 ? Int(nms.topK) : nil,
        keepTopK: p.keepTopK >= 0 ? Int(p.keepTopK) : nil, clip: p.clip)
    return [try ctx.emit(.detectionOutput(attributes), inputs, role: "detections")]
}
