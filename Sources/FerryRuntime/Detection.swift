import FerryIR
import Foundation

/// SSD's DetectionOutput, following Caffe's detection_output_layer.cpp and bbox_util.cpp
/// (weiliu89/caffe, branch `ssd`): decode, per-class greedy NMS, keep the best per image.
extension ReferenceKernels {
    /// A box in normalized image coordinates.
    struct DetectionBox {
        var xmin, ymin, xmax, ymax: Float

        /// Caffe's BBoxSize for normalized boxes: 0 for an inverted box.
        var size: Float {
            xmax < xmin || ymax < ymin ? 0 : (xmax - xmin) * (ymax - ymin)
        }

        /// Caffe's JaccardOverlap (normalized): 0 for disjoint boxes.
        func overlap(_ b: DetectionBox) -> Float {
            if b.xmin > xmax || b.xmax < xmin || b.ymin > ymax || b.ymax < ymin { return 0 }
            let w = Swift.min(xmax, b.xmax) - Swift.max(xmin, b.xmin)
            let h = Swift.min(ymax, b.ymax) - Swift.max(ymin, b.ymin)
            let intersection = w * h
            return intersection / (size + b.size - intersection)
        }
    }

    /// Caffe's DecodeBBox for one prediction against one prior and its variances.
    static func decode(_ p: [Float], prior: DetectionBox, variance v: [Float], _ a: DetectionOutputAttributes) -> DetectionBox {
        let v = a.varianceEncodedInTarget ? [1, 1, 1, 1] : v
        let pw = prior.xmax - prior.xmin, ph = prior.ymax - prior.ymin
        var box: DetectionBox
        switch a.codeType {
        case .corner:
            box = DetectionBox(xmin: prior.xmin + v[0] * p[0], ymin: prior.ymin + v[1] * p[1],
                               xmax: prior.xmax + v[2] * p[2], ymax: prior.ymax + v[3] * p[3])
        case .cornerSize:
            box = DetectionBox(xmin: prior.xmin + v[0] * p[0] * pw, ymin: prior.ymin + v[1] * p[1] * ph,
                               xmax: prior.xmax + v[2] * p[2] * pw, ymax: prior.ymax + v[3] * p[3] * ph)
        case .centerSize:
            let cx = (prior.xmin + prior.xmax) / 2, cy = (prior.ymin + prior.ymax) / 2
            let x = v[0] * p[0] * pw + cx, y = v[1] * p[1] * ph + cy
            let w = Foundation.exp(v[2] * p[2]) * pw, h = Foundation.exp(v[3] * p[3]) * ph
            box = DetectionBox(xmin: x - w / 2, ymin: y - h / 2, xmax: x + w / 2, ymax: y + h / 2)
        }
        if a.clip {
            box = DetectionBox(xmin: Swift.min(Swift.max(box.xmin, 0), 1), ymin: Swift.min(Swift.max(box.ymin, 0), 1),
                               xmax: Swift.min(Swift.max(box.xmax, 0), 1), ymax: Swift.min(Swift.max(box.ymax, 0), 1))
        }
        return box
    }

    /// Caffe's ApplyNMSFast: candidates above the threshold, best first (a stable sort, so
    /// equal scores keep prior order), cut to topK; a candidate is kept when its overlap with
    /// every kept box is at most the (adaptive) threshold.
    static func suppressed(_ boxes: [DetectionBox], scores: [Float], _ a: DetectionOutputAttributes) -> [Int] {
        var candidates = scores.indices.filter { i in a.confidenceThreshold.map { scores[i] > $0 } ?? true }
        candidates = candidates.enumerated().sorted { l, r in
            scores[l.element] != scores[r.element] ? scores[l.element] > scores[r.element] : l.offset < r.offset
        }.map(\.element)
        if let k = a.topK, k >= 0, k < candidates.count { candidates.removeLast(candidates.count - k) }
        var kept: [Int] = []
        var threshold = a.nmsThreshold
        for i in candidates {
            let keep = kept.allSatisfy { boxes[i].overlap(boxes[$0]) <= threshold }
            if keep {
                kept.append(i)
                if a.eta < 1 && threshold > 0.5 { threshold *= a.eta }
            }
        }
        return kept
    }

    /// Inputs loc (N, P * L * 4), conf (N, P * classes) (scores, e.g. after a softmax), priors
    /// (1, 2, P * 4): boxes then variances. Output (1, 1, K, 7) rows (image, label, score,
    /// xmin, ymin, xmax, ymax), by image, label, then descending score; with no detection at
    /// all, one row of -1 per image holding its index (as Caffe).
    public static func detectionOutput(_ loc: Tensor, _ conf: Tensor, _ priors: Tensor,
                                       _ a: DetectionOutputAttributes) throws -> Tensor {
        guard let priorCount = try a.priorCount(loc: Shape(loc.shape), conf: Shape(conf.shape), priors: Shape(priors.shape)),
              loc.shape[0] == conf.shape[0] else {
            throw FerryError("DetectionOutput inputs disagree: loc \(loc.shape), conf \(conf.shape), priors \(priors.shape)")
        }
        let images = loc.shape[0]
        let locs = loc.floats, scores = conf.floats, prior = priors.floats
        let priorBoxes = (0..<priorCount).map { i in
            DetectionBox(xmin: prior[4 * i], ymin: prior[4 * i + 1], xmax: prior[4 * i + 2], ymax: prior[4 * i + 3])
        }
        let variances = (0..<priorCount).map { i in Array(prior[(4 * priorCount + 4 * i)..<(4 * priorCount + 4 * i + 4)]) }
        let classes = a.numClasses, locClasses = a.locationClasses
        var rows: [Float] = []
        var detections = 0
        for n in 0..<images {
            // Boxes per location class (one when shared).
            var boxes: [[DetectionBox]] = []
            for c in 0..<locClasses {
                if !a.shareLocation && c == a.backgroundLabelId {
                    boxes.append([])
                    continue
                }
                boxes.append((0..<priorCount).map { i in
                    let at = ((n * priorCount + i) * locClasses + c) * 4
                    return decode(Array(locs[at..<(at + 4)]), prior: priorBoxes[i], variance: variances[i], a)
                })
            }
            var kept: [(label: Int, index: Int)] = []
            for c in 0..<classes where c != a.backgroundLabelId {
                let classScores = (0..<priorCount).map { scores[(n * priorCount + $0) * classes + c] }
                kept += suppressed(boxes[a.shareLocation ? 0 : c], scores: classScores, a).map { (c, $0) }
            }
            func score(_ d: (label: Int, index: Int)) -> Float { scores[(n * priorCount + d.index) * classes + d.label] }
            if let k = a.keepTopK, k >= 0, kept.count > k {
                kept = Array(kept.enumerated().sorted { l, r in
                    score(l.element) != score(r.element) ? score(l.element) > score(r.element) : l.offset < r.offset
                }.prefix(k).map(\.element))
                // Listed by label, each label's boxes in descending score.
                kept.sort { $0.label != $1.label ? $0.label < $1.label : score($0) > score($1) }
            }
            for d in kept {
                let b = boxes[a.shareLocation ? 0 : d.label][d.index]
                rows += [Float(n), Float(d.label), score(d), b.xmin, b.ymin, b.xmax, b.ymax]
            }
            detections += kept.count
        }
        if detections == 0 {
            rows = (0..<images).flatMap { n in [Float(n)] + Array(repeating: Float(-1), count: 6) }
            return Tensor(shape: [1, 1, images, 7], floats: rows)
        }
        return Tensor(shape: [1, 1, detections, 7], floats: rows)
    }
}
