/// Size rules of the data-movement ops and ConvTranspose, shared by shape inference (on
/// possibly symbolic shapes) and the runtime's kernels (on concrete sizes), so the two agree.

/// A dimension nobody can name statically (a slice of a symbolic size, say).
let unknownDim = Dim.symbolic("?")

/// The cells one axis of a Slice takes: start, start + step, ... (count of them).
public struct SliceRange: Sendable, Hashable {
    public var start: Int
    public var step: Int
    public var count: Int
}

extension SliceAttributes {
    /// Checks the lists and returns the sliced axes made non-negative, one per start.
    public func normalizedAxes(rank: Int) throws -> [Int] {
        guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count else {
            throw FerryError("Slice starts \(starts), ends \(ends), axes \(axes) and steps \(steps) differ in length")
        }
        var seen = Set<Int>()
        var result: [Int] = []
        for axis in axes {
            guard let a = normalizeAxis(axis, rank: rank), rank > 0 else {
                throw FerryError("Slice axis \(axis) out of range for rank \(rank)")
            }
            guard seen.insert(a).inserted else { throw FerryError("Slice axis \(axis) is listed twice in \(axes)") }
            result.append(a)
        }
        guard !steps.contains(0) else { throw FerryError("Slice steps \(steps) may not be 0") }
        return result
    }

    /// The range of the i-th (start, end, step) on an axis of `size` cells, by ONNX's rules:
    /// negative start and end count from the end; then for a positive step both are clamped
    /// to [0, size], for a negative step start to [0, size - 1] and end to [-1, size - 1].
    public func range(_ i: Int, size: Int) -> SliceRange {
        let step = steps[i]
        var start = starts[i], end = ends[i]
        if start < 0 { start = start.addingReportingOverflow(size).partialValue }
        if end < 0 { end = end.addingReportingOverflow(size).partialValue }
        let count: Int
        if step > 0 {
            start = min(max(start, 0), size)
            end = min(max(end, 0), size)
            count = end > start ? (end - start + step - 1) / step : 0
        } else {
            start = min(max(start, 0), size - 1)
            end = min(max(end, -1), size - 1)
            count = start > end ? (start - end + (-step) - 1) / (-step) : 0
        }
        return SliceRange(start: start, step: step, count: count)
    }

    /// For every axis of a concrete shape, the range taken (the whole axis where not sliced).
    public func ranges(_ shape: [Int]) throws -> [SliceRange] {
        let sliced = try normalizedAxes(rank: shape.count)
        var result = shape.map { SliceRange(start: 0, step: 1, count: $0) }
        for (i, axis) in sliced.enumerated() { result[axis] = range(i, size: shape[axis]) }
        return result
    }
}

extension PadAttributes {
    /// Checks pads against a concrete shape for the mode and returns the output sizes.
    public func outputSizes(_ shape: [Int]) throws -> [Int] {
        let r = shape.count
        guard pads.count == 2 * r else {
            throw FerryError("Pad pads \(pads) should hold \(2 * r) numbers (begins, then ends) for rank \(r)")
        }
        var sizes: [Int] = []
        for i in 0..<r {
            let n = shape[i] + pads[i] + pads[i + r]
            guard n >= 0 else { throw FerryError("Pad pads \(pads) remove more than the \(shape[i]) cells of axis \(i)") }
            let grows = pads[i] > 0 || pads[i + r] > 0
            switch mode {
            case .constant: break
            case .edge, .reflect:
                // Reflection continues past the far edge as often as needed (numpy's rule, the
                // ONNX operator's example); only an empty axis has nothing to repeat.
                guard !grows || shape[i] > 0 else { throw FerryError("Pad \(mode) mode cannot pad the empty axis \(i)") }
            }
            sizes.append(n)
        }
        return sizes
    }
}

extension ConvTransposeAttributes {
    /// Checks the attribute lists against the number of spatial axes.
    public func validate() throws {
        let s = kernelShape.count
        guard s >= 1 else { throw FerryError("ConvTranspose needs at least one spatial dimension") }
        guard strides.count == s, dilations.count == s, pads.count == 2 * s, outputPadding.count == s else {
            throw FerryError("ConvTranspose attribute lengths do not match \(s) spatial dimensions")
        }
        guard kernelShape.allSatisfy({ $0 >= 1 }), strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }),
              pads.allSatisfy({ $0 >= 0 }), outputPadding.allSatisfy({ $0 >= 0 }), group >= 1 else {
            throw FerryError("ConvTranspose has a non-positive kernel, stride, dilation or group, or a negative pad")
        }
    }

    /// Output length along spatial axis i for an input of n cells.
    public func outputLength(_ n: Int, axis i: Int) throws -> Int {
        let s = kernelShape.count
        let full = strides[i] * (n - 1) + outputPadding[i] + (kernelShape[i] - 1) * dilations[i] + 1
        let out = full - pads[i] - pads[i + s]
        guard n >= 1, out >= 1 else {
            throw FerryError("ConvTranspose output along axis \(i + 2) would be \(out) cells (input \(n), pads \(pads))")
        }
        return out
    }
}

/// The element positions DepthToSpace / SpaceToDepth go through: a reshape to 6-D, a
/// transpose, a reshape back (the ONNX operator definitions).
public enum BlockRearrangement {
    /// DepthToSpace of (N, C, H, W): the 6-D view of the input and the permutation.
    public static func depthToSpace(_ shape: [Int], blockSize b: Int, mode: DepthToSpaceMode)
        -> (view: [Int], perm: [Int], output: [Int]) {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let output = [n, c / (b * b), h * b, w * b]
        switch mode {
        case .dcr: return ([n, b, b, c / (b * b), h, w], [0, 3, 4, 1, 5, 2], output)
        case .crd: return ([n, c / (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3], output)
        }
    }

    /// SpaceToDepth of (N, C, H, W).
    public static func spaceToDepth(_ shape: [Int], blockSize b: Int) -> (view: [Int], perm: [Int], output: [Int]) {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        return ([n, c, h / b, b, w / b, b], [0, 3, 5, 1, 2, 4], [n, c * b * b, h / b, w / b])
    }
}

extension Op {
    /// Shape inference for the data-movement ops added with Concat (one function per op;
    /// `inferOutputTypes` dispatches here).
    func inferDataMovement(_ inputs: [TensorType?]) throws -> [TensorType] {
        func input(_ i: Int) throws -> TensorType {
            guard i < inputs.count, let t = inputs[i] else { throw FerryError("\(name) is missing input \(i)") }
            return t
        }
        switch self {
        case .concat(let axis):
            let first = try input(0)
            let r = first.shape.rank
            guard r >= 1, let a = normalizeAxis(axis, rank: r) else {
                throw FerryError("Concat axis \(axis) out of range for \(first.shape)")
            }
            var dims = first.shape.dims
            var total: Int? = first.shape[a].value
            for i in 1..<inputs.count {
                let t = try input(i)
                guard t.dtype == first.dtype else { throw FerryError("Concat of \(first.dtype) and \(t.dtype)") }
                guard t.shape.rank == r else { throw FerryError("Concat of ranks \(r) and \(t.shape.rank): \(first.shape), \(t.shape)") }
                for j in 0..<r where j != a {
                    dims[j] = try mergeDims(dims[j], t.shape[j], "Concat inputs \(first.shape) and \(t.shape)")
                }
                total = total.flatMap { n in t.shape[a].value.map { n + $0 } }
            }
            dims[a] = total.map(Dim.fixed) ?? (inputs.count == 1 ? first.shape[a] : unknownDim)
            return [TensorType(first.dtype, Shape(dims))]

        case .split(let axis, let sizes):
            let x = try input(0)
            guard let a = normalizeAxis(axis, rank: x.shape.rank), x.shape.rank >= 1 else {
                throw FerryError("Split axis \(axis) out of range for \(x.shape)")
            }
            guard !sizes.isEmpty, sizes.allSatisfy({ $0 >= 0 }) else {
                throw FerryError("Split sizes \(sizes) must be one or more non-negative numbers")
            }
            if let n = x.shape[a].value, n != sizes.reduce(0, +) {
                throw FerryError("Split sizes \(sizes) do not add up to \(n), axis \(axis) of \(x.shape)")
            }
            return sizes.map { size in
                var s = x.shape
                s[a] = .fixed(size)
                return TensorType(x.dtype, s)
            }

        case .slice(let attributes):
            let x = try input(0)
            let axes = try attributes.normalizedAxes(rank: x.shape.rank)
            var s = x.shape
            for (i, axis) in axes.enumerated() {
                if let n = x.shape[axis].value {
                    s[axis] = .fixed(attributes.range(i, size: n).count)
                } else if !(attributes.starts[i] == 0 && attributes.steps[i] == 1 && attributes.ends[i] >= Int(Int32.max)) {
                    s[axis] = unknownDim
                }
            }
            return [TensorType(x.dtype, s)]

        case .pad(let attributes):
            let x = try input(0)
            let r = x.shape.rank
            guard attributes.pads.count == 2 * r else {
                throw FerryError("Pad pads \(attributes.pads) should hold \(2 * r) numbers (begins, then ends) for \(x.shape)")
            }
            // Check what can be checked on the known sizes; symbolic sizes stay unknown unless unpadded.
            let probe = x.shape.dims.map { $0.value ?? Int(Int32.max) }
            let sizes = try attributes.outputSizes(probe)
            return [TensorType(x.dtype, Shape((0..<r).map { i in
                if x.shape[i].value != nil { return .fixed(sizes[i]) }
                return attributes.pads[i] == 0 && attributes.pads[i + r] == 0 ? x.shape[i] : unknownDim
            }))]

        case .squeeze(let axes):
            let x = try input(0)
            let r = x.shape.rank
            var remove = Set<Int>()
            if axes.isEmpty {
                for (i, d) in x.shape.dims.enumerated() {
                    switch d {
                    case .fixed(1): remove.insert(i)
                    case .fixed: break
                    case .symbolic: throw FerryError("Squeeze without axes cannot tell whether \(d) in \(x.shape) is 1")
                    }
                }
            }
            for axis in axes {
                guard let a = normalizeAxis(axis, rank: r), r > 0 else { throw FerryError("Squeeze axis \(axis) out of range for \(x.shape)") }
                guard remove.insert(a).inserted else { throw FerryError("Squeeze axis \(axis) is listed twice in \(axes)") }
                if let n = x.shape[a].value, n != 1 {
                    throw FerryError("Squeeze axis \(axis) of \(x.shape) has size \(n), not 1")
                }
            }
            return [TensorType(x.dtype, Shape(x.shape.dims.enumerated().filter { !remove.contains($0.offset) }.map(\.element)))]

        case .unsqueeze(let axes):
            let x = try input(0)
            let r = x.shape.rank + axes.count
            var insert = Set<Int>()
            for axis in axes {
                guard let a = normalizeAxis(axis, rank: r) else { throw FerryError("Unsqueeze axis \(axis) out of range for output rank \(r)") }
                guard insert.insert(a).inserted else { throw FerryError("Unsqueeze axis \(axis) is listed twice in \(axes)") }
            }
            guard !axes.isEmpty else { throw FerryError("Unsqueeze needs at least one axis") }
            var rest = x.shape.dims.makeIterator()
            return [TensorType(x.dtype, Shape((0..<r).map { insert.contains($0) ? .fixed(1) : rest.next()! }))]

        case .tile(let repeats):
            let x = try input(0)
            guard repeats.count == x.shape.rank, repeats.allSatisfy({ $0 >= 0 }) else {
                throw FerryError("Tile repeats \(repeats) should be \(x.shape.rank) non-negative numbers for \(x.shape)")
            }
            return [TensorType(x.dtype, Shape(zip(x.shape.dims, repeats).map { d, k in k == 1 ? d : product([d, .fixed(k)]) }))]

        case .expand(let shape):
            let x = try input(0)
            guard shape.allSatisfy({ $0 >= 0 }) else { throw FerryError("Expand shape \(shape) has a negative size") }
            return [TensorType(x.dtype, try broadcastShapes(x.shape, Shape(shape)))]

        case .gather(let axis):
            let data = try input(0), indices = try input(1)
            guard data.shape.rank >= 1, let a = normalizeAxis(axis, rank: data.shape.rank) else {
                throw FerryError("Gather axis \(axis) out of range for \(data.shape)")
            }
            guard indices.dtype == .int64 || indices.dtype == .int32 else {
                throw FerryError("Gather indices must be int64 or int32, got \(indices.dtype)")
            }
            let dims = Array(data.shape.dims[..<a]) + indices.shape.dims + Array(data.shape.dims[(a + 1)...])
            return [TensorType(data.dtype, Shape(dims))]

        case .depthToSpace(let b, _):
            let x = try input(0)
            guard x.shape.rank == 4 else { throw FerryError("DepthToSpace expects a 4-D input, got \(x.shape)") }
            guard b >= 1 else { throw FerryError("DepthToSpace blocksize \(b) must be positive") }
            guard let c = x.shape[1].value, c % (b * b) == 0 else {
                throw FerryError("DepthToSpace channels of \(x.shape) must be a known multiple of blocksize² = \(b * b)")
            }
            func scaled(_ d: Dim) -> Dim { b == 1 ? d : product([d, .fixed(b)]) }
            return [TensorType(x.dtype, Shape([x.shape[0], .fixed(c / (b * b)), scaled(x.shape[2]), scaled(x.shape[3])]))]

        case .spaceToDepth(let b):
            let x = try input(0)
            guard x.shape.rank == 4 else { throw FerryError("SpaceToDepth expects a 4-D input, got \(x.shape)") }
            guard b >= 1 else { throw FerryError("SpaceToDepth blocksize \(b) must be positive") }
            func divided(_ d: Dim) throws -> Dim {
                guard let n = d.value else { return b == 1 ? d : unknownDim }
                guard n % b == 0 else { throw FerryError("SpaceToDepth blocksize \(b) does not divide \(x.shape)") }
                return .fixed(n / b)
            }
            return [TensorType(x.dtype, Shape([x.shape[0], product([x.shape[1], .fixed(b * b)]),
                                               try divided(x.shape[2]), try divided(x.shape[3])]))]

        default:
            preconditionFailure("\(name) is not a data-movement op")
        }
    }
}

/// Two sizes that must agree: a fixed size wins over a symbolic one.
func mergeDims(_ a: Dim, _ b: Dim, _ what: @autoclosure () -> String) throws -> Dim {
    switch (a, b) {
    case (.fixed(let x), .fixed(let y)):
        guard x == y else { throw FerryError("\(what()) differ off the axis") }
        return a
    case (.fixed, .symbolic): return a
    default: return b.value != nil ? b : a
    }
}

extension TensorStorage {
    /// `count` copies of a value converted to an element type as a cast would: integers
    /// truncate toward zero and saturate (NaN gives 0), bool is `value != 0`, float16 rounds
    /// to nearest even. (Pad's constant, written the same way by the runtime and exporters.)
    public static func repeating(_ value: Float, _ dtype: DType, count: Int) -> TensorStorage {
        func integer<T: FixedWidthInteger>(_: T.Type) -> T {
            if value.isNaN { return 0 }
            if value >= Float(T.max) { return T.max }
            if value <= Float(T.min) { return T.min }
            return T(value)
        }
        switch dtype {
        case .float32: return .float32(Array(repeating: value, count: count))
        case .float16: return .float16(Array(repeating: float16Bits(value), count: count))
        case .bfloat16: return .bfloat16(Array(repeating: BFloat16.bits(value), count: count))
        case .float64: return .float64(Array(repeating: Double(value), count: count))
        case .int64: return .int64(Array(repeating: integer(Int64.self), count: count))
        case .int32: return .int32(Array(repeating: integer(Int32.self), count: count))
        case .int16: return .int16(Array(repeating: integer(Int16.self), count: count))
        case .int8: return .int8(Array(repeating: integer(Int8.self), count: count))
        case .uint64: return .uint64(Array(repeating: integer(UInt64.self), count: count))
        case .uint32: return .uint32(Array(repeating: integer(UInt32.self), count: count))
        case .uint16: return .uint16(Array(repeating: integer(UInt16.self), count: count))
        case .uint8: return .uint8(Array(repeating: integer(UInt8.self), count: count))
        case .bool: return .bool(Array(repeating: value != 0, count: count))
        // Text zeros are empty strings (what numpy zeros and ONNX Pad use); other values as a cast writes them.
        case .string: return .string(Array(repeating: value == 0 ? "" : NumericText.string(value), count: count))
        }
    }
}

/// The IEEE 754 half-precision bits of a float, rounded to nearest even (overflow gives
/// infinity, NaN stays NaN).
public func float16Bits(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
    let exponent = Int((bits >> 23) & 0xFF)
    var mantissa = bits & 0x7F_FFFF
    if exponent == 0xFF { return sign | 0x7C00 | (mantissa != 0 ? 0x200 : 0) }
    let e = exponent - 127 + 15
    if e >= 0x1F { return sign | 0x7C00 }
    if e <= 0 {
        // Subnormal half (or zero): shift the full significand into place.
        if e < -10 { return sign }
        mantissa |= 0x80_0000
        let shift = UInt32(14 - e)
        var half = mantissa >> shift
        let rest = mantissa & ((1 << shift) - 1), halfway = UInt32(1) << (shift - 1)
        if rest > halfway || (rest == halfway && half & 1 == 1) { half += 1 }
        return sign | UInt16(half)
    }
    var half = UInt32(e) << 10 | mantissa >> 13
    let rest = mantissa & 0x1FFF
    // A carry out of the mantissa correctly bumps the exponent (up to infinity).
    if rest > 0x1000 || (rest == 0x1000 && half & 1 == 1) { half += 1 }
    return sign | UInt16(half)
}
