import Foundation
import FerryIR

/// TensorFlow's image resampling (`tf.image.resize`, which Keras's Resizing and UpSampling2D
/// call) for the methods ONNX Resize does not state, as one weight matrix per spatial axis:
/// output cell o of an axis is the sum over i of `weights[o][i] * input[i]`. Every method is
/// separable, so an image is resized by two MatMuls with these constants.
///
/// The arithmetic follows TensorFlow's kernels in single precision (scales, sample positions,
/// kernel arguments), because the comparisons at the edge of a kernel's support (a Gaussian
/// tap exactly 1.5 cells away has weight 0 there) and the rounding of ResizeBicubic's table
/// index decide which weights exist.
enum ResamplingFilter: Hashable {
    /// ResizeBicubic with half-pixel centres: Keys' cubic (a = -0.5) with the fraction of the
    /// sample position rounded to 1/1024 (TensorFlow reads a table), taps outside the image
    /// dropped and the rest renormalized. Not ONNX cubic: the rounding alone moves results by
    /// about 1e-3 of the input's range.
    case bicubicTable
    /// ResizeArea: each output cell the mean of the input cells its box [o, o + 1) * in / out
    /// covers, weighted by the covered fraction (no half-pixel offset).
    case area
    /// ScaleAndTranslate (lanczos3/5, gaussian, mitchellcubic, and bilinear/bicubic with
    /// antialias): the kernel sampled at half-pixel centres, taps renormalized; with
    /// antialias the kernel is widened by in / out when shrinking.
    case scaleAndTranslate(SamplingKernel, antialias: Bool)

    /// The (outSize, inSize) weights, row-major.
    func weights(from inSize: Int, to outSize: Int) -> [Float] {
        switch self {
        case .bicubicTable: return bicubicWeights(inSize, outSize)
        case .area: return areaWeights(inSize, outSize)
        case .scaleAndTranslate(let kernel, let antialias):
            return scaleAndTranslateWeights(kernel, antialias: antialias, inSize, outSize)
        }
    }
}

/// The kernels of TensorFlow's ScaleAndTranslate (its sampling_kernels), of |x| in cells.
enum SamplingKernel: Hashable {
    case triangle, keysCubic, mitchellCubic, lanczos3, lanczos5, gaussian

    var radius: Float {
        switch self {
        case .triangle: return 1
        case .keysCubic, .mitchellCubic: return 2
        case .lanczos3: return 3
        case .lanczos5: return 5
        case .gaussian: return 1.5
        }
    }

    func callAsFunction(_ value: Float) -> Float {
        let x = abs(value)
        switch self {
        case .triangle:
            return x < 1 ? 1 - x : 0
        case .keysCubic:
            if x >= 2 { return 0 }
            if x >= 1 { return ((-0.5 * x + 2.5) * x - 4) * x + 2 }
            return ((1.5 * x - 2.5) * x) * x + 1
        case .mitchellCubic:
            // B = C = 1/3.
            if x >= 2 { return 0 }
            if x >= 1 { return (((-7.0 / 18.0) * x + 2) * x - 10.0 / 3.0) * x + 16.0 / 9.0 }
            return (((7.0 / 6.0) * x - 2) * x) * x + 8.0 / 9.0
        case .lanczos3, .lanczos5:
            let r = radius
            if x > r { return 0 }
            if x <= 1e-3 { return 1 }  // the limit of sin(x) / x
            let pi: Float = 3.14159265359
            return r * sin(pi * x) * sin(pi * x / r) / (pi * pi * x * x)
        case .gaussian:
            // sigma = radius / 3; the support is open at the radius.
            if x >= radius { return 0 }
            let sigma = Double(radius / 3)
            return Float(exp(Double(-x * x) / (2 * sigma * sigma)))
        }
    }
}

/// Divides a row's taps by their sum unless it is (nearly) zero, as TensorFlow does.
private func normalized(_ taps: [(index: Int, weight: Float)], into row: inout ArraySlice<Float>) {
    let total = taps.reduce(Float(0)) { $0 + $1.weight }
    guard abs(total) >= 1000 * Float.leastNormalMagnitude else { return }
    let inverse = 1 / total
    for t in taps { row[row.startIndex + t.index] += t.weight * inverse }
}

private func scaleAndTranslateWeights(_ kernel: SamplingKernel, antialias: Bool, _ inSize: Int, _ outSize: Int) -> [Float] {
    var weights = [Float](repeating: 0, count: outSize * inSize)
    let scale = Float(outSize) / Float(inSize)
    let inverseScale = Float(1.0 / Double(scale))
    let kernelScale: Float = antialias ? max(inverseScale, 1) : 1
    let inverseKernelScale = Float(1.0 / Double(kernelScale))
    let reach = kernel.radius * kernelScale
    for o in 0..<outSize {
        let sample = (Float(o) + 0.5) * inverseScale
        guard sample >= 0, sample <= Float(inSize) else { continue }
        let first = min(max(Int((sample - reach - 0.5).rounded(.up)), 0), inSize - 1)
        let last = min(max(Int((sample + reach - 0.5).rounded(.down)), 0), inSize - 1)
        let taps = (first...last).map { i in (index: i, weight: kernel(abs((Float(i) + 0.5 - sample) * inverseKernelScale))) }
        normalized(taps, into: &weights[(o * inSize)..<((o + 1) * inSize)])
    }
    return weights
}

private func bicubicWeights(_ inSize: Int, _ outSize: Int) -> [Float] {
    let tableSize = 1024
    let a = -0.5
    // Keys' cubic at distance t (0 <= t <= 1) and 1 + t, as TensorFlow tabulates it.
    func near(_ i: Int) -> Float { let x = Double(Float(Double(i) / Double(tableSize))); return Float(((a + 2) * x - (a + 3)) * x * x + 1) }
    func far(_ i: Int) -> Float {
        let x = Double(Float(Double(i) / Double(tableSize))) + 1
        return Float(((a * x - 5 * a) * x + 8 * a) * x - 4 * a)
    }
    var weights = [Float](repeating: 0, count: outSize * inSize)
    let scale = Float(inSize) / Float(outSize)
    for o in 0..<outSize {
        let position = (Float(o) + 0.5) * scale - 0.5
        let cell = Int(position.rounded(.down))
        let offset = Int(((position - Float(cell)) * Float(tableSize)).rounded(.toNearestOrEven))
        let candidates = [(cell - 1, far(offset)), (cell, near(offset)), (cell + 1, near(tableSize - offset)),
                          (cell + 2, far(tableSize - offset))]
        let taps = candidates.filter { $0.0 >= 0 && $0.0 < inSize }.map { (index: $0.0, weight: $0.1) }
        normalized(taps, into: &weights[(o * inSize)..<((o + 1) * inSize)])
    }
    return weights
}

private func areaWeights(_ inSize: Int, _ outSize: Int) -> [Float] {
    var weights = [Float](repeating: 0, count: outSize * inSize)
    let scale = Float(inSize) / Float(outSize)
    for o in 0..<outSize {
        let start = Float(o) * scale, end = Float(o + 1) * scale
        for i in Int(start.rounded(.down))..<Int(end.rounded(.up)) {
            let covered: Float
            if Float(i) < start {
                covered = Float(i + 1) > end ? scale : Float(i + 1) - start
            } else {
                covered = Float(i + 1) > end ? end - Float(i) : 1
            }
            weights[o * inSize + min(max(i, 0), inSize - 1)] += covered / scale
        }
    }
    return weights
}

/// Resizes the last two axes of a channels-first image batch with `filter`: a MatMul by the
/// transposed width weights, then the height weights times that (both broadcast over batch
/// and channels). An axis whose weights are the identity is left alone.
func resizeSeparably(_ x: IRValue, to size: [Int], with filter: ResamplingFilter, _ ctx: LayerContext) throws -> IRValue {
    guard x.rank == 4, let height = x.shape[2].value, let width = x.shape[3].value else {
        throw ctx.error("needs a batch of images of known size, the input is \(x.shape) (channels first)")
    }
    for (from, to) in [(height, size[0]), (width, size[1])] {
        guard let count = checkedElementCount([from, to]), count <= largestMadeConstant else {
            throw ctx.error("resizing \(from) cells to \(to) needs a weight matrix too large to make (over \(largestMadeConstant) elements)")
        }
    }
    func isIdentity(_ w: [Float], _ n: Int, _ m: Int) -> Bool {
        n == m && (0..<n).allSatisfy { o in (0..<n).allSatisfy { w[o * n + $0] == (o == $0 ? 1 : 0) } }
    }
    var y = x
    let widthWeights = filter.weights(from: width, to: size[1])
    if !isIdentity(widthWeights, width, size[1]) {
        let transposed = permuted(Tensor(shape: [size[1], width], floats: widthWeights), [1, 0])
        y = try ctx.emit(.matMul, [y, ctx.constant("width_weights", transposed)], role: "resize_width")
    }
    let heightWeights = filter.weights(from: height, to: size[0])
    if !isIdentity(heightWeights, height, size[0]) {
        let weights = ctx.constant("height_weights", Tensor(shape: [size[0], height], floats: heightWeights))
        y = try ctx.emit(.matMul, [weights, y], role: "resize_height")
    }
    return y
}
