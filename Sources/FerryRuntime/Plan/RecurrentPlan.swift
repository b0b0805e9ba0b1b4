import COpenBLAS
import FerryIR
import FerryKernels

/// LSTM, GRU and RNN in a plan. X·Wᵀ for every time step, batch row and direction is one
/// `cblas_sgemm` (W of both directions is one [dirs·gates·hidden, input] matrix); then per
/// direction and step, each thread takes a range of hidden units and, for every batch row still
/// in its sequence, multiplies its rows of R (all gate blocks of its units) by the previous
/// hidden state (`Kernels.matrixTimesColumn`) and runs the fused gate kernel on them
/// (`Kernels.lstmStep` etc.): one fork-join per step (two for GRU without linear_before_reset,
/// whose h block multiplies r·h). The two directions of a bidirectional layer are independent:
/// with two threads or more each runs on its own thread, without a fork-join per step.
/// Layout 0 and 1 (batch first), every direction, sequence_lens (a constant or a value of the
/// graph), initial states, peepholes, clip and every ONNX activation. Without the SIMD kernels
/// the reference kernel runs.
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
        // Scratch: X·Wᵀ of every step; then per direction H·Rᵀ per batch row, two hidden states,
        // the cell, GRU's z and r·h, the direction's combined bias and GRU's Rb_h.
        let xwCount = seq * batch * dirs * gh
        let layout = (hr: 0, previous: batch * gh, next: batch * gh + batch * h, cell: batch * gh + 2 * batch * h,
                      update: batch * gh + 3 * batch * h, resetHidden: batch * gh + 4 * batch * h,
                      bias: batch * gh + 5 * batch * h, recurrentBias: batch * gh + 5 * batch * h + gh)
        let perDirection = layout.recurrentBias + h
        let scratchCount = xwCount + dirs * perDirection
        let op = node.op, threads = self.threads, clip = attr.clip, reverseOnly = attr.direction == .reverse
        // Directions side by side on their own threads, or one after the other on all of them.
        let concurrentDirections = dirs == 2 && threads >= 2
        let lbr = attr.linearBeforeReset, inputForget = attr.inputForget
        let kind = gates == 4 ? "lstm" : gates == 3 ? "gru" : "rnn"
        // Hidden units go to threads in whole vectors of 8, enough multiply-adds each to pay for a wake-up.
        let unitBlocks = (h + 7) / 8
        let grain = Swift.max(1, 16_384 / Swift.max(1, 8 * gh * batch))
        return PlannedKernel(name: "recurrent.\(kind)", scratch: scratchCount) { b in
            let x = b.pointer(node.inputs[0]), w = b.pointer(node.inputs[1]), r = b.pointer(node.inputs[2])
            let bias = input(3).map { b.pointer($0) }, peepholes = gates == 4 ? input(7).map { b.pointer($0) } : nil
            let h0 = input(5).map { b.pointer($0) }, c0 = gates == 4 ? input(6).map { b.pointer($0) } : nil
            let y = output(0).map { b.pointer($0) }, yh = output(1).map { b.pointer($0) }
            let yc = gates == 4 ? output(2).map { b.pointer($0) } : nil
            let lensReader = constantLengths == nil ? lensName.map { b.reader($0) } : nil
            let xw = b.scratch!
            let lengths = LengthsBuffer(batch: batch, seq: seq)
            return {
                if let constantLengths { try lengths.set(constantLengths, op: op) }
                if let lensReader {
                    guard let values = lensReader().int64s else { throw FerryError("\(op.name) sequence_lens must be integers") }
                    try lengths.set(values.map { Int(clamping: $0) }, op: op)
                }
                let longest = lengths.values.max() ?? 0
                // Row of X (and of X·Wᵀ) at time t, batch row bi; Y's and the states' offsets.
                @inline(__always) func row(_ t: Int, _ bi: Int) -> Int { batchFirst ? bi * seq + t : t * batch + bi }
                @inline(__always) func yOffset(_ t: Int, _ d: Int, _ bi: Int) -> Int {
                    (batchFirst ? (bi * seq + t) * dirs + d : (t * dirs + d) * batch + bi) * h
                }
                @inline(__always) func stateOffset(_ d: Int, _ bi: Int) -> Int { (batchFirst ? bi * dirs + d : d * batch + bi) * h }
                sgemm(transA: false, transB: true, m: seq * batch, n: dirs * gh, k: inSize, alpha: 1, a: x, lda: inSize,
                      b: w, ldb: inSize, beta: 0, c: xw, ldc: dirs * gh)
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
                    let rd = r + d * gh * h, xwd = xw + d * gh, peephole = peepholes.map { $0 + d * 3 * h }
                    let ldxw = dirs * gh
                    for step in 0..<longest {
                        let hPrev = UnsafePointer(previous), hNext = next
                        // Units [lo, hi) of every batch row: H·Rᵀ rows of those units' gate blocks, then the gates.
                        parallelChunks(unitBlocks, threads: threads, grain: grain) { blocks in
                            let lo = blocks.lowerBound * 8, hi = Swift.min(blocks.upperBound * 8, h), n = hi - lo
                            for bi in 0..<batch {
                                let len = lengths.values[bi]
                                guard step < len else {
                                    (hNext + bi * h + lo).update(from: hPrev + bi * h + lo, count: n)
                                    continue
                                }
                                let t = reverse ? len - 1 - step : step
                                let xRow = xwd + row(t, bi) * ldxw, hrRow = hr + bi * gh, state = hPrev + bi * h
                                let out = y.map { $0 + yOffset(t, d, bi) + lo }
                                let multiplied = gates == 3 && !lbr ? 2 : gates
                                for k in 0..<multiplied {
                                    Kernels.matrixTimesColumn(rd, ldb: h, depth: h, rows: (k * h + lo)..<(k * h + hi), state, hrRow)
                                }
                                switch gates {
                                case 4:
                                    Kernels.lstmStep(xw: xRow + lo, hr: hrRow + lo, bias: combinedBias + lo, gateStride: h,
                                                     peephole: peephole.map { $0 + lo }, cell: cell + bi * h + lo,
                                                     hidden: hNext + bi * h + lo, output: out, count: n, clip: clip,
                                                     f: f, g: g, h: hAct, inputForget: inputForget)
                                case 3 where lbr:
                                    Kernels.gruStepLinearBeforeReset(xw: xRow + lo, hr: hrRow + lo, bias: combinedBias + lo,
                                                                     recurrentBias: recurrentBias + lo, gateStride: h,
                                                                     previous: state + lo, hidden: hNext + bi * h + lo,
                                                                     output: out, count: n, clip: clip, f: f, g: g)
                                case 3:
                                    Kernels.gruResetGates(xw: xRow + lo, hr: hrRow + lo, bias: combinedBias + lo, gateStride: h,
                                                          previous: state + lo, update: update + bi * h + lo,
                                                          resetHidden: resetHidden + bi * h + lo, count: n, clip: clip, f: f)
                                default:
                                    Kernels.rnnStep(xw: xRow + lo, hr: hrRow + lo, bias: combinedBias + lo, hidden: hNext + bi * h + lo,
                                                    output: out, count: n, clip: clip, f: f)
                                }
                            }
                        }
                        if gates == 3 && !lbr {
                            // The h block multiplies r·h, complete only once every unit's r is known.
                            parallelChunks(unitBlocks, threads: threads, grain: grain) { blocks in
                                let lo = blocks.lowerBound * 8, hi = Swift.min(blocks.upperBound * 8, h), n = hi - lo
                                for bi in 0..<batch {
                                    let len = lengths.values[bi]
                                    guard step < len else { continue }
                                    let t = reverse ? len - 1 - step : step
                                    let hrRow = hr + bi * gh
                                    Kernels.matrixTimesColumn(rd, ldb: h, depth: h, rows: (2 * h + lo)..<(2 * h + hi),
                                                              resetHidden + bi * h, hrRow)
                                    Kernels.gruCandidate(xw: xwd + row(t, bi) * ldxw + 2 * h + lo, hr: hrRow + 2 * h + lo,
                                                         bias: combinedBias + 2 * h + lo, update: update + bi * h + lo,
                                                         previous: hPrev + bi * h + lo, hidden: hNext + bi * h + lo,
                                                         output: y.map { $0 + yOffset(t, d, bi) + lo }, count: n, clip: clip, g: g)
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
