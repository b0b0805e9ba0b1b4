import FerryIR

/// ONNX Resize: nearest (any element type), linear and cubic (float32), one axis at a time.
/// Linear and cubic interpolation are separable, so resampling axis by axis gives the N-D
/// result; taps beyond the input repeat the edge cell (the ONNX reference's edge padding).
/// tf_crop_and_resize: an output cell whose coordinate on some axis is outside the input has
/// no taps there and takes the extrapolation value (interpolating such cells along later axes
/// keeps it: the weights sum to 1).
extension ReferenceKernels {
    public static func resize(_ x: Tensor, _ attr: ResizeAttributes) throws -> Tensor {
        try attr.validate(rank: x.rank)
        var current = x
        for axis in 0..<x.rank {
            let n = x.shape[axis], m = attr.outputLength(n, axis: axis)
            guard n > 0 || m == 0 else { throw FerryError("Resize cannot fill axis \(axis) from an empty input") }
            let taps = resizeTaps(attr, axis: axis, input: n, output: m)
            if n == m && taps.enumerated().allSatisfy({ $1.count == 1 && $1[0].index == $0 && $1[0].weight == 1 }) { continue }
            current = try resample(current, axis: axis, taps: taps, nearest: attr.mode == .nearest,
                                   extrapolationValue: attr.extrapolationValue)
        }
        return current
    }

    /// For each output coordinate along one axis, the input cells it reads and their weights
    /// (none: the extrapolation value).
    static func resizeTaps(_ attr: ResizeAttributes, axis: Int, input n: Int, output m: Int) -> [[(index: Int, weight: Float)]] {
        let scale = attr.scale(axis: axis, input: n, output: m)
        return (0..<m).map { o in
            let x = attr.inputCoordinate(o, axis: axis, scale: scale, input: n, output: m)
            if attr.coordinateTransformation == .tfCropAndResize, x < 0 || x > Float(n - 1) { return [] }
            switch attr.mode {
            case .nearest:
                return [(attr.nearestIndex(x, input: n), 1)]
            case .linear:
                let base = x.rounded(.down), ratio = x - base, i = Int(base)
                return [(min(max(i, 0), n - 1), 1 - ratio), (min(max(i + 1, 0), n - 1), ratio)]
            case .cubic:
                let base = x.rounded(.down), t = x - base, i = Int(base), a = attr.cubicCoeffA
                // Keys' cubic convolution weights of the taps at i-1, i, i+1, i+2.
                var w: [Float] = [
                    ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
                    ((a + 2) * t - (a + 3)) * t * t + 1,
                    ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1,
                    ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a,
                ]
                if attr.excludeOutside {
                    for k in 0..<4 where i - 1 + k < 0 || i - 1 + k >= n { w[k] = 0 }
                    let sum = w.reduce(0, +)
                    if sum != 0 { w = w.map { $0 / sum } }
                }
                return (0..<4).map { k in (min(max(i - 1 + k, 0), n - 1), w[k]) }
            }
        }
    }

    /// out[outer, o, inner] = sum of weight * x[outer, index, inner] over the taps of o, or the
    /// extrapolation value where o has none.
    static func resample(_ x: Tensor, axis: Int, taps: [[(index: Int, weight: Float)]], nearest: Bool,
                         extrapolationValue: Float) throws -> Tensor {
        let n = x.shape[axis], m = taps.count
        var outShape = x.shape
        outShape[axis] = m
        let outer = elementCount(x.shape[..<axis]), inner = elementCount(x.shape[(axis + 1)...])
        if nearest {
            var positions: [Int] = []
            positions.reserveCapacity(outer * m * inner)
            for o in 0..<outer {
                for t in taps {
                    guard let first = t.first else {
                        positions.append(contentsOf: repeatElement(-1, count: inner))
                        continue
                    }
                    let base = (o * n + first.index) * inner
                    positions.append(contentsOf: base..<(base + inner))
                }
            }
            return try Tensor(shape: outShape, storage: x.storage.picking(positions, fill: extrapolationValue))
        }
        let xv = try x.requireFloats("Resize", "X")
        let out = makeFloats(outer * m * inner) { y in
            xv.withUnsafeBufferPointer { src in
                for o in 0..<outer {
                    for (j, t) in taps.enumerated() {
                        let dst = (o * m + j) * inner
                        for i in 0..<inner { y[dst + i] = t.isEmpty ? extrapolationValue : 0 }
                        for (index, weight) in t where weight != 0 {
                            let s = (o * n + index) * inner
                            for i in 0..<inner { y[dst + i] += weight * src[s + i] }
                        }
                    }
                }
            }
        }
        return Tensor(shape: outShape, floats: out)
    }
}
