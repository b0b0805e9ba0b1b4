/// im2col for 2-D convolutions: unfolds an image into the [C·kh·kw, outPlane] matrix that one
/// matrix product with the [M, C·kh·kw] weights turns into the output. A range of output
/// columns (pixels, row-major over the output plane) can be unfolded on its own, so each thread
/// of a convolution unfolds just the columns it then multiplies, while they are in its cache.
/// Each row (c, ky, kx) is built one output-row run at a time: a zero run where the tap reads
/// left padding, a contiguous copy (stride 1) or an even-lane gather of 16-float loads
/// (stride 2) over the interior, a zero run for the right padding; runs whose input row is in
/// the top or bottom padding are zeros.

extension Kernels {
    /// Writes rows (c·kh + ky)·kw + kx of the column matrix for c in `channels`, restricted to
    /// output columns `columns` (all of them by default): row r at `into + r · columns.count`,
    /// every element, zeros included. `input` is one image [C, inHeight, inWidth].
    public static func im2col(_ input: UnsafePointer<Float>, channels: Range<Int>, geometry g: Conv2DGeometry,
                              columns: Range<Int>? = nil, into matrix: UnsafeMutablePointer<Float>) {
        let columns = columns ?? 0..<g.outPlane
        let width = columns.count
        let (sx, ow) = (g.strideX, g.outWidth)
        for c in channels {
            let plane = input + c &* g.inPlane
            for ky in 0..<g.kernelHeight {
                for kx in 0..<g.kernelWidth {
                    let dst = matrix + ((c &* g.kernelHeight &+ ky) &* g.kernelWidth &+ kx) &* width
                    // Output columns ox whose input column ox·sx + shift lies inside the row.
                    let shift = kx &* g.dilationX &- g.padLeft
                    let inside = shift >= 0 ? 0 : (-shift + sx - 1) / sx
                    let insideEnd = g.inWidth - shift <= 0 ? 0 : (g.inWidth - shift + sx - 1) / sx
                    var oy = columns.lowerBound / ow, ox = columns.lowerBound % ow
                    var d = 0
                    while d < width {
                        let run = Swift.min(ow &- ox, width &- d)
                        let out = dst + d  // out[t] is output column ox + t of output row oy
                        let iy = oy &* g.strideY &- g.padTop &+ ky &* g.dilationY
                        if iy < 0 || iy >= g.inHeight {
                            out.update(repeating: 0, count: run)
                        } else {
                            // Run positions first..<end read inside the input row.
                            let first = Swift.min(Swift.max(inside &- ox, 0), run)
                            let end = Swift.max(first, Swift.min(insideEnd &- ox, run))
                            if first > 0 { out.update(repeating: 0, count: first) }
                            copyStrided(plane + (iy &* g.inWidth &+ shift &+ (ox &+ first) &* sx), stride: sx, count: end &- first,
                                        into: out + first)
                            if end < run { (out + end).update(repeating: 0, count: run &- end) }
                        }
                        d &+= run
                        ox = 0
                        oy &+= 1
                    }
                }
            }
        }
    }
}

/// dst[i] = row[i·stride] for i in 0..<count (every read inside the input row).
@inline(__always)
private func copyStrided(_ row: UnsafePointer<Float>, stride: Int, count end: Int, into dst: UnsafeMutablePointer<Float>) {
    var i = 0
    if stride == 1 {
        while i &+ lanes <= end {
            dst.store(row.vector(at: i), at: i)
            i &+= lanes
        }
    } else if stride == 2 {
        // A 16-float load from 2i reads up to 2i + 15, one past the last needed input 2i + 14.
        while i &+ lanes < end {
            dst.store(UnsafeRawPointer(row + 2 &* i).loadUnaligned(as: DoubleWidthVector.self).evenHalf, at: i)
            i &+= lanes
        }
    }
    while i < end {
        dst[i] = row[i &* stride]
        i &+= 1
    }
}
