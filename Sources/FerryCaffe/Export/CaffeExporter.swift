import Foundation
import FerryIR
import SwiftProtobuf

/// Writes an IR graph as a Caffe model: a V2 text `.prototxt` (the net without weights) and a
/// binary `.caffemodel` (the same net with its weight blobs).
///
/// Each IR node becomes Caffe layers through `caffeExportTable` (op name -> writer); a writer
/// may take over the node after it when the two are one Caffe layer (a Mul and an Add by
/// per-channel constants of one source layer are one Scale). Layers are named after the
/// source layer of their node (the first node of a source layer gets its name, later ones
/// the node's name), so a Caffe model read by Ferry and written back keeps its layer names.
/// The net is channels-first: a channels-last model (Keras) loses the Transposes at its edges
/// and its inputs and outputs become NCHW, which `Export.layoutChanges` reports.
/// Anything Caffe cannot express is an error listing every such node.
public enum CaffeExporter {
    /// The exported net, with what changed at its interface.
    public struct Export {
        public var prototxt: String
        public var caffemodel: [UInt8]
        public var layoutChanges: [LayoutChange]
        public var layerCount: Int
    }

    /// The net's text and binary forms.
    public static func export(_ source: Graph) throws -> Export {
        var (graph, changes) = try prepare(source)
        let types = try graph.inferTypes()
        var ctx = CaffeExportContext(graph: graph, types: types)
        try ctx.writeInputs()
        var failures = ExportFailures()
        let recorded = writableRecordedCaffeLayers(graph)
        // Values downstream of a node that could not be written: their readers are not reported.
        for (i, node) in graph.nodes.enumerated() where !ctx.absorbed.contains(i) {
            ctx.begin(node, index: i)
            if failures.skipsDownstream(node) { continue }
            if let layer = recorded[i] {
                do { try ctx.writeRecorded(layer) } catch let e as FerryError { failures.record(node, e.message) }
                continue
            }
            guard let writer = caffeExportTable[node.op.name] else {
                failures.record(node, "Caffe has no layer for \(node.op.name)")
                continue
            }
            do {
                try writer(&ctx, node)
            } catch let e as FerryError {
                failures.record(node, e.message)
            }
        }
        try failures.throwIfAny(format: "Caffe")
        // Every output is a blob of the net: a constant output (priors computed at import whose
        // PriorBox record no longer holds) has no layer making it, and is not dropped silently.
        for out in graph.outputs where ctx.blobs[out.name] == nil && !graph.inputs.contains(where: { $0.name == out.name }) {
            let what = graph.initializers[out.name] != nil ? "is a constant, which no Caffe layer makes" : "is made by no layer"
            throw FerryError("Caffe cannot express output '\(out.name)': it \(what)")
        }
        // An input no layer reads any longer (the size reference of an Interp) stays an input;
        // a recorded layer may still read it as its size bottom.
        let bottoms = Set(ctx.layers.flatMap(\.bottom))
        for input in graph.inputs where ctx.readers(input.name).isEmpty && !graph.outputs.contains(where: { $0.name == input.name })
            && !bottoms.contains(ctx.blobs[input.name] ?? input.name) {
            ctx.unusedTops.append(input.name)
        }
        if !ctx.unusedTops.isEmpty {
            ctx.addRawLayer("Silence", name: ctx.uniqueLayerName("unused_parts"), bottoms: ctx.unusedTops, tops: [])
        }
        graph = ctx.graph
        var net = Caffe_NetParameter()
        net.name = graph.name.isEmpty ? "ferry" : graph.name
        net.layer = ctx.layers
        let caffemodel: [UInt8]
        do {
            caffemodel = try net.serializedBytes()
        } catch {
            throw FerryError("cannot encode the Caffe net: \(error)")
        }
        for i in net.layer.indices { net.layer[i].blobs = [] }
        let text = "# Written by Ferry: Caffe V2 text format; weights in the .caffemodel of the same name.\n"
            + net.textFormatString()
        return Export(prototxt: text, caffemodel: caffemodel, layoutChanges: changes, layerCount: net.layer.count)
    }

    /// Writes `<stem>.prototxt` and `<stem>.caffemodel` (either path may be given): both are
    /// written to temporary files and renamed into place, the caffemodel first; when the second
    /// rename fails the first file is removed, so the pair appears whole or not at all.
    @discardableResult
    public static func write(_ graph: Graph, to path: String) throws -> (prototxt: String, caffemodel: String, export: Export) {
        let url = URL(fileURLWithPath: path).deletingPathExtension()
        let prototxt = url.appendingPathExtension("prototxt")
        let caffemodel = url.appendingPathExtension("caffemodel")
        let result: Export
        do {
            result = try export(graph)
        } catch let e as FerryError {
            throw e.inFile(path)
        }
        let folder = url.deletingLastPathComponent()
        let tmpText = folder.appendingPathComponent(".\(prototxt.lastPathComponent).\(UUID().uuidString).tmp")
        let tmpModel = folder.appendingPathComponent(".\(caffemodel.lastPathComponent).\(UUID().uuidString).tmp")
        defer {
            try? FileManager.default.removeItem(at: tmpText)
            try? FileManager.default.removeItem(at: tmpModel)
        }
        do {
            try Data(result.prototxt.utf8).write(to: tmpText)
            try Data(result.caffemodel).write(to: tmpModel)
        } catch {
            throw FerryError("cannot write: \(FerryError.reason(error))", file: path)
        }
        try replace(caffemodel, with: tmpModel, path: path)
        do {
            try replace(prototxt, with: tmpText, path: path)
        } catch {
            try? FileManager.default.removeItem(at: caffemodel)
            throw error
        }
        return (prototxt.path, caffemodel.path, result)
    }

    private static func replace(_ destination: URL, with temporary: URL, path: String) throws {
        if rename(temporary.path, destination.path) != 0 {
            throw FerryError("cannot move the written file into place: \(String(cString: strerror(errno)))",
                             file: destination.path)
        }
    }

    /// The graph as the layer writers want it: fused epilogues split into their own nodes,
    /// Identities dropped, channels-first edges, a Transpose to NHWC before Flatten + Gemm
    /// folded into the Gemm's weight rows, zero Pads folded into the Conv they feed, 1-D
    /// convolutions and pooling in their 2-D form, and asymmetric ConvTranspose cuts as a
    /// symmetric one and a Slice.
    static func prepare(_ source: Graph) throws -> (Graph, [LayoutChange]) {
        // A PriorBox (an Identity of the priors computed at import) stays for its record.
        var graph = source.restoringFoldedPriorBoxes().splittingFusedActivations().removingIdentities(keeping: {
            $0.origins.first?.type == "PriorBox" && (source.metadata["source_format"] == "caffe" || source.metadata["original_format"] == "caffe") })
        var changes: [LayoutChange] = []
        // A channels-last model (Keras, or ONNX written from Keras) has layout Transposes at its
        // edges; a Caffe model's edge Permutes are its own layers (also in an ONNX file written
        // from Caffe, whose original_format says so).
        if graph.metadata["source_format"] != "caffe" && graph.metadata["original_format"] != "caffe" {
            (graph, changes) = try graph.withChannelsFirstInterface()
        }
        graph = foldingTransposeBeforeFlattenIntoGemm(graph)
        graph = foldingZeroPadIntoConv(graph)
        graph = try liftingOneDimensionalTo2D(graph)
        graph = try croppingAsymmetricDeconvolutions(graph)
        try graph.verify()
        return (graph, changes)
    }

    /// Transpose(0, 2, 3, 1) -> Flatten(1) -> Gemm with constant weights (Keras's Flatten after a
    /// convolution, in NHWC order): the Transpose goes and the weight rows are permuted from
    /// (h, w, c) order to Caffe's (c, h, w) order.
    static func foldingTransposeBeforeFlattenIntoGemm(_ source: Graph) -> Graph {
        var g = source
        var changed = true
        while changed {
            changed = false
            let consumers = g.consumerIndices()
            guard let types = try? g.inferTypes() else { return g }
            for (t, node) in g.nodes.enumerated() {
                guard case .transpose(let perm) = node.op, perm.count >= 3, perm == channelsLastPermutation(rank: perm.count),
                      let tReaders = consumers[node.outputs[0]], tReaders.count == 1,
                      case .flatten(1) = g.nodes[tReaders[0]].op,
                      !g.outputs.contains(where: { $0.name == node.outputs[0] }) else { continue }
                let f = tReaders[0]
                let flat = g.nodes[f].outputs[0]
                guard let fReaders = consumers[flat], !fReaders.isEmpty, !g.outputs.contains(where: { $0.name == flat }),
                      let dims = types[node.inputs[0]]?.shape.fixedSizes.map({ Array($0.dropFirst()) })
                        ?? types[node.inputs[0]].flatMap({ t in
                            let d = t.shape.dims.dropFirst().compactMap(\.value)
                            return d.count == t.shape.rank - 1 ? Array(d) : nil
                        }) else { continue }
                // Every reader a Gemm reading the flattened value as A with its own constant B.
                let gemms = fReaders.filter {
                    if case .gemm(let a) = g.nodes[$0].op, !a.transA, g.nodes[$0].inputs[0] == flat,
                       g.nodes[$0].inputs[1] != flat, g.initializers[g.nodes[$0].inputs[1]] != nil,
                       (consumers[g.nodes[$0].inputs[1]] ?? []).count == 1 { return true }
                    return false
                }
                guard gemms.count == fReaders.count else { continue }
                // Row r of the channels-first flattening is cell (c, spatial...); find its NHWC row.
                let c = dims[0], spatial = Array(dims.dropFirst())
                let cells = spatial.reduce(1, *)
                var nhwcRow = [Int](repeating: 0, count: c * cells)
                for ch in 0..<c { for s in 0..<cells { nhwcRow[ch * cells + s] = s * c + ch } }
                for gi in gemms {
                    guard case .gemm(let a) = g.nodes[gi].op else { continue }
                    let name = g.nodes[gi].inputs[1]
                    let w = g.initializers[name]!
                    guard w.dtype == .float32, w.rank == 2 else { continue }
                    let (rows, cols) = (w.shape[0], w.shape[1])
                    let values = w.floats
                    var out = [Float](repeating: 0, count: values.count)
                    if !a.transB {
                        guard rows == c * cells else { continue }
                        for r in 0..<rows { for j in 0..<cols { out[r * cols + j] = values[nhwcRow[r] * cols + j] } }
                    } else {
                        guard cols == c * cells else { continue }
                        for i in 0..<rows { for r in 0..<cols { out[i * cols + r] = values[i * cols + nhwcRow[r]] } }
                    }
                    g.initializers[name] = Tensor(shape: w.shape, floats: out)
                }
                g.nodes[f].inputs[0] = node.inputs[0]
                g.nodes.remove(at: t)
                changed = true
                break
            }
        }
        return g
    }

    /// A constant-zero Pad of the spatial axes feeding only Convs becomes part of their padding.
    static func foldingZeroPadIntoConv(_ source: Graph) -> Graph {
        var g = source
        var i = 0
        while i < g.nodes.count {
            let node = g.nodes[i]
            guard case .pad(let p) = node.op, p.mode == .constant, p.value == 0, p.pads.allSatisfy({ $0 >= 0 }),
                  !g.outputs.contains(where: { $0.name == node.outputs[0] }) else { i += 1; continue }
            let rank = p.pads.count / 2
            let readers = g.consumerIndices()[node.outputs[0]] ?? []
            let onlySpatial = rank >= 3 && p.pads[0] == 0 && p.pads[1] == 0 && p.pads[rank] == 0 && p.pads[rank + 1] == 0
            guard onlySpatial, !readers.isEmpty, readers.allSatisfy({
                if case .conv = g.nodes[$0].op { return g.nodes[$0].inputs[0] == node.outputs[0] }
                return false
            }) else { i += 1; continue }
            let spatial = rank - 2
            for r in readers {
                guard case .conv(var a) = g.nodes[r].op else { continue }
                for s in 0..<spatial {
                    a.pads[s] += p.pads[2 + s]
                    a.pads[spatial + s] += p.pads[rank + 2 + s]
                }
                g.nodes[r].op = .conv(a)
                g.nodes[r].inputs[0] = node.inputs[0]
                g.nodes[r].origins = node.origins + g.nodes[r].origins
            }
            g.nodes.remove(at: i)
        }
        return g
    }
}

/// Writes one IR node (and possibly nodes after it it absorbs) as Caffe layers.
typealias CaffeLayerWriter = @Sendable (inout CaffeExportContext, Node) throws -> Void

/// The layers written so far and what writers need: value types, constants, blob names and
/// unique layer names.
struct CaffeExportContext {
    var graph: Graph
    let types: [String: TensorType]
    let consumers: [String: [Int]]
    var layers: [Caffe_LayerParameter] = []
    /// The Caffe blob holding each IR value (in-place layers share their bottom's blob).
    var blobs: [String: String] = [:]
    var usedLayerNames = Set<String>()
    var usedBlobNames = Set<String>()
    /// Nodes an earlier writer already wrote.
    var absorbed = Set<Int>()
    /// Values a later node of the same source layer writes as part of one Eltwise: their terms
    /// (blob, coefficient).
    var deferredTerms: [String: [(blob: String, coeff: Float)]] = [:]
    private(set) var node = Node(name: "", op: .identity, inputs: [], outputs: [])
    private(set) var index = 0
    private var sourceLayerTaken = Set<String>()

    init(graph: Graph, types: [String: TensorType]) {
        self.graph = graph
        self.types = types
        self.consumers = graph.consumerIndices()
        usedBlobNames = Set(graph.inputs.map(\.name))
    }

    mutating func begin(_ node: Node, index: Int) {
        self.node = node
        self.index = index
    }

    func error(_ message: String) -> FerryError {
        FerryError(message, layer: node.sourceLayer.name, layerType: node.sourceLayer.type)
    }

    /// One Input layer per graph input (the batch size written as 1).
    mutating func writeInputs() throws {
        for input in graph.inputs {
            guard input.type.dtype == .float32 else { throw FerryError("Caffe inputs are float32; '\(input.name)' is \(input.type.dtype)", layer: input.name) }
            var l = Caffe_LayerParameter()
            l.name = uniqueLayerName(input.name)
            l.type = "Input"
            l.top = [input.name]
            var shape = Caffe_BlobShape()
            shape.dim = input.type.shape.dims.enumerated().map { i, d in Int64(d.value ?? 1) }
            l.inputParam.shape = [shape]
            blobs[input.name] = input.name
            layers.append(l)
        }
    }

    func type(_ value: String) -> TensorType? { types[value] }

    func rank(_ value: String) throws -> Int {
        guard let t = types[value] else { throw error("the type of '\(value)' is unknown") }
        return t.shape.rank
    }

    /// The sizes of every axis but the batch (the first), which must be known.
    func featureSizes(_ value: String) throws -> [Int] {
        guard let t = types[value] else { throw error("the type of '\(value)' is unknown") }
        let sizes = t.shape.dims.dropFirst().compactMap(\.value)
        guard sizes.count == t.shape.rank - 1 else { throw error("'\(value)' has unknown sizes \(t.shape)") }
        return Array(sizes)
    }

    func constant(_ value: String) -> Tensor? {
        guard let t = graph.initializers[value], t.dtype == .float32 else { return nil }
        return t
    }

    func isConstant(_ value: String) -> Bool { graph.initializers[value] != nil }

    /// The blob of a value a layer reads; constants have no blob.
    func bottom(_ value: String) throws -> String {
        if let b = blobs[value] { return b }
        if isConstant(value) { throw error("reads the constant '\(value)' as data; Caffe layers cannot read constants") }
        throw error("reads '\(value)', which no layer wrote")
    }

    /// The nodes reading a value.
    func readers(_ value: String) -> [Int] { consumers[value] ?? [] }

    func isGraphOutput(_ value: String) -> Bool { graph.outputs.contains { $0.name == value } }

    /// The single node reading `value` when it is the next unwritten one of the same source
    /// layer (for writers that merge two nodes into one Caffe layer).
    func soleSameLayerReader(of value: String) -> (index: Int, node: Node)? {
        guard !isGraphOutput(value), let r = consumers[value], r.count == 1, r[0] > index,
              !absorbed.contains(r[0]) else { return nil }
        let n = graph.nodes[r[0]]
        guard n.origins.first?.layer == node.origins.first?.layer, node.origins.first != nil else { return nil }
        return (r[0], n)
    }

    mutating func uniqueLayerName(_ base: String) -> String {
        var name = base.isEmpty ? "layer" : base
        var k = 1
        while usedLayerNames.contains(name) { name = "\(base)_\(k)"; k += 1 }
        usedLayerNames.insert(name)
        return name
    }

    /// The name of the current node's main layer: its source layer's name the first time,
    /// else the node's own name.
    mutating func mainLayerName(producing outputs: [String]) -> String {
        if let source = node.origins.first?.layer, !sourceLayerTaken.contains(source), !usedLayerNames.contains(source) {
            sourceLayerTaken.insert(source)
            usedLayerNames.insert(source)
            return source
        }
        return uniqueLayerName(node.name)
    }

    /// The name prefix of a chain of layers standing for the current node: its source layer's
    /// name the first time, else the node's own name, or `<source layer>/<role>` when the node
    /// is named after its source layer (an activation after a Dense of that layer).
    mutating func chainBaseName(role: String) -> String {
        if let source = node.origins.first?.layer, node.name == source,
           sourceLayerTaken.contains(source) || usedLayerNames.contains(source) {
            return uniqueLayerName("\(source)/\(role)")
        }
        return mainLayerName(producing: [])
    }

    /// A blob name for a value: the value's own name.
    mutating func topBlob(_ value: String) -> String {
        var name = value
        var k = 1
        while usedBlobNames.contains(name) { name = "\(value)_\(k)"; k += 1 }
        usedBlobNames.insert(name)
        blobs[value] = name
        return name
    }

    /// Tops a layer must make but nothing reads (a Slice's cut-off parts).
    var unusedTops: [String] = []

    /// A top nothing reads: a Silence layer at the end of the net reads it, so that Caffe and
    /// Ferry do not take it for a net output.
    mutating func unusedTop(_ base: String) -> String {
        let name = intermediateBlob(base)
        unusedTops.append(name)
        return name
    }

    /// A blob for an intermediate result inside one node's layers.
    mutating func intermediateBlob(_ base: String) -> String {
        var name = base
        var k = 1
        while usedBlobNames.contains(name) || graph.initializers[name] != nil || types[name] != nil {
            name = "\(base)_\(k)"; k += 1
        }
        usedBlobNames.insert(name)
        return name
    }

    /// Appends a layer writing IR values `outputs` from blobs `bottoms`; `configure` sets its
    /// parameters. `inPlace`: an elementwise layer may write over its bottom when nothing else
    /// reads it (Caffe's usual ReLU form).
    mutating func addLayer(_ type: String, bottoms: [String], outputs: [String], blobs weights: [Tensor] = [],
                           name: String? = nil, inPlace: Bool = false,
                           _ configure: (inout Caffe_LayerParameter) -> Void = { _ in }) {
        var l = Caffe_LayerParameter()
        l.name = name ?? mainLayerName(producing: outputs)
        l.type = type
        l.bottom = bottoms
        if inPlace, outputs.count == 1, bottoms.count == 1, let value = node.inputs.first,
           readers(value).count == 1, !isGraphOutput(value), !isGraphOutput(outputs[0]),
           !graph.inputs.contains(where: { $0.name == value }) {
            l.top = bottoms
            self.blobs[outputs[0]] = bottoms[0]
        } else {
            l.top = outputs.map { topBlob($0) }
        }
        l.blobs = weights.map(caffeBlob)
        configure(&l)
        layers.append(l)
    }

    /// Appends a layer between blobs (for layers inside one node's expansion).
    mutating func addRawLayer(_ type: String, name: String, bottoms: [String], tops: [String], blobs weights: [Tensor] = [],
                              _ configure: (inout Caffe_LayerParameter) -> Void = { _ in }) {
        var l = Caffe_LayerParameter()
        l.name = name
        l.type = type
        l.bottom = bottoms
        l.top = tops
        l.blobs = weights.map(caffeBlob)
        configure(&l)
        layers.append(l)
    }
}

/// A float tensor as a Caffe blob with an N-D shape.
func caffeBlob(_ t: Tensor) -> Caffe_BlobProto {
    var b = Caffe_BlobProto()
    var shape = Caffe_BlobShape()
    shape.dim = t.shape.map(Int64.init)
    b.shape = shape
    b.data = t.floats
    return b
}
