import FerryIR
import Foundation

/// The elementwise part of one LSTM / GRU / RNN time step, fused: pre-activations summed from
/// X·Wᵀ (computed for every step at once by the caller), H·Rᵀ (computed per step) and the bias,
/// clipped, through the gate activations, combined into the new cell and hidden state, in one
/// pass over the hidden units of one batch row. The caller splits the hidden units between
/// threads (every function takes `count` units starting where its pointers point).
///
/// Gate blocks lie `gateStride` floats apart (the hidden size) in `xw` and `bias`, and
/// `hrStride` apart in `hr` (the packed products' 16 units of a block, see
/// RecurrentProducts.swift), in ONNX's order (LSTM i, o, f, c; GRU z, r, h). Activations are ONNX's (any of them; the common
/// ones are vector code, Softplus goes lane by lane).

/// One vector through a recurrent activation. A switch per vector: the activations are
/// loop-invariant, so the branch is always predicted.
@inline(__always)
func applyGateActivation(_ f: ActivationFunction, _ v: FloatVector) -> FloatVector {
    switch f {
    case .sigmoid: return vsigmoid(v)
    case .tanh: return vtanh(v)
    case .relu: return v.replacing(with: 0, where: v .< 0)
    case .affine(let a, let b): return splat(b).addingProduct(v, a)
    case .leakyRelu(let a): return v.replacing(with: v * a, where: v .< 0)
    case .thresholdedRelu(let a): return v.replacing(with: 0, where: v .< a)
    case .scaledTanh(let a, let b): return a * vtanh(v * b)
    case .hardSigmoid(let a, let b): return vmax(vmin(splat(b).addingProduct(v, a), splat(1)), splat(0))
    case .elu(let a): return v.replacing(with: a * vexpm1NonPositive(vmin(v, splat(0))), where: v .< 0)
    case .softsign:
        let magnitude = v.replacing(with: -v, where: v .< 0)
        return v / (1 + magnitude)
    case .softplus:
        var out = v
        for i in 0..<lanes { out[i] = Foundation.log1p(Foundation.exp(v[i])) }
        return out
    }
}

/// Pre-activations clipped to [-clip, clip] (ONNX's clip), or passed through.
struct GateClip {
    let enabled: Bool
    let lower: FloatVector, upper: FloatVector
    init(_ clip: Float?) {
        enabled = clip != nil
        lower = splat(-(clip ?? 0))
        upper = splat(clip ?? 0)
    }
    @inline(__always) func callAsFunction(_ v: FloatVector) -> FloatVector {
        enabled ? vmin(vmax(v, lower), upper) : v
    }
}

@inline(__always) private func load(_ p: UnsafePointer<Float>, _ i: Int, _ n: Int) -> FloatVector {
    n == lanes ? p.vector(at: i) : loadPartial(p + i, n)
}

@inline(__always) private func store(_ v: FloatVector, _ p: UnsafeMutablePointer<Float>, _ i: Int, _ n: Int) {
    if n == lanes { p.store(v, at: i) } else { storePartial(v, p + i, n) }
}

/// body(i, n) for vectors of n (≤ lanes, lanes except the last) starting at i < count.
@inline(__always) private func forEachVector(_ count: Int, _ body: (Int, Int) -> Void) {
    var i = 0
    while i < count {
        let n = Swift.min(lanes, count &- i)
        body(i, n)
        i &+= n
    }
}

extension Kernels {
    /// One LSTM step for `count` units: i = f(xw_i + hr_i + b_i + p_i·c), f likewise (or 1 - i
    /// with `inputForget`), c̃ = g(xw_c + hr_c + b_c), c' = f·c + i·c̃, o = f(xw_o + hr_o + b_o +
    /// p_o·c'), h' = o·h(c') (every pre-activation clipped). `bias` is Wb + Rb; `peephole` the
    /// blocks i, o, f (also `gateStride` apart) or nil. Updates `cell` in place, writes h' to
    /// `hidden` and to `output` (Y's row) when given.
    public static func lstmStep(xw: UnsafePointer<Float>, hr: UnsafePointer<Float>, hrStride hs: Int, bias: UnsafePointer<Float>,
                                gateStride s: Int, peephole: UnsafePointer<Float>?, cell: UnsafeMutablePointer<Float>,
                                hidden: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>?, count: Int,
                                clip: Float?, f: ActivationFunction, g: ActivationFunction, h: ActivationFunction,
                                inputForget: Bool) {
        let clipped = GateClip(clip)
        @inline(__always) func pre(_ k: Int, _ i: Int, _ n: Int) -> FloatVector {
            load(xw, k &* s &+ i, n) + load(hr, k &* hs &+ i, n) + load(bias, k &* s &+ i, n)
        }
        forEachVector(count) { i, n in
            let c = load(cell, i, n)
            var preI = pre(0, i, n), preF = pre(2, i, n), preO = pre(1, i, n)
            if let peephole {
                preI = preI.addingProduct(load(peephole, i, n), c)
                preF = preF.addingProduct(load(peephole, 2 &* s &+ i, n), c)
            }
            let inGate = applyGateActivation(f, clipped(preI))
            let forget = inputForget ? 1 - inGate : applyGateActivation(f, clipped(preF))
            let candidate = applyGateActivation(g, clipped(pre(3, i, n)))
            let newCell = (forget * c).addingProduct(inGate, candidate)
            if let peephole { preO = preO.addingProduct(load(peephole, s &+ i, n), newCell) }
            let out = applyGateActivation(f, clipped(preO)) * applyGateActivation(h, newCell)
            store(newCell, cell, i, n)
            store(out, hidden, i, n)
            if let output { store(out, output, i, n) }
        }
    }

    /// GRU with linear_before_reset, one step for `count` units: z = f(xw_z + hr_z + b_z),
    /// r likewise, h̃ = g(xw_h + b_h + r·(hr_h + rb_h)), h' = (1 - z)·h̃ + z·h. `bias` holds
    /// Wb + Rb for z and r and Wb alone for h; `recurrentBias` is Rb's h block.
    public static func gruStepLinearBeforeReset(xw: UnsafePointer<Float>, hr: UnsafePointer<Float>, hrStride hs: Int,
                                                bias: UnsafePointer<Float>,
                                                recurrentBias: UnsafePointer<Float>, gateStride s: Int,
                                                previous: UnsafePointer<Float>, hidden: UnsafeMutablePointer<Float>,
                                                output: UnsafeMutablePointer<Float>?, count: Int, clip: Float?,
                                                f: ActivationFunction, g: ActivationFunction) {
        let clipped = GateClip(clip)
        forEachVector(count) { i, n in
            let z = applyGateActivation(f, clipped(load(xw, i, n) + load(hr, i, n) + load(bias, i, n)))
            let r = applyGateActivation(f, clipped(load(xw, s &+ i, n) + load(hr, hs &+ i, n) + load(bias, s &+ i, n)))
            let recurrent = r * (load(hr, 2 &* hs &+ i, n) + load(recurrentBias, i, n))
            let candidate = applyGateActivation(g, clipped(load(xw, 2 &* s &+ i, n) + load(bias, 2 &* s &+ i, n) + recurrent))
            let out = ((1 - z) * candidate).addingProduct(z, load(previous, i, n))
            store(out, hidden, i, n)
            if let output { store(out, output, i, n) }
        }
    }

    /// GRU without linear_before_reset, first half of a step for `count` units: z = f(xw_z +
    /// hr_z + b_z) into `update`, r = f(xw_r + hr_r + b_r) and r·h into `resetHidden` (the
    /// vector the h block of R multiplies next).
    public static func gruResetGates(xw: UnsafePointer<Float>, hr: UnsafePointer<Float>, hrStride hs: Int,
                                     bias: UnsafePointer<Float>, gateStride s: Int, previous: UnsafePointer<Float>, update: UnsafeMutablePointer<Float>,
                                     resetHidden: UnsafeMutablePointer<Float>, count: Int, clip: Float?, f: ActivationFunction) {
        let clipped = GateClip(clip)
        forEachVector(count) { i, n in
            let z = applyGateActivation(f, clipped(load(xw, i, n) + load(hr, i, n) + load(bias, i, n)))
            let r = applyGateActivation(f, clipped(load(xw, s &+ i, n) + load(hr, hs &+ i, n) + load(bias, s &+ i, n)))
            store(z, update, i, n)
            store(r * load(previous, i, n), resetHidden, i, n)
        }
    }

    /// GRU without linear_before_reset, second half: h̃ = g(xw_h + hr_h + b_h) with hr_h =
    /// (r·h)·R_hᵀ and `bias` Wb_h + Rb_h, h' = (1 - z)·h̃ + z·h. Pointers at the h block.
    public static func gruCandidate(xw: UnsafePointer<Float>, hr: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                    update: UnsafePointer<Float>, previous: UnsafePointer<Float>,
                                    hidden: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>?, count: Int,
                                    clip: Float?, g: ActivationFunction) {
        let clipped = GateClip(clip)
        forEachVector(count) { i, n in
            let z = load(update, i, n)
            let candidate = applyGateActivation(g, clipped(load(xw, i, n) + load(hr, i, n) + load(bias, i, n)))
            let out = ((1 - z) * candidate).addingProduct(z, load(previous, i, n))
            store(out, hidden, i, n)
            if let output { store(out, output, i, n) }
        }
    }

    /// One simple RNN step for `count` units: h' = f(xw + hr + b).
    public static func rnnStep(xw: UnsafePointer<Float>, hr: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                               hidden: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>?, count: Int,
                               clip: Float?, f: ActivationFunction) {
        let clipped = GateClip(clip)
        forEachVector(count) { i, n in
            let out = applyGateActivation(f, clipped(load(xw, i, n) + load(hr, i, n) + load(bias, i, n)))
            store(out, hidden, i, n)
            if let output { store(out, output, i, n) }
        }
    }
}
