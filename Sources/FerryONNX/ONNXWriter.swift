import Foundation
import FerryIR
import SwiftProtobuf

/// Writes .onnx files without building the whole file in memory: the model without its
/// weights is encoded by SwiftProtobuf, and each weight tensor is streamed from the graph's
/// own storage into the file (inline as raw_data, or into `X.onnx.data` as ONNX external data
/// when the file would pass the threshold). Converting thus holds the weights once, plus one
/// tensor's bytes for non-float32 types.
extension ONNXExporter {
    /// Protobuf messages are limited to 2 GiB; above this many weight bytes, external data.
    public static let defaultExternalDataThreshold = Int(Int32.max) - (64 << 20)
    /// Tensors smaller than this stay inline even in a model with external data (as onnx's
    /// `convert_model_to_external_data` does by default).
    public static let externalTensorMinimumBytes = 1024

    /// Writes the model to `url`. When the weights reach `externalDataThreshold` bytes they go
    /// into `<file name>.data` beside it (location relative to the model's folder), those of
    /// `externalTensorMinimumBytes` or more. Both files
    /// are written to temporary names and renamed into place, the data file first.
    /// Returns the data file's URL when one was written.
    @discardableResult
    public static func write(_ graph: Graph, to url: URL, opset: Int = defaultOpset,
                             externalDataThreshold: Int = defaultExternalDataThreshold,
                             externalTensorMinimumBytes: Int = externalTensorMinimumBytes) throws -> URL? {
        let skeleton = try model(graph, opset: opset, inlineWeights: false)
        let external = graph.parameterBytes >= externalDataThreshold
        let dataURL = url.appendingPathExtension("data")
        let dataName = dataURL.lastPathComponent
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        let temporaryData = url.deletingLastPathComponent().appendingPathComponent(".\(dataName).\(UUID().uuidString).tmp")
        var wroteData = false
        do {
            defer {
                try? FileManager.default.removeItem(at: temporary)
                try? FileManager.default.removeItem(at: temporaryData)
            }
            // Each weight's TensorProto without its elements, and where its elements go
            // (inlineCount: raw_data bytes that follow the header, -1 for none).
            var headers: [(name: String, header: [UInt8], inlineCount: Int)] = []
            var dataOffset = 0
            var externalNames: [String] = []
            for name in graph.initializerNamesInUseOrder {
                let tensor = graph.initializers[name]!
                if tensor.dtype == .string {
                    // Strings live in string_data inside the header: never raw_data, never external.
                    headers.append((name, try ONNXTensors.tensor(name, tensor).serializedBytes(), -1))
                    continue
                }
                var proto = Onnx_TensorProto()
                proto.name = name
                proto.dims = tensor.shape.map(Int64.init)
                proto.dataType = Int32(ONNXTensors.dataType(tensor.dtype).rawValue)
                if external && tensor.byteCount >= externalTensorMinimumBytes {
                    // 4 KiB alignment lets readers map tensors in place.
                    dataOffset = (dataOffset + 4095) / 4096 * 4096
                    proto.dataLocation = .external
                    proto.externalData = [("location", dataName), ("offset", String(dataOffset)),
                                          ("length", String(tensor.byteCount))].map { key, value in
                        var entry = Onnx_StringStringEntryProto()
                        entry.key = key
                        entry.value = value
                        return entry
                    }
                    dataOffset += tensor.byteCount
                    externalNames.append(name)
                    headers.append((name, try proto.serializedBytes(), -1))
                } else {
                    headers.append((name, try proto.serializedBytes(), tensor.byteCount))
                }
            }
            var graphProto = skeleton.graph
            var modelProto = skeleton
            modelProto.clearGraph()
            let graphBytes: [UInt8] = try graphProto.serializedBytes()
            graphProto = Onnx_GraphProto()
            let modelBytes: [UInt8] = try modelProto.serializedBytes()

            // GraphProto.initializer is field 5, TensorProto.raw_data field 9, ModelProto.graph field 7.
            var initializerFields: [(prefix: [UInt8], name: String?)] = []
            var graphLength = graphBytes.count
            for h in headers {
                var entry = h.header
                if h.inlineCount >= 0 {
                    entry += ProtobufWire.key(9) + ProtobufWire.varint(h.inlineCount)
                }
                let entryLength = entry.count + max(h.inlineCount, 0)
                let prefix = ProtobufWire.key(5) + ProtobufWire.varint(entryLength) + entry
                graphLength += prefix.count + max(h.inlineCount, 0)
                initializerFields.append((prefix, h.inlineCount >= 0 ? h.name : nil))
            }
            guard graphLength < Int(Int32.max) else {
                throw FerryError("the ONNX graph would be \(graphLength) bytes, over protobuf's 2 GiB; use external data")
            }

            let out = try FileSink(temporary, namedInErrors: url.path)
            try out.write(modelBytes)
            try out.write(ProtobufWire.key(7) + ProtobufWire.varint(graphLength))
            try out.write(graphBytes)
            for field in initializerFields {
                try out.write(field.prefix)
                if let name = field.name { try out.write(graph.initializers[name]!) }
            }
            try out.close()

            if !externalNames.isEmpty {
                let data = try FileSink(temporaryData, namedInErrors: dataURL.path)
                var offset = 0
                for name in externalNames {
                    let tensor = graph.initializers[name]!
                    let aligned = (offset + 4095) / 4096 * 4096
                    if aligned > offset { try data.write([UInt8](repeating: 0, count: aligned - offset)) }
                    try data.write(tensor)
                    offset = aligned + tensor.byteCount
                }
                try data.close()
                try replace(dataURL, with: temporaryData)
                wroteData = true
            }
            try replace(url, with: temporary)
        } catch let e as FerryError {
            throw e.inFile(url.path)
        } catch {
            throw FerryError("cannot write: \(FerryError.reason(error))", file: url.path)
        }
        return wroteData ? dataURL : nil
    }

    private static func replace(_ destination: URL, with source: URL) throws {
        if rename(source.path, destination.path) != 0 {
            throw FerryError("cannot move the written file into place: \(String(cString: strerror(errno)))", file: destination.path)
        }
    }
}

/// An output file written straight from the caller's memory (write(2), no intermediate copy).
final class FileSink {
    private var descriptor: Int32
    /// The file errors name: a sink of a temporary file names the output it becomes.
    private let path: String

    init(_ url: URL, namedInErrors: String? = nil) throws {
        path = namedInErrors ?? url.path
        descriptor = open(url.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else {
            throw FerryError("cannot create the file: \(String(cString: strerror(errno)))", file: path)
        }
    }

    deinit {
        if descriptor >= 0 { _ = closeDescriptor(descriptor) }
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    func write(_ buffer: UnsafeRawBufferPointer) throws {
        var start = 0
        while start < buffer.count {
            let written = writeDescriptor(descriptor, buffer.baseAddress! + start, buffer.count - start)
            if written < 0 {
                if errno == EINTR { continue }
                throw FerryError("cannot write: \(String(cString: strerror(errno)))", file: path)
            }
            start += written
        }
    }

    /// A tensor's elements as little-endian raw_data, straight from its storage when it is float32.
    func write(_ tensor: Tensor) throws {
        #if _endian(little)
        if case .float32(let values) = tensor.storage {
            try values.withUnsafeBytes { try write($0) }
            return
        }
        #endif
        try ONNXTensors.rawData(tensor.storage).withUnsafeBytes { try write($0) }
    }

    func close() throws {
        let d = descriptor
        descriptor = -1
        guard fsync(d) == 0, closeDescriptor(d) == 0 else {
            throw FerryError("cannot write: \(String(cString: strerror(errno)))", file: path)
        }
    }
}

// The C library's calls under names FileSink's own methods do not hide.
private func writeDescriptor(_ d: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(d, p, n) }
private func closeDescriptor(_ d: Int32) -> Int32 { close(d) }
