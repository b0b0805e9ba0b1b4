import COpenBLAS
import FerryIR

/// Row-major single-precision GEMM: c[m×n] = alpha · op(a) · op(b) + beta · c.
/// `lda`, `ldb`, `ldc` are the row lengths of the stored matrices. Empty products are handled
/// here (BLAS rejects zero leading dimensions).
func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
           a: UnsafePointer<Float>?, lda: Int, b: UnsafePointer<Float>?, ldb: Int,
           beta: Float, c: UnsafeMutablePointer<Float>?, ldc: Int) {
    guard m > 0, n > 0, let c else { return }
    guard k > 0, let a, let b else {
        // alpha · (empty product) = 0: only the beta term is left.
        for i in 0..<m {
            for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] }
        }
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                blasint(m), blasint(n), blasint(k), alpha,
                a, blasint(max(lda, 1)), b, blasint(max(ldb, 1)), beta, c, blasint(max(ldc, 1)))
}

/// Gemm and MatMul, float32, through `cblas_sgemm`.
extension ReferenceKernels {
    /// ONNX Gemm: alpha · A' · B' + beta · C with C unidirectionally broadcast to [M, N].
    public static func gemm(_ a: Tensor, _ b: Tensor, _ c: Tensor?, _ attr: GemmAttributes) throws -> Tensor {
        let a = attr.flattensA ? try flatten(a, axis: 1) : a
        let av = try a.requireFloats("Gemm", "A")
        let bv = try b.requireFloats("Gemm", "B")
        guard a.rank == 2, b.rank == 2 else {
            throw FerryError("Gemm expects 2-D A and B, got \(a.shape) and \(b.shape)")
        }
        let m = attr.transA ? a.shape[1] : a.shape[0]
        let k = attr.transA ? a.shape[0] : a.shape[1]
        let k2 = attr.transB ? b.shape[1] : b.shape[0]
        let n = attr.transB ? b.shape[0] : b.shape[1]
        guard k == k2 else {
            throw FerryError("Gemm inner dimensions differ: A \(a.shape)\(attr.transA ? "ᵀ" : ""), B \(b.shape)\(attr.transB ? "ᵀ" : "")")
        }
        var out = [Float](repeating: 0, count: m * n)
        var beta: Float = 0
        if let c, attr.beta != 0 {
            let cv = try c.requireFloats("Gemm", "C")
            guard c.rank <= 2 else { throw FerryError("Gemm C \(c.shape) does not broadcast to [\(m),\(n)]") }
            let cShape = Array(repeating: 1, count: 2 - c.rank) + c.shape
            guard cShape[0] == 1 || cShape[0] == m, cShape[1] == 1 || cShape[1] == n else {
                throw FerryError("Gemm C \(c.shape) does not broadcast to [\(m),\(n)]")
            }
            let rowStride = cShape[0] == 1 ? 0 : cShape[1]
            let colStride = cShape[1] == 1 ? 0 : 1
            cv.withUnsafeBufferPointer { cp in
                out.withUnsafeMutableBufferPointer { o in
                    for i in 0..<m {
                        for j in 0..<n { o[i * n + j] = cp[i * rowStride + j * colStride] }
                    }
                }
            }
            beta = attr.beta
        }
        av.withUnsafeBufferPointer { ap in
            bv.withUnsafeBufferPointer { bp in
                out.withUnsafeMutableBufferPointer { o in
                    sgemm(transA: attr.transA, transB: attr.transB, m: m, n: n, k: k, alpha: attr.alpha,
                          a: ap.baseAddress, lda: a.shape[1], b: bp.baseAddress, ldb: b.shape[1],
                          beta: beta, c: o.baseAddress, ldc: n)
                }
            }
        }
        return Tensor(shape: [m, n], floats: out)
    }

    /// numpy matmul: 1-D operands are promoted (and the added axis removed from the result);
    /// leading batch dimensions broadcast.
    public static func matMul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        let av = try a.requireFloats("MatMul", "A")
        let bv = try b.requireFloats("MatMul", "B")
        guard a.rank >= 1, b.rank >= 1 else {
            throw FerryError("MatMul of a scalar: \(a.shape) x \(b.shape)")
        }
        let aVector = a.rank == 1, bVector = b.rank == 1
        let aShape = aVector ? [1] + a.shape : a.shape
        let bShape = bVector ? b.shape + [1] : b.shape
        let m = aShape[aShape.count - 2], k = aShape[aShape.count - 1]
        let k2 = bShape[bShape.count - 2], n = bShape[bShape.count - 1]
        guard k == k2 else { throw FerryError("MatMul inner dimensions differ: \(a.shape) x \(b.shape)") }
        let aBatch = Array(aShape.dropLast(2)), bBatch = Array(bShape.dropLast(2))
        let batch = try broadcastSizes(aBatch, bBatch)
        var outShape = batch
        if !aVector { outShape.append(m) }
        if !bVector { outShape.append(n) }
        let batchCount = elementCount(batch)
        var out = [Float](repeating: 0, count: batchCount * m * n)
        av.withUnsafeBufferPointer { ap in
            bv.withUnsafeBufferPointer { bp in
                out.withUnsafeMutableBufferPointer { o in
                    if elementCount(bBatch) == 1 && aBatch == batch {
                        // One shared B: the batch folds into the rows of one product.
                        sgemm(transA: false, transB: false, m: batchCount * m, n: n, k: k, alpha: 1,
                              a: ap.baseAddress, lda: k, b: bp.baseAddress, ldb: n, beta: 0,
                              c: o.baseAddress, ldc: n)
                        return
                    }
                    let sa = broadcastStrides(aBatch, to: batch)
                    let sb = broadcastStrides(bBatch, to: batch)
                    var index = Array(repeating: 0, count: batch.count)
                    for t in 0..<batchCount {
                        var offA = 0, offB = 0
                        for (axis, i) in index.enumerated() {
                            offA += i * sa[axis]
                            offB += i * sb[axis]
                        }
                        sgemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1,
                              a: ap.baseAddress.map { $0 + offA * m * k }, lda: k,
                              b: bp.baseAddress.map { $0 + offB * k * n }, ldb: n, beta: 0,
                              c: o.baseAddress.map { $0 + t * m * n }, ldc: n)
                        var axis = batch.count - 1
                        while axis >= 0 {
                            index[axis] += 1
                            if index[axis] < batch[axis] { break }
                            index[axis] = 0
                            axis -= 1
                        }
                    }
                }
            }
        }
        return Tensor(shape: outShape, floats: out)
    }
}
