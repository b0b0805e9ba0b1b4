import FerryIR

/// MaxPool (N-D, dilations, the Indices output; float32, float16, int8, uint8), AveragePool
/// (N-D, explicit pads, ceil_mode, count_include_pad; float32), GlobalAveragePool, GlobalMaxPool
/// over (N, C, spatial...) inputs.
///
/// Windows: output position o on axis i covers input cells o·stride − padBegin + k·dilation,
/// k < kernel. Only cells inside the input are read, so padding never wins a max. The average
/// divides by the number of cells inside the input (count_include_pad = false) or inside the
/// padded input [−padBegin, size + padEnd) (count_include_pad = true; cells a ceil_mode window
/// sticks out beyond the end padding do not count — the ONNX Runtime / PyTorch / Caffe rule).
extension ReferenceKernels {
    public static func maxPool(_ x: Tensor, _ attr: PoolAttributes) throws -> Tensor {
        try maxPoolWithIndices(x, attr).values
    }

    /// MaxPool's two outputs: the largest element of each window (the first one on ties; NaN
    /// never wins) and its flat index in X, whole (N, C) planes counted before the cell's
    /// spatial position flattened in `attr.indicesOrder` (ONNX Runtime's rule). A window with
    /// no cell inside the input gives the element type's lowest value and index -1.
    public static func maxPoolWithIndices(_ x: Tensor, _ attr: PoolAttributes) throws -> (values: Tensor, indices: Tensor) {
        let keys: [Float]
        switch x.storage {
        case .float32(let v): keys = v
        case .float16(let v): keys = v.map(HalfFloat.value)
        case .int8(let v): keys = v.map(Float.init)
        case .uint8(let v): keys = v.map(Float.init)
        default: throw FerryError("MaxPool supports float32, float16, int8 and uint8; X is \(x.dtype)")
        }
        let s = try checkPoolShape(x, attr, "MaxPool")
        let inSpatial = Array(x.shape[2...])
        var outSpatial: [Int] = []
        // Per axis and output position: the input coordinates the window reads.
        var cells: [[[Int]]] = []
        for i in 0..<s {
            let n = try windowOutputLength(inSpatial[i], kernel: attr.kernelShape[i], stride: attr.strides[i],
                                           dilation: attr.dilations[i], padBegin: attr.pads[i], padEnd: attr.pads[i + s],
                                           ceil: attr.ceilMode)
            outSpatial.append(n)
            cells.append((0..<n).map { o in
                let start = o * attr.strides[i] - attr.pads[i]
                return (0..<attr.kernelShape[i]).map { start + $0 * attr.dilations[i] }.filter { (0..<inSpatial[i]).contains($0) }
            })
        }
        let planes = x.shape[0] * x.shape[1]
        let inPlane = elementCount(inSpatial), outPlane = elementCount(outSpatial)
        let rowStrides = contiguousStrides(inSpatial)
        var columnStrides = Array(repeating: 1, count: s)
        for i in stride(from: 1, to: s, by: 1) { columnStrides[i] = columnStrides[i - 1] * inSpatial[i - 1] }

        var positions = [Int](repeating: -1, count: planes * outPlane)
        var indices = [Int64](repeating: -1, count: planes * outPlane)
        var pos = Array(repeating: 0, count: s), k = Array(repeating: 0, count: s)
        keys.withUnsafeBufferPointer { xp in
            for q in 0..<outPlane {
                var rem = q
                for i in stride(from: s - 1, through: 0, by: -1) {
                    pos[i] = rem % outSpatial[i]
                    rem /= outSpatial[i]
                }
                let window = (0..<s).map { cells[$0][pos[$0]] }
                if window.contains(where: \.isEmpty) { continue }
                for plane in 0..<planes {
                    let base = plane * inPlane
                    var best = -Float.infinity, bestCell: [Int]? = nil
                    // Odometer over the window's cells, last axis fastest.
                    for i in 0..<s { k[i] = 0 }
                    while true {
                        var offset = base
                        for i in 0..<s { offset += window[i][k[i]] * rowStrides[i] }
                        if bestCell == nil ? !xp[offset].isNaN : xp[offset] > best {
                            best = xp[offset]
                            bestCell = (0..<s).map { window[$0][k[$0]] }
                        }
                        var axis = s - 1
                        while axis >= 0 {
                            k[axis] += 1
                            if k[axis] < window[axis].count { break }
                            k[axis] = 0
                            axis -= 1
                        }
                        if axis < 0 { break }
                    }
                    // A window of NaNs only: its first cell (NaN is the result).
                    let cell = bestCell ?? window.map { $0[0] }
                    let order = attr.indicesOrder == .rowMajor ? rowStrides : columnStrides
                    positions[plane * outPlane + q] = base + (0..<s).reduce(0) { $0 + cell[$1] * rowStrides[$1] }
                    indices[plane * outPlane + q] = Int64(base + (0..<s).reduce(0) { $0 + cell[$1] * order[$1] })
                }
            }
        }
        let outShape = Array(x.shape[..<2]) + outSpatial
        return (try Tensor(shape: outShape, storage: x.storage.picking(positions, fill: -.infinity)),
                Tensor(shape: outShape, int64s: indices))
    }

    public static func averagePool(_ x: Tensor, _ attr: PoolAttributes) throws -> Tensor {
        try pool(x, attr, "AveragePool", average: true)
    }

    /// The number of spatial axes, after checking X's rank and the attributes' lengths.
    static func checkPoolShape(_ x: Tensor, _ attr: PoolAttributes, _ name: String) throws -> Int {
        let s = attr.kernelShape.count
        guard s >= 1, x.rank == s + 2 else {
            throw FerryError("\(name) with a \(s)-D kernel expects X of rank \(s + 2), got \(x.shape)")
        }
        guard attr.strides.count == s, attr.pads.count == 2 * s, attr.dilations.count == s else {
            throw FerryError("\(name) attribute lengths do not match \(s) spatial dimensions")
        }
        return s
    }

    static func pool(_ x: Tensor, _ attr: PoolAttributes, _ name: String, average: Bool) throws -> Tensor {
        let xv = try x.requireFloats(name, "X")
        let s = try checkPoolShape(x, attr, name)
        guard attr.isDense else { throw FerryError("\(name) has no dilations, got \(attr.dilations)") }
        let inSpatial = Array(x.shape[2...])
        var outSpatial: [Int] = []
        for i in 0..<s {
            outSpatial.append(try windowOutputLength(inSpatial[i], kernel: attr.kernelShape[i], stride: attr.strides[i],
                                                     dilation: 1, padBegin: attr.pads[i], padEnd: attr.pads[i + s],
                                                     ceil: attr.ceilMode))
        }
        let outShape = Array(x.shape[..<2]) + outSpatial
        let planes = x.shape[0] * x.shape[1]
        let inPlane = elementCount(inSpatial), outPlane = elementCount(outSpatial)
        let inStrides = contiguousStrides(inSpatial)

        // Per axis and output position: the clipped input range and the padded-window length.
        var lo: [[Int]] = [], hi: [[Int]] = [], padded: [[Int]] = []
        for i in 0..<s {
            var l: [Int] = [], h: [Int] = [], p: [Int] = []
            for o in 0..<outSpatial[i] {
                let start = o * attr.strides[i] - attr.pads[i]
                let end = start + attr.kernelShape[i]
                l.append(max(start, 0))
                h.append(min(end, inSpatial[i]))
                p.append(min(end, inSpatial[i] + attr.pads[i + s]) - start)
            }
            lo.append(l); hi.append(h); padded.append(p)
        }

        let out = xv.withUnsafeBufferPointer { xp in
            makeFloats(planes * outPlane) { yp in
                var pos = Array(repeating: 0, count: s)
                var cell = Array(repeating: 0, count: s)
                for q in 0..<outPlane {
                    // Output coordinates of q.
                    var rem = q
                    for i in stride(from: s - 1, through: 0, by: -1) {
                        pos[i] = rem % outSpatial[i]
                        rem /= outSpatial[i]
                    }
                    var inside = 1, includingPad = 1
                    var empty = false
                    for i in 0..<s {
                        let n = hi[i][pos[i]] - lo[i][pos[i]]
                        if n <= 0 { empty = true }
                        inside *= max(n, 0)
                        includingPad *= padded[i][pos[i]]
                    }
                    let divisor = Float(attr.countIncludePad ? includingPad : inside)
                    for plane in 0..<planes {
                        let base = plane * inPlane
                        if empty {
                            yp[plane * outPlane + q] = average ? 0 : -Float.infinity
                            continue
                        }
                        var acc: Float = average ? 0 : -Float.infinity
                        // Odometer over the window's cells inside the input.
                        for i in 0..<s { cell[i] = lo[i][pos[i]] }
                        let innerLo = lo[s - 1][pos[s - 1]], innerHi = hi[s - 1][pos[s - 1]]
                        while true {
                            var offset = base
                            for i in 0..<(s - 1) { offset += cell[i] * inStrides[i] }
                            if average {
                                for c in innerLo..<innerHi { acc += xp[offset + c] }
                            } else {
                                for c in innerLo..<innerHi { acc = max(acc, xp[offset + c]) }
                            }
                            var axis = s - 2
                            while axis >= 0 {
                                cell[axis] += 1
                                if cell[axis] < hi[axis][pos[axis]] { break }
                                cell[axis] = lo[axis][pos[axis]]
                                axis -= 1
                            }
                            if axis < 0 { break }
                        }
                        yp[plane * outPlane + q] = average ? acc / divisor : acc
                    }
                }
            }
        }
        return Tensor(shape: outShape, floats: out)
    }

    public static func globalAveragePool(_ x: Tensor) throws -> Tensor {
        try globalPool(x, "GlobalAveragePool", average: true)
    }

    public static func globalMaxPool(_ x: Tensor) throws -> Tensor {
        try globalPool(x, "GlobalMaxPool", average: false)
    }

    static func globalPool(_ x: Tensor, _ name: String, average: Bool) throws -> Tensor {
        let xv = try x.requireFloats(name, "X")
        guard x.rank >= 3 else { throw FerryError("\(name) expects rank >= 3, got \(x.shape)") }
        let planes = x.shape[0] * x.shape[1]
        let size = elementCount(x.shape[2...])
        let out = xv.withUnsafeBufferPointer { xp in
            makeFloats(planes) { yp in
                for p in 0..<planes {
                    var acc: Float = average ? 0 : -Float.infinity
                    for i in 0..<size {
                        let v = xp[p * size + i]
                        acc = average ? acc + v : max(acc, v)
                    }
                    yp[p] = average ? (size > 0 ? acc / Float(size) : 0) : acc
                }
            }
        }
        return Tensor(shape: Array(x.shape[..<2]) + Array(repeating: 1, count: x.rank - 2), floats: out)
    }
}
