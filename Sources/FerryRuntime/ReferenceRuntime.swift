import COpenBLAS
import FerryIR

/// The naive reference kernels, one static function per op (grouped by family in
/// Convolution.swift, Gemm.swift, Pooling.swift, Activation.swift, Elementwise.swift,
/// Normalization.swift, Reduction.swift, Logic.swift, Cast.swift, Layout.swift, Indexing.swift,
/// Resize.swift and Recurrent.swift). Optimized kernels are tested against these; the optimizer may call
/// `evaluate` to fold constants.
public enum ReferenceKernels {
    /// Whether the reference runtime can run an op on inputs of the given element types
    /// (nil for an absent optional input). Compute ops take float32; data movement takes any.
    public static func supports(_ op: Op, inputTypes: [DType?]) -> Bool {
        switch op {
        case .transpose, .reshape, .flatten, .identity:
            return true
        case .concat, .split, .slice, .pad, .squeeze, .unsqueeze, .tile, .expand, .depthToSpace, .spaceToDepth:
            return true
        case .resize(let a):
            return a.mode == .nearest || inputTypes.first == .float32
        case .detectionOutput, .topK, .maxPoolIndices, .maxUnpool:
            return inputTypes.allSatisfy { $0 == .float32 }
        case .lstm, .gru, .rnn:
            return inputTypes.enumerated().allSatisfy { i, t in t == nil || t == (i == 4 ? .int32 : .float32) }
        case .gather:
            return inputTypes.count == 2 && (inputTypes[1] == .int64 || inputTypes[1] == .int32)
        case .convTranspose:
            return inputTypes.allSatisfy { $0 == nil || $0 == .float32 }
        case .max, .min, .add, .sub, .mul, .div:
            // Every numeric element type, one generic kernel (float16 through float32).
            guard let first = inputTypes.first ?? nil else { return false }
            return first != .bool && inputTypes.allSatisfy { $0 == first }
        case .reduce(.sum, _, _), .reduce(.max, _, _), .reduce(.min, _, _), .reduce(.prod, _, _):
            // Also on int64, int32, int8 or uint8 (shape arithmetic folded by the ONNX importer).
            guard let first = inputTypes.first ?? nil else { return false }
            return [.float32, .float64, .int64, .int32, .int8, .uint8].contains(first)
        case .reduce:
            return inputTypes.allSatisfy { $0 == .float32 || $0 == .float64 }
        case .abs, .neg, .argMax, .argMin:
            // Also on int64, int32, int8 or uint8 throughout.
            guard let first = inputTypes.first ?? nil else { return false }
            return [.float32, .int64, .int32, .int8, .uint8].contains(first) && inputTypes.allSatisfy { $0 == first }
        case .maxPool:
            return inputTypes.count == 1 && [.float32, .float16, .int8, .uint8].contains(inputTypes[0])
        case .clip:
            guard let first = inputTypes.first ?? nil else { return false }
            return [.float32, .int64, .int32, .int8, .uint8].contains(first)
        case .pow:
            // The exponent may be of another type than the base (ONNX Pow's T1).
            return inputTypes.count == 2 && inputTypes.allSatisfy { $0 != nil && $0 != .bool && $0 != .float16 }
        case .conv, .gemm, .matMul, .averagePool, .globalAveragePool, .globalMaxPool,
             .relu, .sigmoid, .tanh, .leakyRelu, .softmax,
             .logSoftmax, .gelu, .elu, .selu, .hardSigmoid, .thresholdedRelu, .prelu,
             .softplus, .softsign, .hardSwish, .mish,
             .exp, .log, .sqrt, .reciprocal, .floor, .ceil, .erf,
             .sum, .mean,
             .batchNormalization, .batchNormalizationTraining, .instanceNormalization, .layerNormalization, .groupNormalization,
             .lrn, .lpNormalization:
            return inputTypes.allSatisfy { $0 == nil || $0 == .float32 }
        case .equal, .greater, .less, .greaterOrEqual, .lessOrEqual:
            guard inputTypes.count == 2, let a = inputTypes[0], a == inputTypes[1] else { return false }
            return a != .bool || op == .equal
        case .not, .and, .or:
            return inputTypes.allSatisfy { $0 == .bool }
        case .where:
            return inputTypes.count == 3 && inputTypes[0] == .bool && inputTypes[1] != nil && inputTypes[1] == inputTypes[2]
        case .cast:
            return true
        }
    }

    /// Runs one op on concrete inputs (nil for an absent optional input) and returns its outputs.
    public static func evaluate(_ op: Op, _ inputs: [Tensor?]) throws -> [Tensor] {
        func input(_ i: Int) throws -> Tensor {
            guard i < inputs.count, let t = inputs[i] else { throw FerryError("\(op.name) is missing input \(i)") }
            return t
        }
        func optional(_ i: Int) -> Tensor? { i < inputs.count ? inputs[i] : nil }
        func all() throws -> [Tensor] { try inputs.indices.map(input) }
        switch op {
        case .conv(let a):
            var result = try conv(try input(0), try input(1), optional(2), a)
            if let residual = optional(3) { result = try add(result, residual) }
            return try applying(a.activation, result)
        case .gemm(let a): return try applying(a.activation, try gemm(try input(0), try input(1), optional(2), a))
        case .matMul: return [try matMul(try input(0), try input(1))]
        case .convTranspose(let a): return [try convTranspose(try input(0), try input(1), optional(2), a)]
        case .maxPool(let a):
            let (values, indices) = try maxPoolWithIndices(try input(0), a)
            return [values, indices]
        case .averagePool(let a): return [try averagePool(try input(0), a)]
        case .globalAveragePool: return [try globalAveragePool(try input(0))]
        case .globalMaxPool: return [try globalMaxPool(try input(0))]
        case .relu: return [try relu(try input(0))]
        case .sigmoid: return [try sigmoid(try input(0))]
        case .tanh: return [try tanh(try input(0))]
        case .leakyRelu(let alpha): return [try leakyRelu(try input(0), alpha: alpha)]
        case .softmax(let axis): return [try softmax(try input(0), axis: axis)]
        case .logSoftmax(let axis): return [try logSoftmax(try input(0), axis: axis)]
        case .gelu(let approximate): return [try gelu(try input(0), approximate: approximate)]
        case .elu(let alpha): return [try elu(try input(0), alpha: alpha)]
        case .selu(let alpha, let gamma): return [try selu(try input(0), alpha: alpha, gamma: gamma)]
        case .hardSigmoid(let alpha, let beta): return [try hardSigmoid(try input(0), alpha: alpha, beta: beta)]
        case .thresholdedRelu(let alpha): return [try thresholdedRelu(try input(0), alpha: alpha)]
        case .clip(let lo, let hi): return [try clip(try input(0), min: lo, max: hi)]
        case .prelu: return [try prelu(try input(0), slope: try input(1))]
        case .softplus: return [try softplus(try input(0))]
        case .softsign: return [try softsign(try input(0))]
        case .hardSwish: return [try hardSwish(try input(0))]
        case .mish: return [try mish(try input(0))]
        case .abs, .neg, .exp, .log, .sqrt, .reciprocal, .floor, .ceil, .erf:
            return [try unaryMath(op, try input(0))]
        case .add: return [try add(try input(0), try input(1))]
        case .sub: return [try sub(try input(0), try input(1))]
        case .mul: return [try mul(try input(0), try input(1))]
        case .div: return [try div(try input(0), try input(1))]
        case .pow: return [try power(try input(0), try input(1))]
        case .max: return [try maximum(try all())]
        case .min: return [try minimum(try all())]
        case .sum: return [try sum(try all())]
        case .mean: return [try mean(try all())]
        case .batchNormalization(let epsilon):
            return [try batchNormalization(try input(0), scale: try input(1), bias: try input(2), mean: try input(3),
                                           variance: try input(4), epsilon: epsilon)]
        case .batchNormalizationTraining(let epsilon, let momentum):
            let r = try batchNormalizationTraining(try input(0), scale: try input(1), bias: try input(2), mean: try input(3),
                                                   variance: try input(4), epsilon: epsilon, momentum: momentum)
            return [r.y, r.runningMean, r.runningVariance]
        case .instanceNormalization(let epsilon):
            return [try instanceNormalization(try input(0), scale: try input(1), bias: try input(2), epsilon: epsilon)]
        case .layerNormalization(let axis, let epsilon):
            return [try layerNormalization(try input(0), scale: try input(1), bias: optional(2), axis: axis, epsilon: epsilon)]
        case .groupNormalization(let groups, let epsilon):
            return [try groupNormalization(try input(0), scale: try input(1), bias: try input(2), numGroups: groups, epsilon: epsilon)]
        case .lrn(let size, let alpha, let beta, let bias):
            return [try lrn(try input(0), size: size, alpha: alpha, beta: beta, bias: bias)]
        case .lpNormalization(let axis, let p): return [try lpNormalization(try input(0), axis: axis, p: p)]
        case .reduce(let operation, let axes, let keepDims):
            return [try reduce(try input(0), operation, axes: axes, keepDims: keepDims)]
        case .argMax(let axis, let keepDims, let last):
            return [try argExtreme(try input(0), largest: true, axis: axis, keepDims: keepDims, selectLastIndex: last)]
        case .argMin(let axis, let keepDims, let last):
            return [try argExtreme(try input(0), largest: false, axis: axis, keepDims: keepDims, selectLastIndex: last)]
        case .topK(let axis, let k, let largest): return try topK(try input(0), axis: axis, k: k, largest: largest)
        case .maxPoolIndices(let a): return [try maxPoolIndices(try input(0), a)]
        case .maxUnpool(let h, let w): return [try maxUnpool(try input(0), try input(1), outputHeight: h, outputWidth: w)]
        case .equal, .greater, .less, .greaterOrEqual, .lessOrEqual:
            return [try compare(op, try input(0), try input(1))]
        case .not: return [try not(try input(0))]
        case .and: return [try logical(try input(0), try input(1), conjunction: true)]
        case .or: return [try logical(try input(0), try input(1), conjunction: false)]
        case .where: return [try select(try input(0), try input(1), try input(2))]
        case .cast(let to): return [try cast(try input(0), to: to)]
        case .flatten(let axis): return [try flatten(try input(0), axis: axis)]
        case .reshape(let shape, let allowZero): return [try reshape(try input(0), target: shape, allowZero: allowZero)]
        case .transpose(let perm): return [try transpose(try input(0), perm: perm)]
        case .identity: return [identity(try input(0))]
        case .concat(let axis): return [try concat(try (0..<inputs.count).map(input), axis: axis)]
        case .split(let axis, let sizes): return try split(try input(0), axis: axis, sizes: sizes)
        case .slice(let a): return [try slice(try input(0), a)]
        case .pad(let a): return [try pad(try input(0), a)]
        case .squeeze, .unsqueeze: return [try reshapeAs(op, try input(0))]
        case .tile(let repeats): return [try tile(try input(0), repeats: repeats)]
        case .expand(let shape): return [try expand(try input(0), shape: shape)]
        case .gather(let axis): return [try gather(try input(0), try input(1), axis: axis)]
        case .depthToSpace(let b, let mode): return [try depthToSpace(try input(0), blockSize: b, mode: mode)]
        case .spaceToDepth(let b): return [try spaceToDepth(try input(0), blockSize: b)]
        case .resize(let a): return [try resize(try input(0), a)]
        case .lstm, .gru, .rnn: return try recurrent(op, inputs)
        case .detectionOutput(let a): return [try detectionOutput(try input(0), try input(1), try input(2), a)]
        }
    }
}

extension ReferenceKernels {
    /// A fused activation applied after the kernel, by the standalone activation's kernel.
    static func applying(_ activation: FusedActivation?, _ result: Tensor) throws -> [Tensor] {
        guard let activation else { return [result] }
        if let op = activation.op { return try evaluate(op, [result]) }
        switch activation {
        case .swish(let beta):
            let scaled = beta == 1 ? result : try mul(result, Tensor(shape: [1], floats: [beta]))
            return [try mul(result, try sigmoid(scaled))]
        default:
            throw FerryError("fused activation \(activation) has no reference kernel")
        }
    }
}

/// Callbacks into a run: `observe` sees each node's outputs as they are computed;
/// `substitute` may return a tensor to use instead of a value a node reads.
public struct RunHooks {
    public var observe: ((Node, [Tensor]) -> Void)?
    public var substitute: ((Node, String) -> Tensor?)?

    public init(observe: ((Node, [Tensor]) -> Void)? = nil, substitute: ((Node, String) -> Tensor?)? = nil) {
        self.observe = observe
        self.substitute = substitute
    }
}

/// Runs a graph node by node with the reference kernels: no planning, no arena. Each
/// intermediate tensor is released after its last use.
public struct ReferenceRuntime: Sendable {
    public let graph: Graph
    /// For each node, the values whose last use it is (released after it runs).
    private let releaseAfter: [[String]]

    /// Validates the graph (it verifies, every op is supported on its inferred dtypes) and,
    /// when `threads` is given, sets the number of OpenBLAS threads (a process-wide setting).
    public init(graph: Graph, threads: Int? = nil) throws {
        try graph.verify()
        let types = try graph.inferTypes()
        for node in graph.nodes {
            let inputTypes = node.inputs.map { $0.isEmpty ? nil : types[$0]?.dtype }
            guard ReferenceKernels.supports(node.op, inputTypes: inputTypes) else {
                let (layer, type) = node.sourceLayer
                let described = zip(node.inputs, inputTypes).filter { !$0.0.isEmpty }
                    .map { "'\($0.0)' \($0.1.map(\.description) ?? "?")" }.joined(separator: ", ")
                throw FerryError("node '\(node.name)': the reference runtime runs \(node.op.name) on float32 only, got \(described)",
                                 layer: layer, layerType: type)
            }
        }
        if let threads {
            guard threads >= 1 else { throw FerryError("thread count must be at least 1, got \(threads)") }
            openblas_set_num_threads(Int32(clamping: threads))
        }

        // Liveness: a value produced or fed in is released after the last node reading it,
        // unless it is a graph output. Initializers stay in the graph and are never released.
        let outputs = Set(graph.outputs.map(\.name))
        var lastUse: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for name in node.inputs where !name.isEmpty { lastUse[name] = i }
        }
        var release = Array(repeating: [String](), count: graph.nodes.count)
        for (i, node) in graph.nodes.enumerated() {
            // Outputs nobody reads are dropped right away.
            for name in node.outputs where !name.isEmpty && lastUse[name] == nil && !outputs.contains(name) {
                release[i].append(name)
            }
        }
        for (name, i) in lastUse where !outputs.contains(name) && graph.initializers[name] == nil {
            release[i].append(name)
        }
        self.graph = graph
        self.releaseAfter = release
    }

    /// Runs the graph on inputs keyed by graph input name; returns the graph outputs by name.
    /// `hooks` let a caller watch every node's outputs and replace values nodes read (layer-wise
    /// comparison feeds one model's tensors into another).
    public func run(_ inputs: [String: Tensor], hooks: RunHooks? = nil) throws -> [String: Tensor] {
        var live = try bindInputs(inputs)
        for (i, node) in graph.nodes.enumerated() {
            let (layer, type) = node.sourceLayer
            do {
                var args: [Tensor?] = []
                args.reserveCapacity(node.inputs.count)
                for name in node.inputs {
                    if name.isEmpty { args.append(nil); continue }
                    if let replacement = hooks?.substitute?(node, name) {
                        args.append(replacement)
                        continue
                    }
                    guard let t = live[name] ?? graph.initializers[name] else {
                        throw FerryError("node '\(node.name)': input '\(name)' is not available")
                    }
                    args.append(t)
                }
                let results = try ReferenceKernels.evaluate(node.op, args)
                let listed = node.op.hasOptionalOutputs ? results.count >= node.outputs.count : results.count == node.outputs.count
                guard listed else {
                    throw FerryError("node '\(node.name)' has \(node.outputs.count) outputs, \(node.op.name) made \(results.count)")
                }
                for (name, t) in zip(node.outputs, results) where !name.isEmpty { live[name] = t }
                hooks?.observe?(node, results)
            } catch let e as FerryError {
                throw e.atLayer(layer, type: type)
            } catch {
                throw FerryError("\(error)", layer: layer, layerType: type)
            }
            for name in releaseAfter[i] { live[name] = nil }
        }
        var results: [String: Tensor] = [:]
        for out in graph.outputs {
            guard let t = live[out.name] ?? graph.initializers[out.name] else {
                throw FerryError("graph '\(graph.name)': output '\(out.name)' was not computed")
            }
            results[out.name] = t
        }
        return results
    }

    /// Checks the given tensors against the graph inputs (names, dtypes, ranks, fixed sizes,
    /// one size per symbolic dimension name) and returns them as the first live values.
    func bindInputs(_ inputs: [String: Tensor]) throws -> [String: Tensor] {
        try Self.bind(inputs, to: graph.inputs)
    }

    /// Checks inputs against a graph's input values (names, dtypes, fixed sizes, one size per
    /// symbolic dimension); returns them keyed by name.
    static func bind(_ inputs: [String: Tensor], to graphInputs: [Value]) throws -> [String: Tensor] {
        func describeInputs() -> String {
            graphInputs.map { "'\($0.name)' \($0.type)" }.joined(separator: ", ")
        }
        let expected = Set(graphInputs.map(\.name))
        let unknown = inputs.keys.filter { !expected.contains($0) }.sorted()
        if !unknown.isEmpty {
            let list = unknown.map { "'\($0)'" }.joined(separator: ", ")
            throw FerryError("unknown input\(unknown.count > 1 ? "s" : "") \(list); the model's inputs are \(describeInputs())")
        }
        var bound: [String: (size: Int, input: String)] = [:]
        var live: [String: Tensor] = [:]
        for value in graphInputs {
            guard let t = inputs[value.name] else {
                throw FerryError("missing input '\(value.name)' (\(value.type)); the model's inputs are \(describeInputs())")
            }
            let shapeText = "[" + t.shape.map(String.init).joined(separator: ",") + "]"
            guard t.dtype == value.type.dtype else {
                throw FerryError("input '\(value.name)' is \(t.dtype) but the model expects \(value.type.dtype)")
            }
            let dims = value.type.shape.dims
            var fits = t.rank == dims.count
            if fits {
                for (size, dim) in zip(t.shape, dims) {
                    if case .fixed(let n) = dim, n != size { fits = false }
                }
            }
            guard fits else {
                throw FerryError("input '\(value.name)' has shape \(shapeText) but the model expects \(value.type.shape)")
            }
            for (size, dim) in zip(t.shape, dims) {
                guard case .symbolic(let symbol) = dim else { continue }
                if let previous = bound[symbol] {
                    guard previous.size == size else {
                        throw FerryError("input '\(value.name)' has shape \(shapeText), binding \(symbol) = \(size), but input '\(previous.input)' set \(symbol) = \(previous.size)")
                    }
                } else {
                    bound[symbol] = (size, value.name)
                }
            }
            live[value.name] = t
        }
        return live
    }
}
