import FerryIR

/// Caffe's max-pooling mask and the SegNet / ENet forks' max unpooling (their Upsample layer
/// with a mask bottom), on (N, C, H, W) float32 tensors. The indices are floats, h * W + w
/// within each (n, c) plane, as Caffe stores them.
extension ReferenceKernels {
    /// pooling_layer.cpp's mask: per window (clipped to the input), the index of the first
    /// value larger than every earlier one, scanning rows then columns from -FLT_MAX; -1 when
    /// the window holds no input cell.
    public static func maxPoolIndices(_ x: Tensor, _ attr: PoolAttributes) throws -> Tensor {
        let xv = try x.requireFloats("MaxPoolIndices", "X")
        let type = try Op.maxPoolIndices(attr).inferOutputTypes([x.type])[0]
        guard let outShape = type.shape.fixedSizes else { throw FerryError("MaxPoolIndices of \(x.shape)") }
        let height = x.shape[2], width = x.shape[3], outH = outShape[2], outW = outShape[3]
        let planes = x.shape[0] * x.shape[1]
        var out = [Float](repeating: -1, count: planes * outH * outW)
        for plane in 0..<planes {
            let base = plane * height * width
            for oh in 0..<outH {
                let h0 = oh * attr.strides[0] - attr.pads[0]
                let hs = max(h0, 0), he = min(h0 + attr.kernelShape[0], height)
                for ow in 0..<outW {
                    let w0 = ow * attr.strides[1] - attr.pads[1]
                    let ws = max(w0, 0), we = min(w0 + attr.kernelShape[1], width)
                    var best = -Float.greatestFiniteMagnitude, index = -1
                    for h in stride(from: hs, to: he, by: 1) {
                        for w in stride(from: ws, to: we, by: 1) where xv[base + h * width + w] > best {
                            best = xv[base + h * width + w]
                            index = h * width + w
                        }
                    }
                    out[(plane * outH + oh) * outW + ow] = Float(index)
                }
            }
        }
        return Tensor(shape: outShape, floats: out)
    }

    /// upsample_layer.cpp (two bottoms): zeros, then each value written at its plane index, in
    /// order, so a later value at the same index wins.
    public static func maxUnpool(_ x: Tensor, _ indices: Tensor, outputHeight: Int, outputWidth: Int) throws -> Tensor {
        let xv = try x.requireFloats("MaxUnpool", "values"), iv = try indices.requireFloats("MaxUnpool", "indices")
        guard x.rank == 4, x.shape == indices.shape else {
            throw FerryError("MaxUnpool values \(x.shape) and indices \(indices.shape) must be one 4-D shape")
        }
        let planes = x.shape[0] * x.shape[1], inPlane = x.shape[2] * x.shape[3], outPlane = outputHeight * outputWidth
        var out = [Float](repeating: 0, count: planes * outPlane)
        for plane in 0..<planes {
            for i in 0..<inPlane {
                let raw = iv[plane * inPlane + i]
                guard raw.isFinite, raw >= 0, raw < Float(outPlane) else {
                    throw FerryError("MaxUnpool index \(raw) is outside the \(outputHeight)x\(outputWidth) output plane")
                }
                out[plane * outPlane + Int(raw)] = xv[plane * inPlane + i]
            }
        }
        return Tensor(shape: [x.shape[0], x.shape[1], outputHeight, outputWidth], floats: out)
    }
}
