import Foundation
import FerryIR
import SwiftProtobuf

/// Writes an IR graph as an ONNX model.
///
/// The IR's ops follow ONNX semantics, so each node becomes one ONNX node of the same op type
/// with its typed attributes; the few attributes that are inputs in ONNX (Reshape's target
/// shape, Clip's bounds) become initializers named after the node. An op newer than the
/// opset (Gelu before 20, Mish before 18, HardSwish before 14) is written as the
/// decomposition the ONNX operator documentation gives, ending in the node's output. Graph inputs and outputs keep their
/// names and shapes (symbolic sizes as `dim_param`), weights are written as little-endian
/// `raw_data`, and the type of every intermediate value goes into `value_info`.
public enum ONNXExporter {
    /// The opset written unless asked otherwise (the IR's op semantics are opset 17's).
    public static let defaultOpset = 17
    public static let producerName = "ferry"
    public static let producerVersion = "0.1.0"

    /// The IR graph as an ONNX model importing the default domain at `opset`. Throws
    /// FerryError naming the node's source layer for an op, attribute or element type that
    /// ONNX opset `opset` cannot express, and for a graph that does not verify.
    public static func model(_ graph: Graph, opset: Int = defaultOpset) throws -> Onnx_ModelProto {
        // A protobuf message cannot exceed 2 GiB; weights that large need ONNX external data.
        let limit = Int(Int32.max)
        guard graph.parameterBytes < limit else {
            throw FerryError("graph '\(graph.name)' holds \(graph.parameterBytes) bytes of weights; "
                             + "ONNX files over 2 GiB need external data: write the model to a file (`write`)")
        }
        return try model(graph, opset: opset, inlineWeights: true)
    }

    /// The model; with `inlineWeights` false, the graph's initializers are left out (the
    /// streaming writer appends them), but small ones the exporter makes (Reshape targets) stay.
    static func model(_ fusedGraph: Graph, opset: Int, inlineWeights: Bool) throws -> Onnx_ModelProto {
        // ONNX has no fused Conv/Gemm activations: write them as the nodes they stand for.
        let graph = fusedGraph.splittingFusedActivations()
        guard supportedOpsets.contains(opset) else {
            throw FerryError("ONNX opset \(opset) is not supported (the exporter writes opsets "
                             + "\(supportedOpsets.lowerBound)...\(supportedOpsets.upperBound))")
        }
        try graph.verify()
        let types = try graph.inferTypes()

        let irVersion = irVersion(forOpset: opset)
        var context = NodeContext(opset: opset, types: types, taken: allNames(graph))

        var g = Onnx_GraphProto()
        g.name = graph.name.isEmpty ? "ferry" : graph.name
        g.input = graph.inputs.map { ONNXTensors.valueInfo($0.name, $0.type) }
        if inlineWeights {
            g.initializer = graph.initializerNamesInUseOrder.map { ONNXTensors.tensor($0, graph.initializers[$0]!) }
        }
        g.node = try graph.nodes.flatMap { try context.nodes($0) }
        g.output = graph.outputs.map { v in
            guard context.unreliableShapes.contains(v.name) else { return ONNXTensors.valueInfo(v.name, v.type) }
            // Only the rank and the named sizes: onnx's shape inference would contradict the rest.
            let dims = v.type.shape.dims.map { d -> Dim in if case .fixed = d { return .symbolic("?") } else { return d } }
            return ONNXTensors.valueInfo(v.name, TensorType(v.type.dtype, Shape(dims)))
        }
        g.initializer += context.extraInitializers.map { ONNXTensors.tensor($0.name, $0.tensor) }

        // Before IR version 4 every initializer had to be listed as a graph input as well.
        if irVersion < 4 {
            g.input += graph.initializerNamesInUseOrder.map { ONNXTensors.valueInfo($0, graph.initializers[$0]!.type) }
            g.input += context.extraInitializers.map { ONNXTensors.valueInfo($0.name, $0.tensor.type) }
        }

        // Types of intermediate values, so that readers (and onnx's strict shape inference)
        // need not rediscover them.
        let outputNames = Set(graph.outputs.map(\.name))
        for node in graph.nodes {
            for name in node.outputs where !outputNames.contains(name) && !context.unreliableShapes.contains(name) {
                if let t = types[name] { g.valueInfo.append(ONNXTensors.valueInfo(name, t)) }
            }
        }

        var model = Onnx_ModelProto()
        model.irVersion = Int64(irVersion)
        var defaultDomain = Onnx_OperatorSetIdProto()
        defaultDomain.domain = ""
        defaultDomain.version = Int64(opset)
        model.opsetImport = [defaultDomain]
        model.producerName = producerName
        model.producerVersion = producerVersion
        model.metadataProps = graph.metadata.sorted { $0.key < $1.key }.map { key, value in
            var entry = Onnx_StringStringEntryProto()
            entry.key = key
            entry.value = value
            return entry
        }
        model.graph = g
        return model
    }

    /// The model's protobuf bytes: the contents of an .onnx file.
    public static func serialize(_ graph: Graph, opset: Int = defaultOpset) throws -> [UInt8] {
        let proto = try model(graph, opset: opset)
        do {
            return try proto.serializedBytes()
        } catch {
            throw FerryError("cannot encode the ONNX model of graph '\(graph.name)': \(error)")
        }
    }

    /// Every value and node name in the graph (new initializers must avoid them).
    static func allNames(_ graph: Graph) -> Set<String> {
        var names = Set(graph.initializers.keys)
        for v in graph.inputs { names.insert(v.name) }
        for v in graph.outputs { names.insert(v.name) }
        for n in graph.nodes {
            names.insert(n.name)
            names.formUnion(n.inputs)
            names.formUnion(n.outputs)
        }
        return names
    }
}
