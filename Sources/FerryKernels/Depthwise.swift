/// Direct depthwise 2-D convolution, NCHW, with the epilogue fused per output row.
///
/// Each output row splits into a left border, an interior where every tap of the row lies
/// inside the input (computed 8 outputs at a time: contiguous loads for stride 1, even lanes of
/// a 16-float load for stride 2), and a right border computed one output at a time. Rows whose
/// taps fall in the top or bottom padding just skip those kernel rows. 3x3 and 5x5 get their
/// tap loops unrolled by constant propagation (`depthwiseRows` is inlined with a literal width).

extension Kernels {
    /// Depthwise convolution of one image: output channel `oc` convolves input channel
    /// `oc / multiplier` with its own kernel `weights[oc]` (ONNX Conv with group == input
    /// channels and M = multiplier · C output channels; W of shape [M, 1, kh, kw]).
    ///
    /// - input: [inputChannels, inHeight, inWidth] of the image.
    /// - output: [inputChannels · multiplier, outHeight, outWidth] of the image; only channels in
    ///   `outputChannels` are written (split this range across threads).
    /// - epilogue: bias per output channel, residual with the output's layout, activation.
    public static func depthwiseConv2D(input: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                                       output: UnsafeMutablePointer<Float>, multiplier: Int,
                                       outputChannels: Range<Int>, geometry g: Conv2DGeometry,
                                       epilogue: Epilogue) {
        for oc in outputChannels {
            let plane = input + (oc / multiplier) * g.inPlane
            let kernel = weights + oc * g.kernelHeight * g.kernelWidth
            let out = output + oc * g.outPlane
            switch (g.kernelHeight, g.kernelWidth) {
            case (3, 3): depthwiseRows(plane, kernel, out, g, kh: 3, kw: 3)
            case (5, 5): depthwiseRows(plane, kernel, out, g, kh: 5, kw: 5)
            default: depthwiseRows(plane, kernel, out, g, kh: g.kernelHeight, kw: g.kernelWidth)
            }
            applyEpilogue(output, channels: oc..<(oc + 1), planeStride: g.outPlane, offset: 0,
                          count: g.outPlane, epilogue)
        }
    }
}

@inline(__always) private func ceilDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? (a + b - 1) / b : -((-a) / b) }
@inline(__always) private func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }

/// One channel's plane: output rows without the epilogue.
@inline(__always)
private func depthwiseRows(_ plane: UnsafePointer<Float>, _ kernel: UnsafePointer<Float>,
                           _ out: UnsafeMutablePointer<Float>, _ g: Conv2DGeometry, kh: Int, kw: Int) {
    let (sx, dx, dy) = (g.strideX, g.dilationX, g.dilationY)
    let width = g.inWidth
    // Interior: ox with every tap inside the row, i.e. 0 <= ox·sx - padLeft and
    // ox·sx - padLeft + (kw-1)·dx <= width - 1.
    let interiorStart = min(g.outWidth, ceilDiv(g.padLeft, sx))
    let interiorEnd = max(interiorStart, min(g.outWidth, floorDiv(width - 1 + g.padLeft - (kw - 1) * dx, sx) + 1))
    // Vector groups of 8 outputs read lanes·sx floats from the last tap's start (stride 2 loads
    // 16 and keeps the even ones), so they also need that much room before the row's end.
    let vectorEnd: Int
    switch sx {
    case 1: vectorEnd = interiorEnd
    case 2: vectorEnd = max(interiorStart, min(interiorEnd, floorDiv(width - 2 * lanes + g.padLeft - (kw - 1) * dx, 2) + lanes))
    default: vectorEnd = interiorStart
    }

    for oy in 0..<g.outHeight {
        let iyBase = oy * g.strideY - g.padTop
        let row = out + oy * g.outWidth
        // Kernel rows inside the input.
        let kyStart = max(0, ceilDiv(-iyBase, dy))
        let kyEnd = min(kh, floorDiv(g.inHeight - 1 - iyBase, dy) + 1)

        @inline(__always) func scalarOutput(_ ox: Int) {
            let ixBase = ox * sx - g.padLeft
            var acc: Float = 0
            if kyStart < kyEnd {
                for ky in kyStart..<kyEnd {
                    let inRow = plane + (iyBase + ky * dy) * width
                    for kx in 0..<kw {
                        let ix = ixBase + kx * dx
                        if ix >= 0 && ix < width { acc += inRow[ix] * kernel[ky * kw + kx] }
                    }
                }
            }
            row[ox] = acc
        }

        for ox in 0..<interiorStart { scalarOutput(ox) }
        var ox = interiorStart
        if kyStart < kyEnd {
            while ox + lanes <= vectorEnd {
                let ixBase = ox * sx - g.padLeft
                var acc = FloatVector()
                for ky in kyStart..<kyEnd {
                    let inRow = plane + (iyBase + ky * dy) * width + ixBase
                    let taps = kernel + ky * kw
                    for kx in 0..<kw {
                        let v: FloatVector
                        if sx == 1 {
                            v = inRow.vector(at: kx * dx)
                        } else {
                            v = UnsafeRawPointer(inRow + kx * dx).loadUnaligned(as: SIMD16<Float>.self).evenHalf
                        }
                        acc = acc.addingProduct(v, taps[kx])
                    }
                }
                row.store(acc, at: ox)
                ox += lanes
            }
        }
        while ox < interiorEnd {
            // Interior outputs left over from the vector loop: every tap's column is inside.
            let ixBase = ox * sx - g.padLeft
            var acc: Float = 0
            if kyStart < kyEnd {
                for ky in kyStart..<kyEnd {
                    let inRow = plane + (iyBase + ky * dy) * width + ixBase
                    for kx in 0..<kw { acc += inRow[kx * dx] * kernel[ky * kw + kx] }
                }
            }
            row[ox] = acc
            ox += 1
        }
        for ox in interiorEnd..<g.outWidth { scalarOutput(ox) }
    }
}
