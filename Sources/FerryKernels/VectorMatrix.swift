/// One row times a matrix: the Gemm of a batch-1 Dense / InnerProduct layer.
///
/// Why not `cblas_sgemm`: with one row there is nothing to reuse, the product only streams the
/// weights once, and its speed is the memory bandwidth. OpenBLAS ran these products on one
/// thread at about half of what two cores stream (ResNet50's 2048 x 1000 classifier took 0.69 ms
/// against onnxruntime's 0.37). These kernels work on a caller-given range of output columns so
/// that each thread streams its own part of the weights.
extension Kernels {
    /// y[j] = Σ_k x[k]·b[k, j] for j in `columns`: b row-major (`depth` rows, row stride `ldb`),
    /// y indexed like b's columns. Eight vectors of columns at a time, k ascending.
    public static func rowTimesMatrix(_ x: UnsafePointer<Float>, _ b: UnsafePointer<Float>, ldb: Int, depth: Int,
                                      columns: Range<Int>, _ y: UnsafeMutablePointer<Float>) {
        var j = columns.lowerBound
        let end = columns.upperBound
        while j &+ 8 &* lanes <= end {
            var a0 = FloatVector(), a1 = FloatVector(), a2 = FloatVector(), a3 = FloatVector()
            var a4 = FloatVector(), a5 = FloatVector(), a6 = FloatVector(), a7 = FloatVector()
            var row = b + j
            for k in 0..<depth {
                let s = splat(x[k])
                a0 = a0.addingProduct(row.vector(at: 0), s); a1 = a1.addingProduct(row.vector(at: 8), s)
                a2 = a2.addingProduct(row.vector(at: 16), s); a3 = a3.addingProduct(row.vector(at: 24), s)
                a4 = a4.addingProduct(row.vector(at: 32), s); a5 = a5.addingProduct(row.vector(at: 40), s)
                a6 = a6.addingProduct(row.vector(at: 48), s); a7 = a7.addingProduct(row.vector(at: 56), s)
                row += ldb
            }
            let out = y + j
            out.store(a0, at: 0); out.store(a1, at: 8); out.store(a2, at: 16); out.store(a3, at: 24)
            out.store(a4, at: 32); out.store(a5, at: 40); out.store(a6, at: 48); out.store(a7, at: 56)
            j &+= 8 &* lanes
        }
        while j < end {
            let count = Swift.min(lanes, end &- j)
            var acc = FloatVector()
            var row = b + j
            if count == lanes {
                for k in 0..<depth { acc = acc.addingProduct(row.vector(at: 0), splat(x[k])); row += ldb }
                (y + j).store(acc)
            } else {
                for k in 0..<depth { acc = acc.addingProduct(loadPartial(row, count), splat(x[k])); row += ldb }
                storePartial(acc, y + j, count)
            }
            j &+= count
        }
    }

    /// y[j] = Σ_k x[k]·b[j, k] for j in `rows` (b row-major with row stride `ldb`: a transposed
    /// weight, as Caffe's InnerProduct and ONNX's Gemm with transB store it). Four rows at a
    /// time, each a dot product summed in 8 lanes and then across them.
    public static func matrixTimesColumn(_ b: UnsafePointer<Float>, ldb: Int, depth: Int, rows: Range<Int>,
                                         _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        let vectorDepth = depth / lanes * lanes
        @inline(__always) func tail(_ row: UnsafePointer<Float>) -> Float {
            var s: Float = 0
            for k in vectorDepth..<depth { s += row[k] * x[k] }
            return s
        }
        var j = rows.lowerBound
        while j &+ 4 <= rows.upperBound {
            let r0 = b + j &* ldb, r1 = r0 + ldb, r2 = r1 + ldb, r3 = r2 + ldb
            var a0 = FloatVector(), a1 = FloatVector(), a2 = FloatVector(), a3 = FloatVector()
            var k = 0
            while k < vectorDepth {
                let v = x.vector(at: k)
                a0 = a0.addingProduct(r0.vector(at: k), v); a1 = a1.addingProduct(r1.vector(at: k), v)
                a2 = a2.addingProduct(r2.vector(at: k), v); a3 = a3.addingProduct(r3.vector(at: k), v)
                k &+= lanes
            }
            y[j] = a0.sum() + tail(r0)
            y[j &+ 1] = a1.sum() + tail(r1)
            y[j &+ 2] = a2.sum() + tail(r2)
            y[j &+ 3] = a3.sum() + tail(r3)
            j &+= 4
        }
        while j < rows.upperBound {
            let r = b + j &* ldb
            var a = FloatVector()
            var k = 0
            while k < vectorDepth { a = a.addingProduct(r.vector(at: k), x.vector(at: k)); k &+= lanes }
            y[j] = a.sum() + tail(r)
            j &+= 1
        }
    }
}
