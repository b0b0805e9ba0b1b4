import FerryIR

/// Resize (opsets 10 to 19) and Upsample (7 to 9).
extension ONNXOpTable {
    /// Opset 10: inputs X, scales; asymmetric coordinates, nearest rounding down (as Upsample).
    /// Opset 11+: X, roi, scales, sizes (scales may be empty when sizes are given), the
    /// coordinate transformation and nearest rounding as attributes; opset 18 adds axes
    /// (scales/sizes for some axes only) and keep_aspect_ratio_policy, and antialias.
    static func Resize(_ n: ONNXNode) throws {
        let xt = try n.inputType(0)
        let rank = xt.shape.rank
        let modeName = try n.string("mode", "nearest")
        guard let mode = ResizeAttributes.Mode(rawValue: modeName) else { throw n.unsupported("mode '\(modeName)'") }
        if n.opset < 11 {
            try n.emit(.resize(ResizeAttributes(mode: mode, coordinateTransformation: .asymmetric, nearestMode: .floor,
                                                scales: try constantScales(n, 1))), [try n.input(0)])
            return
        }
        let transformName = try n.string("coordinate_transformation_mode", "half_pixel")
        guard var transform = ResizeAttributes.CoordinateTransformation(rawValue: transformName) else {
            throw n.unsupported("coordinate_transformation_mode '\(transformName)'")
        }
        let nearestName = try n.string("nearest_mode", "round_prefer_floor")
        guard let nearest = ResizeAttributes.NearestMode(rawValue: nearestName) else {
            throw n.unsupported("nearest_mode '\(nearestName)'")
        }
        if n.opset >= 18 {
            if try n.bool("antialias", false) { throw n.unsupported("antialias=1") }
            let policy = try n.string("keep_aspect_ratio_policy", "stretch")
            if policy != "stretch" { throw n.unsupported("keep_aspect_ratio_policy '\(policy)'") }
        }
        // Axes (opset 18) that the scales or sizes speak of; the others keep their size.
        let axes = try (n.opset >= 18 ? n.ints("axes") : nil).map { list in
            try list.map { a -> Int in
                guard let v = normalizeAxis(a, rank: rank) else { throw FerryError("Resize axis \(a) is out of range for rank \(rank)") }
                return v
            }
        } ?? Array(0..<rank)
        var scales = n.optionalInput(2) == nil ? nil : try constantScales(n, 2)
        if scales?.isEmpty == true { scales = nil }
        var sizes = try n.optionalConstantInts(3, "sizes")
        if sizes?.isEmpty == true { sizes = nil }
        guard (scales == nil) != (sizes == nil) else { throw FerryError("Resize needs exactly one of scales and sizes") }
        if let s = scales {
            guard s.count == axes.count else { throw FerryError("Resize has \(s.count) scales for \(axes.count) axes") }
            var full = Array(repeating: Float(1), count: rank)
            for (i, a) in axes.enumerated() { full[a] = s[i] }
            scales = full
        }
        // Sizes of some axes keep their axes (the other axes may be open, as a batch).
        var sizeAxes: [Int]?
        if let s = sizes {
            guard s.count == axes.count else { throw FerryError("Resize has \(s.count) sizes for \(axes.count) axes") }
            if axes.count != rank {
                let order = axes.indices.sorted { axes[$0] < axes[$1] }
                guard Set(axes).count == axes.count else { throw FerryError("Resize axes \(axes) repeat an axis") }
                sizes = order.map { s[$0] }
                sizeAxes = order.map { axes[$0] }
            }
        }
        // The region of tf_crop_and_resize, for every axis (opset 18's roi covers `axes` only).
        var roi: [Float]?
        if transform == .tfCropAndResize {
            guard n.optionalInput(1) != nil else { throw FerryError("Resize tf_crop_and_resize needs roi") }
            let t = try n.requireConstant(1, "roi")
            guard t.dtype == .float32, t.count == 2 * axes.count else {
                throw FerryError("Resize roi should be \(2 * axes.count) floats (starts, then ends), got \(t)")
            }
            let given = t.floats
            var full = Array(repeating: Float(0), count: rank) + Array(repeating: Float(1), count: rank)
            for (i, a) in axes.enumerated() {
                full[a] = given[i]
                full[rank + a] = given[axes.count + i]
            }
            roi = full
        }
        if transform == .alignCorners, let full = scales,
           let fractional = try fractionalAlignCorners(n, scales: full, dims: xt.shape.dims) {
            (transform, scales, sizes, sizeAxes, roi) = (.tfCropAndResize, nil, fractional.sizes, fractional.axes, fractional.roi)
        }
        let attributes = ResizeAttributes(mode: mode, coordinateTransformation: transform, nearestMode: nearest,
                                          scales: scales, sizes: sizes, cubicCoeffA: try n.float("cubic_coeff_a", -0.75),
                                          excludeOutside: try n.bool("exclude_outside", false), axes: sizeAxes,
                                          roi: roi, extrapolationValue: try n.float("extrapolation_value", 0))
        try n.emit(.resize(attributes), [try n.input(0)])
    }

    /// align_corners maps x to x (n - 1) / (L - 1) with L the resized length. Given scales, ONNX
    /// (its reference implementation and the node tests) takes L = n * scale even where that is
    /// not whole, while the output has floor(L) = m cells; the IR's align_corners divides by
    /// m - 1, as onnxruntime does. Where some L is not whole, the same map is written as
    /// tf_crop_and_resize with the output sizes given and the region [0, (m - 1) / (L - 1)]
    /// (0 where m is 1), whose coordinate start (n - 1) + x (end - start) (n - 1) / (m - 1) is
    /// then x (n - 1) / (L - 1), never past n - 1 (m < L). Nil when every L is whole (to the
    /// scale's float precision: 7 x 2.7142859 is Caffe Interp's 19 cells, written as scales), or
    /// a resized axis's length is not known.
    static func fractionalAlignCorners(_ n: ONNXNode, scales: [Float], dims: [Dim])
        throws -> (sizes: [Int], axes: [Int], roi: [Float])? {
        var sizes: [Int] = [], axes: [Int] = []
        var ends = Array(repeating: Float(1), count: dims.count)
        var whole = true
        for (axis, scale) in scales.enumerated() where scale != 1 {
            guard case .fixed(let length) = dims[axis] else { return nil }
            let resized = Double(length) * Double(scale)
            let m = ResizeAttributes(scales: scales).outputLength(length, axis: axis)
            // A float scale can hold m / n only to its precision: an L that far from m is m
            // (Ferry's and others' writers of an output length m), not a fractional length.
            if abs(resized - Double(m)) > Double(length) * Double(scale.ulp) { whole = false }
            sizes.append(m)
            axes.append(axis)
            // At most 1: where float rounding made m pass the double product (a scale made
            // to give m either way), the map stays inside the input.
            ends[axis] = m > 1 ? Float(min(1, Double(m - 1) / (resized - 1))) : 0
        }
        if whole { return nil }
        return (sizes, axes, Array(repeating: 0, count: dims.count) + ends)
    }

    /// Upsample: scales as an attribute (opset 7) or input (9); asymmetric coordinates, nearest
    /// rounding down. Mode "bilinear" is the old name of linear.
    static func Upsample(_ n: ONNXNode) throws {
        let modeName = try n.string("mode", "nearest")
        let mode: ResizeAttributes.Mode
        switch modeName {
        case "nearest": mode = .nearest
        case "linear", "bilinear": mode = .linear
        default: throw n.unsupported("mode '\(modeName)'")
        }
        let scales: [Float]
        if n.opset < 9 {
            guard let s = try n.floats("scales") else { throw FerryError("Upsample needs scales") }
            scales = s
        } else {
            scales = try constantScales(n, 1)
        }
        try n.emit(.resize(ResizeAttributes(mode: mode, coordinateTransformation: .asymmetric, nearestMode: .floor,
                                            scales: scales)), [try n.input(0)])
    }

    static func constantScales(_ n: ONNXNode, _ i: Int) throws -> [Float] {
        let t = try n.requireConstant(i, "scales")
        guard t.dtype.isFloatingPoint else { throw FerryError("\(n.opType) scales must be floats, got \(t.dtype)") }
        return t.floats
    }
}
