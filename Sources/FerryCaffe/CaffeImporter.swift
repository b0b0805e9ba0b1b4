import Foundation
import FerryIR

/// Imports Caffe models: a `.prototxt` net definition with the weights of a `.caffemodel`
/// matched by layer name, or a `.caffemodel` alone (its layers carry their definitions).
///
/// V1 (`layers { type: CONVOLUTION }`) and V2 (`layer { type: "Convolution" }`) entries may be
/// mixed. The graph is NCHW, Caffe's own layout: inputs and outputs keep Caffe's blob names,
/// with the batch dimension open as the symbol N. Layers are filtered for the TEST phase; data,
/// loss and accuracy layers of a train_val net are dropped with a warning (in the graph's
/// metadata under "warnings", one per line). The outputs are the blobs no layer reads.
public enum CaffeImporter {
    /// The batch dimension's symbol.
    public static let batchSymbol = "N"

    /// What to do when a layer's weights are in neither file.
    public enum MissingWeights: Sendable {
        /// Fail naming the layer (loading a model to run or convert).
        case error
        /// Use zeros of the shape the layer needs (checking a net's structure without weights).
        case zeros
    }

    /// Loads a Caffe model. `prototxt` may be nil when `weights` is a `.caffemodel` that holds
    /// the layer definitions; `weights` may be nil for a net without weights (then every layer
    /// with weights reports them missing).
    public static func load(prototxt: String?, weights: String?, missingWeights: MissingWeights = .error) throws -> Graph {
        let mainFile = prototxt ?? weights ?? ""
        do {
            let definition: Caffe_NetParameter
            let order: [Bool]
            var weightsNet: Caffe_NetParameter?
            if let prototxt {
                (definition, order) = try CaffeFiles.readPrototxtWithLayerOrder(prototxt)
                if let weights { weightsNet = try CaffeFiles.readCaffemodel(weights) }
            } else if let weights {
                (definition, order) = try CaffeFiles.readCaffemodelWithLayerOrder(weights)
                weightsNet = definition
            } else {
                throw FerryError("no prototxt or caffemodel given")
            }
            do {
                return try importNet(definition, weights: weightsNet, missingWeights: missingWeights, layerOrder: order,
                                     weightsFile: prototxt == nil ? nil : weights)
            } catch let e as FerryError {
                throw e.inFile(mainFile)
            }
        } catch let e as FerryError {
            throw e.inFile(mainFile)
        }
    }

    /// Builds the graph of a decoded net; `weights` supplies blobs by layer name. `weightsFile`,
    /// the caffemodel's path beside a prototxt, is the file errors in its blobs name.
    static func importNet(_ net: Caffe_NetParameter, weights: Caffe_NetParameter?,
                          missingWeights: MissingWeights = .error, layerOrder: [Bool] = [],
                          weightsFile: String? = nil) throws -> Graph {
        var blobsByLayer: [String: [Caffe_BlobProto]] = [:]
        if let weights {
            for l in try weights.allLayers() where !l.blobs.isEmpty && blobsByLayer[l.name] == nil {
                blobsByLayer[l.name] = l.blobs
            }
        }
        let allLayers = try net.allLayers(order: layerOrder)
        let layers = allLayers.filter(includedInTestPhase)
        // Blobs are matched to layers by name, so two layers of one name that hold weights would
        // both take the first one's (Caffe gives them to the first and leaves the other at its
        // filler). Weightless layers of one name are harmless and accepted.
        var layerNames = Set<String>()
        for layer in layers where !layerNames.insert(layer.name).inserted
            && (blobsByLayer[layer.name] != nil || !layer.blobs.isEmpty) {
            throw FerryError("two layers are named '\(layer.name)' and weights are matched to layers by name",
                             layer: layer.name, layerType: layer.type)
        }
        var metadata = ["source_format": "caffe"]
        if !net.layers.isEmpty { metadata["caffe_layer_format"] = net.layer.isEmpty ? "V1" : "V1+V2" }
        let ctx = CaffeContext(name: net.name.isEmpty ? "caffe" : net.name, metadata: metadata,
                               hasWeightsFile: weights != nil, missingWeights: missingWeights)

        /// The current value of each blob name (in-place layers replace it), and whether a kept
        /// layer has read that version.
        var blobs: [String: IRValue] = [:]
        var consumed: [String: Bool] = [:]
        var producedOrder: [String] = []
        var producerOrigin: [String: Origin] = [:]
        var droppedBlobs: [String: String] = [:]
        var dropped: [String] = []

        func define(_ top: String, _ value: IRValue, _ origin: Origin) {
            blobs[top] = value
            consumed[top] = false
            producedOrder.removeAll { $0 == top }
            producedOrder.append(top)
            producerOrigin[top] = origin
        }

        // Inputs declared on the net: input + input_shape, or input + input_dim (4 per input).
        let netOrigin = Origin(layer: "input", type: "Input")
        for (i, name) in net.input.enumerated() {
            let dims: [Int]
            if i < net.inputShape.count {
                dims = net.inputShape[i].dim.map { Int($0) }
            } else if net.inputDim.count >= 4 * (i + 1) {
                dims = net.inputDim[(4 * i)..<(4 * i + 4)].map { Int($0) }
            } else {
                throw FerryError("net input '\(name)' has no input_shape or input_dim", layer: name, layerType: "Input")
            }
            let type = try inputType(dims, name: name)
            define(name, ctx.addGraphInput(name, type), netOrigin)
        }

        for (index, layer) in layers.enumerated() {
            if let fromWeights = blobsByLayer[layer.name] {
                ctx.begin(layer, blobs: fromWeights, blobFile: weightsFile)
            } else {
                ctx.begin(layer, blobs: layer.blobs)
            }
            do {
                if droppedLayerTypes.contains(layer.type) || layer.type.hasSuffix("Loss") {
                    dropped.append("\(layer.name) (\(layer.type))")
                    for t in layer.top { droppedBlobs[t] = layer.name }
                    // Silence reads blobs so that they are not net outputs (a Slice's unused parts).
                    if layer.type == "Silence" { for b in layer.bottom where blobs[b] != nil { consumed[b] = true } }
                    continue
                }
                if dataLayerTypes.contains(layer.type) {
                    guard let top = layer.top.first else { throw ctx.error("data layer without a top") }
                    let type = try dataLayerInputType(layer, consumers: layers[(index + 1)...], blobsByLayer)
                    dropped.append("\(layer.name) (\(layer.type), its top '\(top)' becomes an input)")
                    define(top, ctx.addGraphInput(top, type), Origin(layer: layer.name, type: layer.type))
                    for t in layer.top.dropFirst() { droppedBlobs[t] = layer.name }
                    continue
                }
                guard let builder = caffeLayerTable[layer.type] else {
                    if unsupportedLayerTypes.contains(layer.type) {
                        throw ctx.error("\(layer.type) layers run code Ferry cannot import")
                    }
                    throw ctx.error("unknown or unsupported layer type '\(layer.type)'")
                }
                let inputs = try layer.bottom.map { b -> IRValue in
                    guard let v = blobs[b] else {
                        if let d = droppedBlobs[b] {
                            throw ctx.error("bottom '\(b)' comes from the dropped layer '\(d)'")
                        }
                        throw ctx.error("bottom '\(b)' is produced by no layer before this one")
                    }
                    consumed[b] = true
                    return v
                }
                let outputs = try builder(ctx, inputs)
                guard outputs.count == layer.top.count else {
                    throw ctx.error("makes \(outputs.count) output(s) but names \(layer.top.count) top(s)")
                }
                for (top, value) in zip(layer.top, outputs) {
                    var v = value
                    if ctx.madeByCurrentLayer(v) {
                        // Values keep their Caffe blob names; an in-place layer's version is `<top>/<layer>`.
                        v = ctx.renameLayerValue(v, to: ctx.freeName(ctx.isNameUsed(top) ? "\(top)/\(layer.name)" : top))
                    }
                    define(top, v, Origin(layer: layer.name, type: layer.type))
                }
                ctx.recordLayer(inputs: inputs, outputs: layer.top.map { blobs[$0]! })
            } catch let e as FerryError {
                throw e.atLayer(layer.name, type: layer.type)
            }
        }

        if !dropped.isEmpty {
            ctx.warnings.append("dropped layers a deployed net does not use: " + dropped.joined(separator: ", "))
        }
        let skipped = allLayers.count - layers.count
        if skipped > 0 {
            ctx.warnings.append("\(skipped) layer(s) excluded from the TEST phase: "
                                + allLayers.filter { !includedInTestPhase($0) }.map(\.name).joined(separator: ", "))
        }
        let outputs = producedOrder.filter { consumed[$0] == false }
        guard !outputs.isEmpty else { throw FerryError("the net has no outputs (every blob is read by a layer)") }
        var graph = try ctx.finish(outputs: outputs.map { ($0, blobs[$0]!, producerOrigin[$0]!) })
        if !ctx.warnings.isEmpty { graph.metadata["warnings"] = ctx.warnings.joined(separator: "\n") }
        return graph
    }

    /// An input's type: float32 with the first dimension (the batch) open.
    static func inputType(_ dims: [Int], name: String) throws -> TensorType {
        guard !dims.isEmpty, dims.allSatisfy({ $0 >= 0 && $0 <= Op.largestSize }), dims.dropFirst().allSatisfy({ $0 > 0 }),
              checkedElementCount(dims) != nil else {
            throw FerryError("input shape \(dims) is not a valid shape", layer: name, layerType: "Input")
        }
        return TensorType(.float32, Shape([.symbolic(batchSymbol)] + dims.dropFirst().map { .fixed($0) }))
    }

    /// The input a train_val data layer stands for: MemoryData states its shape; for Data,
    /// ImageData and the like the channels come from the first convolution reading the blob and
    /// the size from the crop.
    static func dataLayerInputType(_ layer: Caffe_LayerParameter, consumers: ArraySlice<Caffe_LayerParameter>,
                                   _ blobsByLayer: [String: [Caffe_BlobProto]]) throws -> TensorType {
        let top = layer.top[0]
        if layer.type == "MemoryData" {
            let m = layer.memoryDataParam
            return try inputType([Int(m.batchSize), Int(m.channels), Int(m.height), Int(m.width)], name: top)
        }
        let crop = layer.transformParam.cropSize != 0 ? Int(layer.transformParam.cropSize)
            : Int(layer.dataParam.cropSize)
        guard crop > 0 else {
            throw FerryError("cannot tell the input size of '\(top)' (no crop_size): replace the data layer by an Input layer")
        }
        guard let reader = consumers.first(where: { $0.bottom.contains(top) }),
              reader.type == "Convolution", let w = (blobsByLayer[reader.name] ?? reader.blobs).first, w.dims.count == 4 else {
            throw FerryError("cannot tell the channels of '\(top)' (it does not feed a convolution with weights): "
                             + "replace the data layer by an Input layer")
        }
        let group = max(1, Int(reader.convolutionParam.group))
        return try inputType([1, w.dims[1] * group, crop, crop], name: top)
    }
}

/// Data layers of train_val nets: their first top becomes a graph input.
let dataLayerTypes: Set<String> = ["Data", "ImageData", "HDF5Data", "WindowData", "MemoryData", "AnnotatedData", "VideoData"]
/// Layers only training or evaluation uses: dropped with a warning (types ending in Loss too).
let droppedLayerTypes: Set<String> = ["Accuracy", "Silence", "HDF5Output", "DummyData"]
/// Layers that run user code.
let unsupportedLayerTypes: Set<String> = ["Python"]
