import Foundation
import FerryIR

/// The Keras config of UpSampling1D/2D/3D by whole `factors` per spatial axis (only
/// UpSampling2D has `interpolation`; tf_keras's UpSampling1D takes no data_format).
func kerasUpSamplingConfig(_ factors: [Int], bilinear: Bool) -> [String: Any] {
    switch factors.count {
    case 1: return ["size": factors[0]]
    case 2: return ["size": factors, "interpolation": bilinear ? "bilinear" : "nearest", "data_format": "channels_last"]
    default: return ["size": factors, "data_format": "channels_last"]
    }
}

/// Resize of the spatial axes by whole factors -> UpSampling1D/2D/3D: nearest where each output
/// cell reads input cell (output cell / factor), rounded down (asymmetric coordinates rounded
/// down, or half-pixel ones rounded to the nearest, which for whole factors is the same cell);
/// bilinear (UpSampling2D only) with half-pixel coordinates, as TensorFlow's resize; to other
/// sizes, TensorFlow's resize of an image -> Resizing.
func writeKerasResize(_ ctx: inout KerasExportContext, _ node: Node) throws {
    guard case .resize(let r) = node.op else { return }
    guard node.inputs.dropFirst().allSatisfy(\.isEmpty) else { throw ctx.error("scales or sizes given as inputs have no Keras form") }
    guard let inType = ctx.types[node.inputs[0]], let outType = ctx.types[node.outputs[0]], (3...5).contains(inType.shape.rank),
          let sizes = inType.shape.fixedSizes.map({ Array($0.dropFirst()) }) ?? knownTail(inType.shape),
          let outSizes = outType.shape.fixedSizes.map({ Array($0.dropFirst()) }) ?? knownTail(outType.shape),
          sizes[0] == outSizes[0] else {
        throw ctx.error("Keras's UpSampling layers resize the spatial axes of a value with known sizes")
    }
    let spatial = Array(sizes.dropFirst()), outSpatial = Array(outSizes.dropFirst())
    let factors = zip(spatial, outSpatial).map { $1 % $0 == 0 ? $1 / $0 : 0 }
    guard factors.allSatisfy({ $0 >= 1 }) else {
        // To any size: Keras's Resizing is TensorFlow's resize, half-pixel bilinear or nearest
        // rounded half up (as the Keras importer reads Resizing; an ONNX file's Resize of it
        // holds scales instead of sizes, the same cells).
        let tfBilinear = r.mode == .linear && r.coordinateTransformation == .halfPixel
        let tfNearest = r.mode == .nearest && r.coordinateTransformation == .halfPixel && r.nearestMode == .roundPreferCeil
        guard spatial.count == 2, tfBilinear || tfNearest else {
            throw ctx.error("a resize from \(spatial) to \(outSpatial) is not by whole factors (Keras's UpSampling layers) "
                            + "nor TensorFlow's half-pixel bilinear or nearest resize of an image (Keras's Resizing)")
        }
        let cl = channelsLastLayout(4)
        let x = try ctx.input(node.inputs[0], layout: cl)
        ctx.add("Resizing", config: ["height": outSpatial[0], "width": outSpatial[1], "interpolation": tfBilinear ? "bilinear" : "nearest",
                                     "crop_to_aspect_ratio": false], inbound: [x], output: node.outputs[0], layout: cl)
        return
    }
    let nearest = r.mode == .nearest && ((r.coordinateTransformation == .asymmetric && r.nearestMode == .floor)
        || (r.coordinateTransformation == .halfPixel && [.roundPreferFloor, .roundPreferCeil].contains(r.nearestMode)))
    let bilinear = r.mode == .linear && spatial.count == 2
        && (r.coordinateTransformation == .halfPixel || (r.coordinateTransformation == .pytorchHalfPixel && outSpatial.allSatisfy { $0 > 1 }))
    guard nearest || bilinear else {
        throw ctx.error("a \(r.mode.rawValue) resize with \(r.coordinateTransformation.rawValue) coordinates has no Keras layer "
                        + "(UpSampling: nearest, or bilinear with half-pixel coordinates, by whole factors)")
    }
    let cl = channelsLastLayout(inType.shape.rank)
    let x = try ctx.input(node.inputs[0], layout: cl)
    ctx.add("UpSampling\(spatial.count)D", config: kerasUpSamplingConfig(factors, bilinear: bilinear), inbound: [x],
            output: node.outputs[0], layout: cl)
}

/// The sizes after the batch axis, when all are known.
func knownTail(_ shape: Shape) -> [Int]? {
    let d = shape.dims.dropFirst().compactMap(\.value)
    return d.count == shape.rank - 1 ? Array(d) : nil
}

/// The Keras importer's nearest UpSampling1D/2D/3D: a Reshape giving each spatial axis a
/// following axis of 1, an Expand repeating it, a Reshape merging them; written as the
/// UpSampling layer it was. Returns false where `node` does not start that pattern.
func writeKerasRepeatPattern(_ ctx: inout KerasExportContext, _ node: Node) throws -> Bool {
    guard case .reshape(let split, _) = node.op, let inType = ctx.types[node.inputs[0]], (3...5).contains(inType.shape.rank),
          let sizes = knownTail(inType.shape) else { return false }
    let n = inType.shape.rank - 2
    guard split == [0, sizes[0]] + sizes.dropFirst().flatMap({ [$0, 1] }),
          let e = ctx.soleSameLayerReader(of: node.outputs[0]), case .expand(let expanded) = e.node.op, expanded.count == 2 + 2 * n,
          expanded.enumerated().allSatisfy({ $0.offset < 2 || $0.offset % 2 == 0 ? $0.element == 1 : $0.element >= 1 }) else { return false }
    let factors = (0..<n).map { expanded[3 + 2 * $0] }
    // The merging Reshape reads the Expand: look it up as the Expand's own sole reader.
    guard let consumers = ctx.consumers[e.node.outputs[0]], consumers.count == 1, !ctx.isGraphOutput(e.node.outputs[0]) else { return false }
    let m = ctx.graph.nodes[consumers[0]]
    guard m.origins.first?.layer == node.origins.first?.layer, case .reshape(let merged, _) = m.op,
          merged == [0, sizes[0]] + (0..<n).map({ sizes[1 + $0] * factors[$0] }) else { return false }
    let cl = channelsLastLayout(n + 2)
    let x = try ctx.input(node.inputs[0], layout: cl)
    ctx.absorbed.insert(e.index)
    ctx.absorbed.insert(consumers[0])
    ctx.add("UpSampling\(n)D", config: kerasUpSamplingConfig(factors, bilinear: false), inbound: [x], output: m.outputs[0], layout: cl)
    return true
}
