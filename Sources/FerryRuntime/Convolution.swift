import FerryIR

/// ONNX Conv (N-D, groups, dilations, explicit asymmetric pads, optional bias), float32,
/// by im2col and one `cblas_sgemm` per image and group.
extension ReferenceKernels {
    public static func conv(_ x: Tensor, _ w: Tensor, _ bias: Tensor?, _ attr: ConvAttributes) throws -> Tensor {
        let xv = try x.requireFloats("Conv", "X")
        let wv = try w.requireFloats("Conv", "W")
        let bv = try bias.map { try $0.requireFloats("Conv", "B") }
        let s = attr.kernelShape.count
        guard s >= 1 else { throw FerryError("Conv needs at least one spatial dimension") }
        guard x.rank == s + 2, w.rank == s + 2 else {
            throw FerryError("Conv with a \(s)-D kernel expects X and W of rank \(s + 2), got \(x.shape) and \(w.shape)")
        }
        guard attr.strides.count == s, attr.dilations.count == s, attr.pads.count == 2 * s else {
            throw FerryError("Conv attribute lengths do not match \(s) spatial dimensions")
        }
        let batch = x.shape[0], cIn = x.shape[1], m = w.shape[0], cg = w.shape[1]
        let group = attr.group
        guard group >= 1, cIn == cg * group, m % group == 0 else {
            throw FerryError("Conv channels do not match: X \(x.shape), W \(w.shape), group \(group)")
        }
        guard Array(w.shape[2...]) == attr.kernelShape else {
            throw FerryError("Conv kernel_shape \(attr.kernelShape) does not match W \(w.shape)")
        }
        if let bias, bias.shape != [m] {
            throw FerryError("Conv bias shape \(bias.shape) should be [\(m)]")
        }
        let inSpatial = Array(x.shape[2...])
        var outSpatial: [Int] = []
        for i in 0..<s {
            outSpatial.append(try windowOutputLength(inSpatial[i], kernel: attr.kernelShape[i], stride: attr.strides[i],
                                                     dilation: attr.dilations[i], padBegin: attr.pads[i],
                                                     padEnd: attr.pads[i + s], ceil: false))
        }
        let outShape = [batch, m] + outSpatial
        let mg = m / group
        let kernelSize = elementCount(attr.kernelShape)
        let inPlane = elementCount(inSpatial)
        let outPlane = elementCount(outSpatial)
        let rows = cg * kernelSize

        // For each spatial axis, kernel tap and output position: the input coordinate, or -1 in padding.
        var taps: [[Int32]] = []
        for i in 0..<s {
            var table = [Int32](repeating: -1, count: attr.kernelShape[i] * outSpatial[i])
            for kk in 0..<attr.kernelShape[i] {
                for o in 0..<outSpatial[i] {
                    let p = o * attr.strides[i] - attr.pads[i] + kk * attr.dilations[i]
                    if p >= 0 && p < inSpatial[i] { table[kk * outSpatial[i] + o] = Int32(p) }
                }
            }
            taps.append(table)
        }
        let inStrides = contiguousStrides(inSpatial)
        let kernelStrides = contiguousStrides(attr.kernelShape)

        var out = [Float](repeating: 0, count: elementCount(outShape))
        var col = [Float](repeating: 0, count: rows * outPlane)
        xv.withUnsafeBufferPointer { xp in
            wv.withUnsafeBufferPointer { wp in
                out.withUnsafeMutableBufferPointer { yp in
                    col.withUnsafeMutableBufferPointer { cp in
                        if let bv {
                            for nn in 0..<batch {
                                for ch in 0..<m {
                                    let v = bv[ch], base = (nn * m + ch) * outPlane
                                    for p in 0..<outPlane { yp[base + p] = v }
                                }
                            }
                        }
                        guard let xBase = xp.baseAddress, !xp.isEmpty, !yp.isEmpty else { return }
                        for nn in 0..<batch {
                            for g in 0..<group {
                                let image = xBase + (nn * cIn + g * cg) * inPlane
                                im2col(image, channels: cg, inPlane: inPlane, kernel: attr.kernelShape,
                                       kernelStrides: kernelStrides, kernelSize: kernelSize,
                                       outSpatial: outSpatial, outPlane: outPlane, inStrides: inStrides,
                                       taps: taps, into: cp)
                                sgemm(transA: false, transB: false, m: mg, n: outPlane, k: rows, alpha: 1,
                                      a: wp.baseAddress.map { $0 + g * mg * rows }, lda: rows,
                                      b: UnsafePointer(cp.baseAddress), ldb: outPlane,
                                      beta: bv == nil ? 0 : 1,
                                      c: yp.baseAddress.map { $0 + (nn * m + g * mg) * outPlane }, ldc: outPlane)
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: outShape, floats: out)
    }

    /// Unfolds one group of one image into a [channels · kernelSize, outPlane] matrix whose row
    /// (c, tap) holds, for every output position, the input cell that tap reads (0 in padding).
    static func im2col(_ image: UnsafePointer<Float>, channels: Int, inPlane: Int, kernel: [Int],
                       kernelStrides: [Int], kernelSize: Int, outSpatial: [Int], outPlane: Int,
                       inStrides: [Int], taps: [[Int32]], into col: UnsafeMutableBufferPointer<Float>) {
        let s = kernel.count
        let innerCount = outSpatial[s - 1]
        let innerStride = inStrides[s - 1]
        let outerCount = outPlane / max(innerCount, 1)
        var tap = Array(repeating: 0, count: s)
        var outer = Array(repeating: 0, count: max(s - 1, 0))
        for c in 0..<channels {
            let plane = image + c * inPlane
            for t in 0..<kernelSize {
                // Kernel tap coordinates of t.
                var rem = t
                for i in 0..<s {
                    tap[i] = rem / kernelStrides[i]
                    rem %= kernelStrides[i]
                }
                var dst = (c * kernelSize + t) * outPlane
                for i in 0..<outer.count { outer[i] = 0 }
                taps[s - 1].withUnsafeBufferPointer { innerTable in
                    let innerRow = tap[s - 1] * innerCount
                    for _ in 0..<outerCount {
                        // Offset of the outer (all but last) coordinates; -1 when any lies in padding.
                        var offset = 0
                        var inside = true
                        for i in 0..<(s - 1) {
                            let p = Int(taps[i][tap[i] * outSpatial[i] + outer[i]])
                            if p < 0 { inside = false; break }
                            offset += p * inStrides[i]
                        }
                        if inside {
                            for o in 0..<innerCount {
                                let p = Int(innerTable[innerRow + o])
                                col[dst + o] = p < 0 ? 0 : plane[offset + p * innerStride]
                            }
                        } else {
                            for o in 0..<innerCount { col[dst + o] = 0 }
                        }
                        dst += innerCount
                        var axis = s - 2
                        while axis >= 0 {
                            outer[axis] += 1
                            if outer[axis] < outSpatial[axis] { break }
                            outer[axis] = 0
                            axis -= 1
                        }
                    }
                }
            }
        }
    }
}

/// ONNX ConvTranspose (N-D, groups, dilations, pads, output_padding, optional bias), float32:
/// one `cblas_sgemm` per image and group gives every (output channel, tap, input cell)
/// product, and col2im adds each where its tap lands in the output.
extension ReferenceKernels {
    public static func convTranspose(_ x: Tensor, _ w: Tensor, _ bias: Tensor?, _ attr: ConvTransposeAttributes) throws -> Tensor {
        let outType = try Op.convTranspose(attr).inferOutputTypes([x.type, w.type, bias?.type])[0]
        let xv = try x.requireFloats("ConvTranspose", "X")
        let wv = try w.requireFloats("ConvTranspose", "W")
        let bv = try bias.map { try $0.requireFloats("ConvTranspose", "B") }
        let outShape = outType.shape.fixedSizes!
        let s = attr.kernelShape.count
        let batch = x.shape[0], cIn = x.shape[1], group = attr.group
        let cg = cIn / group, mg = w.shape[1], m = mg * group
        let inSpatial = Array(x.shape[2...]), outSpatial = Array(outShape[2...])
        let inPlane = elementCount(inSpatial), outPlane = elementCount(outSpatial)
        let kernelSize = elementCount(attr.kernelShape)
        let rows = mg * kernelSize

        // For each spatial axis, kernel tap and input position: the output coordinate, or -1
        // where it falls in the cut-off padding.
        var lands: [[Int]] = []
        for i in 0..<s {
            var table = [Int](repeating: -1, count: attr.kernelShape[i] * inSpatial[i])
            for k in 0..<attr.kernelShape[i] {
                for p in 0..<inSpatial[i] {
                    let o = p * attr.strides[i] - attr.pads[i] + k * attr.dilations[i]
                    if o >= 0 && o < outSpatial[i] { table[k * inSpatial[i] + p] = o }
                }
            }
            lands.append(table)
        }
        let outStrides = contiguousStrides(outSpatial)
        // Output offset of every (tap, input position), -1 when it falls outside.
        var targets = [Int](repeating: -1, count: kernelSize * inPlane)
        for t in 0..<kernelSize {
            var rem = t
            var tap = [Int](repeating: 0, count: s)
            for i in stride(from: s - 1, through: 0, by: -1) {
                tap[i] = rem % attr.kernelShape[i]
                rem /= attr.kernelShape[i]
            }
            for p in 0..<inPlane {
                var prem = p, offset = 0, inside = true
                for i in stride(from: s - 1, through: 0, by: -1) {
                    let coord = prem % inSpatial[i]
                    prem /= inSpatial[i]
                    let o = lands[i][tap[i] * inSpatial[i] + coord]
                    if o < 0 { inside = false; break }
                    offset += o * outStrides[i]
                }
                if inside { targets[t * inPlane + p] = offset }
            }
        }

        var out = [Float](repeating: 0, count: elementCount(outShape))
        var col = [Float](repeating: 0, count: rows * inPlane)
        xv.withUnsafeBufferPointer { xp in
            wv.withUnsafeBufferPointer { wp in
                out.withUnsafeMutableBufferPointer { yp in
                    col.withUnsafeMutableBufferPointer { cp in
                        for nn in 0..<batch {
                            for g in 0..<group {
                                // col[(co, tap), p] = sum over c of W[c, co, tap] * X[c, p].
                                sgemm(transA: true, transB: false, m: rows, n: inPlane, k: cg, alpha: 1,
                                      a: wp.baseAddress.map { $0 + g * cg * rows }, lda: rows,
                                      b: xp.baseAddress.map { $0 + (nn * cIn + g * cg) * inPlane }, ldb: inPlane,
                                      beta: 0, c: cp.baseAddress, ldc: inPlane)
                                for co in 0..<mg {
                                    let plane = (nn * m + g * mg + co) * outPlane
                                    if let bv { for q in 0..<outPlane { yp[plane + q] = bv[g * mg + co] } }
                                    for t in 0..<kernelSize {
                                        let row = (co * kernelSize + t) * inPlane, target = t * inPlane
                                        for p in 0..<inPlane {
                                            let o = targets[target + p]
                                            if o >= 0 { yp[plane + o] += cp[row + p] }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: outShape, floats: out)
    }
}
