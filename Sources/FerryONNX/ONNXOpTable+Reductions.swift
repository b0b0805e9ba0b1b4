import FerryIR

/// Reductions, ArgMax/ArgMin. Axes are an attribute until opset 13 (ReduceSum) or 18 (the
/// others), then an optional constant input; with no axes every axis is reduced, unless
/// noop_with_empty_axes asks for no axis to be reduced.
extension ONNXOpTable {
    static func ReduceSum(_ n: ONNXNode) throws { try reduce(n, .sum, axesInputFrom: 13) }
    static func ReduceMean(_ n: ONNXNode) throws { try reduce(n, .mean, axesInputFrom: 18) }
    static func ReduceMax(_ n: ONNXNode) throws { try reduce(n, .max, axesInputFrom: 18) }
    static func ReduceMin(_ n: ONNXNode) throws { try reduce(n, .min, axesInputFrom: 18) }
    static func ReduceProd(_ n: ONNXNode) throws { try reduce(n, .prod, axesInputFrom: 18) }
    static func ReduceL1(_ n: ONNXNode) throws { try reduce(n, .l1, axesInputFrom: 18) }
    static func ReduceL2(_ n: ONNXNode) throws { try reduce(n, .l2, axesInputFrom: 18) }
    static func ReduceSumSquare(_ n: ONNXNode) throws { try reduce(n, .sumSquare, axesInputFrom: 18) }
    static func ReduceLogSumExp(_ n: ONNXNode) throws { try reduce(n, .logSumExp, axesInputFrom: 18) }

    /// log(ReduceSum(x)): the IR has no op of its own for it.
    static func ReduceLogSum(_ n: ONNXNode) throws {
        guard let (axes, keepDims) = try reduceAxes(n, axesInputFrom: 18) else {
            try n.emit(.log, [try n.input(0)])
            return
        }
        let sum = try n.emitTemporary(.reduce(.sum, axes: axes, keepDims: keepDims), [try n.input(0)], "sum")
        try n.emit(.log, [sum])
    }

    /// With noop_with_empty_axes and no axes, each element is reduced alone ("over an empty
    /// set of axes", as onnx's reference and onnxruntime compute it): the reduction's
    /// element-wise part remains (|x| for L1 and L2, x * x for SumSquare, log x for LogSum).
    static func reduce(_ n: ONNXNode, _ operation: ReduceOperation, axesInputFrom version: Int) throws {
        guard let (axes, keepDims) = try reduceAxes(n, axesInputFrom: version) else {
            let x = try n.input(0)
            switch operation {
            case .l1, .l2: try n.emit(.abs, [x])
            case .sumSquare: try n.emit(.mul, [x, x])
            default: try n.emit(.identity, [x])
            }
            return
        }
        try n.emit(.reduce(operation, axes: axes, keepDims: keepDims), [try n.input(0)])
    }

    /// The axes (nil: all) and keepdims, or nil when the node is a no-op (empty axes with
    /// noop_with_empty_axes).
    static func reduceAxes(_ n: ONNXNode, axesInputFrom version: Int) throws -> (axes: [Int]?, keepDims: Bool)? {
        let keepDims = try n.bool("keepdims", true)
        var axes = n.opset < version ? try n.ints("axes") : try n.optionalConstantInts(1, "axes")
        if axes?.isEmpty == true { axes = nil }
        if axes == nil, n.opset >= version, try n.bool("noop_with_empty_axes", false) { return nil }
        return (axes, keepDims)
    }

    static func ArgMax(_ n: ONNXNode) throws {
        try n.emit(.argMax(axis: try n.int("axis", 0), keepDims: try n.bool("keepdims", true),
                           selectLastIndex: try n.bool("select_last_index", false)), [try n.input(0)])
    }

    /// TopK: K an attribute before opset 10, a constant input from 10; `largest` from 11.
    /// Ferry's TopK always sorts, which an unsorted TopK may do as well.
    static func TopK(_ n: ONNXNode) throws {
        let k: Int
        if n.opset < 10 {
            k = try n.int("k", 0)
        } else {
            let ks = try n.constantInts(1, "K")
            guard ks.count == 1 else { throw FerryError("TopK K must hold one value, has \(ks.count)") }
            k = ks[0]
        }
        try n.emit(.topK(axis: try n.int("axis", -1), k: k, largest: try n.bool("largest", true)), [try n.input(0)],
                   outputs: 2)
    }

    static func ArgMin(_ n: ONNXNode) throws {
        try n.emit(.argMin(axis: try n.int("axis", 0), keepDims: try n.bool("keepdims", true),
                           selectLastIndex: try n.bool("select_last_index", false)), [try n.input(0)])
    }
}
