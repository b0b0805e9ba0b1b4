/// H·Rᵀ of a recurrent time step from R packed by blocks of hidden units.
///
/// Why packed: a step's product reads all of R (1 MiB for a 256-unit LSTM direction) for one
/// state vector, so its speed is how fast R streams from L2 or L3. R as ONNX stores it
/// ([gates·hidden, hidden], a row per gate output) gives dot products: four rows streamed at
/// once and a horizontal sum per output. Packed, each block of 16 units holds, for every k, the
/// 16 units' weights of every gate side by side, so the product is broadcast-and-FMA into
/// 16-lane accumulators that end as the block's gate pre-activations in the order the fused gate
/// kernels read them, and the whole block is one contiguous stream. Batch rows share each
/// weight load (up to four at a time with AVX-512's 32 registers, two otherwise): at batch > 1
/// a step is one small GEMM, not a product per row.
///
/// Layout of one block (gates g0..<g0+G, units p·16..<p·16+16, zero past the hidden size):
/// columns c = g·16 + u (gate-major), cut in strips of 32 columns (the last 16 when G is odd);
/// a strip of width w holds w floats per k, k ascending, strips one after another.
extension Kernels {
    /// Hidden units per block of packed recurrent weights: one 16-lane vector per gate.
    public static let recurrentBlockUnits = 16

    /// Floats of `gates` gate blocks of one direction's R packed for `hidden` units.
    public static func packedRecurrentCount(gates: Int, hidden: Int) -> Int {
        (hidden + recurrentBlockUnits - 1) / recurrentBlockUnits * gates * recurrentBlockUnits * hidden
    }

    /// Packs gates firstGate..<firstGate+gates of one direction's R (row-major [allGates·hidden,
    /// hidden]), blocks `blocks` of them, into `out` (`packedRecurrentCount(gates:hidden:)`
    /// floats for all blocks): block p at p·gates·16·hidden. Block p reads rows p·16..<p·16+16 of
    /// each gate: a packer may give back each gate's rows up to there once it has packed p.
    public static func packRecurrentWeights(_ r: UnsafePointer<Float>, hidden h: Int, firstGate: Int, gates: Int,
                                            blocks: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        forEachPackedRecurrentColumn(hidden: h, firstGate: firstGate, gates: gates, blocks: blocks) { column, stride, row in
            for k in 0..<h { out[column + k * stride] = row.map { r[$0 + k] } ?? 0 }
        }
    }

    /// The inverse of `packRecurrentWeights` over every block: writes gates firstGate..<firstGate+gates of one
    /// direction's R (row-major [allGates·hidden, hidden]) back from `packed` (a runtime that
    /// released the original restores it from its packed copy).
    public static func unpackRecurrentWeights(_ packed: UnsafePointer<Float>, hidden h: Int, firstGate: Int, gates: Int,
                                              into r: UnsafeMutablePointer<Float>) {
        let blocks = 0..<(h + recurrentBlockUnits - 1) / recurrentBlockUnits
        forEachPackedRecurrentColumn(hidden: h, firstGate: firstGate, gates: gates, blocks: blocks) { column, stride, row in
            guard let row else { return }
            for k in 0..<h { r[row + k] = packed[column + k * stride] }
        }
    }

    /// The packed layout, column by column: `visit(column, stride, row)` for each packed column
    /// of blocks `blocks`, its k-th weight at `column + k·stride` of the packed copy and, for a
    /// unit inside the hidden size, at `row + k` of the original (nil: a zero-padded unit).
    private static func forEachPackedRecurrentColumn(hidden h: Int, firstGate: Int, gates: Int, blocks: Range<Int>,
                                                     _ visit: (_ column: Int, _ stride: Int, _ row: Int?) -> Void) {
        let u = recurrentBlockUnits, width = gates * u
        for p in blocks {
            var first = 0
            while first < width {
                let w = Swift.min(2 * u, width - first), strip = p * width * h + first * h
                for j in 0..<w {
                    let c = first + j, unit = p * u + c % u
                    visit(strip + j, w, unit < h ? ((firstGate + c / u) * h + unit) * h : nil)
                }
                first += w
            }
        }
    }

    /// out[row·outStride + c] = Σ_k R(c, k) · states[row·stateStride + k] for the gates·16
    /// columns c of one packed block (`depth` = the hidden size) and `rows` state vectors.
    public static func recurrentBlockProducts(_ block: UnsafePointer<Float>, gates: Int, depth: Int,
                                              states: UnsafePointer<Float>, stateStride: Int, rows: Int,
                                              into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let width = gates * recurrentBlockUnits
        var first = 0
        while first < width {
            let wide = width - first >= 32, strip = block + first * depth
            var r = 0
            #if FERRY_AVX512
            while r + 4 <= rows {
                let x = states + r * stateStride, y = out + r * outStride + first
                if wide {
                    stripProducts32x4(strip, depth, x, stateStride, y, outStride)
                } else {
                    stripProducts16x4(strip, depth, x, stateStride, y, outStride)
                }
                r += 4
            }
            #endif
            while r + 2 <= rows {
                let x = states + r * stateStride, y = out + r * outStride + first
                if wide { stripProducts32x2(strip, depth, x, stateStride, y, outStride) } else {
                    stripProducts16x2(strip, depth, x, stateStride, y, outStride)
                }
                r += 2
            }
            if r < rows {
                let x = states + r * stateStride, y = out + r * outStride + first
                if wide { stripProducts32x1(strip, depth, x, y) } else { stripProducts16x1(strip, depth, x, y) }
            }
            first += wide ? 32 : 16
        }
    }
}

private typealias Wide = SIMD16<Float>

@inline(__always) private func wide(_ p: UnsafePointer<Float>, _ i: Int) -> Wide {
    UnsafeRawPointer(p + i).loadUnaligned(as: Wide.self)
}

@inline(__always) private func store(_ v: Wide, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: Wide.self)
}

@inline(__always) private func broadcast(_ x: UnsafePointer<Float>, _ k: Int) -> Wide { Wide(repeating: x[k]) }

// One strip (32 or 16 columns) times 1, 2 or 4 state vectors. Every variant keeps at least
// four independent accumulators (an FMA's latency is four of its issue slots): one state splits
// k into even and odd (and into four for 16 columns), more states have enough of their own.

private func stripProducts32x1(_ s: UnsafePointer<Float>, _ depth: Int, _ x: UnsafePointer<Float>,
                               _ y: UnsafeMutablePointer<Float>) {
    var a0 = Wide(), a1 = Wide(), b0 = Wide(), b1 = Wide()
    var p = s, k = 0
    while k &+ 2 <= depth {
        let e = broadcast(x, k), o = broadcast(x, k &+ 1)
        a0 = a0.addingProduct(wide(p, 0), e); a1 = a1.addingProduct(wide(p, 16), e)
        b0 = b0.addingProduct(wide(p, 32), o); b1 = b1.addingProduct(wide(p, 48), o)
        p += 64; k &+= 2
    }
    if k < depth {
        let e = broadcast(x, k)
        a0 = a0.addingProduct(wide(p, 0), e); a1 = a1.addingProduct(wide(p, 16), e)
    }
    store(a0 + b0, y, 0); store(a1 + b1, y, 16)
}

private func stripProducts16x1(_ s: UnsafePointer<Float>, _ depth: Int, _ x: UnsafePointer<Float>,
                               _ y: UnsafeMutablePointer<Float>) {
    var a = Wide(), b = Wide(), c = Wide(), d = Wide()
    var p = s, k = 0
    while k &+ 4 <= depth {
        a = a.addingProduct(wide(p, 0), broadcast(x, k)); b = b.addingProduct(wide(p, 16), broadcast(x, k &+ 1))
        c = c.addingProduct(wide(p, 32), broadcast(x, k &+ 2)); d = d.addingProduct(wide(p, 48), broadcast(x, k &+ 3))
        p += 64; k &+= 4
    }
    while k < depth { a = a.addingProduct(wide(p, 0), broadcast(x, k)); p += 16; k &+= 1 }
    store((a + b) + (c + d), y, 0)
}

private func stripProducts32x2(_ s: UnsafePointer<Float>, _ depth: Int, _ x: UnsafePointer<Float>, _ ldx: Int,
                               _ y: UnsafeMutablePointer<Float>, _ ldy: Int) {
    var a0 = Wide(), a1 = Wide(), b0 = Wide(), b1 = Wide()
    let x1 = x + ldx
    var p = s
    for k in 0..<depth {
        let w0 = wide(p, 0), w1 = wide(p, 16), e = broadcast(x, k), f = broadcast(x1, k)
        a0 = a0.addingProduct(w0, e); a1 = a1.addingProduct(w1, e)
        b0 = b0.addingProduct(w0, f); b1 = b1.addingProduct(w1, f)
        p += 32
    }
    store(a0, y, 0); store(a1, y, 16); store(b0, y + ldy, 0); store(b1, y + ldy, 16)
}

private func stripProducts16x2(_ s: UnsafePointer<Float>, _ depth: Int, _ x: UnsafePointer<Float>, _ ldx: Int,
                               _ y: UnsafeMutablePointer<Float>, _ ldy: Int) {
    var a0 = Wide(), a1 = Wide(), b0 = Wide(), b1 = Wide()
    let x1 = x + ldx
    var p = s, k = 0
    while k &+ 2 <= depth {
        let w0 = wide(p, 0), w1 = wide(p, 16)
        a0 = a0.addingProduct(w0, broadcast(x, k)); b0 = b0.addingProduct(w0, broadcast(x1, k))
        a1 = a1.addingProduct(w1, broadcast(x, k &+ 1)); b1 = b1.addingProduct(w1, broadcast(x1, k &+ 1))
        p += 32; k &+= 2
    }
    if k < depth {
        let w0 = wide(p, 0)
        a0 = a0.addingProduct(w0, broadcast(x, k)); b0 = b0.addingProduct(w0, broadcast(x1, k))
    }
    store(a0 + a1, y, 0); store(b0 + b1, y + ldy, 0)
}

#if FERRY_AVX512
private func stripProducts32x4(_ s: UnsafePointer<Float>, _ depth: Int, _ x: UnsafePointer<Float>, _ ldx: Int,
                               _ y: UnsafeMutablePointer<Float>, _ ldy: Int) {
    var a0 = Wide(), a1 = Wide(), b0 = Wide(), b1 = Wide(), c0 = Wide(), c1 = Wide(), d0 = Wide(), d1 = Wide()
    let x1 = x + ldx, x2 = x1 + ldx, x3 = x2 + ldx
    var p = s
    for k in 0..<depth {
        let w0 = wide(p, 0), w1 = wide(p, 16)
        let e = broadcast(x, k), f = broadcast(x1, k), g = broadcast(x2, k), h = broadcast(x3, k)
        a0 = a0.addingProduct(w0, e); a1 = a1.addingProduct(w1, e)
        b0 = b0.addingProduct(w0, f); b1 = b1.addingProduct(w1, f)
        c0 = c0.addingProduct(w0, g); c1 = c1.addingProduct(w1, g)
        d0 = d0.addingProduct(w0, h); d1 = d1.addingProduct(w1, h)
        p += 32
    }
    store(a0, y, 0); store(a1, y, 16)
    store(b0, y + ldy, 0); store(b1, y + ldy, 16)
    store(c0, y + 2 * ldy, 0); store(c1, y + 2 * ldy, 16)
    store(d0, y + 3 * ldy, 0); store(d1, y + 3 * ldy, 16)
}

private func stripProducts16x4(_ s: UnsafePointer<Float>, _ depth: Int, _ x: UnsafePointer<Float>, _ ldx: Int,
                               _ y: UnsafeMutablePointer<Float>, _ ldy: Int) {
    var a = Wide(), b = Wide(), c = Wide(), d = Wide()
    let x1 = x + ldx, x2 = x1 + ldx, x3 = x2 + ldx
    var p = s
    for k in 0..<depth {
        let w = wide(p, 0)
        a = a.addingProduct(w, broadcast(x, k)); b = b.addingProduct(w, broadcast(x1, k))
        c = c.addingProduct(w, broadcast(x2, k)); d = d.addingProduct(w, broadcast(x3, k))
        p += 16
    }
    store(a, y, 0); store(b, y + ldy, 0); store(c, y + 2 * ldy, 0); store(d, y + 3 * ldy, 0)
}
#endif
