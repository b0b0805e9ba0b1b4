import FerryIR

/// The interpolations of Keras's image resizing, each `tf.image.resize`'s method of that name
/// (Keras 3 calls it through its TensorFlow backend; other backends resample differently).
enum KerasInterpolation: String, CaseIterable {
    /// Half-pixel centres, two taps per axis, edges repeated: ONNX linear + half_pixel.
    case bilinear
    /// TensorFlow's half-pixel nearest: input cell floor((x + 0.5) * in / out), which is ONNX
    /// half_pixel rounded half up.
    case nearest
    // The rest are weight matrices (ResamplingFilters.swift).
    case bicubic, area, lanczos3, lanczos5, gaussian, mitchellcubic

    init(_ config: ConfigReader, default value: String) throws {
        let name = try config.string("interpolation", default: value)
        guard let i = KerasInterpolation(rawValue: name) else {
            let known = KerasInterpolation.allCases.map(\.rawValue).joined(separator: ", ")
            throw config.error("interpolation '\(name)' is not supported (\(known) are)")
        }
        self = i
    }

    /// The filter of this method, or nil where it is an ONNX Resize. `antialias` widens the
    /// kernel when shrinking; TensorFlow ignores it for nearest and area.
    private func filter(antialias: Bool) -> ResamplingFilter? {
        switch self {
        case .nearest: return nil
        case .area: return .area
        case .bilinear: return antialias ? .scaleAndTranslate(.triangle, antialias: true) : nil
        case .bicubic: return antialias ? .scaleAndTranslate(.keysCubic, antialias: true) : .bicubicTable
        case .lanczos3: return .scaleAndTranslate(.lanczos3, antialias: antialias)
        case .lanczos5: return .scaleAndTranslate(.lanczos5, antialias: antialias)
        case .gaussian: return .scaleAndTranslate(.gaussian, antialias: antialias)
        case .mitchellcubic: return .scaleAndTranslate(.mitchellCubic, antialias: antialias)
        }
    }

    /// Resize of the spatial axes of a channels-first image batch to `size` (height, width),
    /// given as sizes for those axes only so that the batch stays open and no scale is rounded.
    func resize(_ x: IRValue, to size: [Int], antialias: Bool = false, _ ctx: LayerContext) throws -> IRValue {
        if let filter = filter(antialias: antialias) { return try resizeSeparably(x, to: size, with: filter, ctx) }
        let spatial = Array(2..<x.rank)
        let attributes: ResizeAttributes
        if self == .bilinear {
            attributes = ResizeAttributes(mode: .linear, coordinateTransformation: .halfPixel, sizes: size, axes: spatial)
        } else {
            attributes = ResizeAttributes(mode: .nearest, coordinateTransformation: .halfPixel,
                                          nearestMode: .roundPreferCeil, sizes: size, axes: spatial)
        }
        return try ctx.emit(.resize(attributes), [x], role: "resize")
    }
}

/// The channels-first (N, C, H, W) input of an image layer with its known height and width.
private func imageInput(_ t: KerasTensor, _ ctx: LayerContext) throws -> (x: IRValue, height: Int, width: Int) {
    let x = try ctx.channelsFirst(t)
    guard x.rank == 4 else { throw ctx.error("expects a batch of images (N, H, W, C), got a rank-\(x.rank) input") }
    guard let h = x.shape[2].value, let w = x.shape[3].value else {
        throw ctx.error("needs a known image size, the input is \(x.shape) (channels first)")
    }
    return (x, h, w)
}

/// Keras's `crop_to_aspect_ratio` (and `smart_resize`): the largest centred window of the
/// target's aspect ratio, sizes truncated as Keras computes them in single precision.
private func cropToAspect(_ x: IRValue, height: Int, width: Int, target: [Int], _ ctx: LayerContext) throws -> IRValue {
    let cropHeight = max(min(height, Int(Float(width * target[0]) / Float(target[1]))), 1)
    let cropWidth = max(min(width, Int(Float(height * target[1]) / Float(target[0]))), 1)
    if cropHeight == height && cropWidth == width { return x }
    let top = (height - cropHeight) / 2, left = (width - cropWidth) / 2
    return try ctx.emit(.slice(SliceAttributes(starts: [top, left], ends: [top + cropHeight, left + cropWidth], axes: [2, 3])),
                        [x], role: "crop_to_aspect_ratio")
}

/// Reads `height` and `width` of Resizing / CenterCrop.
private func targetSize(_ config: ConfigReader) throws -> [Int] {
    let size = [try config.int("height"), try config.int("width")]
    try requirePositive(size, "height and width", config)
    return size
}

/// Keras 3's `pad_to_aspect_ratio`: rows (or columns) of `fill` added on both sides, as many
/// on each as half the shortfall to the target's aspect ratio (an odd shortfall loses a cell,
/// as Keras pads), sizes computed in single precision as Keras does.
private func padToAspect(_ x: IRValue, height: Int, width: Int, target: [Int], fill: Float, _ ctx: LayerContext) throws -> IRValue {
    let padHeight = max(height, Int(Float(width * target[0]) / Float(target[1])))
    let padWidth = max(width, Int(Float(height * target[1]) / Float(target[0])))
    let top = (padHeight - height) / 2, left = (padWidth - width) / 2
    if top == 0 && left == 0 { return x }
    return try ctx.emit(.pad(PadAttributes(pads: [0, 0, top, left, 0, 0, top, left], value: fill)), [x], role: "pad_to_aspect_ratio")
}

/// Resizing: `tf.image.resize` to (height, width) by any of its methods, after an optional
/// centred crop (or, Keras 3, padding) to the target's aspect ratio.
struct ResizingSpec: KerasLayer {
    var size: [Int]
    var interpolation: KerasInterpolation
    var cropToAspectRatio: Bool
    var padToAspectRatio: Bool
    var fillValue: Float
    var antialias: Bool

    init(config: ConfigReader) throws {
        try requireChannelsLast(config)
        size = try targetSize(config)
        interpolation = try KerasInterpolation(config, default: "bilinear")
        cropToAspectRatio = try config.bool("crop_to_aspect_ratio", default: false)
        padToAspectRatio = try config.bool("pad_to_aspect_ratio", default: false)
        guard !(cropToAspectRatio && padToAspectRatio) else {
            throw config.error("crop_to_aspect_ratio and pad_to_aspect_ratio are both set (Keras allows one)")
        }
        let fillMode = try config.string("fill_mode", default: "constant")
        guard fillMode == "constant" else { throw config.error("fill_mode '\(fillMode)' is not supported (Keras knows only constant)") }
        fillValue = try config.float("fill_value", default: 0)
        antialias = try config.bool("antialias", default: false)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        var (x, h, w) = try imageInput(single(inputs, ctx), ctx)
        if cropToAspectRatio { x = try cropToAspect(x, height: h, width: w, target: size, ctx) }
        if padToAspectRatio { x = try padToAspect(x, height: h, width: w, target: size, fill: fillValue, ctx) }
        return [KerasTensor(channelsFirst: try interpolation.resize(x, to: size, antialias: antialias, ctx))]
    }
}

/// CenterCrop: the centred (height, width) window, the odd cell of the margin at the end; an
/// image smaller than that along either axis is Keras's `smart_resize` instead (crop to the
/// aspect ratio, then bilinear resize).
struct CenterCropSpec: KerasLayer {
    var size: [Int]

    init(config: ConfigReader) throws {
        try requireChannelsLast(config)
        size = try targetSize(config)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        let (x, h, w) = try imageInput(single(inputs, ctx), ctx)
        if h >= size[0] && w >= size[1] {
            let top = (h - size[0]) / 2, left = (w - size[1]) / 2
            let window = SliceAttributes(starts: [top, left], ends: [top + size[0], left + size[1]], axes: [2, 3])
            return [KerasTensor(channelsFirst: try ctx.emit(.slice(window), [x], role: "crop"))]
        }
        let cropped = try cropToAspect(x, height: h, width: w, target: size, ctx)
        return [KerasTensor(channelsFirst: try KerasInterpolation.bilinear.resize(cropped, to: size, ctx))]
    }
}
