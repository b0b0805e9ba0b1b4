import Foundation
import FerryIR

extension ActivationFunction {
    /// The function's value (the ONNX recurrent-layer definitions).
    func apply(_ x: Float) -> Float {
        switch self {
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case .tanh: return Foundation.tanh(x)
        case .relu: return Swift.max(x, 0)
        case .affine(let a, let b): return a * x + b
        case .leakyRelu(let a): return x >= 0 ? x : a * x
        case .thresholdedRelu(let a): return x >= a ? x : 0
        case .scaledTanh(let a, let b): return a * Foundation.tanh(b * x)
        case .hardSigmoid(let a, let b): return Swift.min(Swift.max(a * x + b, 0), 1)
        case .elu(let a): return x >= 0 ? x : a * (Foundation.exp(x) - 1)
        case .softsign: return x / (1 + abs(x))
        case .softplus: return Foundation.log1p(Foundation.exp(x))
        }
    }
}

/// ONNX LSTM, GRU and RNN, float32: per direction, X·Wᵀ for all steps in one `sgemm`, then
/// per step H·Rᵀ in one `sgemm` and the gates elementwise. Batch rows past their
/// sequence_lens produce zeros in Y and keep their state; a reverse direction walks each
/// row from its own last step.
extension ReferenceKernels {
    public static func recurrent(_ op: Op, _ inputs: [Tensor?]) throws -> [Tensor] {
        let attr: RecurrentAttributes
        switch op {
        case .lstm(let a), .gru(let a), .rnn(let a): attr = a
        default: throw FerryError("\(op.name) is not a recurrent layer")
        }
        _ = try op.inferOutputTypes(inputs.map { $0?.type })
        func optional(_ i: Int) -> Tensor? { i < inputs.count ? inputs[i] : nil }
        let batchFirst = attr.layout == 1
        // Work in layout 0; transpose batch-first tensors in and out.
        func seqFirst(_ t: Tensor?) throws -> Tensor? { try t.map { batchFirst ? try transpose($0, perm: [1, 0, 2]) : $0 } }
        let x = try seqFirst(inputs[0])!
        let xv = try x.requireFloats(op.name, "X")
        let wv = try inputs[1]!.requireFloats(op.name, "W"), rv = try inputs[2]!.requireFloats(op.name, "R")
        let (seq, batch, inSize) = (x.shape[0], x.shape[1], x.shape[2])
        let h = attr.hiddenSize, gates = op.recurrentGateCount, gh = gates * h, dirs = attr.direction.count
        let bv = try optional(3)?.requireFloats(op.name, "B") ?? [Float](repeating: 0, count: dirs * 2 * gh)
        var lengths = Array(repeating: seq, count: batch)
        if let lens = optional(4) {
            guard let values = lens.int64s else { throw FerryError("\(op.name) sequence_lens must be int32") }
            for (b, v) in values.enumerated() {
                guard v >= 0, v <= Int64(seq) else {
                    throw FerryError("\(op.name) sequence_lens[\(b)] = \(v) is outside 0...\(seq)")
                }
                lengths[b] = Int(v)
            }
        }
        let h0 = try seqFirst(optional(5))?.requireFloats(op.name, "initial_h") ?? [Float](repeating: 0, count: dirs * batch * h)
        let isLSTM = gates == 4
        let c0 = isLSTM ? try seqFirst(optional(6))?.requireFloats(op.name, "initial_c") : nil
        let peep = isLSTM ? try optional(7)?.requireFloats(op.name, "P") : nil
        let activations = try attr.activationsPerDirection(op)
        let clip = attr.clip
        func clipped(_ v: Float) -> Float { clip.map { Swift.min(Swift.max(v, -$0), $0) } ?? v }

        var y = [Float](repeating: 0, count: seq * dirs * batch * h)
        var yh = [Float](repeating: 0, count: dirs * batch * h)
        var yc = [Float](repeating: 0, count: dirs * batch * h)
        var xw = [Float](repeating: 0, count: seq * batch * gh)
        var hr = [Float](repeating: 0, count: batch * gh)
        for d in 0..<dirs {
            let reverse = attr.direction == .reverse || d == 1
            let (f, g, hAct) = (activations[d][0], activations[d].count > 1 ? activations[d][1] : .tanh,
                                activations[d].count > 2 ? activations[d][2] : .tanh)
            let wb = Array(bv[(d * 2 * gh)..<(d * 2 * gh + gh)]), rb = Array(bv[(d * 2 * gh + gh)..<((d + 1) * 2 * gh)])
            let rd = Array(rv[(d * gh * h)..<((d + 1) * gh * h)])
            xv.withUnsafeBufferPointer { xp in
                wv.withUnsafeBufferPointer { wp in
                    xw.withUnsafeMutableBufferPointer { op in
                        sgemm(transA: false, transB: true, m: seq * batch, n: gh, k: inSize, alpha: 1,
                              a: xp.baseAddress, lda: inSize, b: wp.baseAddress.map { $0 + d * gh * inSize }, ldb: inSize,
                              beta: 0, c: op.baseAddress, ldc: gh)
                    }
                }
            }
            var state = Array(h0[(d * batch * h)..<((d + 1) * batch * h)])
            var cell = c0.map { Array($0[(d * batch * h)..<((d + 1) * batch * h)]) } ?? [Float](repeating: 0, count: batch * h)
            let p = peep.map { Array($0[(d * 3 * h)..<((d + 1) * 3 * h)]) } ?? [Float](repeating: 0, count: 3 * h)
            for s in 0..<seq {
                state.withUnsafeBufferPointer { sp in
                    rd.withUnsafeBufferPointer { rp in
                        hr.withUnsafeMutableBufferPointer { hp in
                            sgemm(transA: false, transB: true, m: batch, n: gh, k: h, alpha: 1,
                                  a: sp.baseAddress, lda: h, b: rp.baseAddress, ldb: h, beta: 0, c: hp.baseAddress, ldc: gh)
                        }
                    }
                }
                for b in 0..<batch where s < lengths[b] {
                    let t = reverse ? lengths[b] - 1 - s : s
                    let xrow = (t * batch + b) * gh, hrow = b * gh, srow = b * h
                    var next = [Float](repeating: 0, count: h)
                    switch gates {
                    case 4:
                        // Gate blocks i, o, f, c; peepholes i, o, f.
                        for j in 0..<h {
                            func pre(_ k: Int) -> Float { xw[xrow + k * h + j] + hr[hrow + k * h + j] + wb[k * h + j] + rb[k * h + j] }
                            let cPrev = cell[srow + j]
                            let i = f.apply(clipped(pre(0) + p[j] * cPrev))
                            let fg = attr.inputForget ? 1 - i : f.apply(clipped(pre(2) + p[2 * h + j] * cPrev))
                            let cc = g.apply(clipped(pre(3)))
                            let cNew = fg * cPrev + i * cc
                            let o = f.apply(clipped(pre(1) + p[h + j] * cNew))
                            cell[srow + j] = cNew
                            next[j] = o * hAct.apply(cNew)
                        }
                    case 3:
                        // Gate blocks z, r, h.
                        var r = [Float](repeating: 0, count: h), z = [Float](repeating: 0, count: h)
                        for j in 0..<h {
                            z[j] = f.apply(clipped(xw[xrow + j] + hr[hrow + j] + wb[j] + rb[j]))
                            r[j] = f.apply(clipped(xw[xrow + h + j] + hr[hrow + h + j] + wb[h + j] + rb[h + j]))
                        }
                        for j in 0..<h {
                            let recurrent: Float
                            if attr.linearBeforeReset {
                                recurrent = r[j] * (hr[hrow + 2 * h + j] + rb[2 * h + j])
                            } else {
                                // (r ⊙ H) · Rhᵀ, row j of Rh.
                                var acc: Float = 0
                                let row = (2 * h + j) * h
                                for k in 0..<h { acc += r[k] * state[srow + k] * rd[row + k] }
                                recurrent = acc + rb[2 * h + j]
                            }
                            let candidate = g.apply(clipped(xw[xrow + 2 * h + j] + wb[2 * h + j] + recurrent))
                            next[j] = (1 - z[j]) * candidate + z[j] * state[srow + j]
                        }
                    default:
                        for j in 0..<h { next[j] = f.apply(clipped(xw[xrow + j] + hr[hrow + j] + wb[j] + rb[j])) }
                    }
                    for j in 0..<h {
                        state[srow + j] = next[j]
                        y[((t * dirs + d) * batch + b) * h + j] = next[j]
                    }
                }
            }
            for i in 0..<(batch * h) {
                yh[d * batch * h + i] = state[i]
                yc[d * batch * h + i] = cell[i]
            }
        }
        var outputs = [Tensor(shape: [seq, dirs, batch, h], floats: y), Tensor(shape: [dirs, batch, h], floats: yh)]
        if isLSTM { outputs.append(Tensor(shape: [dirs, batch, h], floats: yc)) }
        if batchFirst {
            outputs[0] = try transpose(outputs[0], perm: [2, 0, 1, 3])
            for i in 1..<outputs.count { outputs[i] = try transpose(outputs[i], perm: [1, 0, 2]) }
        }
        return outputs
    }
}
