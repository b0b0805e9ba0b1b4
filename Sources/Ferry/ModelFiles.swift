import CFerryCPU
import Foundation
import FerryCaffe
import FerryKeras
import FerryONNX
import FerryRuntime

/// The model file formats Ferry knows, named as users name them in `--to`.
public enum ModelFormat: String, Sendable, CaseIterable {
    /// Keras HDF5 `.h5` (Keras 2 and Keras 3 legacy format).
    case kerasH5 = "keras-h5"
    /// Keras 3 `.keras` zip.
    case kerasZip = "keras"
    /// Caffe `.prototxt` + `.caffemodel`.
    case caffe
    case onnx

    /// The format a path's extension names, if any.
    public init?(path: String) {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "h5", "hdf5": self = .kerasH5
        case "keras": self = .kerasZip
        case "prototxt", "caffemodel": self = .caffe
        case "onnx": self = .onnx
        default: return nil
        }
    }

    /// The format a `--to` value names: onnx, keras (the extension then picks .h5 or .keras), caffe.
    public init?(target: String, path: String) {
        switch target.lowercased() {
        case "onnx": self = .onnx
        case "caffe": self = .caffe
        case "keras": self = ModelFormat(path: path) == .kerasZip ? .kerasZip : .kerasH5
        default: return nil
        }
    }
}

/// Loads a model file into the IR, choosing the importer by extension.
/// A Caffe model is named by its `.prototxt`; `weights` overrides the `.caffemodel` beside it.
/// A Keras architecture JSON (`model.to_json()`) takes its weights file (`save_weights`) as `weights`.
public func loadModel(path: String, weights: String? = nil) throws -> Graph {
    // What the import parsed and freed (a Keras config's JSON, libhdf5's caches) is given back
    // before the graph is optimized and run.
    defer { ferry_return_free_heap_pages() }
    guard FileManager.default.fileExists(atPath: path) else {
        throw FerryError("no such file", file: path)
    }
    if URL(fileURLWithPath: path).pathExtension.lowercased() == "json" {
        if let weights, !FileManager.default.fileExists(atPath: weights) {
            throw FerryError("no such file", file: weights)
        }
        return try KerasImporter.load(path: path, weights: weights)
    }
    guard let format = ModelFormat(path: path) else {
        throw FerryError("unknown model format (expected .h5, .keras, .json with --weights, .prototxt or .onnx)", file: path)
    }
    switch format {
    case .kerasH5, .kerasZip:
        return try KerasImporter.load(path: path, weights: weights)
    case .caffe:
        return try loadCaffe(path: path, weights: weights)
    case .onnx:
        // The reference kernels fold constant subgraphs (shape arithmetic) into attributes.
        return try ONNXImporter.load(path: path, evaluate: { try ReferenceKernels.evaluate($0, $1) })
    }
}

/// A `.prototxt` with the `.caffemodel` of the same stem beside it (or `weights`); a
/// `.caffemodel` alone holds its own layer definitions.
private func loadCaffe(path: String, weights: String?) throws -> Graph {
    let url = URL(fileURLWithPath: path)
    if url.pathExtension.lowercased() == "caffemodel" {
        if let weights, weights != path {
            throw FerryError("--weights goes with a .prototxt; this .caffemodel holds its own weights", file: path)
        }
        return try CaffeImporter.load(prototxt: nil, weights: path)
    }
    if let weights {
        guard FileManager.default.fileExists(atPath: weights) else { throw FerryError("no such file", file: weights) }
        return try CaffeImporter.load(prototxt: path, weights: weights)
    }
    let beside = url.deletingPathExtension().appendingPathExtension("caffemodel").path
    return try CaffeImporter.load(prototxt: path, weights: FileManager.default.fileExists(atPath: beside) ? beside : nil)
}

/// Writes a graph in a format. The file appears whole or not at all.
/// ONNX: `opset` (default 17), and weights of 2 GiB or more (any size with `externalData`) go to
/// `<file>.data` beside the model (ONNX external data); the weights are streamed from the graph,
/// never copied whole.
/// Caffe: `<stem>.prototxt` and `<stem>.caffemodel` (both or neither), channels-first.
/// Returns the files written and the changes of layout at the model's interface.
@discardableResult
public func saveModel(_ graph: Graph, to path: String, format: ModelFormat, opset: Int? = nil,
                      externalData: Bool = false) throws -> SavedModel {
    switch format {
    case .onnx:
        let data = try ONNXExporter.write(graph, to: URL(fileURLWithPath: path), opset: opset ?? ONNXExporter.defaultOpset,
                                          externalDataThreshold: externalData ? 0 : ONNXExporter.defaultExternalDataThreshold)
        return SavedModel(files: [path] + (data.map { [$0.path] } ?? []), layoutChanges: [])
    case .kerasH5:
        let export = try KerasExporter.writeH5(graph, to: path)
        return SavedModel(files: [path], layoutChanges: export.layoutChanges, warnings: export.warnings)
    case .kerasZip:
        let export = try KerasExporter.writeKeras(graph, to: path)
        return SavedModel(files: [path], layoutChanges: export.layoutChanges, warnings: export.warnings)
    case .caffe:
        let written = try CaffeExporter.write(graph, to: path)
        return SavedModel(files: [written.prototxt, written.caffemodel], layoutChanges: written.export.layoutChanges)
    }
}

/// What `saveModel` wrote.
public struct SavedModel: Sendable {
    public var files: [String]
    /// Inputs and outputs whose layout differs from the source model's (NHWC <-> NCHW).
    public var layoutChanges: [LayoutChange]
    /// Where the written file's reader gives a layer another meaning than the source (the
    /// layer and how), printed by `ferry convert` as warnings.
    public var warnings: [String] = []
}

/// The files a conversion to `format` at `path` writes (to refuse overwriting any of them).
public func outputFiles(for path: String, format: ModelFormat) -> [String] {
    switch format {
    case .caffe:
        let stem = URL(fileURLWithPath: path).deletingPathExtension()
        return [stem.appendingPathExtension("prototxt").path, stem.appendingPathExtension("caffemodel").path]
    default:
        return [path]
    }
}

/// Every file `saveModel` writes for this graph: `outputFiles(for:format:)` and, for ONNX whose
/// weights go to external data, `<file>.data` (known only once the graph to write is known).
public func outputFiles(for path: String, format: ModelFormat, graph: Graph, externalData: Bool = false) -> [String] {
    var files = outputFiles(for: path, format: format)
    if format == .onnx && (externalData || graph.parameterBytes >= ONNXExporter.defaultExternalDataThreshold) {
        files.append(path + ".data")
    }
    return files
}

/// Whether a format is written from the graph as imported (keeping the source's layers,
/// names and weights for the target's own tools to optimize) rather than the optimized one.
public func exportsUnoptimizedGraph(_ format: ModelFormat) -> Bool {
    format != .onnx
}

/// What `ferry inspect` shows: the model's interface, size and cost.
public struct ModelSummary: Codable, Sendable {
    public struct Port: Codable, Sendable {
        public var name: String
        public var shape: [String]
        public var dtype: String
    }
    public struct OpCount: Codable, Sendable {
        public var op: String
        public var count: Int
    }
    /// One source layer (or one node, where nodes carry no source layer), like Keras's summary().
    public struct LayerRow: Codable, Sendable {
        public var name: String
        public var type: String
        public var ops: [String]
        public var outputShape: [String]
        public var parameters: Int
        public var flops: Int?
    }
    public var file: String
    public var format: String
    public var inputs: [Port]
    public var outputs: [Port]
    public var nodes: Int
    public var ops: [OpCount]
    public var layers: [LayerRow]
    public var parameters: Int
    public var parameterBytes: Int
    /// Estimated for batch size 1.
    public var flops: Int?
    public var metadata: [String: String]
    /// Set by `inspect --passes`: what the optimizer did (the rest describes the optimized graph).
    public var optimizer: OptimizerSummary?

    public init(graph: Graph, file: String) {
        func port(_ v: Value) -> Port {
            Port(name: v.name, shape: v.type.shape.dims.map(\.description), dtype: v.type.dtype.rawValue)
        }
        self.file = file
        format = graph.metadata["source_format"] ?? ModelFormat(path: file)?.rawValue ?? "unknown"
        inputs = graph.inputs.map(port)
        outputs = graph.outputs.map(port)
        nodes = graph.nodes.count
        ops = graph.opCounts.map { OpCount(op: $0.op, count: $0.count) }
        layers = ModelSummary.layerRows(graph)
        parameters = graph.parameterCount
        parameterBytes = graph.parameterBytes
        flops = graph.estimatedFLOPs(batch: 1)
        metadata = graph.metadata
    }

    public var text: String {
        func ports(_ ps: [Port]) -> String {
            ps.map { "  \($0.name): \($0.dtype)[\($0.shape.joined(separator: ","))]" }.joined(separator: "\n")
        }
        var lines = ["file:       \(file)", "format:     \(format)"]
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) where k != "source_format" {
            lines.append("\(k): \(v)")
        }
        lines.append("inputs:\n" + ports(inputs))
        lines.append("outputs:\n" + ports(outputs))
        lines.append(layerTable)
        lines.append("nodes:      \(nodes)")
        lines.append("ops:        " + ops.map { "\($0.op) x\($0.count)" }.joined(separator: ", "))
        lines.append("parameters: \(parameters) (\(formatBytes(parameterBytes)))")
        lines.append("FLOPs:      " + (flops.map { "\(formatCount($0)) per batch item" } ?? "unknown"))
        return lines.joined(separator: "\n")
    }
}

extension ModelSummary {
    /// Rows grouped by source layer in graph order; a weight counts once, for the first layer using it.
    static func layerRows(_ graph: Graph) -> [LayerRow] {
        let types = (try? graph.inferTypes()) ?? [:]
        let flops = graph.estimatedFLOPsPerNode(batch: 1)
        var rows: [LayerRow] = []
        var rowOf: [String: Int] = [:]
        var counted = Set<String>()
        for (i, node) in graph.nodes.enumerated() {
            let key = node.origins.first?.layer ?? node.name
            if rowOf[key] == nil {
                rowOf[key] = rows.count
                rows.append(LayerRow(name: key, type: node.origins.first?.type ?? node.op.name, ops: [],
                                     outputShape: [], parameters: 0, flops: 0))
            }
            let r = rowOf[key]!
            rows[r].ops.append(node.op.name)
            if let shape = node.outputs.last(where: { !$0.isEmpty }).flatMap({ types[$0] })?.shape {
                rows[r].outputShape = shape.dims.map(\.description)
            }
            for name in node.inputs where !counted.contains(name) {
                guard let w = graph.initializers[name] else { continue }
                counted.insert(name)
                rows[r].parameters += w.count
            }
            if let f = flops[i], let sum = rows[r].flops { rows[r].flops = sum + f } else { rows[r].flops = nil }
        }
        return rows
    }

    /// The layer table as text columns: layer (type), ops, output shape, parameters, FLOPs.
    var layerTable: String {
        let header = ["layer (type)", "ops", "output shape", "params", "FLOPs"]
        let body = layers.map { row in
            ["\(row.name) (\(row.type))", row.ops.joined(separator: "+"), "[" + row.outputShape.joined(separator: ",") + "]",
             String(row.parameters), row.flops.map(formatCount) ?? "?"]
        }
        let widths = (0..<header.count).map { c in ([header] + body).map { $0[c].count }.max()! }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).enumerated().map { i, p in
                i >= 3 ? String(repeating: " ", count: p.1 - p.0.count) + p.0 : p.0.padding(toLength: p.1, withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        let rule = String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))
        return ([line(header), rule] + body.map(line) + [rule]).joined(separator: "\n")
    }
}

func formatBytes(_ n: Int) -> String {
    if n < 1024 { return "\(n) B" }
    if n < 1 << 20 { return String(format: "%.1f KiB", Double(n) / 1024) }
    if n < 1 << 30 { return String(format: "%.1f MiB", Double(n) / 1_048_576) }
    return String(format: "%.2f GiB", Double(n) / 1_073_741_824)
}

func formatCount(_ n: Int) -> String {
    if n < 1000 { return "\(n)" }
    if n < 1_000_000 { return String(format: "%.1f K", Double(n) / 1e3) }
    if n < 1_000_000_000 { return String(format: "%.1f M", Double(n) / 1e6) }
    return String(format: "%.2f G", Double(n) / 1e9)
}
