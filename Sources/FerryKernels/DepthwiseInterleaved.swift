import FerryIR

/// Depthwise 2-D convolution 8 channels at a time, for small planes.
///
/// The plane-at-a-time kernel (Depthwise.swift) pays per channel: a padded copy, a tap setup and,
/// on planes narrower than two vectors, rows whose vectors are mostly overlap or spare lanes
/// (7x7 planes: 7 of 8 lanes, once per row; 14x14: 16 lanes for 14 outputs). Here a block of 8
/// channels is transposed into one zero-padded plane of 8-channel pixels, so every output pixel
/// is `taps` full-width FMAs with no partial vector anywhere, and the results are transposed
/// back into the block's 8 NCHW planes. The two transposes cost about one instruction per
/// float each way, which the per-channel kernel's overheads exceed on planes up to about 28
/// wide (measured by ferry-bench-kernels' dw cases; the plan picks by output width).
///
/// Weights are packed once (`depthwiseInterleavedWeights`): [block][tap][8 channels], channels
/// past the last one zero. Multiplier 1 only (output channel c reads input channel c).

extension Kernels {
    /// Packed weights for `depthwiseConv2DInterleaved`: W [channels, 1, kh, kw] as
    /// [ceil(channels / 8)][kh·kw][8].
    public static func depthwiseInterleavedWeights(_ weights: UnsafePointer<Float>, channels: Int, taps: Int) -> [Float] {
        let blocks = (channels + lanes - 1) / lanes
        var packed = [Float](repeating: 0, count: blocks * taps * lanes)
        for c in 0..<channels {
            for t in 0..<taps { packed[((c / lanes) * taps + t) * lanes + c % lanes] = weights[c * taps + t] }
        }
        return packed
    }

    /// W [channels, 1, kh, kw] back from `depthwiseInterleavedWeights` (bit for bit: a plan may
    /// release the original once interleaved).
    public static func depthwiseDeinterleavedWeights(_ packed: UnsafePointer<Float>, channels: Int, taps: Int) -> [Float] {
        var weights = [Float](repeating: 0, count: channels * taps)
        for c in 0..<channels {
            for t in 0..<taps { weights[c * taps + t] = packed[((c / lanes) * taps + t) * lanes + c % lanes] }
        }
        return weights
    }

    /// Floats of scratch one concurrent `depthwiseConv2DInterleaved` call needs: the padded
    /// interleaved input plane and the interleaved output plane.
    public static func depthwiseInterleavedScratchCount(_ g: Conv2DGeometry) -> Int {
        let padding = InterleavedPadding(g)
        return (padding.height * padding.width + g.outPlane) * lanes
    }

    /// Depthwise convolution (multiplier 1) of one image, channel blocks `blocks` (block b is
    /// channels 8b ..< min(8b + 8, channels)), with bias per channel and the activation applied
    /// as each output pixel is stored.
    ///
    /// - input: [channels, inHeight, inWidth]; output: [channels, outHeight, outWidth].
    /// - packedWeights: `depthwiseInterleavedWeights` of W.
    /// - scratch: `depthwiseInterleavedScratchCount(geometry)` floats, not shared with another thread.
    public static func depthwiseConv2DInterleaved(input: UnsafePointer<Float>, packedWeights: UnsafePointer<Float>,
                                                  output: UnsafeMutablePointer<Float>, channels: Int, blocks: Range<Int>,
                                                  geometry g: Conv2DGeometry, bias: UnsafePointer<Float>?,
                                                  activation: FusedActivation?, scratch: UnsafeMutablePointer<Float>) {
        visitActivation(activation, InterleavedBlocks(input: input, weights: packedWeights, output: output, channels: channels,
                                                      blocks: blocks, geometry: g, bias: bias, scratch: scratch))
    }
}

/// Where the padded interleaved plane keeps input pixel (y, x): pixel (padTop + y, padLeft + x)
/// of a plane `width` pixels wide, 8 floats per pixel; large enough for every tap of every output.
private struct InterleavedPadding {
    let height: Int, width: Int

    init(_ g: Conv2DGeometry) {
        let spanX = (g.kernelWidth - 1) * g.dilationX + 1, spanY = (g.kernelHeight - 1) * g.dilationY + 1
        width = max(g.padLeft + g.inWidth, (g.outWidth - 1) * g.strideX + spanX)
        height = max(g.padTop + g.inHeight, (g.outHeight - 1) * g.strideY + spanY)
    }
}

/// The window's shape known at compile time, so that every tap's offset from an output pixel is
/// a constant (with runtime strides LLVM keeps one induction variable per tap and pixel, 36 for
/// 3x3, and spills them): square 3x3 or 5x5 with stride 1 or 2 and dilation 1, or any.
private protocol InterleavedWindow {
    static func size(_ runtime: Int) -> Int
    static func stride(_ runtime: Int) -> Int
    static func dilation(_ runtime: Int) -> Int
}
private enum Window<K: FixedCount, S: FixedCount>: InterleavedWindow {
    @inline(__always) static func size(_: Int) -> Int { K.value }
    @inline(__always) static func stride(_: Int) -> Int { S.value }
    @inline(__always) static func dilation(_: Int) -> Int { 1 }
}
private enum AnyWindow: InterleavedWindow {
    @inline(__always) static func size(_ runtime: Int) -> Int { runtime }
    @inline(__always) static func stride(_ runtime: Int) -> Int { runtime }
    @inline(__always) static func dilation(_ runtime: Int) -> Int { runtime }
}
private protocol FixedCount { static var value: Int { get } }
private enum One: FixedCount { static var value: Int { 1 } }
private enum Two: FixedCount { static var value: Int { 2 } }
private enum Three: FixedCount { static var value: Int { 3 } }
private enum Five: FixedCount { static var value: Int { 5 } }

/// The block loop, specialized per activation.
private struct InterleavedBlocks: ActivationVisitor {
    let input: UnsafePointer<Float>, weights: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>
    let channels: Int, blocks: Range<Int>, geometry: Conv2DGeometry
    let bias: UnsafePointer<Float>?
    let scratch: UnsafeMutablePointer<Float>

    func visit<A: VectorActivation>(_ f: A) {
        let g = geometry
        let square = g.kernelHeight == g.kernelWidth ? g.kernelWidth : 0
        let stride = g.strideX == g.strideY ? g.strideX : 0
        switch g.dilationX == 1 && g.dilationY == 1 ? (square, stride) : (0, 0) {
        case (3, 1): run(f, Window<Three, One>.self)
        case (3, 2): run(f, Window<Three, Two>.self)
        case (5, 1): run(f, Window<Five, One>.self)
        case (5, 2): run(f, Window<Five, Two>.self)
        default: run(f, AnyWindow.self)
        }
    }

    @inline(__always)
    private func run<A: VectorActivation, W: InterleavedWindow>(_ f: A, _: W.Type) {
        let g = geometry
        let padding = InterleavedPadding(g)
        let padded = scratch, staged = scratch + padding.height * padding.width * lanes
        // The border is the same zeros for every block: written once, and each block rewrites
        // only the input's pixels.
        for i in 0..<(padding.height * padding.width) { padded.store(FloatVector(), at: i &* lanes) }
        let taps = g.kernelHeight * g.kernelWidth
        for b in blocks {
            let first = b * lanes, count = min(lanes, channels - first)
            fill(padded, padding, from: input + first * g.inPlane, count: count)
            var biasVector = FloatVector()
            if let bias { for j in 0..<count { biasVector[j] = bias[first + j] } }
            convolve(padded, padding, weights + b * taps * lanes, into: staged,
                     FusedStore(bias: biasVector, activation: f), W.self)
            scatter(staged, to: output + first * g.outPlane, count: count)
        }
    }

    /// Writes `count` channel planes (each g.inPlane long) into the padded interleaved plane.
    @inline(__always)
    private func fill(_ padded: UnsafeMutablePointer<Float>, _ padding: InterleavedPadding,
                      from source: UnsafePointer<Float>, count: Int) {
        let g = geometry
        let plane = g.inPlane, inWidth = g.inWidth, rowStep = padding.width &* lanes
        var row = padded + (g.padTop &* padding.width &+ g.padLeft) &* lanes
        var x = 0
        @inline(__always) func put(_ v: FloatVector) {
            row.store(v, at: x &* lanes)
            x &+= 1
            if x == inWidth { x = 0; row += rowStep }
        }
        var p = 0
        if count == lanes {
            while p &+ lanes <= plane {
                let t = transposed((source.vector(at: p), source.vector(at: p &+ plane),
                                    source.vector(at: p &+ 2 &* plane), source.vector(at: p &+ 3 &* plane),
                                    source.vector(at: p &+ 4 &* plane), source.vector(at: p &+ 5 &* plane),
                                    source.vector(at: p &+ 6 &* plane), source.vector(at: p &+ 7 &* plane)))
                put(t.0); put(t.1); put(t.2); put(t.3); put(t.4); put(t.5); put(t.6); put(t.7)
                p &+= lanes
            }
        }
        while p < plane {
            var v = FloatVector()
            for j in 0..<count { v[j] = source[j &* plane &+ p] }
            put(v)
            p &+= 1
        }
    }

    /// Every output pixel of the block, 4 at a time (independent FMA chains), into `staged`
    /// ([outPlane][8]) with bias and activation.
    @inline(__always)
    private func convolve<A: VectorActivation, W: InterleavedWindow>(
        _ padded: UnsafeMutablePointer<Float>, _ padding: InterleavedPadding, _ w: UnsafePointer<Float>,
        into staged: UnsafeMutablePointer<Float>, _ finish: FusedStore<A>, _: W.Type
    ) {
        let g = geometry
        let kh = W.size(g.kernelHeight), kw = W.size(g.kernelWidth)
        let pixelStep = W.stride(g.strideX) &* lanes, tapStep = W.dilation(g.dilationX) &* lanes
        let tapRowStep = W.dilation(g.dilationY) &* padding.width &* lanes
        let rowStride = W.stride(g.strideY)
        let ow = g.outWidth, oh = g.outHeight
        let plane = UnsafePointer(padded)
        let nextRow = rowStride &* padding.width &* lanes
        @inline(__always) func tap(_ ky: Int, _ kx: Int) -> FloatVector { w.vector(at: (ky &* kw &+ kx) &* lanes) }
        // Two output rows at a time, 4 pixels of each: 8 chains of dependent FMAs in flight (4
        // left the FMA units waiting on latency), then single pixels of both rows.
        var oy = 0
        while oy &+ 2 <= oh {
            let top = plane + oy &* nextRow
            let out = staged + oy &* ow &* lanes, below = out + ow &* lanes
            var ox = 0
            while ox &+ 4 <= ow {
                var a0 = FloatVector(), a1 = FloatVector(), a2 = FloatVector(), a3 = FloatVector()
                var b0 = FloatVector(), b1 = FloatVector(), b2 = FloatVector(), b3 = FloatVector()
                let first = top + ox &* pixelStep
                for ky in 0..<kh {
                    let inRow = first + ky &* tapRowStep, inRowBelow = inRow + nextRow
                    for kx in 0..<kw {
                        let t = tap(ky, kx), at = kx &* tapStep
                        a0 = a0.addingProduct(inRow.vector(at: at), t)
                        a1 = a1.addingProduct(inRow.vector(at: at &+ pixelStep), t)
                        a2 = a2.addingProduct(inRow.vector(at: at &+ 2 &* pixelStep), t)
                        a3 = a3.addingProduct(inRow.vector(at: at &+ 3 &* pixelStep), t)
                        b0 = b0.addingProduct(inRowBelow.vector(at: at), t)
                        b1 = b1.addingProduct(inRowBelow.vector(at: at &+ pixelStep), t)
                        b2 = b2.addingProduct(inRowBelow.vector(at: at &+ 2 &* pixelStep), t)
                        b3 = b3.addingProduct(inRowBelow.vector(at: at &+ 3 &* pixelStep), t)
                    }
                }
                out.store(finish(a0), at: ox &* lanes)
                out.store(finish(a1), at: (ox &+ 1) &* lanes)
                out.store(finish(a2), at: (ox &+ 2) &* lanes)
                out.store(finish(a3), at: (ox &+ 3) &* lanes)
                below.store(finish(b0), at: ox &* lanes)
                below.store(finish(b1), at: (ox &+ 1) &* lanes)
                below.store(finish(b2), at: (ox &+ 2) &* lanes)
                below.store(finish(b3), at: (ox &+ 3) &* lanes)
                ox &+= 4
            }
            while ox < ow {
                var a = FloatVector(), b = FloatVector()
                let first = top + ox &* pixelStep
                for ky in 0..<kh {
                    let inRow = first + ky &* tapRowStep, inRowBelow = inRow + nextRow
                    for kx in 0..<kw {
                        let t = tap(ky, kx), at = kx &* tapStep
                        a = a.addingProduct(inRow.vector(at: at), t)
                        b = b.addingProduct(inRowBelow.vector(at: at), t)
                    }
                }
                out.store(finish(a), at: ox &* lanes)
                below.store(finish(b), at: ox &* lanes)
                ox &+= 1
            }
            oy &+= 2
        }
        if oy < oh {
            // An odd last row, a pixel at a time.
            let top = plane + oy &* nextRow
            let out = staged + oy &* ow &* lanes
            for ox in 0..<ow {
                var a = FloatVector()
                let first = top + ox &* pixelStep
                for ky in 0..<kh {
                    let inRow = first + ky &* tapRowStep
                    for kx in 0..<kw { a = a.addingProduct(inRow.vector(at: kx &* tapStep), tap(ky, kx)) }
                }
                out.store(finish(a), at: ox &* lanes)
            }
        }
    }

    /// The interleaved outputs back into `count` NCHW planes.
    @inline(__always)
    private func scatter(_ staged: UnsafeMutablePointer<Float>, to target: UnsafeMutablePointer<Float>, count: Int) {
        let plane = geometry.outPlane
        var p = 0
        if count == lanes {
            while p &+ lanes <= plane {
                let s = staged + p &* lanes
                let t = transposed((s.vector(at: 0), s.vector(at: lanes), s.vector(at: 2 &* lanes), s.vector(at: 3 &* lanes),
                                    s.vector(at: 4 &* lanes), s.vector(at: 5 &* lanes), s.vector(at: 6 &* lanes),
                                    s.vector(at: 7 &* lanes)))
                target.store(t.0, at: p)
                target.store(t.1, at: plane &+ p)
                target.store(t.2, at: 2 &* plane &+ p)
                target.store(t.3, at: 3 &* plane &+ p)
                target.store(t.4, at: 4 &* plane &+ p)
                target.store(t.5, at: 5 &* plane &+ p)
                target.store(t.6, at: 6 &* plane &+ p)
                target.store(t.7, at: 7 &* plane &+ p)
                p &+= lanes
            }
        }
        while p < plane {
            let v = staged.vector(at: p &* lanes)
            for j in 0..<count { target[j &* plane &+ p] = v[j] }
            p &+= 1
        }
    }
}
