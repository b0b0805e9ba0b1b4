import FerryIR
import FerryKernels

/// Gemm and MatMul in a plan: one `cblas_sgemm` (MatMul: one per broadcast batch), then
/// Gemm's beta · C (broadcast) and the fused activation in one pass over each row.
extension PlanBuilder {
    func planGemm(_ node: Node, _ a: GemmAttributes) -> PlannedKernel? {
        var aShape = shape(node.inputs[0])
        let bShape = shape(node.inputs[1]), yShape = shape(node.outputs[0])
        // A fused Flatten: the contiguous N-D input is already the (d0, rest) matrix.
        if a.flattensA, let d0 = aShape.first { aShape = [d0, aShape.dropFirst().reduce(1, *)] }
        guard aShape.count == 2, bShape.count == 2, yShape.count == 2 else { return nil }
        let m = yShape[0], n = yShape[1], k = a.transA ? aShape[0] : aShape[1]
        // C broadcast to [M, N]: strides of its rows and columns (0 where it repeats).
        var cStrides: (row: Int, column: Int)?
        if node.inputs.count > 2, !node.inputs[2].isEmpty, a.beta != 0 {
            let c = shape(node.inputs[2])
            guard c.count <= 2 else { return nil }
            let c2 = Array(repeating: 1, count: 2 - c.count) + c
            guard c2[0] == 1 || c2[0] == m, c2[1] == 1 || c2[1] == n else { return nil }
            cStrides = (c2[0] == 1 ? 0 : c2[1], c2[1] == 1 ? 0 : 1)
        }
        let alpha = a.alpha, beta = a.beta, activation = a.activation, transA = a.transA, transB = a.transB
        let threads = self.threads
        if m == 1, k > 0, InnerKernels.simd {
            return planRowGemm(node, n: n, k: k, transB: transB, ldb: bShape[1], alpha: alpha, beta: beta,
                               cColumnStride: cStrides?.column, activation: activation)
        }
        return PlannedKernel(name: "gemm.sgemm") { b in
            let ap = b.pointer(node.inputs[0]), bp = b.pointer(node.inputs[1]), y = b.pointer(node.outputs[0])
            let cp = cStrides == nil ? nil : b.pointer(node.inputs[2])
            return {
                sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: ap, lda: aShape[1],
                      b: bp, ldb: bShape[1], beta: 0, c: y, ldc: n)
                guard cp != nil || activation != nil else { return }
                parallelChunks(m, threads: threads, grain: max(1, 4096 / max(n, 1))) { rows in
                    for i in rows {
                        let row = y + i * n
                        if let cp, let (rs, cs) = cStrides {
                            let c = cp + i * rs
                            if cs == 0 {
                                let v = beta * c[0]
                                for j in 0..<n { row[j] += v }
                            } else {
                                for j in 0..<n { row[j] += beta * c[j] }
                            }
                        }
                        if let activation { InnerKernels.activation(row, row, count: n, activation) }
                    }
                }
            }
        }
    }

    /// A one-row Gemm (a batch-1 Dense): each thread streams the weights of its own output
    /// columns (`Kernels.rowTimesMatrix`, or `matrixTimesColumn` for a transposed B) and finishes
    /// them with alpha, beta · C and the activation while they are in cache. A one-row A is the
    /// same contiguous vector whether transposed or not.
    private func planRowGemm(_ node: Node, n: Int, k: Int, transB: Bool, ldb: Int, alpha: Float, beta: Float,
                             cColumnStride: Int?, activation: FusedActivation?) -> PlannedKernel {
        let threads = self.threads
        // Enough multiply-adds per thread to pay for waking it.
        let grain = max(2 * 64, 32_768 / k)
        return PlannedKernel(name: "gemm.row") { b in
            let x = b.pointer(node.inputs[0]), w = b.pointer(node.inputs[1]), y = b.pointer(node.outputs[0])
            let c = cColumnStride == nil ? nil : b.pointer(node.inputs[2])
            return {
                parallelChunks(n, threads: threads, grain: grain) { columns in
                    if transB {
                        Kernels.matrixTimesColumn(w, ldb: ldb, depth: k, rows: columns, x, y)
                    } else {
                        Kernels.rowTimesMatrix(x, w, ldb: ldb, depth: k, columns: columns, y)
                    }
                    if alpha != 1 { for j in columns { y[j] *= alpha } }
                    if let c, let stride = cColumnStride {
                        for j in columns { y[j] += beta * c[j * stride] }
                    }
                    if let activation {
                        InnerKernels.activation(y + columns.lowerBound, y + columns.lowerBound, count: columns.count, activation)
                    }
                }
            }
        }
    }

    /// numpy matmul with B's batch broadcast over A's (B 2-D, or batches of equal shape).
    func planMatMul(_ node: Node) -> PlannedKernel? {
        let aShape = shape(node.inputs[0]), bShape = shape(node.inputs[1])
        guard aShape.count >= 2, bShape.count >= 2 else { return nil }
        let m = aShape[aShape.count - 2], k = aShape[aShape.count - 1], n = bShape[bShape.count - 1]
        let aBatch = Array(aShape.dropLast(2)), bBatch = Array(bShape.dropLast(2))
        let batches: Int, bStep: Int
        if elementCount(bBatch) == 1 {
            // A's batches fold into the rows of one product.
            return PlannedKernel(name: "matmul.sgemm") { b in
                let ap = b.pointer(node.inputs[0]), bp = b.pointer(node.inputs[1]), y = b.pointer(node.outputs[0])
                let rows = elementCount(aBatch) * m
                return { sgemm(transA: false, transB: false, m: rows, n: n, k: k, alpha: 1, a: ap, lda: k, b: bp, ldb: n,
                               beta: 0, c: y, ldc: n) }
            }
        } else if aBatch == bBatch {
            batches = elementCount(aBatch)
            bStep = k * n
        } else {
            return nil
        }
        return PlannedKernel(name: "matmul.sgemm") { b in
            let ap = b.pointer(node.inputs[0]), bp = b.pointer(node.inputs[1]), y = b.pointer(node.outputs[0])
            return {
                for t in 0..<batches {
                    sgemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: ap + t * m * k, lda: k,
                          b: bp + t * bStep, ldb: n, beta: 0, c: y + t * m * n, ldc: n)
                }
            }
        }
    }
}
