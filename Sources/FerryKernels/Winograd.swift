import COpenBLAS
import FerryIR

/// Winograd F(4x4, 3x3) convolution (Lavin & Gray): each 4x4 output tile comes from a 6x6 input
/// tile as Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A, i.e. 36 multiplications per tile and channel pair
/// instead of 144. Summed over input channels, the ⊙ becomes 36 independent matrix products
/// M[k] = U[k] · V[k] (U: [Cout, Cin] transformed weights, V: [Cin, tiles] transformed input),
/// done with `cblas_sgemm` on blocks of whole tile rows, so a block's V and M stay in cache and
/// its output rows are complete when the epilogue runs.
///
/// Use: at plan time `Winograd3x3(...)` (nil when the conv does not qualify; check
/// `isRecommended`), allocate `transformedWeightCount` floats and call `transformWeights` once.
/// Per run, one of:
/// - one thread: `run` with `scratchCount` floats (OpenBLAS may thread the GEMMs);
/// - threads over blocks (many tiles): `padInput` split by channels, then `runBlocks` on
///   disjoint block ranges, one `blockScratchCount` scratch per thread, OpenBLAS on 1 thread;
/// - threads within each block (few tiles, e.g. 14x14 and below): `padInput`, then for each
///   block: `transformInput` split by input channels, a barrier, then
///   `multiplyAndTransformOutput` split by output channels (shared `transformedInputCount` and
///   `productCount` buffers, one `stagingCount` staging per thread), a barrier.
///
/// The padded input is stored with each row's columns deinterleaved by 4 (column x at
/// (x mod 4)·Q + x div 4), so the 6x6 windows of 8 neighbouring tiles are 36 contiguous vector
/// loads.
public struct Winograd3x3: Sendable, Hashable {
    public let inputChannels: Int, outputChannels: Int
    public let inHeight: Int, inWidth: Int
    public let padTop: Int, padLeft: Int
    public let outHeight: Int, outWidth: Int
    /// 4x4 output tiles per column and per row (the last ones may stick out of the output).
    public let tilesY: Int, tilesX: Int
    /// Tile rows per block: a block holds `tileRowsPerBlock · tilesX` tiles.
    public let tileRowsPerBlock: Int
    /// Images whose tiles V and M hold side by side (more than 1 only with one block): the 36
    /// products then multiply every image's tiles at once.
    public let images: Int

    /// The input plane zero-padded so that every tile's 6x6 window is inside it: rows, and
    /// the length of each deinterleaved row (4 phases of `phaseLength`).
    public var paddedHeight: Int { 4 * tilesY + 2 }
    var phaseLength: Int { tilesX + lanes + 1 }
    var paddedRowLength: Int { 4 * phaseLength }
    public var tileCount: Int { tilesY * tilesX }
    public var blockCount: Int { (tilesY + tileRowsPerBlock - 1) / tileRowsPerBlock }
    /// The row stride of V and M: a block's tiles rounded up to the vector width. (A larger
    /// leading dimension than the GEMM's n made OpenBLAS leave its small-matrix path: 256
    /// channels at 14x14 ran 5x slower.)
    var blockStride: Int { (images * tileRowsPerBlock * tilesX + lanes - 1) / lanes * lanes }

    /// Whether Winograd beats im2col + sgemm here: its transformed weights are 4x larger
    /// (36 vs 9 per channel pair), so with few tiles per image the GEMMs stream weights
    /// instead of computing (measured: 7x7 outputs with 512 channels run 1.9x slower than
    /// im2col + sgemm; 14x14 and larger run faster).
    public var isRecommended: Bool { tileCount >= 16 }

    /// For a Conv with a 3x3 kernel, stride 1, dilation 1 and group 1 on an input of
    /// [inputChannels, inHeight, inWidth]; nil otherwise. `tilesPerBlock` is the target block
    /// size (rounded to whole tile rows); by default V and M of a block fill about 1 MiB.
    public init?(inputChannels: Int, outputChannels: Int, inHeight: Int, inWidth: Int,
                 _ attributes: ConvAttributes, tilesPerBlock: Int? = nil, images: Int = 1) {
        guard attributes.kernelShape == [3, 3], attributes.strides == [1, 1], attributes.dilations == [1, 1],
              attributes.group == 1, attributes.pads.count == 4 else { return nil }
        self.init(inputChannels: inputChannels, outputChannels: outputChannels, inHeight: inHeight, inWidth: inWidth,
                  padTop: attributes.pads[0], padLeft: attributes.pads[1], padBottom: attributes.pads[2],
                  padRight: attributes.pads[3], tilesPerBlock: tilesPerBlock, images: images)
    }

    public init?(inputChannels: Int, outputChannels: Int, inHeight: Int, inWidth: Int,
                 padTop: Int, padLeft: Int, padBottom: Int, padRight: Int, tilesPerBlock: Int? = nil, images: Int = 1) {
        guard inputChannels >= 1, outputChannels >= 1, padTop >= 0, padLeft >= 0, padBottom >= 0, padRight >= 0
        else { return nil }
        let oh = inHeight + padTop + padBottom - 2, ow = inWidth + padLeft + padRight - 2
        guard inHeight >= 1, inWidth >= 1, oh >= 1, ow >= 1 else { return nil }
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.padTop = padTop
        self.padLeft = padLeft
        outHeight = oh
        outWidth = ow
        tilesY = (oh + 3) / 4
        tilesX = (ow + 3) / 4
        let target = tilesPerBlock ?? max(1, (1 << 20) / (36 * 4 * (inputChannels + outputChannels)))
        tileRowsPerBlock = min(tilesY, max(1, (target + tilesX / 2) / tilesX))
        guard images >= 1, images == 1 || tileRowsPerBlock == tilesY else { return nil }
        self.images = images
    }

    // MARK: sizes

    /// Floats of the transformed weights: 36 matrices of [outputChannels, inputChannels].
    public static func transformedWeightCount(inputChannels: Int, outputChannels: Int) -> Int {
        36 * weightMatrixStride(outputChannels: outputChannels, inputChannels: inputChannels)
    }

    /// Floats from one of U's 36 matrices of [outputChannels, inputChannels] to the next: whole
    /// cache lines and one more, so that the 36 rows the weight transform writes at once fall
    /// in different cache sets (matrices a multiple of 4 KiB apart, as 28 x 256 channels are,
    /// made the transform 5x slower).
    public static func weightMatrixStride(outputChannels: Int, inputChannels: Int) -> Int {
        (outputChannels * inputChannels + 15) / 16 * 16 + 16
    }

    public var transformedWeightCount: Int {
        Self.transformedWeightCount(inputChannels: inputChannels, outputChannels: outputChannels)
    }

    /// Floats of the padded input of one image (`padInput`'s destination).
    public var paddedInputCount: Int { inputChannels * paddedHeight * paddedRowLength }

    /// The padded rows a block's tiles read.
    public func paddedRows(of block: Int) -> Range<Int> {
        let (firstTileRow, tileRows, _) = tiles(of: block)
        return (4 * firstTileRow)..<(4 * (firstTileRow + tileRows) + 2)
    }

    /// Floats of the padded rows of the largest block, all channels.
    public var bandCount: Int { inputChannels * (4 * tileRowsPerBlock + 2) * paddedRowLength }

    /// Floats of one block's transformed input V (36 x inputChannels x tiles).
    public var transformedInputCount: Int { 36 * inputMatrixStride }

    /// Floats from one of V's 36 matrices to the next (padded as `weightMatrixStride`).
    var inputMatrixStride: Int { (inputChannels * blockStride + 15) / 16 * 16 + 16 }

    /// Floats from one of M's 36 matrices to the next, for `outputChannels` channels of them.
    func productMatrixStride(_ outputChannels: Int) -> Int { (outputChannels * blockStride + 15) / 16 * 16 + 16 }

    /// Floats of one block's products M (36 x outputChannels x tiles).
    public var productCount: Int { 36 * productMatrixStride(outputChannels) }

    /// Floats of staging each thread running a transform needs.
    public static let stagingCount = 52 * lanes

    /// Floats of scratch one `runBlocks` call needs (per thread).
    public var blockScratchCount: Int { transformedInputCount + productCount + Self.stagingCount }

    /// Floats of scratch `run` needs.
    public var scratchCount: Int { paddedInputCount + blockScratchCount }

    // MARK: weights

    /// U[k][co][ci] = (G · W[co, ci] · Gᵀ)[k], k = 6·row + column, for every channel pair.
    /// weights: ONNX layout [outputChannels, inputChannels, 3, 3]; `into` holds
    /// `transformedWeightCount` floats.
    public static func transformWeights(_ weights: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>,
                                        inputChannels: Int, outputChannels: Int) {
        let pairs = inputChannels * outputChannels
        var taps = [Float](repeating: 0, count: 9 * pairs)
        taps.withUnsafeMutableBufferPointer { tapMajor(weights, pairs: 0..<pairs, of: pairs, into: $0.baseAddress!) }
        taps.withUnsafeBufferPointer {
            transformWeights(taps: $0.baseAddress!, inputChannels: inputChannels, outputChannels: 0..<outputChannels,
                             of: outputChannels, chunk: 0..<outputChannels, into: u)
        }
    }

    /// Channel pairs `pairs` (of `pairCount` = outputChannels x inputChannels) of weights in
    /// ONNX layout [outputChannels, inputChannels, 3, 3] rearranged tap-major, [9][pairCount]:
    /// the weight transform then reads `lanes` pairs of a tap in one load (gathering them
    /// from 9 floats apart made it 10x slower than the products it feeds).
    public static func tapMajor(_ weights: UnsafePointer<Float>, pairs: Range<Int>, of pairCount: Int,
                                into taps: UnsafeMutablePointer<Float>) {
        for pair in pairs {
            let w = weights + pair * 9
            for j in 0..<9 { taps[j * pairCount + pair] = w[j] }
        }
    }

    /// `tapMajor` undone: the ONNX layout of pairs `pairs` from tap-major weights.
    public static func fromTapMajor(_ taps: UnsafePointer<Float>, pairs: Range<Int>, of pairCount: Int,
                                    into weights: UnsafeMutablePointer<Float>) {
        for pair in pairs {
            let w = weights + pair * 9
            for j in 0..<9 { w[j] = taps[j * pairCount + pair] }
        }
    }

    /// U for output channels `outputChannels` (within `chunk`, of `outputChannelCount`) into
    /// `u`, which holds the chunk's 36 matrices of [chunk.count, inputChannels] (so threads may
    /// fill one chunk's disjoint rows), from tap-major weights (`tapMajor`). In float, `lanes`
    /// channel pairs at a time: cheap enough to run on every inference instead of keeping U,
    /// which is 4x the weights (36 floats per pair against 9).
    public static func transformWeights(taps: UnsafePointer<Float>, inputChannels: Int, outputChannels: Range<Int>,
                                        of outputChannelCount: Int, chunk: Range<Int>, into u: UnsafeMutablePointer<Float>) {
        let matrix = weightMatrixStride(outputChannels: chunk.count, inputChannels: inputChannels)
        let origin = chunk.lowerBound * inputChannels
        let pairCount = outputChannelCount * inputChannels
        var pair = outputChannels.lowerBound * inputChannels
        let end = outputChannels.upperBound * inputChannels
        while pair + lanes <= end {
            weightTransform(taps + pair, tapStride: pairCount, out: u + (pair - origin), matrixStride: matrix)
            pair += lanes
        }
        if pair < end {
            // The last pairs: through a whole vector's worth of staging.
            let count = end - pair
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 45 * lanes) { staging in
                let t = staging.baseAddress!, o = t + 9 * lanes
                t.update(repeating: 0, count: 9 * lanes)
                for j in 0..<9 { (t + j * lanes).update(from: taps + j * pairCount + pair, count: count) }
                weightTransform(t, tapStride: lanes, out: o, matrixStride: lanes)
                for k in 0..<36 { (u + k * matrix + pair - origin).update(from: o + k * lanes, count: count) }
            }
        }
    }

    // MARK: running

    /// The whole convolution of one image on one thread: `input` [inputChannels, inHeight,
    /// inWidth], `output` [outputChannels, outHeight, outWidth], scratch of `scratchCount`.
    public func run(input: UnsafePointer<Float>, transformedWeights: UnsafePointer<Float>,
                    output: UnsafeMutablePointer<Float>, epilogue: Epilogue, scratch: UnsafeMutablePointer<Float>) {
        padInput(input, into: scratch, channels: 0..<inputChannels)
        runBlocks(0..<blockCount, padded: UnsafePointer(scratch), transformedWeights: transformedWeights,
                  output: output, epilogue: epilogue, scratch: scratch + paddedInputCount)
    }

    /// Copies channels `channels` of one image into the zero-padded, column-deinterleaved
    /// planes (`paddedInputCount` floats for all channels) that the transforms read; with
    /// `rows`, only those rows of each padded plane (`bandCount(rows:)` floats for all channels).
    public func padInput(_ input: UnsafePointer<Float>, into padded: UnsafeMutablePointer<Float>, channels: Range<Int>,
                         rows: Range<Int>? = nil) {
        let rows = rows ?? 0..<paddedHeight
        let rowLength = paddedRowLength, q = phaseLength
        // Input rows y land on padded row padTop + y.
        let firstY = max(0, rows.lowerBound - padTop), endY = min(inHeight, rows.upperBound - padTop)
        let copyWidth = min(inWidth, 4 * tilesX + 2 - padLeft)
        for c in channels {
            let dst = padded + c * rows.count * rowLength, src = input + c * inHeight * inWidth
            dst.update(repeating: 0, count: rows.count * rowLength)
            // Padded columns padLeft..<end come from the row; whole groups of 4 x lanes columns
            // from a 4-aligned column are deinterleaved in registers, the ends one by one.
            let end = padLeft + copyWidth
            let headEnd = min(end, (padLeft + 3) / 4 * 4)
            let groups = max(0, (end - headEnd) / (4 * lanes))
            for y in firstY..<max(firstY, endY) {
                let row = dst + (padTop + y - rows.lowerBound) * rowLength, source = src + y * inWidth - padLeft
                for column in padLeft..<headEnd { row[(column & 3) * q + (column >> 2)] = source[column] }
                for g in 0..<groups {
                    let column = headEnd + g * 4 * lanes, t = column >> 2
                    let all = UnsafeRawPointer(source + column).loadUnaligned(as: QuadWidthVector.self)
                    let even = all.evenHalf, odd = all.oddHalf
                    row.store(even.evenHalf, at: t)
                    row.store(odd.evenHalf, at: q + t)
                    row.store(even.oddHalf, at: 2 * q + t)
                    row.store(odd.oddHalf, at: 3 * q + t)
                }
                for column in (headEnd + groups * 4 * lanes)..<end { row[(column & 3) * q + (column >> 2)] = source[column] }
            }
        }
    }

    /// Blocks `blocks` (of `blockCount`) of one image: transforms their input tiles, runs the 36
    /// GEMMs, transforms back into `output` and applies the epilogue to the block's output rows.
    /// `padded` comes from `padInput`; scratch holds `blockScratchCount` floats.
    public func runBlocks(_ blocks: Range<Int>, padded: UnsafePointer<Float>, transformedWeights: UnsafePointer<Float>,
                          output: UnsafeMutablePointer<Float>, epilogue: Epilogue, scratch: UnsafeMutablePointer<Float>) {
        let v = scratch
        let m = v + transformedInputCount
        let staging = m + productCount
        for block in blocks {
            transformInput(block: block, padded: padded, into: v, channels: 0..<inputChannels, staging: staging)
            multiplyAndTransformOutput(block: block, transformedInput: v, transformedWeights: transformedWeights,
                                       products: m, output: output, epilogue: epilogue,
                                       outputChannels: 0..<outputChannels, staging: staging)
        }
    }

    /// The tile rows and tile count of a block.
    func tiles(of block: Int) -> (firstTileRow: Int, tileRows: Int, tiles: Int) {
        let first = block * tileRowsPerBlock
        let rows = min(tileRowsPerBlock, tilesY - first)
        return (first, rows, rows * tilesX)
    }

    /// V[k][c][t] = (Bᵀ d B)[k] for every tile t of the block and channel c in `channels`, 8
    /// neighbouring tiles of a tile row at a time. `v` holds `transformedInputCount` floats
    /// (shared by the threads splitting the channels); `staging` holds `stagingCount`.
    /// `padded` holds whole padded planes, or with `band` only the block's `paddedRows(of:)`.
    /// With `whole`, V is that plan's (the same convolution in one block: every tile of the
    /// image), and this block's tiles go to their place in it.
    public func transformInput(block: Int, padded: UnsafePointer<Float>, band: Bool = false, into v: UnsafeMutablePointer<Float>,
                               of whole: Winograd3x3? = nil, image: Int = 0, channels: Range<Int>,
                               staging: UnsafeMutablePointer<Float>) {
        let (firstTileRow, tileRows, _) = tiles(of: block)
        let rowLength = paddedRowLength, q = phaseLength, stride = whole?.blockStride ?? blockStride
        let matrixStride = whole?.inputMatrixStride ?? inputMatrixStride
        // With `whole`: image `image`'s tiles come after those of the images before it.
        let v = whole == nil ? v : v + image * tileCount + firstTileRow * tilesX
        let rows = band ? paddedRows(of: block) : 0..<paddedHeight
        let planeSize = rows.count * rowLength
        for c in channels {
            let plane = padded + c * planeSize
            for r in 0..<tileRows {
                let window = plane + (4 * (firstTileRow + r) - rows.lowerBound) * rowLength
                var tx = 0
                while tx < tilesX {
                    inputTransform(window + tx, rowLength: rowLength, phaseLength: q, staging: staging,
                                   validLanes: min(lanes, tilesX - tx),
                                   out: v + c * stride + r * tilesX + tx, matrixStride: matrixStride)
                    tx += lanes
                }
            }
        }
    }

    /// For output channels `outputChannels`: the 36 GEMMs M[k] = U[k] · V[k] of the block, the
    /// output transform into `output` and the epilogue on the block's output rows. `v` comes
    /// from `transformInput` (all channels); `products` holds `productCount` floats (threads
    /// splitting the output channels may share it: they write disjoint rows). With
    /// `weightChannels`, U and the products hold only those output channels (a chunk from
    /// `transformWeights(_:inputChannels:outputChannels:chunk:into:)`; `outputChannels` within
    /// it): 36 x weightChannels.count rows each.
    public func multiplyAndTransformOutput(block: Int, transformedInput v: UnsafePointer<Float>,
                                           transformedWeights: UnsafePointer<Float>, weightChannels: Range<Int>? = nil,
                                           products m: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>,
                                           epilogue: Epilogue, outputChannels: Range<Int>,
                                           staging: UnsafeMutablePointer<Float>) {
        guard !outputChannels.isEmpty else { return }
        let (firstTileRow, tileRows, imageTiles) = tiles(of: block)
        // Every image's tiles at once (`images`; output and residual of image n are n images on).
        let tiles = images * imageTiles
        let stride = blockStride
        let held = weightChannels ?? 0..<self.outputChannels
        // Rows of U and M: output channel co is row co - held.lowerBound of each of the 36.
        let heldCount = held.count
        let weightStride = Self.weightMatrixStride(outputChannels: heldCount, inputChannels: inputChannels)
        let productStride = productMatrixStride(heldCount)
        // OpenBLAS multiplies without packing its operands only while M·N·K stays under 1e6
        // (its small-matrix path); with few tiles, packing the [Cout, Cin] weight matrix costs
        // as much as the product, so the GEMMs go in chunks of output channels under that size.
        let chunk = max(lanes, min(outputChannels.count, 1_000_000 / max(1, tiles * inputChannels)) / lanes * lanes)
        for k in 0..<36 {
            var first = outputChannels.lowerBound
            while first < outputChannels.upperBound {
                let count = min(chunk, outputChannels.upperBound - first)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                            blasint(count), blasint(tiles), blasint(inputChannels), 1,
                            transformedWeights + k * weightStride + (first - held.lowerBound) * inputChannels,
                            blasint(inputChannels),
                            v + k * inputMatrixStride, blasint(stride),
                            0, m + k * productStride + (first - held.lowerBound) * stride, blasint(stride))
                first += count
            }
        }
        let outPlane = outHeight * outWidth, outImage = self.outputChannels * outPlane
        let firstRow = 4 * firstTileRow
        let rows = min(outHeight, firstRow + 4 * tileRows) - firstRow
        for co in outputChannels {
            var t = 0
            while t < tiles {
                let group = min(lanes, tiles - t)
                outputTransform(UnsafePointer(m + (co - held.lowerBound) * stride + t), matrixStride: productStride, into: staging)
                for lane in 0..<group {
                    let (image, tile) = (t + lane).quotientAndRemainder(dividingBy: imageTiles)
                    let plane = output + image * outImage + co * outPlane
                    let oy = 4 * (firstTileRow + tile / tilesX), ox = 4 * (tile % tilesX)
                    let height = min(4, outHeight - oy), width = min(4, outWidth - ox)
                    for r in 0..<height {
                        let row = plane + (oy + r) * outWidth + ox
                        for c in 0..<width { row[c] = staging[(r * 4 + c) * lanes + lane] }
                    }
                }
                t += lanes
            }
            for image in 0..<images {
                let imageEpilogue = Epilogue(bias: epilogue.bias, residual: epilogue.residual.map { $0 + image * outImage },
                                             activation: epilogue.activation)
                Kernels.applyEpilogue(output + image * outImage, channels: co..<(co + 1), planeStride: outPlane,
                                      offset: firstRow * outWidth, count: rows * outWidth, imageEpilogue)
            }
        }
    }
}

/// G · w · Gᵀ for `lanes` channel pairs: tap j of pair l at taps[j · tapStride + l]; the 36
/// results to out[k · matrixStride + l].
@inline(__always)
private func weightTransform(_ taps: UnsafePointer<Float>, tapStride: Int, out: UnsafeMutablePointer<Float>, matrixStride: Int) {
    // G · w, one column of w at a time, then each row of that times Gᵀ.
    let c0 = gTimes(taps.vector(at: 0), taps.vector(at: 3 * tapStride), taps.vector(at: 6 * tapStride))
    let c1 = gTimes(taps.vector(at: tapStride), taps.vector(at: 4 * tapStride), taps.vector(at: 7 * tapStride))
    let c2 = gTimes(taps.vector(at: 2 * tapStride), taps.vector(at: 5 * tapStride), taps.vector(at: 8 * tapStride))
    @inline(__always) func row(_ r: Int, _ a: FloatVector, _ b: FloatVector, _ c: FloatVector) {
        storeSix(gTimes(a, b, c), out, from: r * 6, matrixStride: matrixStride)
    }
    row(0, c0.0, c1.0, c2.0)
    row(1, c0.1, c1.1, c2.1)
    row(2, c0.2, c1.2, c2.2)
    row(3, c0.3, c1.3, c2.3)
    row(4, c0.4, c1.4, c2.4)
    row(5, c0.5, c1.5, c2.5)
}

/// Six results to matrices k..<k+6 of `out`, `matrixStride` floats apart.
@inline(__always)
private func storeSix(_ r: (FloatVector, FloatVector, FloatVector, FloatVector, FloatVector, FloatVector),
                      _ out: UnsafeMutablePointer<Float>, from k: Int, matrixStride: Int) {
    out.store(r.0, at: (k + 0) * matrixStride)
    out.store(r.1, at: (k + 1) * matrixStride)
    out.store(r.2, at: (k + 2) * matrixStride)
    out.store(r.3, at: (k + 3) * matrixStride)
    out.store(r.4, at: (k + 4) * matrixStride)
    out.store(r.5, at: (k + 5) * matrixStride)
}

/// G · (a, b, c) per lane, G's rows being (1/4, 0, 0), (-1/6, -1/6, -1/6), (-1/6, 1/6, -1/6),
/// (1/24, 1/12, 1/6), (1/24, -1/12, 1/6), (0, 0, 1).
@inline(__always)
private func gTimes(_ a: FloatVector, _ b: FloatVector, _ c: FloatVector)
    -> (FloatVector, FloatVector, FloatVector, FloatVector, FloatVector, FloatVector) {
    let s = a + c
    let t = (a * (1 / 24)).addingProduct(c, 1 / 6)
    let b12 = b * (1 / 12)
    return (a * 0.25, (s + b) * (-1 / 6), (s - b) * (-1 / 6), t + b12, t - b12, c)
}

/// Bᵀ d B on 8 neighbouring tiles at once: window row i, column j of the 8 tiles is the vector at
/// window + i·rowLength + (j < 4 ? j·Q : (j-4)·Q + 1) in the deinterleaved rows (phase length
/// Q); the 36 results go to out[k · matrixStride].
@inline(__always)
private func inputTransform(_ window: UnsafePointer<Float>, rowLength: Int, phaseLength q: Int,
                            staging d: UnsafeMutablePointer<Float>, validLanes: Int,
                            out: UnsafeMutablePointer<Float>, matrixStride: Int) {
    // Bᵀ rows: (4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
    //          (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1).
    @inline(__always) func bt(_ x0: FloatVector, _ x1: FloatVector, _ x2: FloatVector, _ x3: FloatVector,
                              _ x4: FloatVector, _ x5: FloatVector)
        -> (FloatVector, FloatVector, FloatVector, FloatVector, FloatVector, FloatVector) {
        let a = x4.addingProduct(x2, -4)          // x4 - 4 x2
        let b = x3.addingProduct(x1, -4)          // x3 - 4 x1
        let c = x4 - x2
        let e = (x3 - x1) * 2
        return (x4.addingProduct(x0, 4).addingProduct(x2, -5),
                a + b, a - b, c + e, c - e,
                x5.addingProduct(x1, 4).addingProduct(x3, -5))
    }
    // Bᵀ d: for each column j combine the 6 rows (into the staging d), then each row times B.
    for j in 0..<6 {
        let column = window + (j < 4 ? j * q : (j - 4) * q + 1)
        let r = bt(column.vector(at: 0), column.vector(at: rowLength), column.vector(at: 2 * rowLength),
                   column.vector(at: 3 * rowLength), column.vector(at: 4 * rowLength), column.vector(at: 5 * rowLength))
        d.store(r.0, at: (0 * 6 + j) * lanes)
        d.store(r.1, at: (1 * 6 + j) * lanes)
        d.store(r.2, at: (2 * 6 + j) * lanes)
        d.store(r.3, at: (3 * 6 + j) * lanes)
        d.store(r.4, at: (4 * 6 + j) * lanes)
        d.store(r.5, at: (5 * 6 + j) * lanes)
    }
    for i in 0..<6 {
        let row = d + i * 6 * lanes
        let r = bt(row.vector(at: 0), row.vector(at: lanes), row.vector(at: 2 * lanes),
                   row.vector(at: 3 * lanes), row.vector(at: 4 * lanes), row.vector(at: 5 * lanes))
        let k = i * 6
        if validLanes == lanes {
            storeSix(r, out, from: k, matrixStride: matrixStride)
        } else {
            // The row's last group: only its tiles' columns (V rows are exactly the block's tiles).
            storePartial(r.0, out + (k + 0) * matrixStride, validLanes)
            storePartial(r.1, out + (k + 1) * matrixStride, validLanes)
            storePartial(r.2, out + (k + 2) * matrixStride, validLanes)
            storePartial(r.3, out + (k + 3) * matrixStride, validLanes)
            storePartial(r.4, out + (k + 4) * matrixStride, validLanes)
            storePartial(r.5, out + (k + 5) * matrixStride, validLanes)
        }
    }
}

/// Aᵀ m A on 8 tiles at once: m[k · matrixStride] holds the 36 products, `o` receives the 16
/// outputs (row-major 4x4, one vector each).
@inline(__always)
private func outputTransform(_ m: UnsafePointer<Float>, matrixStride: Int, into o: UnsafeMutablePointer<Float>) {
    // Aᵀ rows: (1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1).
    @inline(__always) func at(_ x0: FloatVector, _ x1: FloatVector, _ x2: FloatVector, _ x3: FloatVector,
                              _ x4: FloatVector, _ x5: FloatVector) -> (FloatVector, FloatVector, FloatVector, FloatVector) {
        let s12 = x1 + x2, d12 = x1 - x2, s34 = x3 + x4, d34 = x3 - x4
        return (x0 + s12 + s34, d12.addingProduct(d34, 2), s12.addingProduct(s34, 4), (d12 + x5).addingProduct(d34, 8))
    }
    // Aᵀ m: for each column j combine the 6 rows, then each of the 4 rows times A.
    for j in 0..<6 {
        let partial = at(m.vector(at: (0 * 6 + j) * matrixStride), m.vector(at: (1 * 6 + j) * matrixStride),
                     m.vector(at: (2 * 6 + j) * matrixStride), m.vector(at: (3 * 6 + j) * matrixStride),
                     m.vector(at: (4 * 6 + j) * matrixStride), m.vector(at: (5 * 6 + j) * matrixStride))
        // The 4x6 intermediate goes after the 16 outputs (the staging area has 52 vectors).
        o.store(partial.0, at: (16 + 0 * 6 + j) * lanes)
        o.store(partial.1, at: (16 + 1 * 6 + j) * lanes)
        o.store(partial.2, at: (16 + 2 * 6 + j) * lanes)
        o.store(partial.3, at: (16 + 3 * 6 + j) * lanes)
    }
    for r in 0..<4 {
        let row = o + (16 + r * 6) * lanes
        let y = at(row.vector(at: 0), row.vector(at: lanes), row.vector(at: 2 * lanes),
                   row.vector(at: 3 * lanes), row.vector(at: 4 * lanes), row.vector(at: 5 * lanes))
        o.store(y.0, at: (r * 4 + 0) * lanes)
        o.store(y.1, at: (r * 4 + 1) * lanes)
        o.store(y.2, at: (r * 4 + 2) * lanes)
        o.store(y.3, at: (r * 4 + 3) * lanes)
    }
}

/// A Winograd convolution of a batch split over threads, transforming the weights on every
/// run (U is 4x the weights: kept, it alone broke the memory budget of VGG16 and ResNet50), in
/// one of two ways:
/// - `.tileBlocks`, for many tiles and a small U: U of every channel pair is transformed first
///   (threads split the output channels), then threads take whole blocks of tile rows of each
///   image; each pads only its block's rows, transforms them and multiplies by all of U.
/// - `.outputChunks`, for few tiles or a large U: every image is transformed whole (V; threads
///   take tile rows, each padding only the rows it reads), then threads split the output
///   channels and each takes `chunk` of them at a time: transforms that chunk's U into its own
///   buffer (where it stays in cache) and multiplies it with every image's tiles at once. U is
///   never whole in memory.
/// `parallel(count, body)` runs body(k, range) on disjoint ranges covering 0..<count, k < threads.
public struct WinogradSchedule: Sendable {
    public enum Mode: Sendable { case tileBlocks, outputChunks }
    public typealias Parallel = (Int, (Int, Range<Int>) -> Void) -> Void

    /// The convolution in blocks of tile rows (`.tileBlocks` runs these blocks).
    public let plan: Winograd3x3
    /// One tile row per block (`.outputChunks` pads and transforms these), and every tile in
    /// one block (`.outputChunks` multiplies that).
    let rows: Winograd3x3, whole: Winograd3x3
    public let mode: Mode
    public let batch: Int
    public let threads: Int
    /// Output channels per chunk of U (`.outputChunks`).
    public let chunk: Int
    /// Floats of scratch `run` needs.
    public let scratchCount: Int

    /// Whether this beats im2col + GEMM: `Winograd3x3.isRecommended` counted over the batch,
    /// since `.outputChunks` multiplies every image's tiles at once (ResNet50's 7x7 3x3
    /// convolutions of 512 channels at batch 8, 4 tiles an image: 4.8-7.2 ms against 13-21 ms
    /// for im2col with the narrow kernel).
    public var isRecommended: Bool { batch * plan.tileCount >= 16 }

    /// Floats of one thread's chunk of U by default: 1 MiB, about a core's L2 cache.
    public static let chunkFloats = 1 << 18

    /// nil when the convolution does not qualify, or when no way fits `scratchLimit` floats.
    /// `mode` forces one way (for tests and benchmarks); by default `.tileBlocks` when there
    /// are enough blocks for the threads and it fits, else `.outputChunks`; when neither fits,
    /// both again with blocks of half as many tile rows and chunks of half the weights, down
    /// to one tile row and one channel.
    public init?(batch: Int, inputChannels: Int, outputChannels: Int, inHeight: Int, inWidth: Int,
                 _ attributes: ConvAttributes, threads: Int, scratchLimit: Int = .max, mode: Mode? = nil,
                 tilesPerBlock: Int? = nil, chunkFloats: Int = WinogradSchedule.chunkFloats) {
        guard batch >= 1, threads >= 1,
              var blocks = Winograd3x3(inputChannels: inputChannels, outputChannels: outputChannels, inHeight: inHeight,
                                       inWidth: inWidth, attributes, tilesPerBlock: tilesPerBlock) else { return nil }
        // Every image's tiles in one block: the products of `.outputChunks` take the whole batch.
        let whole = Winograd3x3(inputChannels: inputChannels, outputChannels: outputChannels, inHeight: inHeight,
                                inWidth: inWidth, attributes, tilesPerBlock: blocks.tileCount, images: batch)!
        let rows = Winograd3x3(inputChannels: inputChannels, outputChannels: outputChannels, inHeight: inHeight,
                               inWidth: inWidth, attributes, tilesPerBlock: blocks.tilesX)!
        let a = Self.aligned
        var chunkFloats = chunkFloats
        while true {
            let blocksScratch = a(blocks.transformedWeightCount) + threads * (a(blocks.bandCount) + a(blocks.blockScratchCount))
            let chunk = max(1, min((outputChannels + threads - 1) / threads, chunkFloats / (36 * inputChannels)))
            let chunksScratch = a(whole.transformedInputCount) + threads * Self.chunkScratch(whole, rows, chunk)
            var chosen: Mode?
            if let mode {
                chosen = mode
            } else if blocks.blockCount >= 2 * threads, blocksScratch <= scratchLimit {
                chosen = .tileBlocks
            } else if chunksScratch <= scratchLimit {
                chosen = .outputChunks
            } else if blocksScratch <= scratchLimit {
                chosen = .tileBlocks
            }
            if let chosen {
                self.mode = chosen
                self.plan = blocks
                self.rows = rows
                self.whole = whole
                self.batch = batch
                self.threads = threads
                self.chunk = chunk
                scratchCount = chosen == .tileBlocks ? blocksScratch : chunksScratch
                return
            }
            guard tilesPerBlock == nil, blocks.tileRowsPerBlock > 1 || chunk > 1 else { return nil }
            blocks = Winograd3x3(inputChannels: inputChannels, outputChannels: outputChannels, inHeight: inHeight,
                                 inWidth: inWidth, attributes, tilesPerBlock: max(1, blocks.tileRowsPerBlock / 2) * blocks.tilesX)!
            chunkFloats /= 2
        }
    }

    /// Scratch offsets are kept to whole cache lines.
    static func aligned(_ count: Int) -> Int { (count + 15) / 16 * 16 }

    /// One thread's scratch in `.outputChunks`: a tile row's padded rows while transforming
    /// the input, then a chunk of U and its products; and a staging.
    static func chunkScratch(_ whole: Winograd3x3, _ rows: Winograd3x3, _ chunk: Int) -> Int {
        max(aligned(rows.bandCount),
            Winograd3x3.transformedWeightCount(inputChannels: whole.inputChannels, outputChannels: chunk)
                + aligned(36 * whole.productMatrixStride(chunk)))
            + Winograd3x3.stagingCount
    }

    /// The convolution of `batch` images: `input` [batch, inputChannels, inHeight, inWidth],
    /// `taps` the weights [outputChannels, inputChannels, 3, 3] made tap-major
    /// (`Winograd3x3.tapMajor`), `output` [batch, outputChannels, outHeight, outWidth]; the
    /// epilogue's residual is the batch's (same layout as `output`).
    public func run(input: UnsafePointer<Float>, taps: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                    epilogue: Epilogue, scratch: UnsafeMutablePointer<Float>, parallel: Parallel) {
        let p = plan, a = Self.aligned
        let inImage = p.inputChannels * p.inHeight * p.inWidth, outImage = p.outputChannels * p.outHeight * p.outWidth
        func imageEpilogue(_ n: Int) -> Epilogue {
            Epilogue(bias: epilogue.bias, residual: epilogue.residual.map { $0 + n * outImage }, activation: epilogue.activation)
        }
        switch mode {
        case .tileBlocks:
            let u = scratch, perThread = a(p.bandCount) + a(p.blockScratchCount)
            let threadScratch = u + a(p.transformedWeightCount)
            parallel(p.outputChannels) { _, channels in
                Winograd3x3.transformWeights(taps: taps, inputChannels: p.inputChannels, outputChannels: channels,
                                             of: p.outputChannels, chunk: 0..<p.outputChannels, into: u)
            }
            for n in 0..<batch {
                let image = input + n * inImage, out = output + n * outImage, imageEpilogue = imageEpilogue(n)
                parallel(p.blockCount) { k, blocks in
                    let band = threadScratch + k * perThread
                    let v = band + a(p.bandCount), m = v + p.transformedInputCount, staging = m + p.productCount
                    for block in blocks {
                        p.padInput(image, into: band, channels: 0..<p.inputChannels, rows: p.paddedRows(of: block))
                        p.transformInput(block: block, padded: band, band: true, into: v, channels: 0..<p.inputChannels,
                                         staging: staging)
                        p.multiplyAndTransformOutput(block: block, transformedInput: v, transformedWeights: u, products: m,
                                                     output: out, epilogue: imageEpilogue,
                                                     outputChannels: 0..<p.outputChannels, staging: staging)
                    }
                }
            }
        case .outputChunks:
            let whole = self.whole, rows = self.rows, chunk = self.chunk
            let v = scratch, threadScratch = v + a(whole.transformedInputCount), perThread = Self.chunkScratch(whole, rows, chunk)
            for n in 0..<batch {
                parallel(rows.blockCount) { k, tileRows in
                    let band = threadScratch + k * perThread, staging = band + perThread - Winograd3x3.stagingCount
                    for block in tileRows {
                        rows.padInput(input + n * inImage, into: band, channels: 0..<p.inputChannels, rows: rows.paddedRows(of: block))
                        rows.transformInput(block: block, padded: band, band: true, into: v, of: whole, image: n,
                                            channels: 0..<p.inputChannels, staging: staging)
                    }
                }
            }
            parallel(p.outputChannels) { k, channels in
                let u = threadScratch + k * perThread
                let m = u + Winograd3x3.transformedWeightCount(inputChannels: p.inputChannels, outputChannels: chunk)
                let staging = u + perThread - Winograd3x3.stagingCount
                var first = channels.lowerBound
                while first < channels.upperBound {
                    let held = first..<min(first + chunk, channels.upperBound)
                    Winograd3x3.transformWeights(taps: taps, inputChannels: p.inputChannels, outputChannels: held,
                                                 of: p.outputChannels, chunk: held, into: u)
                    whole.multiplyAndTransformOutput(block: 0, transformedInput: v, transformedWeights: u, weightChannels: held,
                                                     products: m, output: output, epilogue: epilogue, outputChannels: held,
                                                     staging: staging)
                    first = held.upperBound
                }
            }
        }
    }
}
