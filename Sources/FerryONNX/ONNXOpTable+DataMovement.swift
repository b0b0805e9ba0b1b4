import FerryIR

/// Data movement builders. Where ONNX moved an attribute to an input (Slice 10, Pad 11,
/// Split/Squeeze/Unsqueeze 13), both forms are read; inputs must be constants because the IR
/// keeps them as typed attributes.
extension ONNXOpTable {
    static func Concat(_ n: ONNXNode) throws {
        guard n.has("axis") else { throw FerryError("Concat needs an axis attribute") }
        let inputs = n.proto.input.filter { !$0.isEmpty }
        guard !inputs.isEmpty else { throw FerryError("Concat needs at least one input") }
        try n.emit(.concat(axis: try n.int("axis", 0)), inputs)
    }

    /// Sizes from the `split` attribute (before 13) or constant input (13+); else equal parts,
    /// one per output, or (opset 18) `num_outputs` parts of ceil(size / n), the last smaller.
    static func Split(_ n: ONNXNode) throws {
        let x = try n.inputType(0)
        let axis = try n.int("axis", 0)
        guard let a = normalizeAxis(axis, rank: x.shape.rank) else {
            throw FerryError("Split axis \(axis) is out of range for \(x.shape)")
        }
        let count = n.outputs.count
        var sizes = n.opset < 13 ? try n.ints("split") : try n.optionalConstantInts(1, "split")
        if sizes?.isEmpty == true { sizes = nil }
        if sizes == nil {
            guard let length = x.shape[a].value else {
                throw FerryError("Split into equal parts needs a known size on axis \(axis), input is \(x.shape)")
            }
            if n.opset >= 18, n.has("num_outputs") {
                let parts = try n.int("num_outputs", count)
                guard parts >= 1, parts == count else { throw FerryError("Split num_outputs \(parts) but \(count) outputs") }
                let chunk = (length + parts - 1) / parts
                sizes = (0..<parts).map { max(0, min(chunk, length - $0 * chunk)) }
            } else {
                guard count >= 1, length % count == 0 else {
                    throw FerryError("Split of \(length) cells into \(count) equal parts")
                }
                sizes = Array(repeating: length / count, count: count)
            }
        }
        try n.emit(.split(axis: axis, sizes: sizes!), [try n.input(0)], outputs: count)
    }

    /// starts/ends/axes attributes before opset 10; inputs starts, ends, axes, steps from 10.
    static func Slice(_ n: ONNXNode) throws {
        let attributes: SliceAttributes
        if n.opset < 10 {
            guard let starts = try n.ints("starts"), let ends = try n.ints("ends") else {
                throw FerryError("Slice needs starts and ends")
            }
            attributes = SliceAttributes(starts: starts, ends: ends, axes: try n.ints("axes"))
        } else {
            attributes = SliceAttributes(starts: try n.constantInts(1, "starts"), ends: try n.constantInts(2, "ends"),
                                         axes: try n.optionalConstantInts(3, "axes"),
                                         steps: try n.optionalConstantInts(4, "steps"))
        }
        try n.emit(.slice(attributes), [try n.input(0)])
    }

    /// pads and value attributes before opset 11; pads, constant_value and (18+) axes inputs
    /// after. Mode wrap (19) is refused.
    static func Pad(_ n: ONNXNode) throws {
        let rank = try n.inputType(0).shape.rank
        let modeName = try n.string("mode", "constant")
        guard let mode = PadMode(rawValue: modeName) else { throw n.unsupported("mode '\(modeName)'") }
        var pads: [Int]
        let value: Float
        if n.opset < 11 {
            guard let p = try n.ints("pads") else { throw FerryError("Pad needs pads") }
            pads = p
            value = try n.float("value", 0)
        } else {
            pads = try n.constantInts(1, "pads")
            value = try n.optionalConstantFloat(2, "constant_value") ?? 0
            if n.opset >= 18, let axes = try n.optionalConstantInts(3, "axes") {
                guard pads.count == 2 * axes.count else { throw FerryError("Pad has \(pads.count) pads for \(axes.count) axes") }
                var full = Array(repeating: 0, count: 2 * rank)
                for (i, axis) in axes.enumerated() {
                    guard let a = normalizeAxis(axis, rank: rank) else { throw FerryError("Pad axis \(axis) is out of range for rank \(rank)") }
                    full[a] = pads[i]
                    full[a + rank] = pads[i + axes.count]
                }
                pads = full
            }
        }
        try n.emit(.pad(PadAttributes(pads: pads, mode: mode, value: value)), [try n.input(0)])
    }

    static func Squeeze(_ n: ONNXNode) throws {
        let axes = n.opset < 13 ? try n.ints("axes") : try n.optionalConstantInts(1, "axes")
        try n.emit(.squeeze(axes: axes ?? []), [try n.input(0)])
    }

    static func Unsqueeze(_ n: ONNXNode) throws {
        let axes: [Int]
        if n.opset < 13 {
            guard let a = try n.ints("axes") else { throw FerryError("Unsqueeze needs axes") }
            axes = a
        } else {
            axes = try n.constantInts(1, "axes")
        }
        try n.emit(.unsqueeze(axes: axes), [try n.input(0)])
    }

    static func Tile(_ n: ONNXNode) throws {
        try n.emit(.tile(repeats: try n.constantInts(1, "repeats")), [try n.input(0)])
    }

    static func Expand(_ n: ONNXNode) throws {
        try n.emit(.expand(shape: try n.constantInts(1, "shape")), [try n.input(0)])
    }

    static func Gather(_ n: ONNXNode) throws {
        try n.emit(.gather(axis: try n.int("axis", 0)), [try n.input(0), try n.input(1)])
    }

    /// mode arrived in opset 11; before, DCR.
    static func DepthToSpace(_ n: ONNXNode) throws {
        let modeName = n.opset < 11 ? "DCR" : try n.string("mode", "DCR")
        guard let mode = DepthToSpaceMode(rawValue: modeName) else { throw n.unsupported("mode '\(modeName)'") }
        let block = try n.int("blocksize", 0)
        guard block >= 1 else { throw FerryError("DepthToSpace needs a positive blocksize") }
        try n.emit(.depthToSpace(blockSize: block, mode: mode), [try n.input(0)])
    }

    static func SpaceToDepth(_ n: ONNXNode) throws {
        let block = try n.int("blocksize", 0)
        guard block >= 1 else { throw FerryError("SpaceToDepth needs a positive blocksize") }
        try n.emit(.spaceToDepth(blockSize: block), [try n.input(0)])
    }
}
