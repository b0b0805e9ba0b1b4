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
    var blockStride: Int { (tileRowsPerBlock * tilesX + lanes - 1) / lanes * lanes }

    /// Whether Winograd beats im2col + sgemm here: its transformed weights are 4x larger
    /// (36 vs 9 per channel pair), so with few tiles per image the GEMMs stream weights
    /// instead of computing (measured: 7x7 outputs with 512 channels run 1.9x slower than
    /// im2col + sgemm; 14x14 and larger run faster).
    public var isRecommended: Bool { tileCount >= 16 }

    /// For a Conv with a 3x3 kernel, stride 1, dilation 1 and group 1 on an input of
    /// [inputChannels, inHeight, inWidth]; nil otherwise. `tilesPerBlock` is the target block
    /// size (rounded to whole tile rows); by default V and M of a block fill about 1 MiB.
    public init?(inputChannels: Int, outputChannels: Int, inHeight: Int, inWidth: Int,
                 _ attributes: ConvAttributes, tilesPerBlock: Int? = nil) {
        guard attributes.kernelShape == [3, 3], attributes.strides == [1, 1], attributes.dilations == [1, 1],
              attributes.group == 1, attributes.pads.count == 4 else { return nil }
        self.init(inputChannels: inputChannels, outputChannels: outputChannels, inHeight: inHeight, inWidth: inWidth,
                  padTop: attributes.pads[0], padLeft: attributes.pads[1], padBottom: attributes.pads[2],
                  padRight: attributes.pads[3], tilesPerBlock: tilesPerBlock)
    }

    public init?(inputChannels: Int, outputChannels: Int, inHeight: Int, inWidth: Int,
                 padTop: Int, padLeft: Int, padBottom: Int, padRight: Int, tilesPerBlock: Int? = nil) {
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
    }

    // MARK: sizes

    /// Floats of the transformed weights: 36 matrices of [outputChannels, inputChannels].
    public static func transformedWeightCount(inputChannels: Int, outputChannels: Int) -> Int {
        36 * inputChannels * outputChannels
    }

    public var transformedWeightCount: Int {
        Self.transformedWeightCount(inputChannels: inputChannels, outputChannels: outputChannels)
    }

    /// Floats of the padded input of one image (`padInput`'s destination).
    public var paddedInputCount: Int { inputChannels * paddedHeight * paddedRowLength }

    /// Floats of one block's transformed input V (36 x inputChannels x tiles).
    public var transformedInputCount: Int { 36 * inputChannels * blockStride }

    /// Floats of one block's products M (36 x outputChannels x tiles).
    public var productCount: Int { 36 * outputChannels * blockStride }

    /// Floats of staging each thread running a transform needs.
    public static let stagingCount = 52 * lanes

    /// Floats of scratch one `runBlocks` call needs (per thread).
    public var blockScratchCount: Int { transformedInputCount + productCount + Self.stagingCount }

    /// Floats of scratch `run` needs.
    public var scratchCount: Int { paddedInputCount + blockScratchCount }

    // MARK: weights

    /// U[k][co][ci] = (G · W[co, ci] · Gᵀ)[k], k = 6·row + column, computed in double.
    /// weights: ONNX layout [outputChannels, inputChannels, 3, 3]; `into` holds
    /// `transformedWeightCount` floats.
    public static func transformWeights(_ weights: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>,
                                        inputChannels: Int, outputChannels: Int) {
        let g: [[Double]] = [[1.0 / 4, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [-1.0 / 6, 1.0 / 6, -1.0 / 6],
                             [1.0 / 24, 1.0 / 12, 1.0 / 6], [1.0 / 24, -1.0 / 12, 1.0 / 6], [0, 0, 1]]
        let pairs = inputChannels * outputChannels
        for co in 0..<outputChannels {
            for ci in 0..<inputChannels {
                let w = weights + (co * inputChannels + ci) * 9
                for r in 0..<6 {
                    // (G · w)[r][c] for c < 3
                    var gw = (0.0, 0.0, 0.0)
                    for i in 0..<3 {
                        gw.0 += g[r][i] * Double(w[i * 3])
                        gw.1 += g[r][i] * Double(w[i * 3 + 1])
                        gw.2 += g[r][i] * Double(w[i * 3 + 2])
                    }
                    for c in 0..<6 {
                        let value = gw.0 * g[c][0] + gw.1 * g[c][1] + gw.2 * g[c][2]
                        u[(r * 6 + c) * pairs + co * inputChannels + ci] = Float(value)
                    }
                }
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
    /// planes (`paddedInputCount` floats for all channels) that the transforms read.
    public func padInput(_ input: UnsafePointer<Float>, into padded: UnsafeMutablePointer<Float>, channels: Range<Int>) {
        let ph = paddedHeight, rowLength = paddedRowLength, q = phaseLength
        let copyHeight = min(inHeight, ph - padTop), copyWidth = min(inWidth, 4 * tilesX + 2 - padLeft)
        for c in channels {
            let dst = padded + c * ph * rowLength, src = input + c * inHeight * inWidth
            dst.update(repeating: 0, count: ph * rowLength)
            for y in 0..<copyHeight {
                let row = dst + (padTop + y) * rowLength, source = src + y * inWidth
                for x in 0..<copyWidth {
                    let column = padLeft + x
                    row[(column & 3) * q + (column >> 2)] = source[x]
                }
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
    public func transformInput(block: Int, padded: UnsafePointer<Float>, into v: UnsafeMutablePointer<Float>,
                               channels: Range<Int>, staging: UnsafeMutablePointer<Float>) {
        let (firstTileRow, tileRows, _) = tiles(of: block)
        let rowLength = paddedRowLength, q = phaseLength, stride = blockStride
        let planeSize = paddedHeight * rowLength
        for c in channels {
            let plane = padded + c * planeSize
            for r in 0..<tileRows {
                let window = plane + 4 * (firstTileRow + r) * rowLength
                var tx = 0
                while tx < tilesX {
                    inputTransform(window + tx, rowLength: rowLength, phaseLength: q, staging: staging,
                                   validLanes: min(lanes, tilesX - tx),
                                   out: v + c * stride + r * tilesX + tx, matrixStride: inputChannels * stride)
                    tx += lanes
                }
            }
        }
    }

    /// For output channels `outputChannels`: the 36 GEMMs M[k] = U[k] · V[k] of the block, the
    /// output transform into `output` and the epilogue on the block's output rows. `v` comes
    /// from `transformInput` (all channels); `products` holds `productCount` floats (threads
    /// splitting the output channels may share it: they write disjoint rows).
    public func multiplyAndTransformOutput(block: Int, transformedInput v: UnsafePointer<Float>,
                                           transformedWeights: UnsafePointer<Float>,
                                           products m: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>,
                                           epilogue: Epilogue, outputChannels: Range<Int>,
                                           staging: UnsafeMutablePointer<Float>) {
        guard !outputChannels.isEmpty else { return }
        let (firstTileRow, tileRows, tiles) = tiles(of: block)
        let stride = blockStride
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
                            transformedWeights + (k * self.outputChannels + first) * inputChannels, blasint(inputChannels),
                            v + k * inputChannels * stride, blasint(stride),
                            0, m + (k * self.outputChannels + first) * stride, blasint(stride))
                first += count
            }
        }
        let outPlane = outHeight * outWidth
        let firstRow = 4 * firstTileRow
        let rows = min(outHeight, firstRow + 4 * tileRows) - firstRow
        for co in outputChannels {
            let plane = output + co * outPlane
            var t = 0
            while t < tiles {
                let group = min(lanes, tiles - t)
                outputTransform(UnsafePointer(m + co * stride + t), matrixStride: self.outputChannels * stride, into: staging)
                for lane in 0..<group {
                    let tile = t + lane
                    let oy = 4 * (firstTileRow + tile / tilesX), ox = 4 * (tile % tilesX)
                    let height = min(4, outHeight - oy), width = min(4, outWidth - ox)
                    for r in 0..<height {
                        let row = plane + (oy + r) * outWidth + ox
                        for c in 0..<width { row[c] = staging[(r * 4 + c) * lanes + lane] }
                    }
                }
                t += lanes
            }
            Kernels.applyEpilogue(output, channels: co..<(co + 1), planeStride: outPlane,
                                  offset: firstRow * outWidth, count: rows * outWidth, epilogue)
        }
    }
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
            out.store(r.0, at: (k + 0) * matrixStride)
            out.store(r.1, at: (k + 1) * matrixStride)
            out.store(r.2, at: (k + 2) * matrixStride)
            out.store(r.3, at: (k + 3) * matrixStride)
            out.store(r.4, at: (k + 4) * matrixStride)
            out.store(r.5, at: (k + 5) * matrixStride)
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
