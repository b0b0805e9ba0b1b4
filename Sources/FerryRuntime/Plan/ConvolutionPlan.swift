import FerryIR
import FerryKernels

/// Conv in a plan (1-D and 2-D; other ranks use the reference kernel):
/// - depthwise (one filter per channel): the direct inner kernel with its epilogue;
/// - 1x1, stride 1, no padding: one `cblas_sgemm` per image and group, W[M,K] x X[K,HW];
/// - otherwise im2col into scratch, a tile of output columns at a time (the tile sized so the
///   column buffer stays in cache), and one `cblas_sgemm` per tile;
/// then bias, the fused residual (input 3) and the fused activation in one epilogue pass.
extension PlanBuilder {
    /// Bytes of im2col columns per tile: about the per-core L2 cache.
    static let im2colTileBytes: Int = environmentInteger("FERRY_IM2COL_TILE_BYTES") ?? 1 << 20
    /// FERRY_WINOGRAD=0 turns Winograd off (to measure it against im2col).
    static let winogradEnabled = environmentInteger("FERRY_WINOGRAD") != 0
    /// FERRY_PACKED_GEMM=0 sends every convolution to cblas_sgemm (to measure PackedGemm against it).
    static let packedGemmEnabled = environmentInteger("FERRY_PACKED_GEMM") != 0
    /// Depthwise outputs at most this wide (twice this at stride 2) go 8 channels at a time
    /// (FERRY_DEPTHWISE_INTERLEAVED_WIDTH sets it; 0 keeps every depthwise on the plane kernel).
    static let interleavedDepthwiseWidth = environmentInteger("FERRY_DEPTHWISE_INTERLEAVED_WIDTH") ?? 32

    func planConv(_ node: Node, _ a: ConvAttributes) -> PlannedKernel? {
        let xShape = shape(node.inputs[0]), wShape = shape(node.inputs[1]), yShape = shape(node.outputs[0])
        let s = a.kernelShape.count
        guard s == 1 || s == 2, xShape.count == s + 2, wShape.count == s + 2 else { return nil }
        if node.inputs.count > 3, !node.inputs[3].isEmpty, shape(node.inputs[3]) != yShape { return nil }
        let batch = xShape[0], channels = xShape[1], m = wShape[0], group = a.group
        guard group >= 1, channels % group == 0, m % group == 0 else { return nil }
        let cg = channels / group, mg = m / group
        let geometry: Conv2DGeometry?
        if s == 2 {
            geometry = Conv2DGeometry(inHeight: xShape[2], inWidth: xShape[3], a)
        } else {
            geometry = Conv2DGeometry(inHeight: 1, inWidth: xShape[2], kernelHeight: 1, kernelWidth: a.kernelShape[0],
                                      strideX: a.strides[0], dilationX: a.dilations[0], padLeft: a.pads[0], padRight: a.pads[1])
        }
        guard let g = geometry, g.outHeight == (s == 2 ? yShape[2] : 1), g.outWidth == yShape[s + 1] else { return nil }
        let activation = a.activation
        let threads = self.threads

        if group == channels && cg == 1 {
            let multiplier = mg
            let hasResidual = node.inputs.count > 3 && !node.inputs[3].isEmpty
            // Narrow output planes: 8 channels at a time (per-channel overheads and partial
            // vectors cost more there than the two transposes; wider planes keep the plane
            // kernel, ferry-bench-kernels' dw cases: 56 wide at stride 1 0.15 against 0.17 ms;
            // stride 2 reads a deinterleaved plane, and 56 wide is still faster interleaved:
            // 112x112x96 0.23 against 0.25-0.27).
            let interleavedWidth = g.strideX > 1 ? 2 * Self.interleavedDepthwiseWidth : Self.interleavedDepthwiseWidth
            if InnerKernels.simd, multiplier == 1, !hasResidual, g.outWidth <= interleavedWidth,
               let packed = interleavedDepthwiseWeights(node.inputs[1], channels: m, taps: g.kernelHeight * g.kernelWidth) {
                let perThread = ArenaPlanner.aligned(Kernels.depthwiseInterleavedScratchCount(g))
                let blocks = (m + 7) / 8
                return PlannedKernel(name: "conv.depthwise-interleaved", scratch: perThread * threads) { b in
                    let x = b.pointer(node.inputs[0]), y = b.pointer(node.outputs[0])
                    let bias = b.optionalPointer(node, 2)
                    let scratch = b.scratch!
                    return {
                        for n in 0..<batch {
                            let image = x + n * channels * g.inPlane, out = y + n * m * g.outPlane
                            parallelChunksIndexed(blocks, threads: threads) { k, range in
                                Kernels.depthwiseConv2DInterleaved(input: image, packedWeights: packed, output: out, channels: m,
                                                                   blocks: range, geometry: g, bias: bias, activation: activation,
                                                                   scratch: scratch + k * perThread)
                            }
                        }
                    }
                }
            }
            let perThread = ArenaPlanner.aligned(InnerKernels.depthwiseScratchCount(g))
            return PlannedKernel(name: "conv.depthwise", scratch: perThread * threads) { b in
                let x = b.pointer(node.inputs[0]), w = b.pointer(node.inputs[1]), y = b.pointer(node.outputs[0])
                let bias = b.optionalPointer(node, 2), residual = b.optionalPointer(node, 3)
                let scratch = b.scratch!
                return {
                    for n in 0..<batch {
                        let image = x + n * channels * g.inPlane, out = y + n * m * g.outPlane
                        let res = residual.map { $0 + n * m * g.outPlane }
                        parallelChunksIndexed(m, threads: threads) { k, cs in
                            InnerKernels.depthwiseConv2D(image, w, out, multiplier: multiplier, channels: cs, geometry: g,
                                                         bias: bias, residual: res, activation: activation,
                                                         scratch: scratch + k * perThread)
                        }
                    }
                }
            }
        }

        // Winograd F(4x4, 3x3) transforms the weights on every run (kept, they would be 4x the
        // weights), within the scratch the arena has room for at this step.
        // Smaller blocks or chunks where they make it fit the room free at the step, else the
        // room within the budget (no more than half the minimum scratch), else within half the
        // minimum, else within the minimum (ResNet50 at 224: arena 10.7 -> 9.0 MB; VGG16's
        // block1_conv2, with no room free, needs the minimum).
        func winogradSchedule(_ limit: Int) -> WinogradSchedule? {
            WinogradSchedule(batch: batch, inputChannels: channels, outputChannels: m, inHeight: g.inHeight, inWidth: g.inWidth,
                             a, threads: threads, scratchLimit: limit)
        }
        if InnerKernels.simd, PlanBuilder.winogradEnabled, s == 2, cg >= 8, mg >= 8, group == 1,
           constant(node.inputs[1]) != nil,
           let winograd = winogradSchedule(freeRoom(node))
               ?? winogradSchedule(min(roomWithinBudget(node), PlanBuilder.minimumScratch / 2))
               ?? winogradSchedule(PlanBuilder.minimumScratch / 2) ?? winogradSchedule(scratchRoom(node)),
           winograd.isRecommended, winograd.plan.outHeight == g.outHeight, winograd.plan.outWidth == g.outWidth {
            let name = winograd.mode == .tileBlocks ? "conv.winograd-blocks" : "conv.winograd-chunks"
            // Tap-major, read by each run's transform (the original released as for PackedGemm).
            let taps = packedConvWeights(node.inputs[1], layout: .winogradTaps, group: 1, rows: m, depth: channels * 9)
            return PlannedKernel(name: name, scratch: winograd.scratchCount) { b in
                let x = b.pointer(node.inputs[0]), y = b.pointer(node.outputs[0])
                let bias = b.optionalPointer(node, 2), residual = b.optionalPointer(node, 3)
                let scratch = b.scratch!
                return {
                    BLASThreads.set(1)
                    defer { BLASThreads.set(threads) }
                    winograd.run(input: x, taps: taps, output: y,
                                 epilogue: Epilogue(bias: bias, residual: residual, activation: activation), scratch: scratch) {
                        parallelChunksIndexed($0, threads: threads, $1)
                    }
                }
            }
        }

        let rows = cg * (g.kernelHeight * g.kernelWidth)
        let pointwise = (g.kernelHeight * g.kernelWidth) == 1 && g.strideX == 1 && g.strideY == 1 && g.padTop == 0 && g.padLeft == 0
            && g.inPlane == g.outPlane
        let outPlane = g.outPlane
        // Columns per im2col tile: the whole plane when it fits the budget (or nearly),
        // else a multiple of 16 columns, at least 64. Where the arena has less room at the step
        // (`roomWithinBudget`) than that tile and the packing blocks take, the tile shrinks to
        // the room, to a quarter of the budget at least: a small image's arena otherwise
        // grows by the tile (ResNet50's 96x96 first convolution unfolded its whole 147 x 2304
        // plane, 1.35 MB, beside 1.3 MB of intermediates at most).
        let budget = max(Self.im2colTileBytes / 4 / max(rows, 1), 64) / 16 * 16
        var tile = pointwise ? outPlane : (outPlane <= budget * 3 / 2 ? outPlane : budget)
        if !pointwise {
            let packing = PackedGemm.scratchCount(depth: rows, columns: tile, narrow: false) * threads
            let roomColumns = (roomWithinBudget(node) - packing) / max(rows, 1) / 16 * 16
            let smallest = max(budget / 4 / 16 * 16, 64)
            if tile > roomColumns { tile = min(tile, max(roomColumns, smallest)) }
        }
        let columnScratch = pointwise ? 0 : ArenaPlanner.aligned(rows * tile)
        // Constant weights are packed once for PackedGemm (one packed matrix per group, shared by
        // the runtime's plans); otherwise (weights computed at run time, or a CPU without AVX2)
        // cblas_sgemm packs them on every call.
        var packedWeights: UnsafePointer<Float>?
        // Small planes (late stages) take the kernel that broadcasts pixels and vectorizes channels.
        let narrow = PackedGemm.prefersNarrow(columns: tile, depth: rows)
        let packedStep = PackedGemm.packedCount(rows: mg, depth: rows, narrow: narrow)
        // (The weights are not bound here: the packing may take them from the graph, unshared.)
        if InnerKernels.simd, PlanBuilder.packedGemmEnabled, constant(node.inputs[1]) != nil, rows > 0 {
            packedWeights = packedConvWeights(node.inputs[1], narrow: narrow, group: group, rows: mg, depth: rows)
        }
        // Each thread packs B blocks of at most `tile` columns of this depth (split columns or not).
        let gemmStep = ArenaPlanner.aligned(PackedGemm.scratchCount(depth: rows, columns: tile, narrow: narrow))
        let gemmScratch = packedWeights == nil ? 0 : gemmStep * threads
        let kind = (pointwise ? "conv.1x1" : "conv.im2col") + (packedWeights == nil ? "-sgemm" : narrow ? "-packed-narrow" : "-packed")
        return PlannedKernel(name: kind, scratch: columnScratch + gemmScratch) { b in
            // Packed weights are read from the store's copy: the original is not needed (and a
            // runtime may release it).
            let x = b.pointer(node.inputs[0]), w = packedWeights == nil ? b.pointer(node.inputs[1]) : nil, y = b.pointer(node.outputs[0])
            let bias = b.optionalPointer(node, 2), residual = b.optionalPointer(node, 3)
            let col = b.scratch!, gemmScratchBase = b.scratch! + columnScratch
            /// out[mg, count] (row stride outPlane) = weights of group gi x columns[rows, count], with
            /// the epilogue when the packed kernels run it as they store (true when they did).
            func product(group gi: Int, _ columns: UnsafePointer<Float>, ldb: Int, count: Int, _ out: UnsafeMutablePointer<Float>,
                         epilogue: Epilogue) -> Bool {
                if let packedWeights {
                    multiplyPacked(packedWeights + gi * packedStep, narrow: narrow, rows: mg, depth: rows, b: columns, ldb: ldb,
                                   n: count, c: out, ldc: outPlane, epilogue: epilogue, threads: threads,
                                   scratch: gemmScratchBase, scratchStep: gemmStep)
                    return true
                }
                sgemm(transA: false, transB: false, m: mg, n: count, k: rows, alpha: 1, a: w! + gi * mg * rows, lda: rows,
                      b: columns, ldb: ldb, beta: 0, c: out, ldc: outPlane)
                return false
            }
            return {
                for n in 0..<batch {
                    for gi in 0..<group {
                        let image = x + (n * channels + gi * cg) * g.inPlane
                        let out = y + (n * m + gi * mg) * outPlane
                        let res = residual.map { $0 + (n * m + gi * mg) * outPlane }
                        let bs = bias.map { $0 + gi * mg }
                        var fused = false
                        if pointwise {
                            fused = product(group: gi, image, ldb: outPlane, count: outPlane, out,
                                            epilogue: Epilogue(bias: bs, residual: res, activation: activation))
                        } else {
                            var start = 0
                            while start < outPlane {
                                let count = Swift.min(tile, outPlane - start)
                                let panels = (count + PackedGemm.columnsPerPanel - 1) / PackedGemm.columnsPerPanel
                                if let packedWeights, !narrow, packedProductSplitsColumns(panels, threads: threads) {
                                    // Each thread unfolds the columns it multiplies (whole panels) into its own
                                    // part of the column buffer and multiplies them while they are in its cache;
                                    // no thread waits for another's unfolding (with 3 input channels, splitting
                                    // the unfolding by channel left one of two threads idle a third of the time).
                                    parallelChunksIndexed(panels, threads: threads) { k, qs in
                                        let first = start + qs.lowerBound * PackedGemm.columnsPerPanel
                                        let end = Swift.min(start + qs.upperBound * PackedGemm.columnsPerPanel, start + count)
                                        let part = col + rows * (first - start)
                                        Kernels.im2col(image, channels: 0..<cg, geometry: g, columns: first..<end, into: part)
                                        PackedGemm.multiply(packedA: packedWeights + gi * packedStep, rows: mg, depth: rows,
                                                            panels: 0..<PackedGemm.panelCount(rows: mg), b: part, ldb: end - first,
                                                            columns: 0..<(end - first), c: out + first, ldc: outPlane,
                                                            epilogue: Epilogue(bias: bs, residual: res.map { $0 + first },
                                                                               activation: activation),
                                                            scratch: gemmScratchBase + k * gemmStep)
                                    }
                                    fused = true
                                } else {
                                    parallelChunks(cg, threads: threads) { cs in
                                        if InnerKernels.simd {
                                            Kernels.im2col(image, channels: cs, geometry: g, columns: start..<(start + count), into: col)
                                        } else {
                                            im2colTile(image, channels: cs, geometry: g, columns: start..<(start + count), into: col)
                                        }
                                    }
                                    fused = product(group: gi, col, ldb: count, count: count, out + start,
                                                    epilogue: Epilogue(bias: bs, residual: res.map { $0 + start }, activation: activation))
                                }
                                start += count
                            }
                        }
                        if !fused && (bs != nil || res != nil || activation != nil) {
                            parallelChunks(mg, threads: threads) { cs in
                                InnerKernels.epilogue(out, channels: cs, plane: outPlane, bias: bs, residual: res,
                                                      activation: activation)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// C[rows, n] = packed A x B[depth, n] on `threads` threads (A packed for the narrow kernel when
/// `narrow`): products with many column panels split columns (in whole panels), the others split
/// A's row panels. Either way each element is summed in the same order, so the split does not
/// change results. `scratch` holds `threads` blocks `scratchStep` floats apart, each at least
/// `PackedGemm.scratchCount(depth:columns: n, narrow:)`.
func multiplyPacked(_ packedA: UnsafePointer<Float>, narrow: Bool, rows: Int, depth: Int, b: UnsafePointer<Float>, ldb: Int,
                    n: Int, c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: Epilogue, threads: Int,
                    scratch: UnsafeMutablePointer<Float>, scratchStep step: Int) {
    let panels = narrow ? PackedGemm.narrowPanelCount(rows: rows) : PackedGemm.panelCount(rows: rows)
    let nr = narrow ? PackedGemm.narrowColumnsPerPanel : PackedGemm.columnsPerPanel
    let columnPanels = (n + nr - 1) / nr
    func run(_ k: Int, _ ps: Range<Int>, _ columns: Range<Int>) {
        if narrow {
            PackedGemm.multiplyNarrow(packedA: packedA, rows: rows, depth: depth, panels: ps, b: b, ldb: ldb,
                                      columns: columns, c: c, ldc: ldc, epilogue: epilogue, scratch: scratch + k * step)
        } else {
            PackedGemm.multiply(packedA: packedA, rows: rows, depth: depth, panels: ps, b: b, ldb: ldb,
                                columns: columns, c: c, ldc: ldc, epilogue: epilogue, scratch: scratch + k * step)
        }
    }
    if packedProductSplitsColumns(columnPanels, threads: threads) {
        parallelChunksIndexed(columnPanels, threads: threads) { k, qs in
            run(k, 0..<panels, (qs.lowerBound * nr)..<Swift.min(qs.upperBound * nr, n))
        }
    } else {
        parallelChunksIndexed(panels, threads: threads) { k, ps in run(k, ps, 0..<n) }
    }
}

/// Whether a packed product of `columnPanels` column panels gives each thread whole column
/// panels (enough of them to share out evenly), rather than row panels of every column.
func packedProductSplitsColumns(_ columnPanels: Int, threads: Int) -> Bool { columnPanels >= 4 * threads }

/// Unfolds output columns `columns` of one image's channels `channels` into `col`, a
/// [rows, columns.count] matrix whose row (c, ky, kx) holds what that tap reads for each output
/// position (0 in padding). The portable form, for CPUs without the SIMD kernels
/// (`Kernels.im2col`, the same unfolding, is compiled for AVX2 or AVX-512).
func im2colTile(_ image: UnsafePointer<Float>, channels: Range<Int>, geometry g: Conv2DGeometry, columns: Range<Int>,
                into col: UnsafeMutablePointer<Float>) {
    let width = columns.count
    for c in channels {
        let plane = image + c * g.inPlane
        for ky in 0..<g.kernelHeight {
            for kx in 0..<g.kernelWidth {
                let dst = col + ((c * g.kernelHeight + ky) * g.kernelWidth + kx) * width
                var oy = columns.lowerBound / g.outWidth, ox = columns.lowerBound % g.outWidth
                var d = 0
                while d < width {
                    let run = Swift.min(g.outWidth - ox, width - d)
                    let iy = oy * g.strideY - g.padTop + ky * g.dilationY
                    let out = dst + d
                    if iy < 0 || iy >= g.inHeight {
                        out.update(repeating: 0, count: run)
                    } else {
                        let row = plane + iy * g.inWidth
                        // ix(t) = base + t * strideX is inside [0, inWidth) for t in lo..<hi.
                        let base = ox * g.strideX - g.padLeft + kx * g.dilationX
                        var lo = base >= 0 ? 0 : (-base + g.strideX - 1) / g.strideX
                        var hi = g.inWidth - 1 - base >= 0 ? (g.inWidth - 1 - base) / g.strideX + 1 : 0
                        lo = Swift.min(lo, run)
                        hi = Swift.max(Swift.min(hi, run), lo)
                        if lo > 0 { out.update(repeating: 0, count: lo) }
                        if g.strideX == 1 {
                            (out + lo).update(from: row + base + lo, count: hi - lo)
                        } else {
                            let sx = g.strideX
                            for t in lo..<hi { out[t] = row[base + t * sx] }
                        }
                        if hi < run { (out + hi).update(repeating: 0, count: run - hi) }
                    }
                    d += run
                    ox = 0
                    oy += 1
                }
            }
        }
    }
}
