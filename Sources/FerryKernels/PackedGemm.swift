/// Matrix product with the left operand packed once: C[M, N] = A[M, K] · B[K, N], row-major.
///
/// Why not `cblas_sgemm`: OpenBLAS packs both operands on every call. In a convolution A is the
/// weights, the same on every run, and at batch 1 the late layers have few output pixels (N) and
/// many weights, so repacking A each call cost about as much as the multiply itself (a sixth of
/// ResNet50's run time went to `sgemm_oncopy`). Here A is packed when the plan is compiled, and
/// only B (the activations, or im2col columns) is packed per call, a block at a time.
///
/// Layout of packed A: row panels of `PackedGemm.rowsPerPanel` (MR) rows, the last padded with
/// zero rows; panel p holds A[p·MR + i, k] at `p·K·MR + k·MR + i`, so one step of k reads MR
/// consecutive floats. B is packed per (K block, column block) into column panels of NR columns
/// (zero-padded), one step of k reading NR consecutive floats. The micro-kernel keeps an MR x NR
/// tile of C in 12 vector registers (6 rows x 2 `GemmVector`s): the classic AVX2 6x16 shape, or
/// 6x32 in 16-lane registers where the kernels are compiled for AVX-512, which halves the
/// broadcasts and loads per multiply-add.
///
/// Every C element is summed in the same order (K blocks in turn, k ascending within each) however
/// the caller splits rows or columns between threads, so results do not depend on the split.
public enum PackedGemm {
    /// MR: rows of A per panel (and of the C tile).
    public static let rowsPerPanel = 6
    /// NR: columns of B per panel (and of the C tile): two `GemmVector`s (16 or 32).
    public static let columnsPerPanel = 2 * gemmLanes
    /// KC: depth of one B block, so that an A panel slice (KC·MR floats) stays in L1.
    public static let depthBlock = 256
    /// NC: columns of one B block; KC·NC floats (384 KiB) stay in L2.
    public static let columnBlock = 384

    /// Floats of a packed A with `rows` x `depth`.
    public static func packedCount(rows: Int, depth: Int) -> Int {
        panelCount(rows: rows) * rowsPerPanel * depth
    }

    public static func panelCount(rows: Int) -> Int { (rows + rowsPerPanel - 1) / rowsPerPanel }

    /// Floats of scratch one concurrent `multiply` call needs (its packed B block).
    public static var scratchCount: Int { depthBlock * columnBlock }

    /// Floats of scratch a `multiply` (or, when `narrow`, `multiplyNarrow`) call of at most
    /// `columns` columns and this depth writes: its packed B block, no larger than the product's
    /// own B (`scratchCount` at most). A plan sizes its scratch by this: the full block is 384
    /// KiB a thread, more than a small image's activations (ResNet50's 96x96 first convolution,
    /// of depth 147, packs 147 x 384 floats).
    public static func scratchCount(depth: Int, columns: Int, narrow: Bool) -> Int {
        guard depth > 0, columns > 0 else { return 0 }
        if narrow {
            let nr = narrowColumnsPerPanel
            let blockColumns = Swift.max(nr, scratchCount / depth / nr * nr)
            return depth * ((Swift.min(blockColumns, columns) + nr - 1) / nr * nr)
        }
        let nr = columnsPerPanel
        return Swift.min(depthBlock, depth) * ((Swift.min(columnBlock, columns) + nr - 1) / nr * nr)
    }

    /// Packs A (`rows` x `depth`, row stride `lda`) into `packed` (`packedCount` floats).
    public static func packA(_ a: UnsafePointer<Float>, rows: Int, depth: Int, lda: Int, into packed: UnsafeMutablePointer<Float>) {
        packPanels(a, rows: rows, depth: depth, lda: lda, panelRows: rowsPerPanel, into: packed)
    }

    /// Row panels of `panelRows` (the last padded with zero rows): panel p holds
    /// A[p·panelRows + i, k] at `p·depth·panelRows + k·panelRows + i`.
    static func packPanels(_ a: UnsafePointer<Float>, rows: Int, depth: Int, lda: Int, panelRows mr: Int,
                           into packed: UnsafeMutablePointer<Float>) {
        for p in 0..<(rows + mr - 1) / mr {
            let panel = packed + p * depth * mr
            for i in 0..<mr {
                let r = p * mr + i
                if r < rows {
                    let row = a + r * lda
                    for k in 0..<depth { panel[k * mr + i] = row[k] }
                } else {
                    for k in 0..<depth { panel[k * mr + i] = 0 }
                }
            }
        }
    }

    /// The inverse of `packPanels`: A (`rows` x `depth`, row stride `lda`) from its panels of
    /// `panelRows` rows (a runtime that kept only the packed weights restores them with it).
    public static func unpackPanels(_ packed: UnsafePointer<Float>, rows: Int, depth: Int, panelRows mr: Int,
                                    into a: UnsafeMutablePointer<Float>, lda: Int) {
        for r in 0..<rows {
            let panel = packed + (r / mr) * depth * mr, i = r % mr
            let row = a + r * lda
            for k in 0..<depth { row[k] = panel[k * mr + i] }
        }
    }

    /// C[rows of panels `panels`, `columns`] = epilogue(A · B) (A · B added to C first when
    /// `accumulate`), with A packed by `packA` (`rows` x `depth`), B row-major with row stride
    /// `ldb`, C with row stride `ldc`. `columns` index both B's and C's columns. The epilogue's
    /// bias has one value per row of C; its residual has C's layout (same offsets, stride ldc).
    /// The epilogue is applied as each tile is stored after its last K block, while the tile is
    /// still in registers. `scratch` holds `scratchCount` floats.
    public static func multiply(packedA: UnsafePointer<Float>, rows: Int, depth: Int, panels: Range<Int>,
                                b: UnsafePointer<Float>, ldb: Int, columns: Range<Int>,
                                c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false,
                                epilogue: Epilogue = Epilogue(), scratch: UnsafeMutablePointer<Float>) {
        guard !panels.isEmpty, !columns.isEmpty else { return }
        if depth == 0 {
            emptyProduct(rows: rows, panelRows: rowsPerPanel, panels: panels, columns: columns, c: c, ldc: ldc,
                         accumulate: accumulate, epilogue: epilogue)
            return
        }
        visitActivation(epilogue.activation, WideProduct(
            packedA: packedA, rows: rows, depth: depth, panels: panels, b: b, ldb: ldb, columns: columns, c: c, ldc: ldc,
            accumulate: accumulate, bias: epilogue.bias, residual: epilogue.residual, scratch: scratch))
    }

    /// A product of depth 0: C = epilogue(0), or epilogue(C) when accumulating.
    static func emptyProduct(rows: Int, panelRows: Int, panels: Range<Int>, columns: Range<Int>, c: UnsafeMutablePointer<Float>,
                             ldc: Int, accumulate: Bool, epilogue: Epilogue) {
        let first = panels.lowerBound * panelRows, last = Swift.min(panels.upperBound * panelRows, rows)
        guard first < last else { return }
        let out = c + first * ldc + columns.lowerBound
        if !accumulate {
            for i in 0..<(last - first) { (out + i * ldc).update(repeating: 0, count: columns.count) }
        }
        Kernels.applyEpilogue(out - first * ldc, channels: first..<last, planeStride: ldc, offset: 0, count: columns.count,
                              Epilogue(bias: epilogue.bias, residual: epilogue.residual.map { $0 + columns.lowerBound },
                                       activation: epilogue.activation))
    }
}

/// The wide product's loop nest, specialized per activation.
struct WideProduct: ActivationVisitor {
    let packedA: UnsafePointer<Float>, rows: Int, depth: Int, panels: Range<Int>
    let b: UnsafePointer<Float>, ldb: Int, columns: Range<Int>
    let c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool
    let bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?
    let scratch: UnsafeMutablePointer<Float>

    func visit<A: VectorActivation>(_ f: A) {
        let mr = PackedGemm.rowsPerPanel, nr = PackedGemm.columnsPerPanel
        var jc = columns.lowerBound
        while jc < columns.upperBound {
            let nc = Swift.min(PackedGemm.columnBlock, columns.upperBound - jc)
            let columnPanels = (nc + nr - 1) / nr
            var pc = 0
            while pc < depth {
                let kc = Swift.min(PackedGemm.depthBlock, depth - pc)
                PackedGemm.packB(b + pc * ldb + jc, ldb: ldb, depth: kc, columns: nc, into: scratch)
                let add = accumulate || pc > 0, last = pc + kc == depth
                for p in panels {
                    let aPanel = packedA + p * depth * mr + pc * mr
                    let validRows = Swift.min(mr, rows - p * mr)
                    let cRow = c + p * mr * ldc + jc
                    let tile = TileEpilogue(bias: bias.map { $0 + p * mr }, residual: residual.map { $0 + p * mr * ldc + jc },
                                            ldc: ldc)
                    for q in 0..<columnPanels {
                        PackedGemm.microKernel(depth: kc, a: aPanel, b: UnsafePointer(scratch + q * kc * nr), c: cRow + q * nr,
                                               ldc: ldc, accumulate: add, rows: validRows, columns: Swift.min(nr, nc - q * nr),
                                               epilogue: last ? tile.shifted(q * nr) : nil, f)
                    }
                }
                pc += kc
            }
            jc += nc
        }
    }
}

#if FERRY_AVX512
/// The wide GEMM kernel's vector: one 16-lane AVX-512 register (32 of them hold the tile).
typealias GemmVector = SIMD16<Float>

/// `f` on a 16-lane vector (Swish and Sigmoid in 16-lane code, the others a half at a time).
@inline(__always) func activate<A: VectorActivation>(_ f: A, _ v: GemmVector) -> GemmVector {
    f is IdentityActivation ? v : f.wide(v)
}
#else
/// The wide GEMM kernel's vector: one 8-lane AVX2 register (16 of them hold the tile).
typealias GemmVector = FloatVector

@inline(__always) func activate<A: VectorActivation>(_ f: A, _ v: GemmVector) -> GemmVector { f(v) }
#endif
let gemmLanes = GemmVector.scalarCount

extension UnsafePointer where Pointee == Float {
    @inline(__always) func gemmVector(at offset: Int) -> GemmVector {
        UnsafeRawPointer(self + offset).loadUnaligned(as: GemmVector.self)
    }
}

extension UnsafeMutablePointer where Pointee == Float {
    @inline(__always) func gemmVector(at offset: Int) -> GemmVector {
        UnsafeRawPointer(self + offset).loadUnaligned(as: GemmVector.self)
    }

    @inline(__always) func storeGemm(_ v: GemmVector, at offset: Int) {
        UnsafeMutableRawPointer(self + offset).storeBytes(of: v, as: GemmVector.self)
    }
}

/// Bias (per row) and residual (C's layout) of one tile's rows, applied when the tile is stored.
struct TileEpilogue {
    var bias: UnsafePointer<Float>?
    var residual: UnsafePointer<Float>?
    let ldc: Int

    /// The same rows, `columns` further right.
    @inline(__always) func shifted(_ columns: Int) -> TileEpilogue {
        TileEpilogue(bias: bias, residual: residual.map { $0 + columns }, ldc: ldc)
    }
}

extension PackedGemm {

    /// Packs B[0..<depth, 0..<columns] (row stride ldb) into column panels of NR, zero-padded.
    @inline(__always)
    static func packB(_ b: UnsafePointer<Float>, ldb: Int, depth: Int, columns: Int, into packed: UnsafeMutablePointer<Float>) {
        let nr = columnsPerPanel
        let full = columns / nr, rest = columns - full * nr
        for q in 0..<full {
            let dst = packed + q * depth * nr, src = b + q * nr
            for k in 0..<depth {
                let row = src + k * ldb
                dst.storeGemm(row.gemmVector(at: 0), at: k * nr)
                dst.storeGemm(row.gemmVector(at: gemmLanes), at: k * nr + gemmLanes)
            }
        }
        if rest > 0 {
            let dst = packed + full * depth * nr, src = b + full * nr
            for k in 0..<depth {
                let row = src + k * ldb, out = dst + k * nr
                for j in 0..<rest { out[j] = row[j] }
                for j in rest..<nr { out[j] = 0 }
            }
        }
    }

    /// One MR x NR tile of C: the sum over `depth` steps of a packed A panel slice times a
    /// packed B panel. Only the first `rows` x `columns` of the tile are written.
    /// With `epilogue` (the last K block), out = f(acc (+ C) + bias + residual).
    @inline(__always)
    static func microKernel<A: VectorActivation>(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                                 c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, rows: Int,
                                                 columns: Int, epilogue: TileEpilogue?, _ f: A) {
        let half = gemmLanes
        var c00 = GemmVector(), c01 = GemmVector(), c10 = GemmVector(), c11 = GemmVector()
        var c20 = GemmVector(), c21 = GemmVector(), c30 = GemmVector(), c31 = GemmVector()
        var c40 = GemmVector(), c41 = GemmVector(), c50 = GemmVector(), c51 = GemmVector()
        var ap = a, bp = b
        if columns <= half {
            // An edge panel with at most half its columns: the right half is padding, skip it
            // (6 accumulators still cover the multiply-add latency).
            for _ in 0..<depth {
                let b0 = bp.gemmVector(at: 0)
                c00 = c00.addingProduct(GemmVector(repeating: ap[0]), b0)
                c10 = c10.addingProduct(GemmVector(repeating: ap[1]), b0)
                c20 = c20.addingProduct(GemmVector(repeating: ap[2]), b0)
                c30 = c30.addingProduct(GemmVector(repeating: ap[3]), b0)
                c40 = c40.addingProduct(GemmVector(repeating: ap[4]), b0)
                c50 = c50.addingProduct(GemmVector(repeating: ap[5]), b0)
                ap += 6
                bp += 2 &* half
            }
        } else {
            for _ in 0..<depth {
                let b0 = bp.gemmVector(at: 0), b1 = bp.gemmVector(at: half)
                var x = GemmVector(repeating: ap[0])
                c00 = c00.addingProduct(x, b0); c01 = c01.addingProduct(x, b1)
                x = GemmVector(repeating: ap[1])
                c10 = c10.addingProduct(x, b0); c11 = c11.addingProduct(x, b1)
                x = GemmVector(repeating: ap[2])
                c20 = c20.addingProduct(x, b0); c21 = c21.addingProduct(x, b1)
                x = GemmVector(repeating: ap[3])
                c30 = c30.addingProduct(x, b0); c31 = c31.addingProduct(x, b1)
                x = GemmVector(repeating: ap[4])
                c40 = c40.addingProduct(x, b0); c41 = c41.addingProduct(x, b1)
                x = GemmVector(repeating: ap[5])
                c50 = c50.addingProduct(x, b0); c51 = c51.addingProduct(x, b1)
                ap += 6
                bp += 2 &* half
            }
        }
        if rows == 6 && columns == columnsPerPanel {
            @inline(__always) func put(_ row: Int, _ v0: GemmVector, _ v1: GemmVector) {
                let out = c + row * ldc
                var v0 = v0, v1 = v1
                if accumulate {
                    v0 = out.gemmVector(at: 0) + v0
                    v1 = out.gemmVector(at: half) + v1
                }
                if let epilogue {
                    if let bias = epilogue.bias {
                        let bv = GemmVector(repeating: bias[row])
                        v0 += bv
                        v1 += bv
                    }
                    if let residual = epilogue.residual {
                        let r = residual + row * ldc
                        v0 += r.gemmVector(at: 0)
                        v1 += r.gemmVector(at: half)
                    }
                    v0 = activate(f, v0)
                    v1 = activate(f, v1)
                }
                out.storeGemm(v0, at: 0)
                out.storeGemm(v1, at: half)
            }
            put(0, c00, c01); put(1, c10, c11); put(2, c20, c21)
            put(3, c30, c31); put(4, c40, c41); put(5, c50, c51)
            return
        }
        // Edge tile: through a stack buffer, then the valid part.
        let nr = columnsPerPanel
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 6 * columnsPerPanel) { buffer in
            let t = buffer.baseAddress!
            t.storeGemm(c00, at: 0); t.storeGemm(c01, at: half); t.storeGemm(c10, at: nr); t.storeGemm(c11, at: nr + half)
            t.storeGemm(c20, at: 2 * nr); t.storeGemm(c21, at: 2 * nr + half)
            t.storeGemm(c30, at: 3 * nr); t.storeGemm(c31, at: 3 * nr + half)
            t.storeGemm(c40, at: 4 * nr); t.storeGemm(c41, at: 4 * nr + half)
            t.storeGemm(c50, at: 5 * nr); t.storeGemm(c51, at: 5 * nr + half)
            for i in 0..<rows {
                let out = c + i * ldc, tile = t + i * nr
                if accumulate {
                    for j in 0..<columns { tile[j] += out[j] }
                }
                if let epilogue {
                    if let bias = epilogue.bias {
                        let bv = bias[i]
                        for j in 0..<columns { tile[j] += bv }
                    }
                    if let residual = epilogue.residual {
                        let r = residual + i * ldc
                        for j in 0..<columns { tile[j] += r[j] }
                    }
                    for at in stride(from: 0, to: nr, by: lanes) { tile.store(f(tile.vector(at: at)), at: at) }
                }
                for j in 0..<columns { out[j] = tile[j] }
            }
        }
    }

    // MARK: Few columns (small output planes)

    /// Six floats at `p` in lanes 0..<6 of a vector (lanes 6 and 7 zero).
    @inline(__always)
    static func loadSix(_ p: UnsafePointer<Float>) -> FloatVector {
        let raw = UnsafeRawPointer(p)
        let first = raw.loadUnaligned(as: SIMD4<Float>.self), rest = (raw + 16).loadUnaligned(as: SIMD2<Float>.self)
        return FloatVector(lowHalf: first, highHalf: SIMD4(lowHalf: rest, highHalf: SIMD2()))
    }

    /// The wide kernel above pads the columns (output pixels) to multiples of 16, which wastes
    /// most of the work on the small planes of a network's last stages (7x7 = 49 pixels run as
    /// 64, 3x3 as 16). For those, the vectors run along the rows (output channels, in 16s, which
    /// real layers fill) and the columns are broadcast 6 at a time, so the padding is at most 5
    /// columns. The C tile is then transposed on its way out, once per product (no K blocks).

    /// Rows of A per panel in the few-columns layout: two 8-lane vectors.
    public static let narrowRowsPerPanel = 16
    /// Columns of B per panel in the few-columns layout (broadcast one at a time).
    public static let narrowColumnsPerPanel = 6

    public static func narrowPanelCount(rows: Int) -> Int { (rows + narrowRowsPerPanel - 1) / narrowRowsPerPanel }

    /// Floats of a packed A in either layout.
    public static func packedCount(rows: Int, depth: Int, narrow: Bool) -> Int {
        narrow ? narrowPackedCount(rows: rows, depth: depth) : packedCount(rows: rows, depth: depth)
    }

    /// Floats of a packed A in the few-columns layout.
    public static func narrowPackedCount(rows: Int, depth: Int) -> Int {
        narrowPanelCount(rows: rows) * narrowRowsPerPanel * depth
    }

    /// Whether the few-columns kernel suits an `n`-column product of depth `depth`: it pads
    /// less, but transposes each tile on its way out, which cost about 50 steps of depth a tile
    /// through the stack buffer it first had (fitted to ferry-bench-kernels --min on one thread:
    /// 196 columns of depth 256 took 1.21 ms wide and 1.38 narrow; 49 of depth 256 0.36 both; 49
    /// of depth 512 1.72 wide and 1.46 narrow; 25 of depth 256 0.093 wide and 0.103 narrow). Kept
    /// with the register transposes: MobileNetV2's 14x14 projections (196 columns of depth 384
    /// and 576) still run 3-8% faster wide.
    /// So it is taken only when its padded columns, grown by that share, are fewer than the wide
    /// kernel's, and a 6-column panel of the whole depth fits the scratch.
    public static func prefersNarrow(columns n: Int, depth: Int) -> Bool {
        guard depth > 0, depth * narrowColumnsPerPanel <= scratchCount else { return false }
        // The wide kernel's last panel computes only its left half when the rest is padding.
        let step = columnsPerPanel / 2
        let wide = (n + step - 1) / step * step
        let narrow = (n + narrowColumnsPerPanel - 1) / narrowColumnsPerPanel * narrowColumnsPerPanel
        return n <= 256 && Double(narrow) * (1 + 50 / Double(depth)) < Double(wide)
    }

    /// Packs A for `multiplyNarrow`: panel p holds A[p·16 + i, k] at `p·K·16 + k·16 + i`.
    public static func packNarrowA(_ a: UnsafePointer<Float>, rows: Int, depth: Int, lda: Int,
                                   into packed: UnsafeMutablePointer<Float>) {
        packPanels(a, rows: rows, depth: depth, lda: lda, panelRows: narrowRowsPerPanel, into: packed)
    }

    /// `multiply` for A packed by `packNarrowA`; `panels` counts 16-row panels.
    public static func multiplyNarrow(packedA: UnsafePointer<Float>, rows: Int, depth: Int, panels: Range<Int>,
                                      b: UnsafePointer<Float>, ldb: Int, columns: Range<Int>,
                                      c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false,
                                      epilogue: Epilogue = Epilogue(), scratch: UnsafeMutablePointer<Float>) {
        guard !panels.isEmpty, !columns.isEmpty else { return }
        precondition(depth * narrowColumnsPerPanel <= scratchCount, "PackedGemm.multiplyNarrow: depth \(depth) too large")
        if depth == 0 {
            emptyProduct(rows: rows, panelRows: narrowRowsPerPanel, panels: panels, columns: columns, c: c, ldc: ldc,
                         accumulate: accumulate, epilogue: epilogue)
            return
        }
        visitActivation(epilogue.activation, NarrowProduct(
            packedA: packedA, rows: rows, depth: depth, panels: panels, b: b, ldb: ldb, columns: columns, c: c, ldc: ldc,
            accumulate: accumulate, bias: epilogue.bias, residual: epilogue.residual, scratch: scratch))
    }
}

/// The few-columns product's loop nest, specialized per activation.
struct NarrowProduct: ActivationVisitor {
    let packedA: UnsafePointer<Float>, rows: Int, depth: Int, panels: Range<Int>
    let b: UnsafePointer<Float>, ldb: Int, columns: Range<Int>
    let c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool
    let bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?
    let scratch: UnsafeMutablePointer<Float>

    func visit<A: VectorActivation>(_ f: A) {
        let mr = PackedGemm.narrowRowsPerPanel, nr = PackedGemm.narrowColumnsPerPanel
        let blockColumns = Swift.max(nr, PackedGemm.scratchCount / depth / nr * nr)
        var jc = columns.lowerBound
        while jc < columns.upperBound {
            let nc = Swift.min(blockColumns, columns.upperBound - jc)
            let columnPanels = (nc + nr - 1) / nr
            // Pack B[0..<depth, jc..<jc+nc] into panels of 6 columns, zero-padded.
            for q in 0..<columnPanels {
                let dst = scratch + q * depth * nr, src = b + jc + q * nr
                let valid = Swift.min(nr, nc - q * nr)
                for k in 0..<depth {
                    let row = src + k * ldb, out = dst + k * nr
                    for j in 0..<valid { out[j] = row[j] }
                    for j in valid..<nr { out[j] = 0 }
                }
            }
            for p in panels {
                let aPanel = packedA + p * depth * mr
                let validRows = Swift.min(mr, rows - p * mr)
                for q in 0..<columnPanels {
                    let tile = TileEpilogue(bias: bias.map { $0 + p * mr }, residual: residual.map { $0 + p * mr * ldc + jc + q * nr },
                                            ldc: ldc)
                    PackedGemm.narrowMicroKernel(depth: depth, a: aPanel, b: UnsafePointer(scratch + q * depth * nr),
                                                 c: c + p * mr * ldc + jc + q * nr, ldc: ldc, accumulate: accumulate,
                                                 rows: validRows, columns: Swift.min(nr, nc - q * nr), epilogue: tile, f)
                }
            }
            jc += nc
        }
    }
}

extension PackedGemm {

    /// A 16 x 6 tile of C: 16 rows in two vectors for each of 6 broadcast columns.
    @inline(__always)
    static func narrowMicroKernel<A: VectorActivation>(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                                       c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, rows: Int,
                                                       columns: Int, epilogue: TileEpilogue, _ f: A) {
        var c00 = FloatVector(), c01 = FloatVector(), c10 = FloatVector(), c11 = FloatVector()
        var c20 = FloatVector(), c21 = FloatVector(), c30 = FloatVector(), c31 = FloatVector()
        var c40 = FloatVector(), c41 = FloatVector(), c50 = FloatVector(), c51 = FloatVector()
        var ap = a, bp = b
        for _ in 0..<depth {
            let a0 = ap.vector(at: 0), a1 = ap.vector(at: 8)
            var x = splat(bp[0])
            c00 = c00.addingProduct(a0, x); c01 = c01.addingProduct(a1, x)
            x = splat(bp[1])
            c10 = c10.addingProduct(a0, x); c11 = c11.addingProduct(a1, x)
            x = splat(bp[2])
            c20 = c20.addingProduct(a0, x); c21 = c21.addingProduct(a1, x)
            x = splat(bp[3])
            c30 = c30.addingProduct(a0, x); c31 = c31.addingProduct(a1, x)
            x = splat(bp[4])
            c40 = c40.addingProduct(a0, x); c41 = c41.addingProduct(a1, x)
            x = splat(bp[5])
            c50 = c50.addingProduct(a0, x); c51 = c51.addingProduct(a1, x)
            ap += 16
            bp += 6
        }
        if rows == 16 && columns == 6 {
            // A full tile: transposed in registers into 16 rows of 6 (two 8x8 transposes of the
            // column vectors and two zero columns), each stored as 4 + 2 floats. The bias is
            // added per column (a vector of 16 rows); the activation too unless C or a residual
            // must be added first, which happens per row.
            if let bias = epilogue.bias {
                let b0 = bias.vector(at: 0), b1 = bias.vector(at: 8)
                c00 += b0; c10 += b0; c20 += b0; c30 += b0; c40 += b0; c50 += b0
                c01 += b1; c11 += b1; c21 += b1; c31 += b1; c41 += b1; c51 += b1
            }
            let residual = epilogue.residual
            let activateRows = accumulate || residual != nil
            if !activateRows && !(f is IdentityActivation) {
                c00 = f(c00); c10 = f(c10); c20 = f(c20); c30 = f(c30); c40 = f(c40); c50 = f(c50)
                c01 = f(c01); c11 = f(c11); c21 = f(c21); c31 = f(c31); c41 = f(c41); c51 = f(c51)
            }
            let zero = FloatVector()
            let low = transposed((c00, c10, c20, c30, c40, c50, zero, zero))
            let high = transposed((c01, c11, c21, c31, c41, c51, zero, zero))
            @inline(__always) func put(_ row: Int, _ v: FloatVector) {
                let out = c + row &* ldc
                var v = v
                if activateRows {
                    if accumulate { v += loadSix(UnsafePointer(out)) }
                    if let residual { v += loadSix(residual + row &* ldc) }
                    v = f(v)
                }
                let raw = UnsafeMutableRawPointer(out)
                raw.storeBytes(of: v.lowHalf, as: SIMD4<Float>.self)
                (raw + 16).storeBytes(of: v.highHalf.lowHalf, as: SIMD2<Float>.self)
            }
            put(0, low.0); put(1, low.1); put(2, low.2); put(3, low.3)
            put(4, low.4); put(5, low.5); put(6, low.6); put(7, low.7)
            put(8, high.0); put(9, high.1); put(10, high.2); put(11, high.3)
            put(12, high.4); put(13, high.5); put(14, high.6); put(15, high.7)
            return
        }
        // An edge tile. The tile is column-major in registers (one column's 16 rows per pair): the epilogue
        // runs on those vectors (the bias is a vector of 16 rows), then out through a stack
        // buffer, row by row. C and the residual are read into the buffer first when needed.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 96) { buffer in
            let t = buffer.baseAddress!
            let residual = epilogue.residual
            if accumulate || residual != nil {
                t.initialize(repeating: 0, count: 96)
                for i in 0..<rows {
                    let out = c + i * ldc
                    if accumulate { for j in 0..<columns { t[j &* 16 &+ i] = out[j] } }
                }
            }
            @inline(__always) func finish(_ at: Int, _ v0: FloatVector, _ v1: FloatVector) {
                var v0 = v0, v1 = v1
                if accumulate {
                    v0 += t.vector(at: at)
                    v1 += t.vector(at: at + 8)
                }
                if let bias = epilogue.bias {
                    if rows == 16 {
                        v0 += bias.vector(at: 0)
                        v1 += bias.vector(at: 8)
                    } else {
                        v0 += loadPartial(bias, Swift.min(rows, 8))
                        if rows > 8 { v1 += loadPartial(bias + 8, rows - 8) }
                    }
                }
                t.store(v0, at: at)
                t.store(v1, at: at + 8)
            }
            finish(0, c00, c01); finish(16, c10, c11); finish(32, c20, c21)
            finish(48, c30, c31); finish(64, c40, c41); finish(80, c50, c51)
            if let residual {
                for i in 0..<rows {
                    let r = residual + i * ldc
                    for j in 0..<columns { t[j &* 16 &+ i] += r[j] }
                }
            }
            if !(f is IdentityActivation) {
                for at in stride(from: 0, to: columns * 16, by: 8) { t.store(f(t.vector(at: at)), at: at) }
            }
            for i in 0..<rows {
                let out = c + i * ldc
                for j in 0..<columns { out[j] = t[j &* 16 &+ i] }
            }
        }
    }
}
