/// im2col for 2-D convolutions: unfolds an image into the [C·kh·kw, outPlane] matrix that one
/// `cblas_sgemm` with the [M, C·kh·kw] weights turns into the output. Each row (c, ky, kx) is
/// built output row by output row: a zero run where the tap reads left padding, a contiguous
/// copy (stride 1) or an even-lane gather of 16-float loads (stride 2) over the interior, a zero
/// run for the right padding; rows whose input row is in the top or bottom padding are zeros.

extension Kernels {
    /// Writes rows (c·kh + ky)·kw + kx of the column matrix for c in `channels`, each of
    /// `geometry.outPlane` floats, at `columns + row · outPlane` (every element, zeros included).
    /// `input` is one image [C, inHeight, inWidth]. Split `channels` to use threads.
    public static func im2col(_ input: UnsafePointer<Float>, channels: Range<Int>, geometry g: Conv2DGeometry,
                              into columns: UnsafeMutablePointer<Float>) {
        let (kh, kw, ow) = (g.kernelHeight, g.kernelWidth, g.outWidth)
        let (sx, sy, dx, dy) = (g.strideX, g.strideY, g.dilationX, g.dilationY)
        for c in channels {
            let plane = input + c &* g.inPlane
            for ky in 0..<kh {
                for kx in 0..<kw {
                    var dst = columns + ((c &* kh &+ ky) &* kw &+ kx) &* g.outPlane
                    // Output columns whose input column lies inside: ix = ox·sx - padLeft + kx·dx.
                    let shift = kx &* dx &- g.padLeft
                    let first = min(ow, shift >= 0 ? 0 : (-shift + sx - 1) / sx)
                    let end = max(first, min(ow, g.inWidth - shift <= 0 ? 0 : (g.inWidth - shift + sx - 1) / sx))
                    for oy in 0..<g.outHeight {
                        let iy = oy &* sy &- g.padTop &+ ky &* dy
                        if iy < 0 || iy >= g.inHeight {
                            for i in 0..<ow { dst[i] = 0 }
                        } else {
                            let row = plane + (iy &* g.inWidth &+ shift)
                            for i in 0..<first { dst[i] = 0 }
                            copyStrided(row, stride: sx, from: first, to: end, into: dst)
                            for i in end..<ow { dst[i] = 0 }
                        }
                        dst += ow
                    }
                }
            }
        }
    }
}

/// dst[i] = row[i·stride] for i in first..<end (every read inside the input row).
@inline(__always)
private func copyStrided(_ row: UnsafePointer<Float>, stride: Int, from first: Int, to end: Int,
                         into dst: UnsafeMutablePointer<Float>) {
    var i = first
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
