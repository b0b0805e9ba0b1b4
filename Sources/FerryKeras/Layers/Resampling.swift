import FerryIR

/// The interpolations of Keras's image resizing (`tf.image.resize` without antialiasing) that
/// ONNX Resize states exactly.
enum KerasInterpolation: String {
    /// Half-pixel centres, two taps per axis, edges repeated: ONNX linear + half_pixel.
    case bilinear
    /// TensorFlow's half-pixel nearest: input cell floor((x + 0.5) * in / out), which is ONNX
    /// half_pixel rounded half up.
    case nearest

    init(_ config: ConfigReader, default value: String) throws {
        let name = try config.string("interpolation", default: value)
        guard let i = KerasInterpolation(rawValue: name) else {
            throw config.error("interpolation '\(name)' is not supported (bilinear and nearest are)")
        }
        self = i
    }

    /// Resize of the spatial axes of a channels-first image batch to `size` (height, width),
    /// given as sizes for those axes only so that the batch stays open and no scale is rounded.
    func resize(_ x: IRValue, to size: [Int], _ ctx: LayerContext) throws -> IRValue {
        let spatial = Array(2..<x.rank)
        let attributes: ResizeAttributes
        switch self {
        case .bilinear:
            attributes = ResizeAttributes(mode: .linear, coordinateTransformation: .halfPixel, sizes: size, axes: spatial)
        case .nearest:
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
/// target's aspect ratio, sizes truncated as Keras computes them in floating point.
private func cropToAspect(_ x: IRValue, height: Int, width: Int, target: [Int], _ ctx: LayerContext) throws -> IRValue {
    let cropHeight = max(min(height, Int(Double(width * target[0]) / Double(target[1]))), 1)
    let cropWidth = max(min(width, Int(Double(height * target[1]) / Double(target[0]))), 1)
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

/// Resizing: `tf.image.resize` to (height, width), bilinear or nearest, after an optional
/// centred crop to the target's aspect ratio.
struct ResizingSpec: KerasLayer {
    var size: [Int]
    var interpolation: KerasInterpolation
    var cropToAspectRatio: Bool

    init(config: ConfigReader) throws {
        try requireChannelsLast(config)
        size = try targetSize(config)
        interpolation = try KerasInterpolation(config, default: "bilinear")
        cropToAspectRatio = try config.bool("crop_to_aspect_ratio", default: false)
        guard try !config.bool("pad_to_aspect_ratio", default: false) else {
            throw config.error("pad_to_aspect_ratio is not supported")
        }
        // Antialiasing widens the filter when shrinking; ONNX Resize has it only from opset 18.
        guard try !config.bool("antialias", default: false) else { throw config.error("antialias is not supported") }
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        var (x, h, w) = try imageInput(single(inputs, ctx), ctx)
        if cropToAspectRatio { x = try cropToAspect(x, height: h, width: w, target: size, ctx) }
        return [KerasTensor(channelsFirst: try interpolation.resize(x, to: size, ctx))]
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
