import Foundation
import FerryIR
@testable import FerryRuntime
import Testing

/// Resize straight from the ONNX definition, in Double: every output element sums the product
/// of its per-axis weights over every combination of per-axis taps (no axis-by-axis passes).
func naiveResize(_ x: Tensor, _ given: ResizeAttributes) -> Tensor {
    let r = x.rank
    var a = given
    if let axes = given.axes {
        // Scales or sizes of some axes: the others keep their size (scale 1).
        a.axes = nil
        a.scales = given.scales.map { s in (0..<r).map { i in axes.firstIndex(of: i).map { s[$0] } ?? 1 } }
        a.sizes = given.sizes.map { s in (0..<r).map { i in axes.firstIndex(of: i).map { s[$0] } ?? x.shape[i] } }
    }
    var outShape: [Int] = []
    for i in 0..<r {
        if let sizes = a.sizes { outShape.append(sizes[i]) } else { outShape.append(Int(Float(x.shape[i]) * a.scales![i])) }
    }
    /// nil: the coordinate is outside the input (tf_crop_and_resize's extrapolation).
    func taps(_ axis: Int, _ o: Int) -> [(Int, Double)]? {
        let n = x.shape[axis], m = outShape[axis]
        let scale = a.scales.map { Double($0[axis]) } ?? Double(m) / Double(n)
        let xo: Double
        switch a.coordinateTransformation {
        case .halfPixel: xo = (Double(o) + 0.5) / scale - 0.5
        case .pytorchHalfPixel: xo = m > 1 ? (Double(o) + 0.5) / scale - 0.5 : 0
        case .alignCorners: xo = m == 1 ? 0 : Double(o) * Double(n - 1) / Double(m - 1)
        case .asymmetric: xo = Double(o) / scale
        case .tfHalfPixelForNN: xo = (Double(o) + 0.5) / scale
        case .tfCropAndResize:
            let start = Double(a.roi?[axis] ?? 0), end = Double(a.roi?[r + axis] ?? 1)
            xo = m > 1 ? start * Double(n - 1) + Double(o) * (end - start) * Double(n - 1) / Double(m - 1)
                : 0.5 * (start + end) * Double(n - 1)
            if xo < 0 || xo > Double(n - 1) { return nil }
        }
        func clamp(_ i: Int) -> Int { min(max(i, 0), n - 1) }
        switch a.mode {
        case .nearest:
            let frac = xo - xo.rounded(.down)
            let i: Double
            switch a.nearestMode {
            case .roundPreferFloor: i = frac == 0.5 ? xo.rounded(.down) : xo.rounded()
            case .roundPreferCeil: i = frac == 0.5 ? xo.rounded(.up) : xo.rounded()
            case .floor: i = xo.rounded(.down)
            case .ceil: i = xo.rounded(.up)
            }
            return [(clamp(Int(i)), 1)]
        case .linear:
            let i0 = Int(xo.rounded(.down)), t = xo - Double(i0)
            return [(clamp(i0), 1 - t), (clamp(i0 + 1), t)]
        case .cubic:
            let i0 = Int(xo.rounded(.down)), t = xo - Double(i0), A = Double(a.cubicCoeffA)
            // Keys' kernel W(s) at the distances of the four taps.
            func kernel(_ s: Double) -> Double {
                let s = abs(s)
                if s <= 1 { return (A + 2) * s * s * s - (A + 3) * s * s + 1 }
                if s < 2 { return A * s * s * s - 5 * A * s * s + 8 * A * s - 4 * A }
                return 0
            }
            var list = (-1...2).map { k in (i0 + k, kernel(Double(k) - t)) }
            if a.excludeOutside {
                list = list.map { ($0.0 >= 0 && $0.0 < n) ? $0 : ($0.0, 0) }
                let sum = list.map(\.1).reduce(0, +)
                list = list.map { ($0.0, $0.1 / sum) }
            }
            return list.map { (clamp($0.0), $0.1) }
        }
    }
    let out = (0..<elementCount(outShape)).map { flat -> Float in
        let idx = unravel(flat, outShape)
        var combos: [([Int], Double)] = [([], 1)]
        for axis in 0..<r {
            guard let t = taps(axis, idx[axis]) else { return a.extrapolationValue }
            combos = combos.flatMap { prefix, w in t.map { (prefix + [$0.0], w * $0.1) } }
        }
        return Float(combos.reduce(0.0) { $0 + $1.1 * Double(x.floats[ravel($1.0, x.shape)]) })
    }
    return Tensor(shape: outShape, floats: out)
}

@Suite struct ResizeTests {
    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var input: [Int]
        var attributes: ResizeAttributes
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "keras_upsampling_nearest", input: [2, 3, 4, 5],
             attributes: ResizeAttributes(mode: .nearest, coordinateTransformation: .asymmetric, nearestMode: .floor, scales: [1, 1, 2, 3])),
        Case(name: "nearest_half_pixel_sizes", input: [1, 2, 4, 3],
             attributes: ResizeAttributes(mode: .nearest, sizes: [1, 2, 7, 5])),
        Case(name: "nearest_prefer_ceil_down", input: [1, 2, 8, 7],
             attributes: ResizeAttributes(mode: .nearest, coordinateTransformation: .alignCorners, nearestMode: .roundPreferCeil, sizes: [1, 2, 3, 4])),
        Case(name: "nearest_ceil_asymmetric", input: [1, 1, 5, 4],
             attributes: ResizeAttributes(mode: .nearest, coordinateTransformation: .asymmetric, nearestMode: .ceil, scales: [1, 1, 1.5, 0.75])),
        Case(name: "bilinear_half_pixel", input: [2, 3, 4, 5],
             attributes: ResizeAttributes(mode: .linear, scales: [1, 1, 2, 2])),
        Case(name: "bilinear_align_corners", input: [1, 2, 3, 4],
             attributes: ResizeAttributes(mode: .linear, coordinateTransformation: .alignCorners, sizes: [1, 2, 7, 9])),
        Case(name: "linear_pytorch_half_pixel_to_one", input: [1, 2, 5, 4],
             attributes: ResizeAttributes(mode: .linear, coordinateTransformation: .pytorchHalfPixel, sizes: [1, 2, 1, 6])),
        Case(name: "linear_asymmetric_down", input: [1, 1, 6, 7],
             attributes: ResizeAttributes(mode: .linear, coordinateTransformation: .asymmetric, scales: [1, 1, 0.5, 0.6])),
        Case(name: "linear_1d", input: [2, 3, 5],
             attributes: ResizeAttributes(mode: .linear, scales: [1, 1, 2.5])),
        Case(name: "trilinear_3d", input: [1, 2, 3, 4, 2],
             attributes: ResizeAttributes(mode: .linear, scales: [1, 1, 2, 1.5, 2])),
        Case(name: "bicubic_half_pixel", input: [1, 2, 4, 5],
             attributes: ResizeAttributes(mode: .cubic, scales: [1, 1, 2, 1.6])),
        Case(name: "bicubic_tf_exclude_outside", input: [1, 1, 5, 4],
             attributes: ResizeAttributes(mode: .cubic, coordinateTransformation: .asymmetric, sizes: [1, 1, 9, 3], cubicCoeffA: -0.5, excludeOutside: true)),
        Case(name: "bilinear_sizes_of_spatial_axes", input: [2, 3, 5, 6],
             attributes: ResizeAttributes(mode: .linear, sizes: [7, 4], axes: [2, 3])),
        Case(name: "nearest_scale_of_one_axis", input: [1, 2, 3, 4],
             attributes: ResizeAttributes(mode: .nearest, nearestMode: .roundPreferCeil, scales: [2.5], axes: [2])),
        Case(name: "nearest_tf_half_pixel_for_nn", input: [1, 2, 5, 4],
             attributes: ResizeAttributes(mode: .nearest, coordinateTransformation: .tfHalfPixelForNN, sizes: [1, 2, 3, 7])),
        Case(name: "bilinear_tf_crop_and_resize_past_the_edge", input: [1, 2, 5, 4],
             attributes: ResizeAttributes(mode: .linear, coordinateTransformation: .tfCropAndResize, sizes: [1, 2, 4, 3],
                                          roi: [0, 0, 0.2, 0.5, 1, 1, 1.3, 0.9], extrapolationValue: 7)),
        Case(name: "nearest_tf_crop_and_resize_to_one", input: [1, 1, 4, 6],
             attributes: ResizeAttributes(mode: .nearest, coordinateTransformation: .tfCropAndResize, sizes: [1, 1, 1, 5],
                                          roi: [0, 0, 0.25, -0.1, 1, 1, 0.75, 0.6], extrapolationValue: -2)),
    ]

    @Test(arguments: cases)
    func matchesDefinition(_ c: Case) throws {
        let x = randomTensor(c.input, seed: 130)
        let y = try ReferenceKernels.resize(x, c.attributes)
        expectClose(y, naiveResize(x, c.attributes), atol: 1e-5)
        #expect(try Op.resize(c.attributes).inferOutputTypes([x.type])[0].shape.fixedSizes == y.shape)
    }

    @Test func onnxOperatorExamples() throws {
        // resize_upsample_scales_linear and resize_upsample_scales_nearest from the ONNX operator docs.
        let x = Tensor(shape: [1, 1, 2, 2], floats: [1, 2, 3, 4])
        let linear = try ReferenceKernels.resize(x, ResizeAttributes(mode: .linear, scales: [1, 1, 2, 2]))
        #expect(linear == Tensor(shape: [1, 1, 4, 4], floats: [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5,
                                                                 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4]))
        let nearest = try ReferenceKernels.resize(x, ResizeAttributes(mode: .nearest, scales: [1, 1, 2, 3]))
        #expect(nearest == Tensor(shape: [1, 1, 4, 6], floats: [1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2,
                                                                  3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4]))
    }

    @Test func nearestOnEveryElementTypeAndErrors() throws {
        let a = ResizeAttributes(mode: .nearest, coordinateTransformation: .asymmetric, nearestMode: .floor, scales: [1, 2, 1.5])
        let x = counting([2, 3, 4], modulo: 2)
        let want = try ReferenceKernels.resize(x, a)
        for dtype in DType.allCases {
            #expect(ReferenceKernels.supports(.resize(a), inputTypes: [dtype]))
            #expect(asFloats(try ReferenceKernels.resize(cast(x, to: dtype), a)) == want)
        }
        let linear = ResizeAttributes(mode: .linear, scales: [1, 2, 2])
        #expect(!ReferenceKernels.supports(.resize(linear), inputTypes: [.int64]))
        #expect(throws: FerryError.self) { try ReferenceKernels.resize(x, ResizeAttributes(scales: [1, 2])) }
        #expect(throws: FerryError.self) { try ReferenceKernels.resize(x, ResizeAttributes(scales: [1, 2, 2], sizes: [2, 3, 4])) }
        #expect(throws: FerryError.self) { try ReferenceKernels.resize(x, ResizeAttributes()) }
        #expect(throws: FerryError.self) { try ReferenceKernels.resize(x, ResizeAttributes(scales: [1, 0, 1])) }
    }
}
