import Foundation
import FerryKeras
import FerryONNX

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
public func loadModel(path: String, weights: String? = nil) throws -> Graph {
    guard FileManager.default.fileExists(atPath: path) else {
        throw FerryError("no such file", file: path)
    }
    guard let format = ModelFormat(path: path) else {
        throw FerryError("unknown model format (expected .h5, .keras, .prototxt or .onnx)", file: path)
    }
    switch format {
    case .kerasH5:
        return try KerasImporter.load(path: path)
    case .kerasZip:
        throw FerryError("reading Keras 3 .keras files is not supported yet (.h5 is)", file: path)
    case .caffe:
        throw FerryError("reading Caffe models is not supported yet", file: path)
    case .onnx:
        throw FerryError("reading ONNX models is not supported yet", file: path)
    }
}

/// Writes a graph in a format. The file appears whole or not at all.
public func saveModel(_ graph: Graph, to path: String, format: ModelFormat) throws {
    switch format {
    case .onnx:
        let bytes = try ONNXExporter.serialize(graph)
        try writeFileAtomically(Data(bytes), to: path)
    case .kerasH5, .kerasZip:
        throw FerryError("writing Keras models is not supported yet (ONNX is)", file: path)
    case .caffe:
        throw FerryError("writing Caffe models is not supported yet (ONNX is)", file: path)
    }
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
    public var file: String
    public var format: String
    public var inputs: [Port]
    public var outputs: [Port]
    public var nodes: Int
    public var ops: [OpCount]
    public var parameters: Int
    public var parameterBytes: Int
    /// Estimated for batch size 1.
    public var flops: Int?
    public var metadata: [String: String]

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
        lines.append("nodes:      \(nodes)")
        lines.append("ops:        " + ops.map { "\($0.op) x\($0.count)" }.joined(separator: ", "))
        lines.append("parameters: \(parameters) (\(formatBytes(parameterBytes)))")
        lines.append("FLOPs:      " + (flops.map { "\(formatCount($0)) per batch item" } ?? "unknown"))
        return lines.joined(separator: "\n")
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
