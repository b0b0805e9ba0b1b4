import FerryIR

/// Convolution geometry read from a ConvolutionParameter: repeated kernel_size / pad / stride /
/// dilation (one value for every spatial axis, or one per axis) or the 2-D `_h`/`_w` forms.
struct ConvGeometry {
    var kernel: [Int]
    var pads: [Int]
    var strides: [Int]
    var dilations: [Int]

    init(_ p: Caffe_ConvolutionParameter, spatial: Int, _ ctx: CaffeContext) throws {
        func perAxis(_ values: [UInt32], _ name: String, default d: Int) throws -> [Int] {
            switch values.count {
            case 0: return Array(repeating: d, count: spatial)
            case 1: return Array(repeating: Int(values[0]), count: spatial)
            case spatial: return values.map { Int($0) }
            default: throw ctx.error("\(name) has \(values.count) values for \(spatial) spatial axes")
            }
        }
        if p.hasKernelH || p.hasKernelW {
            guard spatial == 2, p.hasKernelH, p.hasKernelW, p.kernelSize.isEmpty else {
                throw ctx.error("kernel_h and kernel_w go together, on 2-D inputs, without kernel_size")
            }
            kernel = [Int(p.kernelH), Int(p.kernelW)]
        } else {
            guard !p.kernelSize.isEmpty else { throw ctx.error("kernel_size is not set") }
            kernel = try perAxis(p.kernelSize, "kernel_size", default: 1)
        }
        if p.hasPadH || p.hasPadW {
            guard spatial == 2, p.pad.isEmpty else { throw ctx.error("pad_h/pad_w go with 2-D inputs, without pad") }
            let hw = [Int(p.padH), Int(p.padW)]
            pads = hw + hw
        } else {
            let p1 = try perAxis(p.pad, "pad", default: 0)
            pads = p1 + p1
        }
        if p.hasStrideH || p.hasStrideW {
            guard spatial == 2, p.stride.isEmpty else { throw ctx.error("stride_h/stride_w go with 2-D inputs, without stride") }
            strides = [Int(p.hasStrideH ? p.strideH : 1), Int(p.hasStrideW ? p.strideW : 1)]
        } else {
            strides = try perAxis(p.stride, "stride", default: 1)
        }
        dilations = try perAxis(p.dilation, "dilation", default: 1)
        guard kernel.allSatisfy({ $0 > 0 }), strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 }) else {
            throw ctx.error("kernel \(kernel), stride \(strides) and dilation \(dilations) must be positive")
        }
        guard kernel.allSatisfy({ $0 <= 1 << 16 }), pads.allSatisfy({ $0 <= 1 << 16 }),
              strides.allSatisfy({ $0 <= 1 << 16 }), dilations.allSatisfy({ $0 <= 1 << 16 }) else {
            throw ctx.error("kernel, pad, stride or dilation is implausibly large")
        }
    }
}

/// Convolution (and the depthwise forks' DepthwiseConvolution / ConvolutionDepthwise, which are
/// a convolution grouped by input channel) -> Conv. Weights (M, C/group, k...), bias (M).
func buildConvolution(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.convolutionParam
    guard p.axis == 1 else { throw ctx.error("convolution over axis \(p.axis) is not supported (only 1)") }
    guard x.rank >= 3, let channels = x.size(1) else {
        throw ctx.error("expects an input (N, C, spatial...) with known channels, got \(x.shape)")
    }
    let spatial = x.rank - 2
    let geometry = try ConvGeometry(p, spatial: spatial, ctx)
    let outputs = Int(p.numOutput)
    guard outputs > 0 else { throw ctx.error("num_output must be positive") }
    var group = Int(p.group)
    if ctx.layer.type != "Convolution" && group <= 1 { group = channels }
    guard group >= 1, channels % group == 0, outputs % group == 0 else {
        throw ctx.error("group \(group) must divide the input channels \(channels) and num_output \(outputs)")
    }
    let w = try ctx.weight(0, role: "weight", shape: [outputs, channels / group] + geometry.kernel)
    let b = p.biasTerm ? try ctx.weight(1, role: "bias", shape: [outputs]) : nil
    let attributes = ConvAttributes(kernelShape: geometry.kernel, strides: geometry.strides, pads: geometry.pads,
                                    dilations: geometry.dilations, group: group)
    return [try ctx.emit(.conv(attributes), [x, w, b], role: "conv")]
}

/// InnerProduct: y = x W^T + b over the input flattened from `axis`. The weight is (N, K), or
/// (K, N) with `transpose: true`. Axis 1 becomes Flatten + Gemm; other axes Reshape + MatMul + Add.
func buildInnerProduct(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.innerProductParam
    let axis = try caffeAxis(p.axis, rank: x.rank, ctx)
    let outputs = Int(p.numOutput)
    guard outputs > 0 else { throw ctx.error("num_output must be positive") }
    guard let sizes = Shape(Array(x.shape.dims[axis...])).fixedSizes, let k = checkedElementCount(sizes), k > 0 else {
        throw ctx.error("the input's dimensions from axis \(axis) must be known, non-zero and of a product within Int's range, got \(x.shape)")
    }
    let wShape = p.transpose ? [k, outputs] : [outputs, k]
    var w = try ctx.blob(0, role: "weight", shape: wShape)
    let bias = p.biasTerm ? try ctx.blob(1, role: "bias", shape: [outputs]) : nil
    if axis == 1 {
        let flat = x.rank == 2 ? x : try ctx.emit(.flatten(axis: 1), [x], role: "flatten")
        let b = bias.map { ctx.constant("bias", $0) }
        return [try ctx.emit(.gemm(GemmAttributes(transB: !p.transpose)), [flat, ctx.constant("weight", w), b], role: "gemm")]
    }
    // (..., K) x (K, N): the weight is stored as MatMul wants it when transposed.
    if !p.transpose { w = transposed2D(w) }
    let reshaped = try ctx.emit(.reshape(shape: Array(repeating: 0, count: axis) + [-1]), [x], role: "flatten")
    var y = try ctx.emit(.matMul, [reshaped, ctx.constant("weight", w)], role: "matmul")
    if let bias { y = try ctx.emit(.add, [y, ctx.constant("bias", bias)], role: "bias") }
    return [y]
}

func transposed2D(_ t: Tensor) -> Tensor {
    let (r, c) = (t.shape[0], t.shape[1])
    let src = t.floats
    var out = [Float](repeating: 0, count: src.count)
    for i in 0..<r { for j in 0..<c { out[j * r + i] = src[i * c + j] } }
    return Tensor(shape: [c, r], floats: out)
}

/// Pooling MAX / AVE -> MaxPool / AveragePool. Caffe rounds the output size up and drops a last
/// window that would start in the padding (the IR's ceil mode does the same); AVE divides by the
/// window clipped to the padded input (count_include_pad). `round_mode: FLOOR` rounds down.
/// Unpadded windows wholly past the input (kernel < stride) are appended as Caffe fills them.
/// global_pooling -> GlobalMaxPool / GlobalAveragePool.
func buildPooling(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.poolingParam
    guard x.rank == 4 else { throw ctx.error("pooling expects a 4-D input (N, C, H, W), got \(x.shape)") }
    let isMax: Bool
    switch p.pool {
    case .max: isMax = true
    case .ave: isMax = false
    case .stochastic: throw ctx.error("STOCHASTIC pooling is not supported")
    }
    // A second top is the MAX pooling mask (plane indices of the maxima) that the SegNet / ENet
    // forks' Upsample reads.
    let withMask = ctx.layer.top.count == 2
    guard !withMask || (isMax && !p.globalPooling) else {
        throw ctx.error("a second top (the pooling mask) needs MAX pooling with a kernel")
    }
    if p.globalPooling {
        guard !(p.hasKernelSize || p.hasKernelH || p.hasKernelW) else {
            throw ctx.error("global_pooling takes no kernel size")
        }
        return [try ctx.emit(isMax ? .globalMaxPool : .globalAveragePool, [x], role: isMax ? "global_maxpool" : "global_avgpool")]
    }
    let kernel: [Int]
    if p.hasKernelH || p.hasKernelW {
        guard p.hasKernelH, p.hasKernelW, !p.hasKernelSize else { throw ctx.error("kernel_h and kernel_w go together, without kernel_size") }
        kernel = [Int(p.kernelH), Int(p.kernelW)]
    } else {
        guard p.hasKernelSize else { throw ctx.error("kernel_size is not set") }
        kernel = [Int(p.kernelSize), Int(p.kernelSize)]
    }
    let pad = p.hasPadH || p.hasPadW ? [Int(p.padH), Int(p.padW)] : [Int(p.pad), Int(p.pad)]
    let strides = p.hasStrideH || p.hasStrideW
        ? [Int(p.hasStrideH ? p.strideH : 1), Int(p.hasStrideW ? p.strideW : 1)] : [Int(p.stride), Int(p.stride)]
    guard kernel.allSatisfy({ $0 > 0 && $0 <= 1 << 16 }), strides.allSatisfy({ $0 > 0 && $0 <= 1 << 16 }) else {
        throw ctx.error("kernel \(kernel) and stride \(strides) must be positive")
    }
    guard pad[0] < kernel[0], pad[1] < kernel[1] else {
        throw ctx.error("pad \(pad) must be smaller than the kernel \(kernel)")
    }
    let ceil = p.roundMode == .ceil
    // Caffe's averages count pad cells; a maximum has nothing to count (false, as an ONNX
    // MaxPool reads: a record's MaxPool then matches the same node read back from ONNX).
    let attributes = PoolAttributes(kernelShape: kernel, strides: strides, pads: pad + pad, ceilMode: ceil,
                                    countIncludePad: !isMax)
    var outputs = [try ctx.emit(isMax ? .maxPool(attributes) : .averagePool(attributes), [x], role: isMax ? "maxpool" : "avgpool")]
    if withMask { outputs.append(try ctx.emit(.maxPoolIndices(attributes), [x], role: "mask")) }
    // Caffe drops a last window starting in the padding only when there is padding. Without
    // it, a kernel smaller than the stride can leave windows wholly past the input, which
    // Caffe keeps (the IR drops them): they hold -FLT_MAX (MAX starts there) or 0 (AVE's empty
    // sum), and -1 in the mask, appended at the end of the axis.
    guard ceil, pad == [0, 0] else { return outputs }
    let pooled = outputs[0]
    var extra = [0, 0]
    for i in 0..<2 {
        guard let n = x.size(2 + i), let have = pooled.size(2 + i) else { continue }
        let caffe = Int((Float(n - kernel[i]) / Float(strides[i])).rounded(.up)) + 1
        extra[i] = max(0, caffe - have)
    }
    if extra == [0, 0] { return outputs }
    let fills: [Float] = [isMax ? -Float.greatestFiniteMagnitude : 0, -1]
    return try zip(outputs, fills).enumerated().map { i, pair in
        try ctx.emit(.pad(PadAttributes(pads: [0, 0, 0, 0, 0, 0] + extra, value: pair.1)), [pair.0],
                     role: i == 0 ? "empty_windows" : "empty_mask_windows")
    }
}

/// Deconvolution -> ConvTranspose. Caffe stores the weight as (C_in, num_output / group, k...),
/// ONNX's ConvTranspose layout; the output size is stride * (H - 1) + dilated kernel - 2 * pad.
func buildDeconvolution(_ ctx: CaffeContext, _ inputs: [IRValue]) throws -> [IRValue] {
    let x = try single(inputs, ctx)
    let p = ctx.layer.convolutionParam
    guard p.axis == 1 else { throw ctx.error("deconvolution over axis \(p.axis) is not supported (only 1)") }
    guard x.rank >= 3, let channels = x.size(1) else {
        throw ctx.error("expects an input (N, C, spatial...) with known channels, got \(x.shape)")
    }
    let geometry = try ConvGeometry(p, spatial: x.rank - 2, ctx)
    let outputs = Int(p.numOutput)
    let group = Int(p.group)
    guard outputs > 0, group >= 1, channels % group == 0, outputs % group == 0 else {
        throw ctx.error("group \(group) must divide the input channels \(channels) and num_output \(outputs)")
    }
    let w = try ctx.weight(0, role: "weight", shape: [channels, outputs / group] + geometry.kernel)
    let b = p.biasTerm ? try ctx.weight(1, role: "bias", shape: [outputs]) : nil
    let attributes = ConvTransposeAttributes(kernelShape: geometry.kernel, strides: geometry.strides,
                                             pads: geometry.pads, dilations: geometry.dilations, group: group)
    return [try ctx.emit(.convTranspose(attributes), [x, w, b], role: "deconv")]
}
