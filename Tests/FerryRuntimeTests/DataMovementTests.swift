import Foundation
import FerryIR
@testable import FerryRuntime
import Testing

// Naive references: one output element at a time from its multi-index, written from the ONNX
// operator definitions without the kernels' position tables.

func naiveConcat(_ xs: [Tensor], axis a: Int) -> Tensor {
    var shape = xs[0].shape
    shape[a] = xs.map { $0.shape[a] }.reduce(0, +)
    var out: [Float] = []
    for flat in 0..<elementCount(shape) {
        var idx = unravel(flat, shape)
        var k = 0
        while idx[a] >= xs[k].shape[a] { idx[a] -= xs[k].shape[a]; k += 1 }
        out.append(xs[k].floats[ravel(idx, xs[k].shape)])
    }
    return Tensor(shape: shape, floats: out)
}

/// The indices a Python-style slice visits, walking from the clamped start.
func naiveSliceIndices(start: Int, end: Int, step: Int, size: Int) -> [Int] {
    var s = start < 0 ? start + size : start
    var e = end < 0 ? end + size : end
    if step > 0 {
        s = max(0, min(s, size)); e = max(0, min(e, size))
    } else {
        s = max(0, min(s, size - 1)); e = max(-1, min(e, size - 1))
    }
    var result: [Int] = []
    var i = s
    while step > 0 ? i < e : i > e {
        result.append(i)
        i += step
    }
    return result
}

func naiveSlice(_ x: Tensor, _ a: SliceAttributes) -> Tensor {
    var picks = x.shape.map { Array(0..<$0) }
    for i in 0..<a.starts.count {
        let axis = a.axes[i] < 0 ? a.axes[i] + x.rank : a.axes[i]
        picks[axis] = naiveSliceIndices(start: a.starts[i], end: a.ends[i], step: a.steps[i], size: x.shape[axis])
    }
    let shape = picks.map(\.count)
    let out = (0..<elementCount(shape)).map { flat -> Float in
        let idx = unravel(flat, shape)
        return x.floats[ravel(zip(idx, picks).map { $1[$0] }, x.shape)]
    }
    return Tensor(shape: shape, floats: out)
}

func naivePad(_ x: Tensor, _ a: PadAttributes) -> Tensor {
    let r = x.rank
    let shape = (0..<r).map { x.shape[$0] + a.pads[$0] + a.pads[$0 + r] }
    let out = (0..<elementCount(shape)).map { flat -> Float in
        var src = unravel(flat, shape)
        for d in 0..<r {
            let n = x.shape[d]
            var i = src[d] - a.pads[d]
            switch a.mode {
            case .constant: if i < 0 || i >= n { return a.value }
            case .edge: i = max(0, min(i, n - 1))
            case .reflect:
                while i < 0 || i >= n { i = i < 0 ? -i : 2 * (n - 1) - i }
            }
            src[d] = i
        }
        return x.floats[ravel(src, x.shape)]
    }
    return Tensor(shape: shape, floats: out)
}

func naiveGather(_ data: Tensor, _ indices: [Int], indexShape: [Int], axis a: Int) -> Tensor {
    let shape = Array(data.shape[..<a]) + indexShape + Array(data.shape[(a + 1)...])
    let q = indexShape.count
    let out = (0..<elementCount(shape)).map { flat -> Float in
        let idx = unravel(flat, shape)
        var i = indices[ravel(Array(idx[a..<(a + q)]), indexShape)]
        if i < 0 { i += data.shape[a] }
        let src = Array(idx[..<a]) + [i] + Array(idx[(a + q)...])
        return data.floats[ravel(src, data.shape)]
    }
    return Tensor(shape: shape, floats: out)
}

/// ConvTranspose by scattering: every input cell adds x * w into the cells its taps reach,
/// on the full (uncut) output, which is then cut by the pads and extended by output_padding.
func naiveConvTranspose(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ a: ConvTransposeAttributes) -> Tensor {
    let s = a.kernelShape.count
    let (n, c) = (x.shape[0], x.shape[1])
    let mg = w.shape[1], m = mg * a.group, cg = c / a.group
    let inS = Array(x.shape[2...])
    var outS: [Int] = []
    for i in 0..<s {
        let span = (a.kernelShape[i] - 1) * a.dilations[i] + 1
        let full = a.strides[i] * (inS[i] - 1) + span + a.outputPadding[i]
        outS.append(full - a.pads[i] - a.pads[i + s])
    }
    let outShape = [n, m] + outS
    var out = [Double](repeating: 0, count: elementCount(outShape))
    for ni in 0..<n {
        for ci in 0..<c {
            let g = ci / cg
            for p in 0..<elementCount(inS) {
                let pi = unravel(p, inS)
                let xval = Double(x.floats[ravel([ni, ci] + pi, x.shape)])
                for co in 0..<mg {
                    for t in 0..<elementCount(a.kernelShape) {
                        let ki = unravel(t, a.kernelShape)
                        var o: [Int] = []
                        for i in 0..<s { o.append(pi[i] * a.strides[i] + ki[i] * a.dilations[i] - a.pads[i]) }
                        guard (0..<s).allSatisfy({ o[$0] >= 0 && o[$0] < outS[$0] }) else { continue }
                        let wval = Double(w.floats[ravel([ci, co] + ki, w.shape)])
                        out[ravel([ni, g * mg + co] + o, outShape)] += xval * wval
                    }
                }
            }
        }
    }
    if let b {
        for flat in 0..<out.count { out[flat] += Double(b.floats[unravel(flat, outShape)[1]]) }
    }
    return Tensor(shape: outShape, floats: out.map(Float.init))
}

/// The tensor with its (small, integral) float values stored as another element type.
func cast(_ t: Tensor, to dtype: DType) -> Tensor {
    try! ReferenceKernels.cast(t, to: dtype)
}

/// Small integral values as floats, back from any element type.
func asFloats(_ t: Tensor) -> Tensor {
    cast(t, to: .float32)
}

/// Floats 0, 1, 2, ... (exact in every element type up to 127).
func counting(_ shape: [Int], modulo: Int = 100) -> Tensor {
    Tensor(shape: shape, floats: (0..<elementCount(shape)).map { Float($0 % modulo) })
}

@Suite struct DataMovementTests {
    @Test func concatAlongEachAxis() throws {
        for axis in 0..<3 {
            var shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
            shapes[1][axis] = 1
            shapes[2][axis] = 5
            let xs = shapes.enumerated().map { randomTensor($1, seed: UInt64(100 + $0)) }
            #expect(try ReferenceKernels.concat(xs, axis: axis) == naiveConcat(xs, axis: axis))
            #expect(try ReferenceKernels.concat(xs, axis: axis - 3) == naiveConcat(xs, axis: axis))
        }
        let one = randomTensor([2, 2], seed: 104)
        #expect(try ReferenceKernels.concat([one], axis: 1) == one)
        #expect(throws: FerryError.self) { try ReferenceKernels.concat([one, randomTensor([3, 3], seed: 1)], axis: 1) }
        #expect(throws: FerryError.self) { try ReferenceKernels.concat([one, cast(one, to: .int64)], axis: 1) }
    }

    @Test func splitIsConcatsInverse() throws {
        let x = randomTensor([3, 7, 2], seed: 105)
        let parts = try ReferenceKernels.split(x, axis: -2, sizes: [2, 0, 4, 1])
        #expect(parts.map(\.shape) == [[3, 2, 2], [3, 0, 2], [3, 4, 2], [3, 1, 2]])
        #expect(parts[0] == naiveSlice(x, SliceAttributes(starts: [0], ends: [2], axes: [1])))
        #expect(parts[2] == naiveSlice(x, SliceAttributes(starts: [2], ends: [6], axes: [1])))
        #expect(try ReferenceKernels.concat(parts, axis: 1) == x)
        #expect(throws: FerryError.self) { try ReferenceKernels.split(x, axis: 1, sizes: [3, 3]) }
    }

    static let slices: [SliceAttributes] = [
        SliceAttributes(starts: [0, 0], ends: [3, 10], axes: [0, 1], steps: [1, 1]),
        SliceAttributes(starts: [1], ends: [1000], axes: [1]),                       // end past the size
        SliceAttributes(starts: [-3], ends: [Int(Int64.max)], axes: [-1]),          // "to the end"
        SliceAttributes(starts: [20, 10, 4], ends: [0, 0, 1], axes: [0, 1, 2], steps: [-1, -3, -2]),
        SliceAttributes(starts: [-1], ends: [Int(Int64.min)], axes: [1], steps: [-1]), // whole axis reversed
        SliceAttributes(starts: [1000], ends: [1000], axes: [1]),                      // empty
        SliceAttributes(starts: [0, 1], ends: [-1, 1000], axes: [2, 0], steps: [3, 2]),
        SliceAttributes(starts: [-100], ends: [100], axes: [0], steps: [7]),
    ]

    @Test(arguments: slices)
    func slice(_ a: SliceAttributes) throws {
        let x = randomTensor([20, 10, 5], seed: 106)
        let y = try ReferenceKernels.slice(x, a)
        #expect(y == naiveSlice(x, a))
        #expect(try Op.slice(a).inferOutputTypes([x.type])[0].shape.fixedSizes == y.shape)
    }

    @Test func sliceShapesOfTheONNXNodeTests() throws {
        let x = TensorType(.float32, Shape([20, 10, 5]))
        func shape(_ a: SliceAttributes) throws -> [Int] { try Op.slice(a).inferOutputTypes([x])[0].shape.fixedSizes! }
        // test_slice_neg_steps, test_slice_start_out_of_bounds, test_slice_end_out_of_bounds, test_slice_negative_axes.
        #expect(try shape(SliceAttributes(starts: [20, 10, 4], ends: [0, 0, 1], axes: [0, 1, 2], steps: [-1, -3, -2])) == [19, 3, 2])
        #expect(try shape(SliceAttributes(starts: [1000], ends: [1000], axes: [1], steps: [1])) == [20, 0, 5])
        #expect(try shape(SliceAttributes(starts: [1], ends: [1000], axes: [1], steps: [1])) == [20, 9, 5])
        #expect(try shape(SliceAttributes(starts: [0, 0, 3], ends: [20, 10, 4], axes: [0, -2, -1])) == [20, 10, 1])
        #expect(throws: FerryError.self) { try shape(SliceAttributes(starts: [0], ends: [1], axes: [0], steps: [0])) }
        #expect(throws: FerryError.self) { try shape(SliceAttributes(starts: [0, 0], ends: [1, 1], axes: [1, -2])) }
        // A symbolic axis keeps its name when taken whole, else becomes unknown.
        let n = TensorType(.float32, Shape([.symbolic("N"), .fixed(4)]))
        #expect(try Op.slice(SliceAttributes(starts: [0, 1], ends: [Int(Int64.max), 3])).inferOutputTypes([n])[0].shape
                == Shape([.symbolic("N"), .fixed(2)]))
        #expect(try Op.slice(SliceAttributes(starts: [1], ends: [Int(Int64.max)])).inferOutputTypes([n])[0].shape.dims[0].value == nil)
    }

    static let pads: [PadAttributes] = [
        PadAttributes(pads: [0, 1, 2, 1, 0, 3], mode: .constant, value: 1.5),
        PadAttributes(pads: [1, 2, 3, 0, 3, 1], mode: .reflect),
        PadAttributes(pads: [2, 0, 1, 1, 5, 0], mode: .edge),
        PadAttributes(pads: [0, -1, 1, 0, 2, -2], mode: .constant, value: -2),
        PadAttributes(pads: [0, 0, 0, 0, 0, 0], mode: .reflect),
    ]

    @Test(arguments: pads)
    func pad(_ a: PadAttributes) throws {
        let x = randomTensor([2, 4, 5], seed: 107)
        #expect(try ReferenceKernels.pad(x, a) == naivePad(x, a))
    }

    @Test func padONNXReflectExampleAndErrors() throws {
        // The ONNX operator doc's reflect example.
        let x = Tensor(shape: [3, 2], floats: [1.0, 1.2, 2.3, 3.4, 4.5, 5.7])
        let y = try ReferenceKernels.pad(x, PadAttributes(pads: [0, 2, 0, 0], mode: .reflect))
        #expect(y == Tensor(shape: [3, 4], floats: [1.0, 1.2, 1.0, 1.2, 2.3, 3.4, 2.3, 3.4, 4.5, 5.7, 4.5, 5.7]))
        #expect(throws: FerryError.self) { try ReferenceKernels.pad(x, PadAttributes(pads: [0, 2, 0, 0, 0], mode: .reflect)) }
        // Pads beyond the axis keep reflecting (numpy's rule).
        let far = PadAttributes(pads: [4, 3, 0, 5], mode: .reflect)
        #expect(try ReferenceKernels.pad(x, far) == naivePad(x, far))
        #expect(throws: FerryError.self) { try ReferenceKernels.pad(Tensor(shape: [0, 2], floats: []), PadAttributes(pads: [1, 0, 0, 0], mode: .edge)) }
        #expect(throws: FerryError.self) { try ReferenceKernels.pad(x, PadAttributes(pads: [-4, 0, 0, 0])) }
    }

    @Test func squeezeAndUnsqueeze() throws {
        let x = randomTensor([1, 3, 1, 2], seed: 108)
        #expect(try ReferenceKernels.reshapeAs(.squeeze(axes: [0, -2]), x).shape == [3, 2])
        #expect(try ReferenceKernels.reshapeAs(.squeeze(axes: []), x).shape == [3, 2])
        #expect(try ReferenceKernels.reshapeAs(.squeeze(axes: [2]), x).floats == x.floats)
        #expect(throws: FerryError.self) { try ReferenceKernels.reshapeAs(.squeeze(axes: [1]), x) }
        #expect(try ReferenceKernels.reshapeAs(.unsqueeze(axes: [0, -1, 3]), x).shape == [1, 1, 3, 1, 1, 2, 1])
        #expect(try ReferenceKernels.reshapeAs(.unsqueeze(axes: [2]), x).shape == [1, 3, 1, 1, 2])
        #expect(throws: FerryError.self) { try ReferenceKernels.reshapeAs(.unsqueeze(axes: [1, 1]), x) }
        #expect(throws: FerryError.self) { try ReferenceKernels.reshapeAs(.unsqueeze(axes: [6]), x) }
    }

    @Test func tileAndExpand() throws {
        let x = randomTensor([2, 1, 3], seed: 109)
        let tiled = try ReferenceKernels.tile(x, repeats: [2, 3, 1])
        #expect(tiled.shape == [4, 3, 3])
        for flat in 0..<tiled.count {
            let i = unravel(flat, tiled.shape)
            #expect(tiled.floats[flat] == x.floats[ravel([i[0] % 2, 0, i[2]], x.shape)])
        }
        #expect(try ReferenceKernels.tile(x, repeats: [1, 0, 2]).shape == [2, 0, 6])
        let expanded = try ReferenceKernels.expand(x, shape: [4, 1, 5, 1])
        #expect(expanded.shape == [4, 2, 5, 3])
        for flat in 0..<expanded.count {
            let i = unravel(flat, expanded.shape)
            #expect(expanded.floats[flat] == x.floats[ravel([i[1], 0, i[3]], x.shape)])
        }
        // Expand's shape may be shorter and hold 1 where the input is larger.
        #expect(try ReferenceKernels.expand(x, shape: [1, 1]) == x)
        #expect(throws: FerryError.self) { try ReferenceKernels.expand(x, shape: [2, 2, 2]) }
        #expect(throws: FerryError.self) { try ReferenceKernels.tile(x, repeats: [2, 2]) }
    }

    @Test func gather() throws {
        let data = randomTensor([4, 5, 3], seed: 110)
        let indices: [Int] = [2, -1, 0, 2, -3, 1]
        for axis in [0, 1, -1] {
            let a = axis < 0 ? axis + 3 : axis
            let shaped = try Tensor(shape: [2, 3], storage: .int64(indices.map(Int64.init)))
            let want = naiveGather(data, indices, indexShape: [2, 3], axis: a)
            let y = try ReferenceKernels.gather(data, shaped, axis: axis)
            #expect(y == want, "axis \(axis)")
            let as32 = try Tensor(shape: [2, 3], storage: .int32(indices.map(Int32.init)))
            #expect(try ReferenceKernels.gather(data, as32, axis: axis) == want)
        }
        // A scalar index drops the axis.
        let scalar = try Tensor(shape: [], storage: .int64([-2]))
        #expect(try ReferenceKernels.gather(data, scalar, axis: 1) == naiveGather(data, [-2], indexShape: [], axis: 1))
        let bad = try Tensor(shape: [1], storage: .int64([4]))
        #expect(throws: FerryError.self) { try ReferenceKernels.gather(data, bad, axis: 0) }
        #expect(throws: FerryError.self) { try ReferenceKernels.gather(data, try Tensor(shape: [1], storage: .int64([-5])), axis: 0) }
        #expect(throws: FerryError.self) { try ReferenceKernels.gather(data, data, axis: 0) }
    }

    @Test(arguments: [DepthToSpaceMode.dcr, .crd])
    func depthToSpace(_ mode: DepthToSpaceMode) throws {
        let (n, c, h, w, b) = (2, 12, 3, 2, 2)
        let x = randomTensor([n, c, h, w], seed: 111)
        let y = try ReferenceKernels.depthToSpace(x, blockSize: b, mode: mode)
        let cOut = c / (b * b)
        #expect(y.shape == [n, cOut, h * b, w * b])
        for flat in 0..<y.count {
            let i = unravel(flat, y.shape)
            let (bh, bw) = (i[2] % b, i[3] % b)
            let channel = mode == .dcr ? (bh * b + bw) * cOut + i[1] : i[1] * b * b + bh * b + bw
            #expect(y.floats[flat] == x.floats[ravel([i[0], channel, i[2] / b, i[3] / b], x.shape)])
        }
        #expect(throws: FerryError.self) { try ReferenceKernels.depthToSpace(randomTensor([1, 6, 2, 2], seed: 1), blockSize: 2, mode: mode) }
    }

    @Test func spaceToDepthInvertsDCR() throws {
        let b = 3
        let x = randomTensor([2, 2, 6, 3], seed: 112)
        let y = try ReferenceKernels.spaceToDepth(x, blockSize: b)
        #expect(y.shape == [2, 18, 2, 1])
        for flat in 0..<y.count {
            let i = unravel(flat, y.shape)
            let (bh, bw, c) = (i[1] / (b * 2), (i[1] / 2) % b, i[1] % 2)
            #expect(y.floats[flat] == x.floats[ravel([i[0], c, i[2] * b + bh, i[3] * b + bw], x.shape)])
        }
        #expect(try ReferenceKernels.depthToSpace(y, blockSize: b, mode: .dcr) == x)
        #expect(throws: FerryError.self) { try ReferenceKernels.spaceToDepth(randomTensor([1, 1, 5, 6], seed: 1), blockSize: 2) }
    }

    /// Every data-movement kernel on every element type gives the float result's elements.
    @Test(arguments: DType.allCases)
    func everyElementType(_ dtype: DType) throws {
        let x = counting([2, 3, 4], modulo: dtype == .bool ? 2 : 100)
        let fill: Float = dtype == .bool ? 1 : 7
        let cases: [(Op, [Tensor])] = [
            (.concat(axis: 1), [x, x]),
            (.slice(SliceAttributes(starts: [3, -1], ends: [0, 0], axes: [2, 1], steps: [-2, -1])), [x]),
            (.pad(PadAttributes(pads: [0, 1, 2, 1, 0, 1], value: fill)), [x]),
            (.pad(PadAttributes(pads: [1, 2, 0, 0, 0, 3], mode: .reflect)), [x]),
            (.pad(PadAttributes(pads: [1, 0, 0, 0, 2, 3], mode: .edge)), [x]),
            (.squeeze(axes: [1]), [counting([2, 1, 3], modulo: 2)]),
            (.unsqueeze(axes: [0]), [x]),
            (.tile(repeats: [1, 2, 2]), [x]),
            (.expand(shape: [3, 1, 1, 1]), [x]),
            (.gather(axis: 2), [x, try Tensor(shape: [2], storage: .int64([-1, 1]))]),
            (.depthToSpace(blockSize: 2, mode: .crd), [counting([1, 8, 2, 1], modulo: dtype == .bool ? 2 : 100)]),
            (.spaceToDepth(blockSize: 2), [counting([1, 1, 4, 2], modulo: dtype == .bool ? 2 : 100)]),
        ]
        for (op, inputs) in cases {
            let typed = inputs.map { $0.dtype == .float32 ? cast($0, to: dtype) : $0 }
            #expect(ReferenceKernels.supports(op, inputTypes: typed.map(\.dtype)))
            let want = try ReferenceKernels.evaluate(op, inputs)
            let got = try ReferenceKernels.evaluate(op, typed)
            #expect(got.map(\.dtype) == [dtype], "\(op.name)")
            #expect(got.map(asFloats) == want, "\(op.name) on \(dtype)")
        }
        let parts = try ReferenceKernels.evaluate(.split(axis: 2, sizes: [1, 3]), [cast(x, to: dtype)])
        #expect(parts.map(asFloats) == (try ReferenceKernels.evaluate(.split(axis: 2, sizes: [1, 3]), [x])))
    }

    @Test func padConstantConvertsLikeACast() {
        #expect(TensorStorage.repeating(-2.7, .int64, count: 1) == .int64([-2]))
        #expect(TensorStorage.repeating(300, .int8, count: 1) == .int8([127]))
        #expect(TensorStorage.repeating(.nan, .int32, count: 1) == .int32([0]))
        #expect(TensorStorage.repeating(-1, .uint8, count: 1) == .uint8([0]))
        #expect(TensorStorage.repeating(0.5, .bool, count: 2) == .bool([true, true]))
        #expect(float16Bits(1) == 0x3C00)
        #expect(float16Bits(-2.5) == 0xC100)
        #expect(float16Bits(65520) == 0x7C00)       // rounds up to infinity
        #expect(float16Bits(65504) == 0x7BFF)
        #expect(float16Bits(5.960464477539063e-08) == 0x0001)  // smallest subnormal
        #expect(float16Bits(1 + 1.0 / 2048) == 0x3C00)        // tie to even
        #expect(float16Bits(1 + 3.0 / 2048) == 0x3C02)
    }
}

@Suite struct ConvTransposeTests {
    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var x: [Int]
        var w: [Int]
        var attributes: ConvTransposeAttributes
        var bias: Bool
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "plain", x: [1, 2, 4, 5], w: [2, 3, 3, 3], attributes: ConvTransposeAttributes(kernelShape: [3, 3]), bias: false),
        Case(name: "stride2_bias", x: [2, 3, 4, 3], w: [3, 2, 3, 3],
             attributes: ConvTransposeAttributes(kernelShape: [3, 3], strides: [2, 2]), bias: true),
        Case(name: "stride2_pads_outpad", x: [1, 2, 3, 4], w: [2, 4, 4, 3],
             attributes: ConvTransposeAttributes(kernelShape: [4, 3], strides: [2, 3], pads: [1, 0, 2, 1], outputPadding: [1, 2]), bias: true),
        Case(name: "groups", x: [2, 4, 3, 3], w: [4, 3, 2, 2],
             attributes: ConvTransposeAttributes(kernelShape: [2, 2], strides: [2, 1], group: 2), bias: true),
        Case(name: "depthwise_dilated", x: [1, 3, 5, 4], w: [3, 1, 3, 2],
             attributes: ConvTransposeAttributes(kernelShape: [3, 2], strides: [1, 2], pads: [2, 1, 1, 0], dilations: [2, 3], group: 3), bias: false),
        Case(name: "1d", x: [2, 3, 7], w: [3, 2, 5],
             attributes: ConvTransposeAttributes(kernelShape: [5], strides: [3], pads: [2, 1], outputPadding: [2]), bias: true),
        Case(name: "3d", x: [1, 2, 2, 3, 2], w: [2, 2, 2, 2, 3],
             attributes: ConvTransposeAttributes(kernelShape: [2, 2, 3], strides: [2, 1, 2], pads: [0, 1, 1, 1, 0, 0], dilations: [1, 2, 1]), bias: false),
    ]

    @Test(arguments: cases)
    func matchesScatter(_ c: Case) throws {
        let x = randomTensor(c.x, seed: 120)
        let w = randomTensor(c.w, seed: 121)
        let m = c.w[1] * c.attributes.group
        let b = c.bias ? randomTensor([m], seed: 122) : nil
        let y = try ReferenceKernels.convTranspose(x, w, b, c.attributes)
        expectClose(y, naiveConvTranspose(x, w, b, c.attributes), atol: 1e-5)
        let inferred = try Op.convTranspose(c.attributes).inferOutputTypes([x.type, w.type, b?.type])
        #expect(inferred[0].shape.fixedSizes == y.shape)
    }

    @Test func outputSizeAndErrors() throws {
        // PyTorch / ONNX: 2 * (4 - 1) + 1 + (3 - 1) + 1 - 1 - 1 = 8.
        let a = ConvTransposeAttributes(kernelShape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], outputPadding: [1, 1])
        let out = try Op.convTranspose(a).inferOutputTypes([TensorType(.float32, Shape([.symbolic("N"), .fixed(4), .fixed(4), .fixed(4)])),
                                                            TensorType(.float32, Shape([4, 5, 3, 3]))])
        #expect(out[0].shape == Shape([.symbolic("N"), .fixed(5), .fixed(8), .fixed(8)]))
        let x = randomTensor([1, 4, 2, 2], seed: 1)
        #expect(throws: FerryError.self) { try ReferenceKernels.convTranspose(x, randomTensor([3, 2, 3, 3], seed: 2), nil, ConvTransposeAttributes(kernelShape: [3, 3])) }
        #expect(throws: FerryError.self) { try ReferenceKernels.convTranspose(x, randomTensor([4, 2, 3, 3], seed: 2), randomTensor([3], seed: 3), ConvTransposeAttributes(kernelShape: [3, 3])) }
        #expect(throws: FerryError.self) { try ReferenceKernels.convTranspose(x, randomTensor([4, 2, 3, 3], seed: 2), nil, ConvTransposeAttributes(kernelShape: [3, 3], pads: [3, 3, 3, 3])) }
    }
}
