/// Direct depthwise 2-D convolution, NCHW, with the epilogue fused per channel.
///
/// Each input channel is first copied into a zero-padded plane (caller scratch) wide enough that
/// every output, borders included, reads only inside it; then each output row is computed 8
/// outputs at a time with no bounds checks, every tap one contiguous load (stride-2 planes are
/// stored with even and odd columns apart). The last group of a row overlaps the one before it (it rewrites
/// the same values) so no output is left to a scalar loop; rows narrower than 8 go through a
/// vector on the stack. Square 3x3 and 5x5 kernels get their tap loops unrolled
/// (`depthwisePlane` is specialized for them); other strides use a scalar loop on the padded plane.

extension Kernels {
    /// Floats of scratch one `depthwiseConv2D` call needs (one per concurrent caller).
    public static func depthwiseScratchCount(_ g: Conv2DGeometry) -> Int {
        let padded = DepthwisePadding(g)
        return padded.height * padded.rowLength
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
        let channels = DepthwiseChannels(input: input, weights: weights, output: output, multiplier: multiplier,
                                         outputChannels: outputChannels, geometry: g, scratch: scratch)
        // Bias and activation go into the vector loop's stores while the outputs are in registers
        // (a second pass over each small plane cost as much as the convolution on 7x7 planes); a
        // residual, or the scalar loop of other strides, gets the separate pass afterwards.
        if epilogue.residual == nil, g.strideX <= 2 {
            visitActivation(epilogue.activation, channels.withBias(epilogue.bias))
        } else {
            channels.visit(IdentityActivation())
            applyEpilogue(output, channels: outputChannels, planeStride: g.outPlane, offset: 0, count: g.outPlane, epilogue)
        }
    }
}

/// The channel loop of `depthwiseConv2D`, specialized per activation (applied with `bias` as
/// each vector of outputs is stored).
private struct DepthwiseChannels: ActivationVisitor {
    let input: UnsafePointer<Float>, weights: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>
    let multiplier: Int, outputChannels: Range<Int>, geometry: Conv2DGeometry
    let scratch: UnsafeMutablePointer<Float>
    var bias: UnsafePointer<Float>? = nil

    func withBias(_ bias: UnsafePointer<Float>?) -> DepthwiseChannels {
        var copy = self
        copy.bias = bias
        return copy
    }

    func visit<A: VectorActivation>(_ f: A) {
        let g = geometry
        let padding = DepthwisePadding(g)
        padding.clear(scratch)
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
            let store = FusedStore(bias: splat(bias?[oc] ?? 0), activation: f)
            switch (g.kernelHeight == g.kernelWidth ? g.kernelWidth : 0, g.strideX) {
            case (3, 1): depthwisePlane(plane, kernel, out, g, padding, Square3.self, Stride1.self, store)
            case (3, 2): depthwisePlane(plane, kernel, out, g, padding, Square3.self, Stride2.self, store)
            case (5, 1): depthwisePlane(plane, kernel, out, g, padding, Square5.self, Stride1.self, store)
            case (5, 2): depthwisePlane(plane, kernel, out, g, padding, Square5.self, Stride2.self, store)
            case (_, 1): depthwisePlane(plane, kernel, out, g, padding, AnySize.self, Stride1.self, store)
            case (_, 2): depthwisePlane(plane, kernel, out, g, padding, AnySize.self, Stride2.self, store)
            default: depthwisePlane(plane, kernel, out, g, padding, AnySize.self, AnyStride.self, store)
            }
        }
    }
}

/// What happens to a vector of outputs on its way to memory: + bias, then the activation.
struct FusedStore<A: VectorActivation> {
    let bias: FloatVector
    let activation: A
    @inline(__always) func callAsFunction(_ v: FloatVector) -> FloatVector { activation(v + bias) }
}

/// The zero-padded copy of one input plane: input pixel (y, x) at padded (padTop + y, padLeft + x),
/// wide and tall enough for every vector load of every output. For stride 2 each padded row is
/// stored deinterleaved, even columns then odd ones (column x at (x mod 2)·half + x div 2), so
/// that every tap of 8 stride-2 outputs is one contiguous load.
struct DepthwisePadding {
    /// Rows, padded columns, and the stored length of a row.
    let height: Int, width: Int, rowLength: Int
    let deinterleaved: Bool

    init(_ g: Conv2DGeometry) {
        let spanX = (g.kernelWidth - 1) * g.dilationX + 1
        let spanY = (g.kernelHeight - 1) * g.dilationY + 1
        // Vector rows cover at least 8 outputs; the last group starts at max(outWidth, 8) - 8.
        let lastGroup = max(g.outWidth, lanes) - lanes
        let needed: Int
        switch g.strideX {
        case 1: needed = lastGroup + lanes - 1 + spanX
        case 2: needed = 2 * (lastGroup + lanes) + spanX
        default: needed = (g.outWidth - 1) * g.strideX + spanX
        }
        width = max(g.padLeft + g.inWidth, needed)
        height = max(g.padTop + g.inHeight, (g.outHeight - 1) * g.strideY + spanY)
        deinterleaved = g.strideX == 2
        rowLength = deinterleaved ? 2 * ((width + 1) / 2) : width
    }

    /// Where a tap `offset` columns right of an output's first input column lies, relative to
    /// that output's position in the stored row (the output's own column in a deinterleaved row
    /// is ox, in a plain one ox·stride).
    @inline(__always) func tapOffset(_ offset: Int) -> Int {
        deinterleaved ? (offset & 1) &* (rowLength >> 1) &+ (offset >> 1) : offset
    }

    /// Zeroes the whole padded plane: the padding is the same for every channel, so `copy`
    /// only rewrites the input's cells afterwards.
    func clear(_ plane: UnsafeMutablePointer<Float>) {
        for i in 0..<(height &* rowLength) { plane[i] = 0 }
    }

    /// Writes one input plane's cells into a plane `clear` prepared (or an earlier `copy` of the
    /// same geometry filled).
    func copy(_ source: UnsafePointer<Float>, into plane: UnsafeMutablePointer<Float>, _ g: Conv2DGeometry) {
        let (padLeft, inWidth, rowLength) = (g.padLeft, g.inWidth, rowLength)
        for y in 0..<g.inHeight {
            let row = plane + (g.padTop &+ y) &* rowLength, input = source + y &* inWidth
            if deinterleaved {
                let half = rowLength >> 1
                // 16 inputs at a time: their even and odd lanes go to the two halves (which
                // half gets which depends on the parity of padLeft).
                let evenRow = row + (padLeft & 1) &* half, oddRow = row + (1 &- (padLeft & 1)) &* half
                var x = 0
                while x &+ 2 &* lanes <= inWidth {
                    let chunk = UnsafeRawPointer(input + x).loadUnaligned(as: DoubleWidthVector.self)
                    let column = padLeft &+ x
                    evenRow.store(chunk.evenHalf, at: column >> 1)
                    oddRow.store(chunk.oddHalf, at: (column &+ 1) >> 1)
                    x &+= 2 &* lanes
                }
                while x < inWidth {
                    let column = padLeft &+ x
                    row[(column & 1) &* half &+ (column >> 1)] = input[x]
                    x &+= 1
                }
            } else {
                let target = row + padLeft
                var x = 0
                while x &+ lanes <= inWidth {
                    target.store(input.vector(at: x), at: x)
                    x &+= lanes
                }
                while x < inWidth {
                    target[x] = input[x]
                    x &+= 1
                }
            }
        }
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
private func depthwisePlane<K: KernelSize, S: HorizontalStride, A: VectorActivation>(
    _ plane: UnsafePointer<Float>, _ kernel: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
    _ g: Conv2DGeometry, _ padding: DepthwisePadding, _: K.Type, _: S.Type, _ finish: FusedStore<A>
) {
    let pw = padding.rowLength
    let kh = K.value(g.kernelHeight), kw = K.value(g.kernelWidth)
    let (dx, dy) = (g.dilationX, g.dilationY)
    let rowStep = dy &* pw
    guard let sx = S.value else {
        // Only reached unfused (`depthwiseConv2D` applies the epilogue afterwards for these strides).
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

    if K.self == Square3.self, sx == 1, dx == 1, dy == 1, g.strideY == 1, g.outWidth >= lanes {
        depthwise3x3RowPairs(plane, kernel, out, g, padding, finish)
        return
    }
    depthwiseRows(plane, kernel, out, g, padding, kh: kh, kw: kw, sx: sx, finish)
}

/// 3x3, stride 1, dilation 1: two output rows at a time from their four input rows, the nine
/// taps held in registers. Each output vector is a chain of 9 dependent FMAs (4 cycles each);
/// `depthwiseRows` keeps two chains in flight and so waits on latency, here 2 rows x 4 groups
/// keep 8 in flight, and each loaded input vector feeds both rows.
@inline(__always)
private func depthwise3x3RowPairs<A: VectorActivation>(_ plane: UnsafePointer<Float>, _ taps: UnsafePointer<Float>,
                                                      _ out: UnsafeMutablePointer<Float>, _ g: Conv2DGeometry,
                                                      _ padding: DepthwisePadding, _ finish: FusedStore<A>) {
    let pw = padding.rowLength, ow = g.outWidth
    let w = (splat(taps[0]), splat(taps[1]), splat(taps[2]), splat(taps[3]), splat(taps[4]),
             splat(taps[5]), splat(taps[6]), splat(taps[7]), splat(taps[8]))
    /// Adds input row `row`'s three taps at column x to the upper (taps of kernel row r) and
    /// lower (kernel row r - 1) outputs; r = 0 has no lower, r = 3 no upper.
    @inline(__always) func accumulate(_ row: UnsafePointer<Float>, _ r: Int, _ x: Int,
                                      _ upper: inout FloatVector, _ lower: inout FloatVector) {
        let v0 = row.vector(at: x), v1 = row.vector(at: x &+ 1), v2 = row.vector(at: x &+ 2)
        switch r {
        case 0:
            upper = upper.addingProduct(v0, w.0); upper = upper.addingProduct(v1, w.1); upper = upper.addingProduct(v2, w.2)
        case 1:
            upper = upper.addingProduct(v0, w.3); upper = upper.addingProduct(v1, w.4); upper = upper.addingProduct(v2, w.5)
            lower = lower.addingProduct(v0, w.0); lower = lower.addingProduct(v1, w.1); lower = lower.addingProduct(v2, w.2)
        case 2:
            upper = upper.addingProduct(v0, w.6); upper = upper.addingProduct(v1, w.7); upper = upper.addingProduct(v2, w.8)
            lower = lower.addingProduct(v0, w.3); lower = lower.addingProduct(v1, w.4); lower = lower.addingProduct(v2, w.5)
        default:
            lower = lower.addingProduct(v0, w.6); lower = lower.addingProduct(v1, w.7); lower = lower.addingProduct(v2, w.8)
        }
    }
    let oh = g.outHeight
    var oy = 0
    while oy &+ 2 <= oh {
        let top = plane + oy &* pw
        let upperRow = out + oy &* ow, lowerRow = upperRow + ow
        var ox = 0
        while ox &+ 4 &* lanes <= ow {
            var u0 = FloatVector(), u1 = FloatVector(), u2 = FloatVector(), u3 = FloatVector()
            var l0 = FloatVector(), l1 = FloatVector(), l2 = FloatVector(), l3 = FloatVector()
            for r in 0..<4 {
                let row = top + r &* pw
                accumulate(row, r, ox, &u0, &l0)
                accumulate(row, r, ox &+ lanes, &u1, &l1)
                accumulate(row, r, ox &+ 2 &* lanes, &u2, &l2)
                accumulate(row, r, ox &+ 3 &* lanes, &u3, &l3)
            }
            upperRow.store(finish(u0), at: ox); upperRow.store(finish(u1), at: ox &+ lanes)
            upperRow.store(finish(u2), at: ox &+ 2 &* lanes); upperRow.store(finish(u3), at: ox &+ 3 &* lanes)
            lowerRow.store(finish(l0), at: ox); lowerRow.store(finish(l1), at: ox &+ lanes)
            lowerRow.store(finish(l2), at: ox &+ 2 &* lanes); lowerRow.store(finish(l3), at: ox &+ 3 &* lanes)
            ox &+= 4 &* lanes
        }
        // The rest of the row a vector at a time, the last one overlapping the one before.
        while ox < ow {
            let x = min(ox, ow &- lanes)
            var u = FloatVector(), l = FloatVector()
            for r in 0..<4 { accumulate(top + r &* pw, r, x, &u, &l) }
            upperRow.store(finish(u), at: x)
            lowerRow.store(finish(l), at: x)
            ox = x &+ lanes
        }
        oy &+= 2
    }
    if oy < oh {
        // An odd last row: its fourth input row may lie past the padded plane.
        let top = plane + oy &* pw, row = out + oy &* ow
        var ox = 0
        while ox < ow {
            let x = min(ox, ow &- lanes)
            var u = FloatVector(), unused = FloatVector()
            for r in 0..<3 { accumulate(top + r &* pw, r, x, &u, &unused) }
            row.store(finish(u), at: x)
            ox = x &+ lanes
        }
    }
}

/// Output rows from the padded plane, four groups of 8 outputs at a time (four independent FMA
/// chains), then single groups, then one overlapping group for the rest of the row.
@inline(__always)
private func depthwiseRows<A: VectorActivation>(_ plane: UnsafePointer<Float>, _ taps: UnsafePointer<Float>,
                           _ out: UnsafeMutablePointer<Float>, _ g: Conv2DGeometry, _ padding: DepthwisePadding,
                           kh: Int, kw: Int, sx: Int, _ finish: FusedStore<A>) {
    let (dx, dy) = (g.dilationX, g.dilationY)
    let rowStep = dy &* padding.rowLength
    // Output column ox's first input in the stored row: ox·stride, or ox when deinterleaved.
    let step = padding.deinterleaved ? 1 : sx
    /// 8 outputs of the row whose window starts at `top`, from output column `ox`.
    @inline(__always) func group(_ top: UnsafePointer<Float>, _ ox: Int) -> FloatVector {
        let first = top + ox &* step
        var acc = FloatVector()
        for ky in 0..<kh {
            let inRow = first + ky &* rowStep
            for kx in 0..<kw {
                acc = acc.addingProduct(inRow.vector(at: padding.tapOffset(kx &* dx)), splat(taps[ky &* kw &+ kx]))
            }
        }
        return finish(acc)
    }
    /// Four groups side by side: four FMA chains in flight (two left the FMA units waiting on
    /// latency: 2x3x3 chains took 0.18 ms on 112x112x32, 4 take 0.14).
    @inline(__always) func fourGroups(_ top: UnsafePointer<Float>, _ ox: Int)
        -> (FloatVector, FloatVector, FloatVector, FloatVector) {
        let first = top + ox &* step, groupStep = lanes &* step
        var acc0 = FloatVector(), acc1 = FloatVector(), acc2 = FloatVector(), acc3 = FloatVector()
        for ky in 0..<kh {
            let offset = ky &* rowStep
            for kx in 0..<kw {
                let w = splat(taps[ky &* kw &+ kx])
                let at = offset &+ padding.tapOffset(kx &* dx)
                acc0 = acc0.addingProduct(first.vector(at: at), w)
                acc1 = acc1.addingProduct(first.vector(at: at &+ groupStep), w)
                acc2 = acc2.addingProduct(first.vector(at: at &+ 2 &* groupStep), w)
                acc3 = acc3.addingProduct(first.vector(at: at &+ 3 &* groupStep), w)
            }
        }
        return (finish(acc0), finish(acc1), finish(acc2), finish(acc3))
    }

    let ow = g.outWidth
    for oy in 0..<g.outHeight {
        let top = plane + oy &* g.strideY &* padding.rowLength
        let row = out + oy &* ow
        if ow < lanes {
            // Narrow rows: a full store is fine while its spare lanes land on later rows of this
            // plane, which are written afterwards; near the plane's end they would spill into the
            // next channel's plane (another thread's) or past the tensor, so store only `ow`.
            if oy &* ow &+ lanes <= g.outHeight &* ow { row.store(group(top, 0)) } else { storePartial(group(top, 0), row, ow) }
            continue
        }
        var ox = 0
        while ox &+ 4 &* lanes <= ow {
            let (a, b, c, d) = fourGroups(top, ox)
            row.store(a, at: ox)
            row.store(b, at: ox &+ lanes)
            row.store(c, at: ox &+ 2 &* lanes)
            row.store(d, at: ox &+ 3 &* lanes)
            ox &+= 4 &* lanes
        }
        while ox &+ lanes <= ow {
            row.store(group(top, ox), at: ox)
            ox &+= lanes
        }
        if ox < ow { row.store(group(top, ow &- lanes), at: ow &- lanes) }
    }
}
