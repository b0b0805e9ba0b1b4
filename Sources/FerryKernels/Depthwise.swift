/// Direct depthwise 2-D convolution, NCHW, with the epilogue fused per channel.
///
/// Each input channel is first copied into a zero-padded plane (caller scratch) wide enough that
/// every output, borders included, reads only inside it; then each output row is computed 8
/// outputs at a time with no bounds checks: contiguous loads for stride 1, the even lanes of a
/// 16-float load for stride 2. The last group of a row overlaps the one before it (it rewrites
/// the same values) so no output is left to a scalar loop; rows narrower than 8 go through a
/// vector on the stack. Square 3x3 and 5x5 kernels get their tap loops unrolled
/// (`depthwisePlane` is specialized for them); other strides use a scalar loop on the padded plane.

extension Kernels {
    /// Floats of scratch one `depthwiseConv2D` call needs (one per concurrent caller).
    public static func depthwiseScratchCount(_ g: Conv2DGeometry) -> Int {
        let padded = DepthwisePadding(g)
        return padded.height * padded.width
    }

    /// Depthwise convolution of one image: output channel `oc` convolves input channel
    /// `oc / multiplier` with its own kernel `weights[oc]` (ONNX Conv with group == input
    /// channels and M = multiplier · C output channels; W of shape [M, 1, kh, kw]).
    ///
    /// - input: [inputChannels, inHeight, inWidth] of the image.
    /// - output: [inputChannels · multiplier, outHeight, outWidth] of the image; only channels in
    ///   `outputChannels` are written (split this range across threads).
    /// - epilogue: bias per output channel, residual with the output's layout, activation.
    /// - scratch: `depthwiseScratchCount(geometry)` floats, not shared with another thread.
    public static func depthwiseConv2D(input: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                                       output: UnsafeMutablePointer<Float>, multiplier: Int,
                                       outputChannels: Range<Int>, geometry g: Conv2DGeometry,
                                       epilogue: Epilogue, scratch: UnsafeMutablePointer<Float>) {
        let padding = DepthwisePadding(g)
        var paddedChannel = -1
        for oc in outputChannels {
            let ic = oc / multiplier
            if ic != paddedChannel {
                padding.copy(input + ic * g.inPlane, into: scratch, g)
                paddedChannel = ic
            }
            let kernel = weights + oc * g.kernelHeight * g.kernelWidth
            let out = output + oc * g.outPlane
            let plane = UnsafePointer(scratch)
            switch (g.kernelHeight == g.kernelWidth ? g.kernelWidth : 0, g.strideX) {
            case (3, 1): depthwisePlane(plane, kernel, out, g, padding.width, Square3.self, Stride1.self)
            case (3, 2): depthwisePlane(plane, kernel, out, g, padding.width, Square3.self, Stride2.self)
            case (5, 1): depthwisePlane(plane, kernel, out, g, padding.width, Square5.self, Stride1.self)
            case (5, 2): depthwisePlane(plane, kernel, out, g, padding.width, Square5.self, Stride2.self)
            case (_, 1): depthwisePlane(plane, kernel, out, g, padding.width, AnySize.self, Stride1.self)
            case (_, 2): depthwisePlane(plane, kernel, out, g, padding.width, AnySize.self, Stride2.self)
            default: depthwisePlane(plane, kernel, out, g, padding.width, AnySize.self, AnyStride.self)
            }
            applyEpilogue(output, channels: oc..<(oc + 1), planeStride: g.outPlane, offset: 0,
                          count: g.outPlane, epilogue)
        }
    }
}

/// The zero-padded copy of one input plane: input pixel (y, x) at (padTop + y, padLeft + x),
/// wide and tall enough for every vector load of every output.
struct DepthwisePadding {
    let height: Int, width: Int

    init(_ g: Conv2DGeometry) {
        let spanX = (g.kernelWidth - 1) * g.dilationX + 1
        let spanY = (g.kernelHeight - 1) * g.dilationY + 1
        // Vector rows cover at least 8 outputs; the last group starts at max(outWidth, 8) - 8.
        let lastGroup = max(g.outWidth, lanes) - lanes
        let needed: Int
        switch g.strideX {
        case 1: needed = lastGroup + lanes - 1 + spanX
        case 2: needed = 2 * lastGroup + (g.kernelWidth - 1) * g.dilationX + 2 * lanes
        default: needed = (g.outWidth - 1) * g.strideX + spanX
        }
        width = max(g.padLeft + g.inWidth, needed)
        height = max(g.padTop + g.inHeight, (g.outHeight - 1) * g.strideY + spanY)
    }

    func copy(_ source: UnsafePointer<Float>, into plane: UnsafeMutablePointer<Float>, _ g: Conv2DGeometry) {
        plane.update(repeating: 0, count: g.padTop * width)
        for y in 0..<g.inHeight {
            let row = plane + (g.padTop + y) * width
            row.update(repeating: 0, count: g.padLeft)
            (row + g.padLeft).update(from: source + y * g.inWidth, count: g.inWidth)
            (row + g.padLeft + g.inWidth).update(repeating: 0, count: width - g.padLeft - g.inWidth)
        }
        let filled = (g.padTop + g.inHeight) * width
        (plane + filled).update(repeating: 0, count: height * width - filled)
    }
}

/// A square kernel's size known at compile time (so the tap loops unroll), or `AnySize`.
private protocol KernelSize { static func value(_ runtime: Int) -> Int }
private enum Square3: KernelSize { @inline(__always) static func value(_: Int) -> Int { 3 } }
private enum Square5: KernelSize { @inline(__always) static func value(_: Int) -> Int { 5 } }
private enum AnySize: KernelSize { @inline(__always) static func value(_ runtime: Int) -> Int { runtime } }

/// How the vector loop reads 8 inputs for 8 consecutive outputs.
private protocol HorizontalStride { static var value: Int? { get } }
private enum Stride1: HorizontalStride { static var value: Int? { 1 } }
private enum Stride2: HorizontalStride { static var value: Int? { 2 } }
/// Other strides: a scalar loop.
private enum AnyStride: HorizontalStride { static var value: Int? { nil } }

/// One output plane (without the epilogue) from the padded input plane of row length `pw`.
private func depthwisePlane<K: KernelSize, S: HorizontalStride>(
    _ plane: UnsafePointer<Float>, _ kernel: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
    _ g: Conv2DGeometry, _ pw: Int, _: K.Type, _: S.Type
) {
    let kh = K.value(g.kernelHeight), kw = K.value(g.kernelWidth)
    let (dx, dy) = (g.dilationX, g.dilationY)
    let rowStep = dy &* pw
    guard let sx = S.value else {
        let sx = g.strideX
        for oy in 0..<g.outHeight {
            let top = plane + oy &* g.strideY &* pw
            for ox in 0..<g.outWidth {
                var acc: Float = 0
                for ky in 0..<kh {
                    let inRow = top + ky &* rowStep + ox &* sx
                    for kx in 0..<kw { acc += inRow[kx &* dx] * kernel[ky &* kw &+ kx] }
                }
                out[oy &* g.outWidth &+ ox] = acc
            }
        }
        return
    }

    depthwiseRows(plane, kernel, out, g, pw, kh: kh, kw: kw, sx: sx)
}

/// Output rows from the padded plane, two groups of 8 outputs at a time (two independent FMA
/// chains), then single groups, then one overlapping group for the rest of the row.
@inline(__always)
private func depthwiseRows(_ plane: UnsafePointer<Float>, _ taps: UnsafePointer<Float>,
                           _ out: UnsafeMutablePointer<Float>, _ g: Conv2DGeometry, _ pw: Int,
                           kh: Int, kw: Int, sx: Int) {
    let (dx, dy) = (g.dilationX, g.dilationY)
    let rowStep = dy &* pw
    @inline(__always) func load(_ p: UnsafePointer<Float>) -> FloatVector {
        sx == 1 ? p.vector() : UnsafeRawPointer(p).loadUnaligned(as: DoubleWidthVector.self).evenHalf
    }
    /// 8 outputs of the row whose window starts at `top`, from output column `ox`.
    @inline(__always) func group(_ top: UnsafePointer<Float>, _ ox: Int) -> FloatVector {
        let first = top + ox &* sx
        var acc = FloatVector()
        for ky in 0..<kh {
            let inRow = first + ky &* rowStep
            for kx in 0..<kw { acc = acc.addingProduct(load(inRow + kx &* dx), splat(taps[ky &* kw &+ kx])) }
        }
        return acc
    }
    @inline(__always) func twoGroups(_ top: UnsafePointer<Float>, _ ox: Int) -> (FloatVector, FloatVector) {
        let first = top + ox &* sx, second = first + lanes &* sx
        var acc0 = FloatVector(), acc1 = FloatVector()
        for ky in 0..<kh {
            let offset = ky &* rowStep
            for kx in 0..<kw {
                let w = splat(taps[ky &* kw &+ kx])
                acc0 = acc0.addingProduct(load(first + (offset &+ kx &* dx)), w)
                acc1 = acc1.addingProduct(load(second + (offset &+ kx &* dx)), w)
            }
        }
        return (acc0, acc1)
    }

    let ow = g.outWidth
    for oy in 0..<g.outHeight {
        let top = plane + oy &* g.strideY &* pw
        let row = out + oy &* ow
        if ow < lanes {
            storePartial(group(top, 0), row, ow)
            continue
        }
        var ox = 0
        while ox &+ 2 &* lanes <= ow {
            let (a, b) = twoGroups(top, ox)
            row.store(a, at: ox)
            row.store(b, at: ox &+ lanes)
            ox &+= 2 &* lanes
        }
        while ox &+ lanes <= ow {
            row.store(group(top, ox), at: ox)
            ox &+= lanes
        }
        if ox < ow { row.store(group(top, ow &- lanes), at: ow &- lanes) }
    }
}
