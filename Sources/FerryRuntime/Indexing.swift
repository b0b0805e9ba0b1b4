import FerryIR

/// Gather: any data element type, int64 or int32 indices.
extension ReferenceKernels {
    /// ONNX Gather: out[outer, j..., inner] = data[outer, indices[j...], inner]; negative
    /// indices count from the end; an index out of range is an error.
    public static func gather(_ data: Tensor, _ indices: Tensor, axis: Int) throws -> Tensor {
        let outType = try Op.gather(axis: axis).inferOutputTypes([data.type, indices.type])[0]
        guard let index = indices.int64s else { throw FerryError("Gather indices must be integers, got \(indices.dtype)") }
        let a = normalizeAxis(axis, rank: data.rank)!
        let n = data.shape[a]
        let outer = elementCount(data.shape[..<a]), inner = elementCount(data.shape[(a + 1)...])
        var positions: [Int] = []
        positions.reserveCapacity(outer * index.count * inner)
        var resolved: [Int] = []
        for i in index {
            guard i >= -Int64(n), i < Int64(n) else {
                throw FerryError("Gather index \(i) is out of range for axis \(axis) of size \(n)")
            }
            resolved.append(Int(i < 0 ? i + Int64(n) : i))
        }
        for o in 0..<outer {
            for i in resolved {
                let base = (o * n + i) * inner
                positions.append(contentsOf: base..<(base + inner))
            }
        }
        return try Tensor(shape: outType.shape.fixedSizes!, storage: data.storage.picking(positions))
    }
}
