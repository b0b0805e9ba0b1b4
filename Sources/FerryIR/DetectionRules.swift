/// SSD's DetectionOutput (Caffe, weiliu89/caffe branch `ssd`): its attributes and shape rule.

/// How DetectionOutput reads location predictions against the prior boxes.
public enum BoxCodeType: String, Sendable, Hashable, CaseIterable {
    /// Offsets of the corners: prior corner + variance * prediction.
    case corner
    /// Centre offsets scaled by the prior's size, log-scale width and height.
    case centerSize = "center_size"
    /// Offsets of the corners scaled by the prior's width and height.
    case cornerSize = "corner_size"
}

/// DetectionOutput: decodes boxes against priors, keeps per class the scores above
/// `confidenceThreshold` (the `topK` best), suppresses boxes overlapping a better one of the
/// same class by more than `nmsThreshold` (Jaccard overlap of normalized boxes), keeps the
/// `keepTopK` best of an image, and lists them as (1, 1, count, 7) rows
/// (image, label, score, xmin, ymin, xmax, ymax): by image, then label, then score.
public struct DetectionOutputAttributes: Sendable, Hashable {
    public var numClasses: Int
    /// One box per prior for every class (else one per prior and class).
    public var shareLocation: Bool
    /// The class skipped (-1: none).
    public var backgroundLabelId: Int
    public var codeType: BoxCodeType
    /// The predictions already carry the variances (else the priors' variances scale them).
    public var varianceEncodedInTarget: Bool
    /// Scores must exceed it; nil keeps every score (Caffe's -FLT_MAX).
    public var confidenceThreshold: Float?
    public var nmsThreshold: Float
    /// Adaptive NMS: after each kept box the threshold is multiplied by eta while above 0.5.
    public var eta: Float
    /// Candidates per class before NMS (nil: all).
    public var topK: Int?
    /// Detections per image after NMS (nil: all).
    public var keepTopK: Int?
    /// Decoded boxes clipped to [0, 1] (OpenCV's extension of the layer).
    public var clip: Bool

    public init(numClasses: Int, shareLocation: Bool = true, backgroundLabelId: Int = 0, codeType: BoxCodeType = .corner,
                varianceEncodedInTarget: Bool = false, confidenceThreshold: Float? = nil, nmsThreshold: Float = 0.3,
                eta: Float = 1, topK: Int? = nil, keepTopK: Int? = nil, clip: Bool = false) {
        self.numClasses = numClasses
        self.shareLocation = shareLocation
        self.backgroundLabelId = backgroundLabelId
        self.codeType = codeType
        self.varianceEncodedInTarget = varianceEncodedInTarget
        self.confidenceThreshold = confidenceThreshold
        self.nmsThreshold = nmsThreshold
        self.eta = eta
        self.topK = topK
        self.keepTopK = keepTopK
        self.clip = clip
    }

    /// Location classes per prior: 1 when shared, else every class.
    public var locationClasses: Int { shareLocation ? 1 : numClasses }

    /// The number of priors the inputs hold, checking loc (N, P * L * 4), conf (N, P * C) and
    /// priors (1, 2, P * 4) against each other where their sizes are known.
    public func priorCount(loc: Shape, conf: Shape, priors: Shape) throws -> Int? {
        guard numClasses >= 1 else { throw FerryError("DetectionOutput num_classes \(numClasses) must be positive") }
        guard nmsThreshold >= 0, eta > 0, eta <= 1 else {
            throw FerryError("DetectionOutput nms_threshold \(nmsThreshold) must be >= 0 and eta \(eta) in (0, 1]")
        }
        guard loc.rank >= 2, conf.rank >= 2, priors.rank == 3 else {
            throw FerryError("DetectionOutput expects loc (N, P*\(locationClasses)*4), conf (N, P*\(numClasses)) "
                             + "and priors (1, 2, P*4), got \(loc), \(conf), \(priors)")
        }
        func perSample(_ s: Shape) -> Int? {
            s.dims.dropFirst().reduce(Optional(1)) { acc, d in d.value.flatMap { v in acc.map { $0 * v } } }
        }
        var counts: [(String, Int)] = []
        if let n = perSample(loc) {
            guard n % (4 * locationClasses) == 0 else { throw FerryError("DetectionOutput loc holds \(n) values per image, not P*\(locationClasses)*4") }
            counts.append(("loc", n / (4 * locationClasses)))
        }
        if let n = perSample(conf) {
            guard n % numClasses == 0 else { throw FerryError("DetectionOutput conf holds \(n) values per image, not P*\(numClasses)") }
            counts.append(("conf", n / numClasses))
        }
        if let two = priors[1].value, two != 2 { throw FerryError("DetectionOutput priors must be (1, 2, P*4), got \(priors)") }
        if let n = priors[2].value {
            guard n % 4 == 0 else { throw FerryError("DetectionOutput priors hold \(n) values, not P*4") }
            counts.append(("priors", n / 4))
        }
        if let first = counts.first, let other = counts.first(where: { $0.1 != first.1 }) {
            throw FerryError("DetectionOutput \(first.0) has \(first.1) priors but \(other.0) has \(other.1)")
        }
        return counts.first?.1
    }

    /// The output type: (1, 1, detections, 7) float32, the count known only when run.
    public func outputType(loc: TensorType, conf: TensorType, priors: TensorType) throws -> TensorType {
        for t in [loc, conf, priors] where t.dtype != .float32 {
            throw FerryError("DetectionOutput takes float32 inputs, got \(t.dtype)")
        }
        _ = try priorCount(loc: loc.shape, conf: conf.shape, priors: priors.shape)
        return TensorType(.float32, Shape([.fixed(1), .fixed(1), unknownDim, .fixed(7)]))
    }
}
