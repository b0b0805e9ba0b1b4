import FerryIR

/// FerryKernels: the SIMD inner kernels of the fast runtime (issue 7).
///
/// Every kernel is a standalone function over unsafe buffers: it allocates nothing, takes any
/// scratch it needs from the caller (with a function telling the scratch size) and works on a
/// caller-given range (of channels, tile blocks, ...) so that the caller splits the work
/// between threads. Layout is NCHW, float32, one image per call unless stated.
///
/// The target is compiled for AVX2 + FMA on x86_64 (Package.swift); before the first call the
/// runtime must check `ferry_kernels_unsupported_cpu()` (module CFerryCPU, compiled for the
/// generic target) and refuse with its message instead of dying of SIGILL.
///
/// The API:
/// - `Kernels.applyEpilogue`: bias, residual add and activation over NCHW planes, in place; the
///   end of every sgemm-based convolution and Gemm.
/// - `Kernels.activate`, `Kernels.exp`, `Kernels.swish`: elementwise activations.
/// - `Kernels.add`, `Kernels.multiply` (same shape), `Kernels.addPerChannel`,
///   `Kernels.multiplyPerChannel`, `Kernels.scaleShiftPerChannel` (broadcast of [C] or [C,1,1]
///   over NCHW planes).
/// - `Kernels.depthwiseConv2D`: direct depthwise convolution (group == input channels, any
///   multiplier), any kernel/stride/padding/dilation, 3x3 and 5x5 stride 1 and 2 fast.
/// - `Winograd3x3`: F(4x4, 3x3) Winograd convolution for 3x3 stride-1 dilation-1 group-1 convs.
/// - `Kernels.im2col`: the column matrix of a 2-D convolution (pads, strides, dilations) for
///   the im2col + sgemm path, split by channel ranges.
public enum Kernels {}

/// The geometry of a 2-D convolution or pooling window over one image plane.
public struct Conv2DGeometry: Sendable, Hashable {
    public var inHeight: Int, inWidth: Int
    public var kernelHeight: Int, kernelWidth: Int
    public var strideY: Int, strideX: Int
    public var dilationY: Int, dilationX: Int
    public var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    public var outHeight: Int, outWidth: Int

    /// Output sizes are ONNX's floor((in + pads - dilated kernel) / stride) + 1; nil when a
    /// size is not positive or a stride or dilation is below 1.
    public init?(inHeight: Int, inWidth: Int, kernelHeight: Int, kernelWidth: Int,
                 strideY: Int = 1, strideX: Int = 1, dilationY: Int = 1, dilationX: Int = 1,
                 padTop: Int = 0, padLeft: Int = 0, padBottom: Int = 0, padRight: Int = 0) {
        guard strideY >= 1, strideX >= 1, dilationY >= 1, dilationX >= 1, kernelHeight >= 1, kernelWidth >= 1,
              padTop >= 0, padLeft >= 0, padBottom >= 0, padRight >= 0 else { return nil }
        let spanY = (kernelHeight - 1) * dilationY + 1, spanX = (kernelWidth - 1) * dilationX + 1
        let paddedY = inHeight + padTop + padBottom, paddedX = inWidth + padLeft + padRight
        guard inHeight >= 1, inWidth >= 1, paddedY >= spanY, paddedX >= spanX else { return nil }
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideY = strideY
        self.strideX = strideX
        self.dilationY = dilationY
        self.dilationX = dilationX
        self.padTop = padTop
        self.padLeft = padLeft
        self.padBottom = padBottom
        self.padRight = padRight
        outHeight = (paddedY - spanY) / strideY + 1
        outWidth = (paddedX - spanX) / strideX + 1
    }

    /// The geometry of a 2-D Conv node on an input of spatial size [height, width]; nil when the
    /// attributes are not 2-D or give no output.
    public init?(inHeight: Int, inWidth: Int, _ attributes: ConvAttributes) {
        guard attributes.kernelShape.count == 2, attributes.strides.count == 2,
              attributes.dilations.count == 2, attributes.pads.count == 4 else { return nil }
        self.init(inHeight: inHeight, inWidth: inWidth,
                  kernelHeight: attributes.kernelShape[0], kernelWidth: attributes.kernelShape[1],
                  strideY: attributes.strides[0], strideX: attributes.strides[1],
                  dilationY: attributes.dilations[0], dilationX: attributes.dilations[1],
                  padTop: attributes.pads[0], padLeft: attributes.pads[1],
                  padBottom: attributes.pads[2], padRight: attributes.pads[3])
    }

    public var inPlane: Int { inHeight * inWidth }
    public var outPlane: Int { outHeight * outWidth }
}
