import Foundation
import FerryIR
import SwiftProtobuf

/// Runs one IR op on constant inputs. The facade passes the reference runtime's kernels, so
/// that the importer can fold constant subgraphs (shape arithmetic feeding Reshape, Slice,
/// Expand...) into the typed attributes the IR keeps; FerryONNX itself never depends on the
/// runtime. Without one, only the importer's own shape facts are folded.
public typealias ConstantEvaluator = @Sendable (Op, [Tensor?]) throws -> [Tensor]

/// Values for graph inputs that an op needs as constants (a Reshape target, Slice bounds or
/// Expand shape fed as a graph input): asked for by name when the importer meets one; a
/// value given becomes a constant and the input leaves the graph. The ONNX node tests feed
/// such operands as inputs; a runtime input cannot fill a typed attribute of the IR.
public typealias InputBinder = (String) -> Tensor?

/// Reads ONNX models into the IR.
///
/// Initializers (raw_data, typed fields, external data beside the model), Constant nodes and
/// constant subgraphs become IR initializers; each node goes through the op table
/// (`ONNXOpTable`: one builder per ONNX op, named like the op, reading attributes with the
/// ONNX defaults). Inputs that ONNX passes as tensors where the IR has typed attributes
/// (Reshape's shape, Slice's starts...) must be constants. Graph inputs that are also
/// initializers (the IR < 4 style) are weights. Value names are kept.
public enum ONNXImporter {
    /// Default-domain opsets read. Below 6, only the ops in `sameSinceOpset1` (and the binary
    /// ops, whose legacy `broadcast` attribute the builders read) are accepted.
    public static let supportedOpsets: ClosedRange<Int> = 1...24

    /// Ops whose opset 1 to 5 forms compute what the later ones do (at most an ignored
    /// `consumed_inputs` attribute, or a legacy form the builder reads).
    static let sameSinceOpset1: Set<String> = [
        "GlobalAveragePool", "GlobalMaxPool", "Not", "And", "Or", "Xor", "Equal", "Greater", "Less",
        "Softplus", "Softsign", "Identity", "Transpose", "MatMul", "Flatten", "Softmax", "LogSoftmax",
        "Relu", "Sigmoid", "Tanh", "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil",
        "LeakyRelu", "Elu", "Selu", "HardSigmoid", "Add", "Sub", "Mul", "Div", "Reshape", "Constant",
    ]

    /// Reads an .onnx file. External tensor data is read from files in the model's folder.
    /// The file is mapped, and each weight is copied once, from the mapping into its tensor,
    /// after which its pages are given back (`ONNXWireSplit`): importing holds the weights
    /// about once.
    public static func load(path: String, evaluate: ConstantEvaluator? = nil, bind: InputBinder? = nil) throws -> Graph {
        let url = URL(fileURLWithPath: path)
        let file = try MappedFile(path: path)
        var proto: Onnx_ModelProto
        var mapped: MappedInitializers?
        do {
            if let split = ONNXWireSplit(file.bytes) {
                proto = try Onnx_ModelProto(serializedBytes: split.skeleton)
                mapped = MappedInitializers(file: file, entries: split.initializers)
            } else {
                // Not laid out as the split expects: decode it whole (protobuf reports damage).
                proto = try Onnx_ModelProto(serializedBytes: Data(file.bytes))
            }
        } catch {
            throw FerryError("not an ONNX model (protobuf: \(error))", file: path)
        }
        do {
            return try importModel(&proto, mapped: mapped, directory: url.deletingLastPathComponent(),
                                   evaluate: evaluate, bind: bind)
        } catch let e as FerryError {
            throw e.inFile(path)
        }
    }

    /// Reads a decoded model. `directory` is where external data files are looked for
    /// (nil: a model with external data is refused).
    public static func model(_ proto: Onnx_ModelProto, directory: URL? = nil,
                             evaluate: ConstantEvaluator? = nil) throws -> Graph {
        var copy = proto
        return try importModel(&copy, mapped: nil, directory: directory, evaluate: evaluate, bind: nil)
    }

    /// The import proper. Initializers are taken out of `proto` one by one as they are read,
    /// so that a model's weights are not held twice; `mapped` holds the graph's initializers
    /// when they were left in the mapped file (then `proto`'s graph has none).
    static func importModel(_ proto: inout Onnx_ModelProto, mapped: MappedInitializers?, directory: URL?,
                            evaluate: ConstantEvaluator?,
                            bind: InputBinder?) throws -> Graph {
        var opsets: [String: Int] = [:]
        for entry in proto.opsetImport {
            let domain = entry.domain == "ai.onnx" ? "" : entry.domain
            opsets[domain] = Int(clamping: entry.version)
        }
        // IR version 3 models may omit the import; they meant opset 1.
        let opset = opsets[""] ?? 1
        guard supportedOpsets.contains(opset) else {
            throw FerryError("ONNX opset \(opset) is not supported (Ferry reads opsets "
                             + "\(supportedOpsets.lowerBound)...\(supportedOpsets.upperBound) of the default domain)")
        }
        guard proto.hasGraph else { throw FerryError("the model has no graph") }
        var graphProto = proto.graph
        proto.graph = Onnx_GraphProto()

        var metadata: [String: String] = [:]
        for entry in proto.metadataProps { metadata[entry.key] = entry.value }
        if let source = metadata["source_format"], source != "onnx", metadata["original_format"] == nil {
            metadata["original_format"] = source
        }
        metadata["source_format"] = "onnx"
        if !proto.producerName.isEmpty {
            metadata["onnx_producer"] = [proto.producerName, proto.producerVersion].filter { !$0.isEmpty }.joined(separator: " ")
        }
        metadata["onnx_opset"] = String(opset)

        let state = ImportState(name: graphProto.name.isEmpty ? "onnx" : graphProto.name, metadata: metadata,
                                opsets: opsets, evaluate: evaluate, bind: bind)
        state.reserveNames(in: graphProto)

        // Weights first: they may also be listed as inputs (IR < 4), which makes them weights.
        var initializers = graphProto.initializer
        graphProto.initializer = []
        let external = directory.map { ONNXImportTensors.ExternalData(directory: $0) }
        // Initializers are kept by name: a second one of a name would silently replace the first
        // (ONNX requires single assignment; its checker refuses such a model too).
        func checkUnique(_ name: String) throws {
            guard state.graph.initializers[name] == nil else {
                throw FerryError("two initializers are named '\(name)' (a value is defined once)")
            }
        }
        for i in initializers.indices {
            let t = initializers[i]
            guard !t.name.isEmpty else { throw FerryError("an initializer has no name") }
            try checkUnique(t.name)
            state.addConstant(t.name, try ONNXImportTensors.tensor(t, external: external))
            initializers[i] = Onnx_TensorProto()  // release its bytes now
        }
        if let mapped {
            for entry in mapped.entries {
                let t = try mapped.header(entry)
                guard !t.name.isEmpty else { throw FerryError("an initializer has no name") }
                try checkUnique(t.name)
                let file = mapped.file
                let raw = entry.raw.map { range in
                    (bytes: file.bytes(range), release: { (copied: Range<Int>) in
                        file.release((range.lowerBound + copied.lowerBound)..<(range.lowerBound + copied.upperBound))
                    })
                }
                state.addConstant(t.name, try ONNXImportTensors.tensor(t, raw: raw, external: external))
            }
        }
        if !graphProto.sparseInitializer.isEmpty {
            throw FerryError("the model has sparse initializers, which Ferry does not read")
        }
        for input in graphProto.input where state.graph.initializers[input.name] == nil {
            let type = try ONNXImportTensors.tensorType(input)
            state.graph.inputs.append(Value(name: input.name, type: type))
            state.types[input.name] = type
        }
        for info in graphProto.valueInfo where !info.name.isEmpty {
            state.declared[info.name] = try? ONNXImportTensors.tensorType(info)
        }

        for node in graphProto.node {
            try state.importNode(node)
        }

        for output in graphProto.output {
            guard let type = state.types[output.name] else {
                throw FerryError("graph output '\(output.name)' is never computed")
            }
            if case .tensorType(let t)? = output.type.value, t.elemType != 0,
               let declared = try? ONNXImportTensors.dtype(t.elemType, what: ""), declared != type.dtype {
                throw FerryError("graph output '\(output.name)' is declared \(declared) but computes \(type.dtype)")
            }
            state.graph.outputs.append(Value(name: output.name, type: type))
        }
        state.pruneUnusedConstants()
        let graph = try state.graph.withInferredOutputTypes()
        try graph.verify()
        return graph
    }
}

/// What the importer knows while it walks the nodes: the graph so far, every value's type,
/// the names in use, and the opsets.
final class ImportState {
    var graph: Graph
    /// Types of every value defined so far (inputs, constants, node outputs).
    var types: [String: TensorType] = [:]
    /// Types the model states in value_info (used to name dimensions; never trusted over inference).
    var declared: [String: TensorType] = [:]
    private var taken = Set<String>()
    let opsets: [String: Int]
    let evaluate: ConstantEvaluator?
    let bind: InputBinder?

    init(name: String, metadata: [String: String], opsets: [String: Int], evaluate: ConstantEvaluator?, bind: InputBinder?) {
        graph = Graph(name: name, metadata: metadata)
        self.opsets = opsets
        self.evaluate = evaluate
        self.bind = bind
    }

    /// Every name the model uses, so that values the importer makes never collide with one.
    func reserveNames(in g: Onnx_GraphProto) {
        for v in g.input { taken.insert(v.name) }
        for v in g.output { taken.insert(v.name) }
        for t in g.initializer { taken.insert(t.name) }
        for n in g.node {
            taken.formUnion(n.input)
            taken.formUnion(n.output)
        }
    }

    /// A value name based on `base` that nothing uses yet; reserves it.
    func freshName(_ base: String) -> String {
        var name = base
        var i = 1
        while taken.contains(name) {
            name = "\(base)_\(i)"
            i += 1
        }
        taken.insert(name)
        return name
    }

    func constant(_ name: String) -> Tensor? { graph.initializers[name] }

    /// A graph input's value from the binder, made a constant (see `InputBinder`); or a value
    /// that nodes already emitted compute from such inputs and constants alone (the window
    /// functions' expansions compute a Range limit from a size input): then those inputs are
    /// bound, the nodes evaluated, and their outputs become constants in their place.
    func bindInput(_ name: String) -> Tensor? {
        guard let bind else { return nil }
        if let index = graph.inputs.firstIndex(where: { $0.name == name }) {
            guard let t = bind(name) else { return nil }
            graph.inputs.remove(at: index)
            addConstant(name, t)
            return t
        }
        return bindComputed(name, bind)
    }

    private func bindComputed(_ name: String, _ bind: InputBinder) -> Tensor? {
        guard let evaluate else { return nil }
        var producer: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producer[output] = i }
        }
        // The nodes that compute `name` and the graph inputs they start from.
        var needed: Set<Int> = [], inputs: Set<String> = [], seen: Set<String> = []
        var pending = [name]
        while let value = pending.popLast() {
            guard seen.insert(value).inserted, graph.initializers[value] == nil else { continue }
            if let i = producer[value] {
                if needed.insert(i).inserted { pending += graph.nodes[i].inputs.filter { !$0.isEmpty } }
            } else if graph.inputs.contains(where: { $0.name == value }) {
                inputs.insert(value)
            } else {
                return nil
            }
        }
        guard !needed.isEmpty else { return nil }
        // Every value first: nothing changes unless all of it binds and evaluates.
        var values: [String: Tensor] = [:]
        for input in inputs {
            guard let t = bind(input) else { return nil }
            values[input] = t
        }
        for i in needed.sorted() {
            let node = graph.nodes[i]
            let operands = node.inputs.map { $0.isEmpty ? nil : values[$0] ?? graph.initializers[$0] }
            guard zip(node.inputs, operands).allSatisfy({ $0.isEmpty || $1 != nil }),
                  let results = try? evaluate(node.op, operands), results.count >= node.outputs.count else { return nil }
            for (output, t) in zip(node.outputs, results) where !output.isEmpty { values[output] = t }
        }
        graph.inputs.removeAll { inputs.contains($0.name) }
        graph.nodes = graph.nodes.enumerated().filter { !needed.contains($0.offset) }.map(\.element)
        for (value, t) in values { addConstant(value, t) }
        return values[name]
    }

    func addConstant(_ name: String, _ tensor: Tensor) {
        taken.insert(name)
        graph.initializers[name] = tensor
        types[name] = tensor.type
    }

    func importNode(_ proto: Onnx_NodeProto) throws {
        let domain = proto.domain == "ai.onnx" ? "" : proto.domain
        let layer = proto.name.isEmpty ? (proto.output.first { !$0.isEmpty } ?? proto.opType) : proto.name
        let opName = domain.isEmpty ? proto.opType : "\(domain).\(proto.opType)"
        guard let opset = opsets[domain] else {
            throw FerryError("node uses domain '\(domain)', which the model does not import", layer: layer, layerType: opName)
        }
        guard let builder = ONNXOpTable.builders[ONNXOpTable.Key(domain: domain, opType: proto.opType)] else {
            let domainName = domain.isEmpty ? "ai.onnx" : domain
            throw FerryError("ONNX op \(proto.opType) (domain \(domainName), opset \(opset)) is not supported by Ferry",
                             layer: layer, layerType: opName)
        }
        if domain.isEmpty, opset < 6, !ONNXImporter.sameSinceOpset1.contains(proto.opType) {
            throw FerryError("ONNX op \(proto.opType) at opset \(opset) is not read by Ferry (its form before opset 6 differs; "
                             + "Ferry reads it from opset 6)", layer: layer, layerType: opName)
        }
        let node = ONNXNode(proto: proto, state: self, opset: opset, layer: layer)
        do {
            try builder(node)
        } catch let e as FerryError {
            throw e.atLayer(layer, type: opName)
        }
    }

    /// Adds an IR node (or, when every input is a constant and the evaluator can run the op,
    /// its results as constants). Output types come from the IR's shape inference.
    func emit(_ op: Op, inputs: [String], outputs: [String], name: String, origins: [Origin]) throws {
        let inputTypes: [TensorType?] = try inputs.map { n in
            if n.isEmpty { return nil }
            guard let t = types[n] else { throw FerryError("input '\(n)' is not defined before this node") }
            return t
        }
        let outTypes = try op.inferOutputTypes(inputTypes)
        // Recurrent nodes may name a prefix of their outputs, unused ones "".
        guard outTypes.count == outputs.count || (op.hasOptionalOutputs && (1...outTypes.count).contains(outputs.count)) else {
            throw FerryError("\(op.name) makes \(outTypes.count) outputs, the node names \(outputs.count)")
        }
        // Folding makes the results here: no larger than the largest constant input, or than
        // largestMadeConstant (an Expand of a damaged file's numbers stays a node). Outputs of
        // data-dependent size are bounded by their kernels.
        let largestInput = inputs.compactMap { graph.initializers[$0]?.count }.max() ?? 0
        let foldable = outTypes.allSatisfy { ($0.shape.elementCount ?? 0) <= max(largestMadeConstant, largestInput) }
        if let evaluate, foldable, inputs.contains(where: { !$0.isEmpty }),
           inputs.allSatisfy({ $0.isEmpty || graph.initializers[$0] != nil }),
           let results = try? evaluate(op, inputs.map { $0.isEmpty ? nil : graph.initializers[$0] }),
           results.count >= outputs.count, zip(results, outTypes).allSatisfy({ $0.dtype == $1.dtype }) {
            for (n, t) in zip(outputs, results) where !n.isEmpty { addConstant(n, t) }
            return
        }
        for (n, t) in zip(outputs, outTypes) where !n.isEmpty {
            types[n] = t
            taken.insert(n)
        }
        graph.nodes.append(Node(name: name, op: op, inputs: inputs, outputs: outputs, origins: origins))
    }

    /// Drops constants that no node reads and no output names (shape operands folded into
    /// attributes, Constant nodes only used as attributes).
    func pruneUnusedConstants() {
        var used = Set(graph.outputs.map(\.name))
        for n in graph.nodes { used.formUnion(n.inputs) }
        for name in graph.initializers.keys where !used.contains(name) {
            graph.initializers[name] = nil
        }
    }
}

extension ONNXImporter {
    /// The names of a model's graph inputs that are not initializers, in order (what a runner
    /// feeds), each with its declared element type when it is a tensor of a type the IR has.
    public static func feeds(path: String) throws -> [(name: String, dtype: DType?)] {
        let proto: Onnx_ModelProto
        do {
            proto = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped))
        } catch {
            throw FerryError("not a readable ONNX model: \(error)", file: path)
        }
        let weights = Set(proto.graph.initializer.map(\.name))
        return proto.graph.input.filter { !weights.contains($0.name) }.map { input in
            guard case .tensorType(let t)? = input.type.value else { return (input.name, nil) }
            return (input.name, try? ONNXImportTensors.dtype(t.elemType, what: input.name))
        }
    }

    /// A serialized TensorProto (the ONNX test data's `input_0.pb`, `output_0.pb`) as a tensor.
    public static func tensor(serialized bytes: Data, what: String = "tensor") throws -> Tensor {
        let proto: Onnx_TensorProto
        do {
            proto = try Onnx_TensorProto(serializedBytes: bytes)
        } catch {
            throw FerryError("\(what) is not an ONNX TensorProto (protobuf: \(error))")
        }
        return try ONNXImportTensors.tensor(proto, external: nil)
    }

    /// A tensor as a serialized TensorProto (raw_data), for writing test data.
    public static func serializedTensor(_ tensor: Tensor, name: String = "") throws -> Data {
        try ONNXTensors.tensor(name, tensor).serializedData()
    }
}

/// A model's initializers left in its mapped file by `ONNXWireSplit`.
struct MappedInitializers {
    let file: MappedFile
    let entries: [(fields: [Range<Int>], raw: Range<Int>?)]

    /// An initializer's TensorProto without raw_data (name, dims, type, typed fields, external data).
    func header(_ entry: (fields: [Range<Int>], raw: Range<Int>?)) throws -> Onnx_TensorProto {
        var bytes: [UInt8] = []
        for range in entry.fields { bytes += file.bytes(range) }
        do {
            return try Onnx_TensorProto(serializedBytes: bytes)
        } catch {
            throw FerryError("an initializer is not a valid TensorProto (protobuf: \(error))")
        }
    }
}
