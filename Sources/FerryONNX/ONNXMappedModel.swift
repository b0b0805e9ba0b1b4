import Foundation
import FerryIR
import SwiftProtobuf
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An .onnx file split at the wire level into the model without its weights' bytes, which
/// SwiftProtobuf decodes (small: nodes, attributes, value types), and the initializers, each a
/// TensorProto without raw_data plus where its raw_data lies in the file. SwiftProtobuf would
/// copy every raw_data into a Data of its own, holding the weights a second time beside the
/// mapped file; this way each weight is copied once, from the mapped file into its tensor.
struct ONNXWireSplit {
    /// ModelProto bytes with GraphProto.initializer (field 5 of ModelProto.graph, field 7) left out.
    var skeleton: [UInt8]
    /// Each graph initializer: the byte ranges of its fields but raw_data, and raw_data's bytes.
    var initializers: [(fields: [Range<Int>], raw: Range<Int>?)]

    /// The split of `bytes`, or nil when they are not laid out as one graph message whose
    /// initializers carry at most one raw_data each (merged repeated messages, groups,
    /// truncated fields): the caller then decodes the whole file, which reports any damage.
    init?(_ bytes: UnsafeRawBufferPointer) {
        var reader = WireReader(bytes: bytes, range: 0..<bytes.count)
        var modelFields: [UInt8] = []
        var graphRange: Range<Int>?
        while let field = reader.next() {
            guard let field else { return nil }
            if field.number == 7, field.wireType == 2 {
                guard graphRange == nil else { return nil }
                graphRange = field.payload
            } else {
                modelFields += bytes[field.whole]
            }
        }
        guard reader.failed == false else { return nil }
        var graphFields: [UInt8] = []
        var initializers: [(fields: [Range<Int>], raw: Range<Int>?)] = []
        if let graphRange {
            var graphReader = WireReader(bytes: bytes, range: graphRange)
            while let field = graphReader.next() {
                guard let field else { return nil }
                guard field.number == 5, field.wireType == 2 else {
                    graphFields += bytes[field.whole]
                    continue
                }
                var tensorReader = WireReader(bytes: bytes, range: field.payload)
                var fields: [Range<Int>] = []
                var raw: Range<Int>?
                while let tensorField = tensorReader.next() {
                    guard let tensorField else { return nil }
                    if tensorField.number == 9, tensorField.wireType == 2 {
                        guard raw == nil else { return nil }
                        raw = tensorField.payload
                    } else {
                        fields.append(tensorField.whole)
                    }
                }
                initializers.append((fields, raw))
            }
            modelFields += ProtobufWire.key(7) + ProtobufWire.varint(graphFields.count) + graphFields
        }
        skeleton = modelFields
        self.initializers = initializers
    }
}
