import COpenBLAS
import FerryIR
import FerryKernels

/// LSTM, GRU and RNN in a plan. X·Wᵀ for every time step, batch row and direction is one
/// product (W of both directions is one [dirs·gates·hidden, input] matrix; each thread computes
/// a range of its rows with single-threaded `cblas_sgemm`); R is packed by
/// blocks of 16 hidden units (RecurrentProducts.swift); then per direction and step, each
/// thread takes a range of blocks and, per block, multiplies its packed R by the previous hidden
/// states of every batch row at once (`Kernels.recurrentBlockProducts`: one small GEMM per
/// step) and runs the fused gate kernel on them (`Kernels.lstmStep` etc.) while they are in L1:
/// one fork-join per step (two for GRU without linear_before_reset, whose h block multiplies
/// r·h). The two directions of a bidirectional layer are independent: with two threads or more
/// each runs on its own thread, without a fork-join per step.
/// Layout 0 and 1 (batch first), every direction, sequence_lens (a constant or a value of the
/// graph), initial states, peepholes, clip and every ONNX activation; R a constant (packed once)
/// or a value of the graph (packed on every run). Without the SIMD kernels the reference kernel
/// runs.
extension PlanBuilder {
    func planRecurrent(_ node: Node, _ attr: RecurrentAttributes) -> PlannedKernel? {
        guard InnerKernels.simd else { return nil }
        // Every value float32 except sequence_lens (input 4), which is read as integers.
        for (i, name) in node.inputs.enumerated() where !name.isEmpty && i != 4 {
            guard isFloat(name) else { return nil }
        }
        guard node.outputs.allSatisfy({ $0.isEmpty || isFloat($0) }),
              let activations = try? attr.activationsPerDirection(node.op) else { return nil }
        let xShape = shape(node.inputs[0])
        guard xShape.count == 3 else { return nil }
        let batchFirst = attr.layout == 1
        let (seq, batch, inSize) = batchFirst ? (xShape[1], xShape[0], xShape[2]) : (xShape[0], xShape[1], xShape[2])
        let h = attr.hiddenSize, gates = node.op.recurrentGateCount, gh = gates * h, dirs = attr.direction.count
        guard seq > 0, batch > 0 else { return nil }
        func input(_ i: Int) -> String? { i < node.inputs.count && !node.inputs[i].isEmpty ? node.inputs[i] : nil }
        func output(_ i: Int) -> String? { i < node.outputs.count && !node.outputs[i].isEmpty ? node.outputs[i] : nil }
        let lensName = input(4)
        // Constant sequence lengths are read once; others on every run.
        var constantLengths: [Int]?
        if let lensName, let t = constant(constantRoot(lensName)) {
            guard let values = t.int64s else { return nil }
            constantLengths = values.map { Int(clamping: $0) }
        }
        // R packed by blocks of 16 units (Kernels.packRecurrentWeights), once here when it is a
        // constant, else on every run into scratch. GRU without linear_before_reset multiplies its
        // h block by r·h, known only once z and r are: its R is packed as z, r and then h apart.
        let units = Kernels.recurrentBlockUnits, blocks = (h + units - 1) / units
        let packing = RecurrentPacking(directions: dirs, gates: gates, hidden: h, splitsLastGate: gates == 3 && !attr.linearBeforeReset)
        let split = packing.splitsLastGate, firstGates = packing.firstGates
        let packedFirst = packing.firstCount, packedPerDirection = packing.perDirection
        // A constant R is packed once into the runtime's store, which takes the original when
        // nothing else reads it (held twice before: 3 MB of the LSTM bench model).
        let constantPacked = recurrentWeights(node.inputs[2], packing)
        // Scratch: X·Wᵀ of every step; then per direction the step's products (per block of
        // units, every batch row's gates·16 floats), two hidden states, the cell, GRU's z and
        // r·h, the direction's combined bias and GRU's Rb_h; R packed when it is not constant.
        // X·Wᵀ a chunk of steps at a time when the whole sequence's would not fit the room the
        // arena has at this step (1.5x the largest live set): it is gates x the output's size
        // (0.8 MB for the LSTM bench model beside 0.1 MB of activations).
        let chunkSteps = Self.recurrentChunkSteps ?? {
            let room = roomWithinBudget(node), perStep = batch * dirs * gh
            guard seq * perStep > Swift.max(room, Self.smallestRecurrentChunk) else { return seq }
            return Swift.min(seq, Swift.max(32, room / Swift.max(1, perStep)))
        }()
        let chunked = chunkSteps < seq
        let xwCount = (chunked ? chunkSteps : seq) * batch * dirs * gh
        let hrCount = blocks * batch * firstGates * units
        let layout = (hr: 0, previous: hrCount, next: hrCount + batch * h, cell: hrCount + 2 * batch * h,
                      update: hrCount + 3 * batch * h, resetHidden: hrCount + 4 * batch * h,
                      bias: hrCount + 5 * batch * h, recurrentBias: hrCount + 5 * batch * h + gh)
        let perDirection = layout.recurrentBias + h
        let packedScratch = constantPacked == nil ? dirs * packedPerDirection : 0
        let scratchCount = xwCount + dirs * perDirection + packedScratch
        let op = node.op, threads = self.threads, clip = attr.clip, reverseOnly = attr.direction == .reverse
        // Directions side by side on their own threads, or one after the other on all of them.
        let concurrentDirections = dirs == 2 && threads >= 2
        let lbr = attr.linearBeforeReset, inputForget = attr.inputForget
        let kind = gates == 4 ? "lstm" : gates == 3 ? "gru" : "rnn"
        // Blocks of units go to threads whole, enough multiply-adds each to pay for a wake-up.
        let grain = Swift.max(1, 16_384 / Swift.max(1, units * gh * batch))
        let projectionGrain = Swift.max(1, 65_536 / Swift.max(1, 64 * seq * batch * inSize))
        return PlannedKernel(name: "recurrent.\(kind)", scratch: scratchCount) { b in
            let x = b.pointer(node.inputs[0]), w = b.pointer(node.inputs[1])
            let r = constantPacked == nil ? b.pointer(node.inputs[2]) : nil
            let bias = input(3).map { b.pointer($0) }, peepholes = gates == 4 ? input(7).map { b.pointer($0) } : nil
            let h0 = input(5).map { b.pointer($0) }, c0 = gates == 4 ? input(6).map { b.pointer($0) } : nil
            let y = output(0).map { b.pointer($0) }, yh = output(1).map { b.pointer($0) }
            let yc = gates == 4 ? output(2).map { b.pointer($0) } : nil
            let lensReader = constantLengths == nil ? lensName.map { b.reader($0) } : nil
            let xw = b.scratch!
            let packedR = constantPacked ?? UnsafePointer(xw + xwCount + dirs * perDirection)
            let lengths = LengthsBuffer(batch: batch, seq: seq)
            return {
                if let constantLengths { try lengths.set(constantLengths, op: op) }
                if let lensReader {
                    guard let values = lensReader().int64s else { throw FerryError("\(op.name) sequence_lens must be integers") }
                    try lengths.set(values.map { Int(clamping: $0) }, op: op)
                }
                if let r { packing.pack(r, into: UnsafeMutablePointer(mutating: packedR)) }
                let longest = lengths.values.max() ?? 0
                // Row of X (and of X·Wᵀ) at time t, batch row bi; Y's and the states' offsets.
                @inline(__always) func row(_ t: Int, _ bi: Int) -> Int { batchFirst ? bi * seq + t : t * batch + bi }
                @inline(__always) func yOffset(_ t: Int, _ d: Int, _ bi: Int) -> Int {
                    (batchFirst ? (bi * seq + t) * dirs + d : (t * dirs + d) * batch + bi) * h
                }
                @inline(__always) func stateOffset(_ d: Int, _ bi: Int) -> Int { (batchFirst ? bi * dirs + d : d * batch + bi) * h }
                // X·Wᵀ on the plan's own threads, each a range of W's rows through single-threaded
                // OpenBLAS: OpenBLAS's own workers spin for a while after a product, on the core
                // the steps below need (a bidirectional layer's second direction then ran late).
                BLASThreads.set(1)
                defer { BLASThreads.set(threads) }
                if !chunked {
                    let columns = dirs * gh
                    parallelChunks((columns + 63) / 64, threads: threads, grain: projectionGrain) { blocks in
                        let first = blocks.lowerBound * 64, end = Swift.min(blocks.upperBound * 64, columns)
                        sgemm(transA: false, transB: true, m: seq * batch, n: end - first, k: inSize, alpha: 1, a: x, lda: inSize,
                              b: w + first * inSize, ldb: inSize, beta: 0, c: xw + first, ldc: columns)
                    }
                }
                /// The times of batch row `bi` that steps `s0..<s0 + chunkSteps` of a direction read.
                @inline(__always) func chunkTimes(_ s0: Int, _ bi: Int, reverse: Bool) -> Range<Int> {
                    let len = lengths.values[bi], s1 = Swift.min(s0 + chunkSteps, len)
                    guard s0 < s1 else { return 0..<0 }
                    return reverse ? (len - s1)..<(len - s0) : s0..<s1
                }
                /// X·Wᵀ of direction d for steps s0..<s0 + chunkSteps into its chunk: batch row bi's
                /// times, ascending, from chunk row bi·chunkSteps.
                func projectChunk(_ d: Int, from s0: Int, threads: Int) {
                    let chunk = xw + d * chunkSteps * batch * gh, wd = w + d * gh * inSize
                    let lda = batchFirst ? inSize : batch * inSize
                    parallelChunks((gh + 63) / 64, threads: threads, grain: projectionGrain) { blocks in
                        let first = blocks.lowerBound * 64, end = Swift.min(blocks.upperBound * 64, gh)
                        for bi in 0..<batch {
                            let times = chunkTimes(s0, bi, reverse: reverseOnly || d == 1)
                            guard !times.isEmpty else { continue }
                            sgemm(transA: false, transB: true, m: times.count, n: end - first, k: inSize, alpha: 1,
                                  a: x + row(times.lowerBound, bi) * inSize, lda: lda, b: wd + first * inSize, ldb: inSize,
                                  beta: 0, c: chunk + bi * chunkSteps * gh + first, ldc: gh)
                        }
                    }
                }
                // Steps past a row's length leave zeros in Y.
                if let y, lengths.values.contains(where: { $0 < seq }) { y.update(repeating: 0, count: seq * dirs * batch * h) }
                func direction(_ d: Int, threads: Int) {
                    let s = xw + xwCount + d * perDirection
                    let hr = s + layout.hr, cell = s + layout.cell, update = s + layout.update
                    let resetHidden = s + layout.resetHidden, combinedBias = s + layout.bias
                    let recurrentBias = s + layout.recurrentBias
                    var previous = s + layout.previous, next = s + layout.next
                    let reverse = reverseOnly || d == 1
                    let f = activations[d][0], g = activations[d].count > 1 ? activations[d][1] : .tanh
                    let hAct = activations[d].count > 2 ? activations[d][2] : .tanh
                    // Wb + Rb, except GRU's h block with linear_before_reset, where Rb_h goes inside r·(...).
                    if let bias {
                        let wb = bias + d * 2 * gh, rb = wb + gh
                        for i in 0..<gh { combinedBias[i] = wb[i] + rb[i] }
                        if gates == 3 && lbr {
                            for j in 0..<h { combinedBias[2 * h + j] = wb[2 * h + j]; recurrentBias[j] = rb[2 * h + j] }
                        }
                    } else {
                        combinedBias.update(repeating: 0, count: gh)
                        recurrentBias.update(repeating: 0, count: h)
                    }
                    for bi in 0..<batch {
                        if let h0 { (previous + bi * h).update(from: h0 + stateOffset(d, bi), count: h) } else {
                            (previous + bi * h).update(repeating: 0, count: h)
                        }
                        if let c0 { (cell + bi * h).update(from: c0 + stateOffset(d, bi), count: h) } else {
                            (cell + bi * h).update(repeating: 0, count: h)
                        }
                    }
                    let packed = packedR + d * packedPerDirection, peephole = peepholes.map { $0 + d * 3 * h }
                    let hrBlock = batch * firstGates * units
                    // X·Wᵀ's row for time t of batch row bi at this step.
                    let xwd = chunked ? xw + d * chunkSteps * batch * gh : xw + d * gh, ldxw = chunked ? gh : dirs * gh
                    for step in 0..<longest {
                        let chunkStart = step - step % chunkSteps
                        if chunked && step == chunkStart { projectChunk(d, from: step, threads: threads) }
                        @inline(__always) func xwRow(_ t: Int, _ bi: Int) -> UnsafeMutablePointer<Float> {
                            guard chunked else { return xwd + row(t, bi) * ldxw }
                            return xwd + (bi * chunkSteps + t - chunkTimes(chunkStart, bi, reverse: reverse).lowerBound) * gh
                        }
                        let hPrev = UnsafePointer(previous), hNext = next
                        // Blocks of units: every batch row's products for the block's gates, then the gates.
                        parallelChunks(blocks, threads: threads, grain: grain) { range in
                            for p in range {
                                let lo = p * units, n = Swift.min(units, h - lo), products = hr + p * hrBlock
                                Kernels.recurrentBlockProducts(packed + p * firstGates * units * h, gates: firstGates, depth: h,
                                                               states: hPrev, stateStride: h, rows: batch, into: products,
                                                               outStride: firstGates * units)
                                for bi in 0..<batch {
                                    let len = lengths.values[bi]
                                    guard step < len else {
                                        (hNext + bi * h + lo).update(from: hPrev + bi * h + lo, count: n)
                                        continue
                                    }
                                    let t = reverse ? len - 1 - step : step
                                    let xRow = xwRow(t, bi), hrRow = UnsafePointer(products + bi * firstGates * units)
                                    let state = hPrev + bi * h
                                    let out = y.map { $0 + yOffset(t, d, bi) + lo }
                                    switch gates {
                                    case 4:
                                        Kernels.lstmStep(xw: xRow + lo, hr: hrRow, hrStride: units, bias: combinedBias + lo,
                                                         gateStride: h, peephole: peephole.map { $0 + lo }, cell: cell + bi * h + lo,
                                                         hidden: hNext + bi * h + lo, output: out, count: n, clip: clip,
                                                         f: f, g: g, h: hAct, inputForget: inputForget)
                                    case 3 where lbr:
                                        Kernels.gruStepLinearBeforeReset(xw: xRow + lo, hr: hrRow, hrStride: units,
                                                                         bias: combinedBias + lo, recurrentBias: recurrentBias + lo,
                                                                         gateStride: h, previous: state + lo,
                                                                         hidden: hNext + bi * h + lo, output: out, count: n,
                                                                         clip: clip, f: f, g: g)
                                    case 3:
                                        Kernels.gruResetGates(xw: xRow + lo, hr: hrRow, hrStride: units, bias: combinedBias + lo,
                                                              gateStride: h, previous: state + lo, update: update + bi * h + lo,
                                                              resetHidden: resetHidden + bi * h + lo, count: n, clip: clip, f: f)
                                    default:
                                        Kernels.rnnStep(xw: xRow + lo, hr: hrRow, bias: combinedBias + lo,
                                                        hidden: hNext + bi * h + lo, output: out, count: n, clip: clip, f: f)
                                    }
                                }
                            }
                        }
                        if split {
                            // The h block multiplies r·h, complete only once every unit's r is known.
                            parallelChunks(blocks, threads: threads, grain: grain) { range in
                                for p in range {
                                    let lo = p * units, n = Swift.min(units, h - lo), products = hr + p * hrBlock
                                    Kernels.recurrentBlockProducts(packed + packedFirst + p * units * h, gates: 1, depth: h,
                                                                   states: resetHidden, stateStride: h, rows: batch,
                                                                   into: products, outStride: units)
                                    for bi in 0..<batch {
                                        let len = lengths.values[bi]
                                        guard step < len else { continue }
                                        let t = reverse ? len - 1 - step : step
                                        Kernels.gruCandidate(xw: xwRow(t, bi) + 2 * h + lo, hr: products + bi * units,
                                                             bias: combinedBias + 2 * h + lo, update: update + bi * h + lo,
                                                             previous: hPrev + bi * h + lo, hidden: hNext + bi * h + lo,
                                                             output: y.map { $0 + yOffset(t, d, bi) + lo }, count: n, clip: clip, g: g)
                                    }
                                }
                            }
                        }
                        swap(&previous, &next)
                    }
                    for bi in 0..<batch {
                        if let yh { (yh + stateOffset(d, bi)).update(from: previous + bi * h, count: h) }
                        if let yc { (yc + stateOffset(d, bi)).update(from: cell + bi * h, count: h) }
                    }
                }
                if concurrentDirections {
                    forkJoin(2) { d in direction(d, threads: 1) }
                } else {
                    for d in 0..<dirs { direction(d, threads: threads) }
                }
            }
        }
    }
}

extension PlanBuilder {
    /// FERRY_RECURRENT_CHUNK_STEPS fixes the steps of X·Wᵀ computed at a time (to measure it).
    static let recurrentChunkSteps = environmentInteger("FERRY_RECURRENT_CHUNK_STEPS").map { Swift.max(1, $0) }
    /// Floats of X·Wᵀ always allowed whole (256 KiB), however small the room.
    static let smallestRecurrentChunk = 1 << 16
}

/// How R ([directions, gates·hidden, hidden]) is packed for `Kernels.recurrentBlockProducts`:
/// per direction, its gates by blocks of 16 units; GRU without linear_before_reset multiplies
/// its h block by r·h, known only once z and r are, so its R is packed as z and r, then h apart.
struct RecurrentPacking: Hashable {
    let directions: Int
    let gates: Int
    let hidden: Int
    let splitsLastGate: Bool

    var firstGates: Int { splitsLastGate ? gates - 1 : gates }
    var firstCount: Int { Kernels.packedRecurrentCount(gates: firstGates, hidden: hidden) }
    var perDirection: Int { firstCount + (splitsLastGate ? Kernels.packedRecurrentCount(gates: 1, hidden: hidden) : 0) }
    var count: Int { directions * perDirection }
    /// Floats of the original R.
    var originalCount: Int { directions * gates * hidden * hidden }

    func pack(_ r: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        pack(r, into: out) { _, _ in }
    }

    /// `pack`, calling `packed(d, rowsDone)` after each block of units of direction d: of every
    /// gate g, rows R[d, g·hidden ..< g·hidden + rowsDone] have been read (and every row of the
    /// directions before d), so a caller may give their pages back.
    func pack(_ r: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, packed: (_ direction: Int, _ rowsDone: Int) -> Void) {
        let units = Kernels.recurrentBlockUnits, rows = gates * hidden * hidden
        for d in 0..<directions {
            let rd = r + d * rows, packedDirection = out + d * perDirection
            for p in 0..<(hidden + units - 1) / units {
                Kernels.packRecurrentWeights(rd, hidden: hidden, firstGate: 0, gates: firstGates, blocks: p..<(p + 1),
                                             into: packedDirection)
                if splitsLastGate {
                    Kernels.packRecurrentWeights(rd, hidden: hidden, firstGate: firstGates, gates: 1, blocks: p..<(p + 1),
                                                 into: packedDirection + firstCount)
                }
                packed(d, Swift.min((p + 1) * units, hidden))
            }
        }
    }

    func unpack(_ packed: UnsafePointer<Float>, into r: UnsafeMutablePointer<Float>) {
        let rows = gates * hidden * hidden
        for d in 0..<directions {
            let rd = r + d * rows, source = packed + d * perDirection
            Kernels.unpackRecurrentWeights(source, hidden: hidden, firstGate: 0, gates: firstGates, into: rd)
            if splitsLastGate {
                Kernels.unpackRecurrentWeights(source + firstCount, hidden: hidden, firstGate: firstGates, gates: 1, into: rd)
            }
        }
    }
}

/// Sequence lengths of one run, checked (0...seq each), held without allocating per run.
final class LengthsBuffer {
    var values: [Int]
    let seq: Int
    init(batch: Int, seq: Int) {
        values = Array(repeating: seq, count: batch)
        self.seq = seq
    }

    func set(_ lengths: [Int], op: Op) throws {
        guard lengths.count == values.count else {
            throw FerryError("\(op.name) sequence_lens has \(lengths.count) values for a batch of \(values.count)")
        }
        for (i, v) in lengths.enumerated() {
            guard v >= 0, v <= seq else { throw FerryError("\(op.name) sequence_lens[\(i)] = \(v) is outside 0...\(seq)") }
            values[i] = v
        }
    }
}
