import FerryIR

/// Small IR graphs for the exporter tests.
enum Graphs {
    /// Deterministic pseudo-random floats in [-1, 1).
    static func floats(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed &* 6364136223846793005 &+ 1442695040888963407
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2000 - 1000) / 1000
        }
    }

    static let nhwcInput = TensorType(.float32, Shape([.symbolic("N"), .fixed(6), .fixed(5), .fixed(3)]))

    /// A Keras-like NHWC image classifier: Transpose -> Conv (asymmetric pads, stride 2 in H)
    /// -> Relu -> MaxPool -> AveragePool (padded, count_include_pad 0) -> GlobalAveragePool
    /// -> Flatten -> Gemm -> Softmax.
    static func cnn() throws -> Graph {
        var b = GraphBuilder(name: "tiny_cnn", metadata: ["source_format": "keras", "keras_version": "2.15.0"])
        let x = b.addInput("input", nhwcInput)
        let t = b.add(.transpose(perm: [0, 3, 1, 2]), inputs: [x], output: "input_nchw",
                      origin: Origin(layer: "conv1", type: "Conv2D"))
        let w = b.addInitializer("conv1_W", Tensor(shape: [4, 3, 3, 3], floats: floats(108, seed: 1)))
        let bias = b.addInitializer("conv1_B", Tensor(shape: [4], floats: floats(4, seed: 2)))
        let conv = b.add(.conv(ConvAttributes(kernelShape: [3, 3], strides: [2, 1], pads: [1, 0, 2, 1])),
                         inputs: [t, w, bias], output: "conv1", origin: Origin(layer: "conv1", type: "Conv2D"))
        let relu = b.add(.relu, inputs: [conv], output: "conv1_relu", origin: Origin(layer: "conv1", type: "Conv2D"))
        let mp = b.add(.maxPool(PoolAttributes(kernelShape: [2, 2])), inputs: [relu], output: "pool1",
                       origin: Origin(layer: "pool1", type: "MaxPooling2D"))
        let ap = b.add(.averagePool(PoolAttributes(kernelShape: [2, 2], pads: [1, 1, 0, 0], countIncludePad: false)),
                       inputs: [mp], output: "pool2", origin: Origin(layer: "pool2", type: "AveragePooling2D"))
        let gap = b.add(.globalAveragePool, inputs: [ap], output: "gap", origin: Origin(layer: "gap", type: "GlobalAveragePooling2D"))
        let flat = b.add(.flatten(axis: 1), inputs: [gap], output: "flat", origin: Origin(layer: "gap", type: "GlobalAveragePooling2D"))
        let dw = b.addInitializer("dense_W", Tensor(shape: [5, 4], floats: floats(20, seed: 3)))
        let db = b.addInitializer("dense_B", Tensor(shape: [5], floats: floats(5, seed: 4)))
        let gemm = b.add(.gemm(GemmAttributes(alpha: 1, beta: 1, transB: true)), inputs: [flat, dw, db], output: "dense",
                         origin: Origin(layer: "dense", type: "Dense"))
        let sm = b.add(.softmax(axis: -1), inputs: [gemm], output: "probs", origin: Origin(layer: "dense", type: "Dense"))
        b.addOutput(sm)
        return try b.finish()
    }

    /// Reshape (with 0 and -1) and numpy broadcasting in Add / Mul / Sub / Div, then MatMul.
    static func broadcast() throws -> Graph {
        var b = GraphBuilder(name: "broadcast", metadata: ["source_format": "test"])
        let x = b.addInput("x", TensorType(.float32, Shape([.symbolic("N"), .fixed(12)])))
        let r = b.add(.reshape(shape: [0, 3, 4]), inputs: [x], output: "r", origin: Origin(layer: "reshape", type: "Reshape"))
        let bias = b.addInitializer("bias", Tensor(shape: [4], floats: [0.5, -1, 2, 0.25]))
        let add = b.add(.add, inputs: [r, bias], output: "plus", origin: Origin(layer: "plus", type: "Add"))
        let scale = b.addInitializer("scale", Tensor(shape: [3, 1], floats: [2, -0.5, 3]))
        let mul = b.add(.mul, inputs: [add, scale], output: "times", origin: Origin(layer: "times", type: "Multiply"))
        let sub = b.add(.sub, inputs: [mul, r], output: "minus", origin: Origin(layer: "minus", type: "Subtract"))
        let two = b.addInitializer("two", Tensor(shape: [], floats: [2]))
        let div = b.add(.div, inputs: [sub, two], output: "half", origin: Origin(layer: "half", type: "Lambda"))
        let m = b.addInitializer("m", Tensor(shape: [4, 2], floats: floats(8, seed: 5)))
        let mm = b.add(.matMul, inputs: [div, m], output: "mm", origin: Origin(layer: "mm", type: "Dot"))
        let out = b.add(.reshape(shape: [0, -1]), inputs: [mm], output: "y", origin: Origin(layer: "flat", type: "Reshape"))
        b.addOutput(out)
        return try b.finish()
    }

    /// The broadcast graph's output computed directly (row-major x of shape [n, 12]).
    static func broadcastReference(_ x: [Float], n: Int) -> [Float] {
        let bias: [Float] = [0.5, -1, 2, 0.25], scale: [Float] = [2, -0.5, 3]
        let m = floats(8, seed: 5)
        var y: [Float] = []
        for b in 0..<n {
            for i in 0..<3 {
                var row = [Float](repeating: 0, count: 4)
                for j in 0..<4 {
                    let v = x[b * 12 + i * 4 + j]
                    row[j] = ((v + bias[j]) * scale[i] - v) / 2
                }
                for k in 0..<2 {
                    var s: Float = 0
                    for j in 0..<4 { s += row[j] * m[j * 2 + k] }
                    y.append(s)
                }
            }
        }
        return y
    }

    /// Every op of the IR in one graph. `coreOnly` leaves out the ops added since the first
    /// exporter (elementwise math, activations, normalization): the ONNX importer's round trip
    /// reads that graph until its op table has them.
    static func everyOp(coreOnly: Bool = false) throws -> Graph {
        var b = GraphBuilder(name: "every_op", metadata: ["source_format": "test"])
        func o(_ name: String, _ type: String) -> Origin { Origin(layer: name, type: type) }
        let x = b.addInput("image", TensorType(.float32, Shape([.symbolic("batch"), .fixed(3), .fixed(9), .fixed(8)])))
        let w = b.addInitializer("w", Tensor(shape: [6, 1, 3, 3], floats: floats(54, seed: 6)))
        let conv = b.add(.conv(ConvAttributes(kernelShape: [3, 3], strides: [1, 2], pads: [0, 1, 1, 0],
                                              dilations: [2, 1], group: 3)),
                         inputs: [x, w, ""], output: "conv", origin: o("conv", "Conv2D"))
        let lrelu = b.add(.leakyRelu(alpha: 0.1), inputs: [conv], output: "lrelu", origin: o("lrelu", "LeakyReLU"))
        let mp = b.add(.maxPool(PoolAttributes(kernelShape: [2, 3], strides: [2, 2], pads: [0, 1, 1, 1], ceilMode: true)),
                       inputs: [lrelu], output: "mp", origin: o("mp", "Pooling"))
        let ap = b.add(.averagePool(PoolAttributes(kernelShape: [2, 2], strides: [1, 1], pads: [1, 1, 1, 1],
                                                   ceilMode: true, countIncludePad: true)),
                       inputs: [mp], output: "ap", origin: o("ap", "Pooling"))
        let sig = b.add(.sigmoid, inputs: [ap], output: "sig", origin: o("sig", "Sigmoid"))
        let gmp = b.add(.globalMaxPool, inputs: [sig], output: "gmp", origin: o("gmp", "GlobalMaxPooling2D"))
        let gap = b.add(.globalAveragePool, inputs: [ap], output: "gap", origin: o("gap", "GlobalAveragePooling2D"))
        let sum = b.add(.add, inputs: [gmp, gap], output: "sum", origin: o("sum", "Add"))
        let flat = b.add(.flatten(axis: -3), inputs: [sum], output: "flat", origin: o("flat", "Flatten"))
        let gw = b.addInitializer("gw", Tensor(shape: [6, 4], floats: floats(24, seed: 7)))
        let gemm = b.add(.gemm(GemmAttributes(alpha: 0.5, beta: 1)), inputs: [flat, gw], output: "gemm", origin: o("fc", "Dense"))
        let th = b.add(.tanh, inputs: [gemm], output: "th", origin: o("th", "Tanh"))
        let r = b.add(.reshape(shape: [-1, 2, 2]), inputs: [th], output: "r", origin: o("r", "Reshape"))
        let tr = b.add(.transpose(perm: [0, 2, 1]), inputs: [r], output: "tr", origin: o("tr", "Permute"))
        let mw = b.addInitializer("mw", Tensor(shape: [2, 3], floats: floats(6, seed: 8)))
        let mm = b.add(.matMul, inputs: [tr, mw], output: "mm", origin: o("mm", "Dot"))
        let relu = b.add(.relu, inputs: [mm], output: "relu", origin: o("relu", "ReLU"))
        let one = b.addInitializer("one", Tensor(shape: [1], floats: [1]))
        let sub = b.add(.sub, inputs: [relu, one], output: "sub", origin: o("sub", "Subtract"))
        let mul = b.add(.mul, inputs: [sub, sub], output: "mul", origin: o("mul", "Multiply"))
        let dv = b.addInitializer("dv", Tensor(shape: [3], floats: [1, 2, 4]))
        let div = b.add(.div, inputs: [mul, dv], output: "div", origin: o("div", "Lambda"))
        let sm = b.add(.softmax(axis: 1), inputs: [div], output: "softmax", origin: o("softmax", "Softmax"))
        let id = b.add(.identity, inputs: [sm], output: "out", origin: o("out", "Activation"))
        b.addOutput(id)
        b.addOutput(gemm)
        if !coreOnly { addElementwiseOps(&b) }
        return try b.finish()
    }

    /// The second input of the every-op graph, read by the elementwise and normalization ops.
    static let features = TensorType(.float32, Shape([.symbolic("batch"), .fixed(4), .fixed(3), .fixed(5)]))

    /// Elementwise math and activations on a second input `features`; every result is a graph
    /// output, so a difference points at one op.
    static func addElementwiseOps(_ b: inout GraphBuilder) {
        func o(_ name: String, _ type: String) -> Origin { Origin(layer: name, type: type) }
        let x = b.addInput("features", features)
        func output(_ op: Op, _ inputs: [String], _ name: String) -> String {
            let v = b.add(op, inputs: inputs, output: name, origin: o(name, op.name))
            b.addOutput(v)
            return v
        }
        let three = b.addInitializer("three", Tensor(shape: [], floats: [3]))
        let x3 = b.add(.mul, inputs: [x, three], output: "x3", origin: o("x3", "Mul"))
        for (op, name) in [(Op.abs, "abs"), (.neg, "neg"), (.exp, "exp"), (.erf, "erf"), (.softsign, "softsign"),
                           (.hardSwish, "hard_swish"), (.mish, "mish"), (.gelu(approximate: false), "gelu"),
                           (.gelu(approximate: true), "gelu_tanh"), (.elu(alpha: 0.7), "elu"),
                           (.selu(alpha: 1.6732632, gamma: 1.050701), "selu"), (.hardSigmoid(alpha: 0.3, beta: 0.4), "hard_sigmoid"),
                           (.thresholdedRelu(alpha: 0.5), "thresholded_relu"), (.clip(min: -0.5, max: 1), "clip"),
                           (.clip(min: nil, max: 0.25), "clip_max"), (.logSoftmax(axis: 1), "log_softmax")] as [(Op, String)] {
            _ = output(op, [x3], name)
        }
        _ = output(.floor, [x3], "floor")
        _ = output(.ceil, [x3], "ceil")
        // Log, Sqrt, Reciprocal and Pow's base on positive values.
        let positive = output(.softplus, [x3], "softplus")
        _ = output(.log, [positive], "log")
        _ = output(.sqrt, [positive], "sqrt")
        _ = output(.reciprocal, [positive], "reciprocal")
        _ = output(.pow, [positive, x], "pow")
        let slope = b.addInitializer("slope", Tensor(shape: [4, 1, 1], floats: [0.1, 0.2, -0.3, 0.4]))
        _ = output(.prelu, [x3, slope], "prelu")
        let plane = b.addInitializer("plane", Tensor(shape: [3, 5], floats: floats(15, seed: 12)))
        for (op, name) in [(Op.max, "max"), (.min, "min"), (.sum, "sum"), (.mean, "mean")] as [(Op, String)] {
            _ = output(op, [x3, plane, slope], name)
        }
        _ = output(.mean, [x], "mean_of_one")
        let scale = b.addInitializer("bn_scale", Tensor(shape: [4], floats: [1, -0.5, 2, 0.75]))
        let bias = b.addInitializer("bn_bias", Tensor(shape: [4], floats: [0, 0.5, -1, 0.25]))
        let mean = b.addInitializer("bn_mean", Tensor(shape: [4], floats: [0.2, -0.1, 0, 0.3]))
        let variance = b.addInitializer("bn_var", Tensor(shape: [4], floats: [0.5, 1, 2, 0.25]))
        _ = output(.batchNormalization(epsilon: 1e-3), [x3, scale, bias, mean, variance], "batch_norm")
        addNormalizationAndReductionOps(&b, x3)
    }

    /// Normalizations, reductions and ArgMax / ArgMin of `x` ([batch, 4, 3, 5]); every result
    /// is a graph output.
    static func addNormalizationAndReductionOps(_ b: inout GraphBuilder, _ x: String) {
        func output(_ op: Op, _ inputs: [String], _ name: String) {
            let v = b.add(op, inputs: inputs, output: name, origin: Origin(layer: name, type: op.name))
            b.addOutput(v)
        }
        let channelScale = b.addInitializer("channel_scale", Tensor(shape: [4], floats: [0.5, -1, 2, 1.25]))
        let channelBias = b.addInitializer("channel_bias", Tensor(shape: [4], floats: [0.1, 0, -0.5, 1]))
        output(.instanceNormalization(epsilon: 1e-5), [x, channelScale, channelBias], "instance_norm")
        output(.groupNormalization(numGroups: 2, epsilon: 1e-4), [x, channelScale, channelBias], "group_norm")
        let rowScale = b.addInitializer("row_scale", Tensor(shape: [5], floats: floats(5, seed: 13)))
        let rowBias = b.addInitializer("row_bias", Tensor(shape: [5], floats: floats(5, seed: 14)))
        output(.layerNormalization(axis: -1, epsilon: 1e-5), [x, rowScale, rowBias], "layer_norm")
        let planeScale = b.addInitializer("plane_scale", Tensor(shape: [3, 5], floats: floats(15, seed: 15)))
        output(.layerNormalization(axis: 2, epsilon: 1e-3), [x, planeScale], "layer_norm_no_bias")
        output(.lrn(size: 3, alpha: 0.5, beta: 0.75, bias: 2), [x], "lrn")
        output(.lpNormalization(axis: 1, p: 2), [x], "lp_norm")
        output(.lpNormalization(axis: -1, p: 1), [x], "lp_norm_l1")
        let cases: [(ReduceOperation, [Int]?, Bool)] = [
            (.sum, [1], true), (.sum, nil, false), (.mean, [2, 3], false), (.max, [-1], true), (.min, [1, 2], true),
            (.prod, [2], false), (.l1, [1, 3], true), (.l2, [-2], false), (.sumSquare, nil, true), (.logSumExp, [1], false),
        ]
        for (i, (operation, axes, keepDims)) in cases.enumerated() {
            output(.reduce(operation, axes: axes, keepDims: keepDims), [x], "reduce_\(i)")
        }
        output(.argMax(axis: 1, keepDims: false, selectLastIndex: false), [x], "arg_max")
        output(.argMin(axis: -1, keepDims: true, selectLastIndex: true), [x], "arg_min")
        addLogicAndCastOps(&b, x)
    }

    /// Comparisons, logic, Where and Cast on `x` ([batch, 4, 3, 5]), reaching bool, int64,
    /// int8 and float16 values; every result is a graph output.
    static func addLogicAndCastOps(_ b: inout GraphBuilder, _ x: String) {
        func add(_ op: Op, _ inputs: [String], _ name: String, output: Bool = true) -> String {
            let v = b.add(op, inputs: inputs, output: name, origin: Origin(layer: name, type: op.name))
            if output { b.addOutput(v) }
            return v
        }
        let plane = b.addInitializer("compare_plane", Tensor(shape: [3, 5], floats: floats(15, seed: 16).map { $0 * 4 }))
        let zero = b.addInitializer("zero", Tensor(shape: [], floats: [0]))
        let greater = add(.greater, [x, plane], "is_greater")
        let less = add(.less, [x, plane], "is_less")
        let atLeastZero = add(.greaterOrEqual, [x, zero], "is_non_negative")
        let atMostZero = add(.lessOrEqual, [x, zero], "is_non_positive")
        let floor = add(.floor, [x], "floor_for_equal", output: false)
        let ceil = add(.ceil, [x], "ceil_for_equal", output: false)
        _ = add(.equal, [floor, ceil], "is_integer")
        let argMax = add(.argMax(axis: 1, keepDims: true, selectLastIndex: false), [x], "arg_max_for_equal", output: false)
        let two = b.addInitializer("two_int64", Tensor(shape: [1], int64s: [2]))
        let isTwo = add(.equal, [argMax, two], "arg_max_is_two")
        _ = add(.not, [greater], "not_greater")
        _ = add(.and, [atLeastZero, less], "non_negative_and_less")
        _ = add(.or, [atMostZero, isTwo], "non_positive_or_two")
        _ = add(.where, [greater, x, plane], "where")
        _ = add(.cast(to: .int64), [x], "cast_int64")
        _ = add(.cast(to: .int8), [x], "cast_int8")
        _ = add(.cast(to: .bool), [floor], "cast_bool")
        _ = add(.cast(to: .float32), [greater], "cast_bool_float")
        _ = add(.cast(to: .float32), [argMax], "cast_int64_float")
        let half = add(.cast(to: .float16), [x], "cast_half")
        _ = add(.cast(to: .float32), [half], "cast_half_float")
    }
}

/// Single pooling nodes (then Relu) and a naive reference of the IR's pooling semantics.
struct PoolCase: Sendable, CustomStringConvertible {
    var name: String
    var input: [Int]   // N, C, H, W
    var attributes: PoolAttributes
    var average: Bool

    var description: String { name }

    func graph() throws -> Graph {
        var b = GraphBuilder(name: name)
        let x = b.addInput("x", TensorType(.float32, Shape(input)))
        let op: Op = average ? .averagePool(attributes) : .maxPool(attributes)
        let p = b.add(op, inputs: [x], output: "pool", origin: Origin(layer: "pool", type: average ? "AVE" : "MAX"))
        let y = b.add(.relu, inputs: [p], output: "y", origin: Origin(layer: "relu", type: "ReLU"))
        b.addOutput(y)
        return try b.finish()
    }

    /// Pooling as the IR defines it: windows clipped to the padded extent and then to the
    /// input; max and exclude-pad averages over input cells only.
    func reference(_ x: [Float]) throws -> (values: [Float], shape: [Int]) {
        let g = try graph()
        let outShape = g.outputs[0].type.shape.fixedSizes!
        let (n, c, h, w) = (input[0], input[1], input[2], input[3])
        let (oh, ow) = (outShape[2], outShape[3])
        let k = attributes.kernelShape, s = attributes.strides, p = attributes.pads
        var out: [Float] = []
        for b in 0..<n {
            for ch in 0..<c {
                for i in 0..<oh {
                    for j in 0..<ow {
                        let hs = i * s[0] - p[0], ws = j * s[1] - p[1]
                        let he = min(hs + k[0], h + p[2]), we = min(ws + k[1], w + p[3])
                        let padded = (he - hs) * (we - ws)
                        var best = -Float.infinity, sum: Float = 0, count = 0
                        for y in max(hs, 0)..<min(he, h) {
                            for xx in max(ws, 0)..<min(we, w) {
                                let v = x[((b * c + ch) * h + y) * w + xx]
                                best = max(best, v)
                                sum += v
                                count += 1
                            }
                        }
                        let v = average ? sum / Float(attributes.countIncludePad ? padded : count) : best
                        out.append(max(v, 0))
                    }
                }
            }
        }
        return (out, outShape)
    }

    static let all: [PoolCase] = [
        // No window dropped: ceil_mode stays.
        PoolCase(name: "max_ceil_plain", input: [1, 2, 5, 5], attributes: PoolAttributes(kernelShape: [2, 2], strides: [2, 2], ceilMode: true), average: false),
        // A window starting in the end padding is dropped: restated without ceil_mode.
        PoolCase(name: "max_ceil_drop", input: [1, 2, 6, 5], attributes: PoolAttributes(kernelShape: [2, 3], strides: [2, 2], pads: [0, 1, 1, 1], ceilMode: true), average: false),
        PoolCase(name: "max_ceil_stride_gt_kernel", input: [1, 1, 4, 7], attributes: PoolAttributes(kernelShape: [1, 2], strides: [2, 3], ceilMode: true), average: false),
        PoolCase(name: "avg_exclude_ceil_drop", input: [2, 2, 5, 5], attributes: PoolAttributes(kernelShape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true), average: true),
        // count_include_pad: restated without ceil_mode (divisors unchanged) ...
        PoolCase(name: "avg_include_ceil_drop_floor", input: [1, 1, 6, 6], attributes: PoolAttributes(kernelShape: [2, 2], strides: [2, 2], pads: [0, 0, 1, 1], ceilMode: true, countIncludePad: true), average: true),
        // ... or with a shorter end pad (W's last window is clipped, so ceil_mode must stay) ...
        PoolCase(name: "avg_include_ceil_drop_shorter_pad", input: [1, 1, 6, 5], attributes: PoolAttributes(kernelShape: [2, 2], strides: [2, 2], pads: [0, 0, 1, 0], ceilMode: true, countIncludePad: true), average: true),
        // ... or not at all: sizes left to the reader.
        PoolCase(name: "avg_include_ceil_unstated", input: [1, 1, 6, 5], attributes: PoolAttributes(kernelShape: [2, 2], strides: [3, 2], pads: [0, 0, 1, 0], ceilMode: true, countIncludePad: true), average: true),
        // Caffe-style: ceil, symmetric pads, count_include_pad, clipped last window.
        PoolCase(name: "avg_include_ceil_caffe", input: [1, 3, 6, 6], attributes: PoolAttributes(kernelShape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true, countIncludePad: true), average: true),
    ]
}
