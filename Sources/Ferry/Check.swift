import Foundation
import FerryKeras
import FerryRuntime
import ZIPFoundation

/// Tolerance for one output: an element fails only when its error exceeds both
/// `atol` and `rtol * |reference|` (Polygraphy's rule).
public struct Tolerance: Codable, Sendable, Hashable {
    public var atol: Double
    public var rtol: Double

    public init(atol: Double = 1e-5, rtol: Double = 1e-4) {
        self.atol = atol
        self.rtol = rtol
    }
}

/// What `ferry check` compares and how strictly.
public struct CheckOptions: Sendable {
    /// Random samples to draw when no inputs are given.
    public var samples = 1
    public var seed: UInt64 = 0
    /// The size given to symbolic (batch) dimensions of random inputs.
    public var batch = 1
    /// Value range of random inputs, by input name; `defaultRange` for the others.
    public var ranges: [String: ClosedRange<Float>] = [:]
    public var defaultRange: ClosedRange<Float> = -1...1
    /// Given inputs, one dictionary per sample (replaces random data).
    public var givenSamples: [[String: Tensor]]?
    public var tolerance = Tolerance()
    /// Per-output tolerance overrides.
    public var outputTolerances: [String: Tolerance] = [:]
    /// Compare corresponding layers too, each fed the reference's inputs.
    public var layerwise = false

    public init() {}

    func tolerance(for output: String) -> Tolerance { outputTolerances[output] ?? tolerance }
}

/// Error figures of one tensor against its reference.
public struct Comparison: Codable, Sendable {
    public var name: String
    public var sample: Int
    public var shape: [Int]
    public var maxAbsError: Double
    public var maxRelError: Double
    public var meanAbsError: Double
    public var cosineSimilarity: Double
    /// Share of elements beyond both tolerances.
    public var fractionOutside: Double
    public var tolerance: Tolerance
    /// The smallest atol (with rtol 0) and the smallest rtol (with atol 0) that would pass.
    public var passingAtol: Double
    public var passingRtol: Double
    public var passed: Bool
    /// Set when the shapes differ (then the error figures are meaningless and it fails).
    public var shapeMismatch: String?
}

/// A layer of the reference model and how the other model's same layer compares,
/// fed the reference's inputs.
public struct LayerComparison: Codable, Sendable {
    public var layer: String
    public var type: String
    public var comparison: Comparison
}

/// The outcome of comparing model B against reference model A.
public struct CheckReport: Codable, Sendable {
    public var reference: String
    public var candidate: String
    /// How inputs and outputs were matched, layouts reconciled, data made.
    public var notes: [String]
    public var outputs: [Comparison]
    public var layers: [LayerComparison]?
    public var firstDivergingLayer: String?
    public var passed: Bool

    /// A readable report, one line per output and sample.
    public var text: String {
        var lines = ["ferry check: \(candidate) against \(reference)"]
        lines += notes.map { "  note: \($0)" }
        for c in outputs { lines.append("  " + describe(c)) }
        if let layers {
            lines.append("layer by layer (each fed the reference's inputs):")
            for l in layers { lines.append("  \(l.layer) (\(l.type)): " + describe(l.comparison, named: false)) }
            lines.append(firstDivergingLayer.map { "first layer that diverges: \($0)" } ?? "no layer diverges")
        }
        let failed = outputs.filter { !$0.passed }.count
        lines.append(passed ? "PASS: \(outputs.count) output comparison(s) within tolerance"
                            : "FAIL: \(failed) of \(outputs.count) output comparison(s) outside tolerance")
        return lines.joined(separator: "\n")
    }

    func describe(_ c: Comparison, named: Bool = true) -> String {
        let head = named ? "sample \(c.sample) \(c.name) \(c.shape): " : ""
        if let mismatch = c.shapeMismatch { return head + "FAIL \(mismatch)" }
        func g(_ x: Double) -> String { String(format: "%.3g", x) }
        return head + "\(c.passed ? "ok" : "FAIL") max abs \(g(c.maxAbsError)), max rel \(g(c.maxRelError)), "
            + "mean abs \(g(c.meanAbsError)), cosine \(String(format: "%.6f", c.cosineSimilarity)), "
            + "outside \(String(format: "%.2f", 100 * c.fractionOutside))% "
            + "(atol \(g(c.tolerance.atol)), rtol \(g(c.tolerance.rtol)); passes with atol \(g(c.passingAtol)) or rtol \(g(c.passingRtol)))"
    }

    /// JUnit XML: one test case per output and sample (and per layer with --layerwise).
    public var junitXML: String {
        func escape(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        var cases: [(String, Comparison)] = outputs.map { ("output \($0.name) sample \($0.sample)", $0) }
        cases += (layers ?? []).map { ("layer \($0.layer)", $0.comparison) }
        let failures = cases.filter { !$0.1.passed }.count
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites tests=\"\(cases.count)\" failures=\"\(failures)\">\n"
        xml += "  <testsuite name=\"ferry check \(escape(candidate)) vs \(escape(reference))\" tests=\"\(cases.count)\" failures=\"\(failures)\">\n"
        for (name, c) in cases {
            xml += "    <testcase classname=\"ferry.check\" name=\"\(escape(name))\""
            if c.passed {
                xml += "/>\n"
            } else {
                xml += ">\n      <failure message=\"\(escape(describe(c, named: false)))\"/>\n    </testcase>\n"
            }
        }
        xml += "  </testsuite>\n</testsuites>\n"
        return xml
    }
}

/// Compares a tensor against a reference with the given tolerance.
public func compare(_ result: Tensor, reference: Tensor, name: String, sample: Int, tolerance: Tolerance) -> Comparison {
    var c = Comparison(name: name, sample: sample, shape: reference.shape, maxAbsError: 0, maxRelError: 0,
                       meanAbsError: 0, cosineSimilarity: 1, fractionOutside: 0, tolerance: tolerance,
                       passingAtol: 0, passingRtol: 0, passed: true, shapeMismatch: nil)
    guard result.shape == reference.shape, result.dtype == reference.dtype else {
        c.shapeMismatch = "result is \(result.dtype)\(result.shape), reference \(reference.dtype)\(reference.shape)"
        c.passed = false
        return c
    }
    var a: [Double], b: [Double]
    if let texts = result.strings, let referenceTexts = reference.strings {
        // Text has no distance: an element that differs counts as an infinite error.
        a = texts.map { _ in 0 }
        b = zip(texts, referenceTexts).map { $0 == $1 ? 0 : .nan }
    } else {
        a = asDoubles(result)
        b = asDoubles(reference)
    }
    var sumAbs = 0.0, dot = 0.0, normA = 0.0, normB = 0.0
    var outside = 0
    for (x, ref) in zip(a, b) {
        let err = x.isNaN != ref.isNaN ? Double.infinity : (x.isNaN ? 0 : (x == ref ? 0 : abs(x - ref)))
        let rel = err == 0 ? 0 : err / abs(ref)
        c.maxAbsError = max(c.maxAbsError, err)
        c.maxRelError = max(c.maxRelError, rel)
        sumAbs += err
        if err > tolerance.atol && err > tolerance.rtol * abs(ref) { outside += 1 }
        if x.isFinite && ref.isFinite {
            dot += x * ref
            normA += x * x
            normB += ref * ref
        }
    }
    let n = max(a.count, 1)
    c.meanAbsError = sumAbs / Double(n)
    c.cosineSimilarity = normA == 0 && normB == 0 ? 1 : (normA == 0 || normB == 0 ? 0 : dot / (normA.squareRoot() * normB.squareRoot()))
    c.fractionOutside = Double(outside) / Double(n)
    c.passingAtol = c.maxAbsError
    c.passingRtol = c.maxRelError
    c.passed = outside == 0
    return c
}

func asDoubles(_ t: Tensor) -> [Double] {
    switch t.storage {
    case .float32(let v): return v.map(Double.init)
    case .float16(let v): return v.map { Double(halfToFloat($0)) }
    case .bfloat16(let v): return v.map { Double(BFloat16.value($0)) }
    case .float64(let v): return v
    case .int64(let v): return v.map(Double.init)
    case .int32(let v): return v.map(Double.init)
    case .int16(let v): return v.map(Double.init)
    case .uint64(let v): return v.map(Double.init)
    case .uint32(let v): return v.map(Double.init)
    case .uint16(let v): return v.map(Double.init)
    case .int8(let v): return v.map(Double.init)
    case .uint8(let v): return v.map(Double.init)
    case .bool(let v): return v.map { $0 ? 1 : 0 }
    case .string(let v): return v.map { Double($0) ?? .nan }
    }
}

/// IEEE half bits to Float.
func halfToFloat(_ bits: UInt16) -> Float {
    let sign: Float = bits & 0x8000 != 0 ? -1 : 1
    let exponent = Int(bits >> 10 & 0x1F), mantissa = Float(bits & 0x3FF)
    if exponent == 0 { return sign * mantissa * 0x1p-24 }
    if exponent == 31 { return mantissa == 0 ? sign * .infinity : .nan }
    return sign * (1 + mantissa / 1024) * Float(sign: .plus, exponent: exponent - 15, significand: 1)
}

/// How one model's input or output corresponds to the other's.
struct PortMatch {
    var reference: Value
    var candidate: Value
    /// Permutation taking the reference's layout to the candidate's (nil: same layout).
    var permutation: [Int]?
}

/// Matches ports by name when every reference name exists in the candidate, else by position;
/// reconciles NHWC against NCHW (and the reverse) when the fixed sizes say so.
func matchPorts(_ reference: [Value], _ candidate: [Value], what: String, notes: inout [String]) throws -> [PortMatch] {
    let byName = Dictionary(candidate.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    let pairs: [(Value, Value)]
    if reference.allSatisfy({ byName[$0.name] != nil }) && reference.count == candidate.count {
        pairs = reference.map { ($0, byName[$0.name]!) }
    } else {
        guard reference.count == candidate.count else {
            throw FerryError("the models have different numbers of \(what)s: \(reference.count) and \(candidate.count)")
        }
        pairs = Array(zip(reference, candidate))
        notes.append("\(what)s matched by position: " + pairs.map { "\($0.0.name) = \($0.1.name)" }.joined(separator: ", "))
    }
    return try pairs.map { ref, cand in
        let perm = try layoutPermutation(from: ref.type.shape, to: cand.type.shape, what: "\(what) '\(ref.name)'")
        if let perm {
            notes.append("\(what) '\(ref.name)' is \(perm == [0, 3, 1, 2] ? "NHWC in the reference, NCHW in the candidate" : "NCHW in the reference, NHWC in the candidate"); transposed with perm \(perm)")
        }
        return PortMatch(reference: ref, candidate: cand, permutation: perm)
    }
}

/// nil when the shapes agree; the NHWC<->NCHW permutation when that makes them agree.
func layoutPermutation(from a: Shape, to b: Shape, what: String) throws -> [Int]? {
    func agree(_ x: [Dim], _ y: [Dim]) -> Bool {
        x.count == y.count && zip(x, y).allSatisfy { p, q in p.value == nil || q.value == nil || p == q }
    }
    if agree(a.dims, b.dims) { return nil }
    if a.rank == 4 {
        for perm in [[0, 3, 1, 2], [0, 2, 3, 1]] where agree(perm.map { a.dims[$0] }, b.dims) { return perm }
    }
    throw FerryError("\(what) has shape \(a) in one model and \(b) in the other")
}

/// A small deterministic generator (SplitMix64), so `--seed` reproduces inputs everywhere.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random inputs for a graph: floats uniform in the input's range; integer inputs get indices
/// valid for every Gather they feed (else the range, rounded).
public func randomInputs(for graph: Graph, options: CheckOptions, sample: Int) throws -> [String: Tensor] {
    var rng = SeededGenerator(seed: options.seed &+ UInt64(sample) &* 1_000_003)
    var feeds: [String: Tensor] = [:]
    for input in graph.inputs {
        let shape = input.type.shape.dims.map { $0.value ?? options.batch }
        // The shape comes from the model file: check it before allocating for it.
        guard shape.allSatisfy({ $0 >= 0 }), let count = checkedElementCount(shape), count <= 1 << 30 else {
            throw FerryError("input '\(input.name)' of shape \(shape) is too large to fill with random data")
        }
        let range = options.ranges[input.name] ?? options.defaultRange
        switch input.type.dtype {
        case .float32:
            feeds[input.name] = Tensor(shape: shape, floats: (0..<count).map { _ in Float.random(in: range, using: &rng) })
        case .int64, .int32:
            let upper = indexLimit(for: input.name, in: graph) ?? max(Int(range.upperBound.rounded(.down)), Int(range.lowerBound) + 1)
            let lower = indexLimit(for: input.name, in: graph) != nil ? 0 : Int(range.lowerBound.rounded(.up))
            let values = (0..<count).map { _ in Int64(Int.random(in: lower..<max(upper, lower + 1), using: &rng)) }
            feeds[input.name] = input.type.dtype == .int64
                ? Tensor(shape: shape, int64s: values)
                : try Tensor(shape: shape, storage: .int32(values.map { Int32($0) }))
        case .bool:
            feeds[input.name] = try Tensor(shape: shape, storage: .bool((0..<count).map { _ in Bool.random(using: &rng) }))
        default:
            throw FerryError("random data for \(input.type.dtype) input '\(input.name)' is not supported; give --input files")
        }
    }
    return feeds
}

/// The exclusive upper bound for index values an input may take, when it feeds a Gather's
/// indices (embeddings): the gathered axis's size.
func indexLimit(for input: String, in graph: Graph) -> Int? {
    guard let types = try? graph.inferTypes() else { return nil }
    var limit: Int?
    for node in graph.nodes where node.inputs.count > 1 && node.inputs[1] == input && node.op.name == "Gather" {
        let axisSize: Int? = {
            guard let data = types[node.inputs[0]] else { return nil }
            let axis = node.op.attributeSummary.first { $0.0 == "axis" }.flatMap { Int($0.1) } ?? 0
            guard let a = normalizeAxis(axis, rank: data.shape.rank) else { return nil }
            return data.shape.dims[a].value
        }()
        if let n = axisSize { limit = min(limit ?? n, n) }
    }
    return limit
}

/// Runs reference model `a` and candidate `b` on the same inputs and compares every output.
public func checkModels(reference a: Graph, candidate b: Graph, referenceName: String, candidateName: String,
                        options: CheckOptions) throws -> CheckReport {
    var notes: [String] = []
    let inputs = try matchPorts(a.inputs, b.inputs, what: "input", notes: &notes)
    let outputs = try matchPorts(a.outputs, b.outputs, what: "output", notes: &notes)
    // Outputs come from the plan runtime (what `ferry run` computes); the layer-wise comparison
    // needs the reference runtime's hooks.
    let planA = try PlanRuntime(graph: a)
    let planB = try PlanRuntime(graph: b)
    let samples = try options.givenSamples ?? (0..<options.samples).map { sample in
        do { return try randomInputs(for: a, options: options, sample: sample) } catch let e as FerryError { throw e.inFile(referenceName) }
    }
    if options.givenSamples == nil {
        notes.append("\(options.samples) random sample(s), seed \(options.seed), symbolic dimensions = \(options.batch)")
    }
    var report = CheckReport(reference: referenceName, candidate: candidateName, notes: notes, outputs: [],
                             layers: nil, firstDivergingLayer: nil, passed: true)
    for (k, feeds) in samples.enumerated() {
        let feedsB = try Dictionary(uniqueKeysWithValues: inputs.map { m -> (String, Tensor) in
            guard let t = feeds[m.reference.name] else { throw FerryError("no data for input '\(m.reference.name)'") }
            return (m.candidate.name, try m.permutation.map { try ReferenceKernels.evaluate(.transpose(perm: $0), [t])[0] } ?? t)
        })
        let resultA = try planA.run(feeds)
        let resultB = try planB.run(feedsB)
        for m in outputs {
            var got = resultB[m.candidate.name]!
            if let perm = m.permutation {
                got = try ReferenceKernels.evaluate(.transpose(perm: inversePermutation(perm)), [got])[0]
            }
            report.outputs.append(compare(got, reference: resultA[m.reference.name]!, name: m.reference.name, sample: k,
                                          tolerance: options.tolerance(for: m.reference.name)))
        }
        if options.layerwise && k == 0 {
            let layers = try compareLayers(a, try ReferenceRuntime(graph: a), b, try ReferenceRuntime(graph: b), feeds: feeds, feedsB: feedsB, options: options)
            report.layers = layers
            report.firstDivergingLayer = layers.first { !$0.comparison.passed }?.layer
        }
    }
    report.passed = report.outputs.allSatisfy(\.passed) && report.firstDivergingLayer == nil
    return report
}

func inversePermutation(_ perm: [Int]) -> [Int] {
    var inverse = Array(repeating: 0, count: perm.count)
    for (i, p) in perm.enumerated() { inverse[p] = i }
    return inverse
}

/// The value that carries a source layer's result: the last output of the last node that came
/// from that layer. Keys are layer names (from node origins), in graph order of first appearance.
/// A fused node (several origins) carries the result of the last layer it absorbed.
func layerOutputs(_ graph: Graph, byOrigin: Bool) -> (order: [String], value: [String: String], type: [String: String]) {
    var order: [String] = []
    var value: [String: String] = [:]
    var type: [String: String] = [:]
    for node in graph.nodes {
        guard let out = node.outputs.last(where: { !$0.isEmpty }) else { continue }
        let origin = byOrigin ? node.origins.last : Origin(layer: out, type: node.op.name)
        guard let origin else { continue }
        if value[origin.layer] == nil { order.append(origin.layer) }
        value[origin.layer] = out
        type[origin.layer] = origin.type
    }
    return (order, value, type)
}

/// Runs the candidate with each layer fed the reference's result for the layers before it, so an
/// error shows at the layer that makes it, and compares every layer both models have.
func compareLayers(_ a: Graph, _ runA: ReferenceRuntime, _ b: Graph, _ runB: ReferenceRuntime,
                   feeds: [String: Tensor], feedsB: [String: Tensor], options: CheckOptions) throws -> [LayerComparison] {
    // Without source-layer origins on both sides, nodes are matched by their output value names.
    let byOrigin = a.nodes.contains { !$0.origins.isEmpty } && b.nodes.contains { !$0.origins.isEmpty }
    let layersA = layerOutputs(a, byOrigin: byOrigin), layersB = layerOutputs(b, byOrigin: byOrigin)
    // Which candidate values carry which layer's result, to substitute the reference's tensor.
    var layerOfValueB: [String: String] = [:]
    for (layer, v) in layersB.value where layersA.value[layer] != nil { layerOfValueB[v] = layer }
    var valuesA: [String: Tensor] = [:]
    let wantedA = Set(layersA.value.values)
    _ = try runA.run(feeds, hooks: RunHooks(observe: { node, results in
        for (name, t) in zip(node.outputs, results) where wantedA.contains(name) { valuesA[name] = t }
    }))
    var valuesB: [String: Tensor] = [:]
    let wantedB = Set(layersB.value.values)
    _ = try runB.run(feedsB, hooks: RunHooks(
        observe: { node, results in
            for (name, t) in zip(node.outputs, results) where wantedB.contains(name) { valuesB[name] = t }
        },
        substitute: { node, name in
            let ownLayer = byOrigin ? node.origins.last?.layer : node.outputs.last(where: { !$0.isEmpty })
            guard let layer = layerOfValueB[name], layer != ownLayer,
                  let t = valuesA[layersA.value[layer]!], let own = valuesB[name] else { return nil }
            if t.shape == own.shape { return t }
            // The same layer held in another layout (NHWC reference, NCHW candidate).
            if t.rank == 4, let perm = [[0, 3, 1, 2], [0, 2, 3, 1]].first(where: { p in p.map { t.shape[$0] } == own.shape }) {
                return try? ReferenceKernels.evaluate(.transpose(perm: perm), [t])[0]
            }
            return nil
        }))
    var result: [LayerComparison] = []
    for layer in layersA.order {
        guard let va = layersA.value[layer], let vb = layersB.value[layer],
              let ta = valuesA[va], var tb = valuesB[vb] else { continue }
        if ta.shape != tb.shape, tb.rank == 4,
           let perm = [[0, 3, 1, 2], [0, 2, 3, 1]].first(where: { p in p.map { tb.shape[$0] } == ta.shape }) {
            tb = try ReferenceKernels.evaluate(.transpose(perm: perm), [tb])[0]
        }
        result.append(LayerComparison(layer: layer, type: layersA.type[layer] ?? "?",
                                      comparison: compare(tb, reference: ta, name: layer, sample: 0,
                                                          tolerance: options.tolerance)))
    }
    return result
}


/// Golden files: the inputs and outputs of a model, stored to compare later versions against.
/// Layout: `golden.json` naming every file, `sample_<k>/inputs/*.npy`, `sample_<k>/outputs/*.npy`.
public enum Golden {
    struct Manifest: Codable {
        struct Sample: Codable {
            var inputs: [String: String]
            var outputs: [String: String]
        }
        var model: String
        var samples: [Sample]
    }

    /// Runs the model on each sample's inputs and stores inputs and outputs under `directory`.
    /// Every file is written, or none: all are made first, then written together (golden.json
    /// with them), and the folders made for them are removed again when writing fails.
    public static func save(graph: Graph, modelName: String, samples: [[String: Tensor]], to directory: String) throws {
        let runtime = try PlanRuntime(graph: graph)
        var manifest = Manifest(model: modelName, samples: [])
        let root = URL(fileURLWithPath: directory)
        var files: [(data: Data, path: String)] = []
        for (k, feeds) in samples.enumerated() {
            let outputs = try runtime.run(feeds)
            var entry = Manifest.Sample(inputs: [:], outputs: [:])
            for (kind, tensors) in [("inputs", feeds), ("outputs", outputs)] {
                for (name, t) in tensors {
                    let file = "sample_\(k)/\(kind)/" + outputFileName(for: name)
                    files.append((Data(NumPy.encode(t)), root.appendingPathComponent(file).path))
                    if kind == "inputs" { entry.inputs[name] = file } else { entry.outputs[name] = file }
                }
            }
            manifest.samples.append(entry)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        files.append((try encoder.encode(manifest), root.appendingPathComponent("golden.json").path))
        var made: [URL] = []
        func makeFolder(_ url: URL) throws {
            guard !FileManager.default.fileExists(atPath: url.path) else { return }
            try makeFolder(url.deletingLastPathComponent())
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
            made.append(url)
        }
        do {
            for folder in Set(files.map { URL(fileURLWithPath: $0.path).deletingLastPathComponent() }) {
                try makeFolder(folder)
            }
            try writeFilesAtomically(files)
        } catch {
            // rmdir: only the folders made here, and only when empty.
            for folder in made.reversed() { _ = rmdir(folder.path) }
            if let e = error as? FerryError { throw e }
            throw FerryError("cannot make the folder: \(FerryError.reason(error))", file: directory)
        }
    }

    /// Runs the model on the stored inputs and compares with the stored outputs.
    public static func check(graph: Graph, modelName: String, directory: String, options: CheckOptions) throws -> CheckReport {
        let root = URL(fileURLWithPath: directory)
        let manifestPath = root.appendingPathComponent("golden.json").path
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            throw FerryError("no golden.json here; make one with --save-golden", file: directory)
        }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw FerryError("golden.json is not a golden-file manifest: \(error)", file: manifestPath)
        }
        let runtime = try PlanRuntime(graph: graph)
        var report = CheckReport(reference: "\(directory) (golden files of \(manifest.model))", candidate: modelName,
                                 notes: ["\(manifest.samples.count) stored sample(s)"], outputs: [], layers: nil,
                                 firstDivergingLayer: nil, passed: true)
        for (k, sample) in manifest.samples.enumerated() {
            let feeds = try sample.inputs.mapValues { try NumPy.read(path: root.appendingPathComponent($0).path) }
            let results = try runtime.run(feeds)
            for (name, file) in sample.outputs.sorted(by: { $0.key < $1.key }) {
                let expected = try NumPy.read(path: root.appendingPathComponent(file).path)
                guard let got = results[name] else {
                    throw FerryError("the model has no output '\(name)' that the golden files hold", file: modelName)
                }
                report.outputs.append(compare(got, reference: expected, name: name, sample: k,
                                              tolerance: options.tolerance(for: name)))
            }
        }
        report.passed = report.outputs.allSatisfy(\.passed)
        return report
    }
}

/// Reads an `.npz` archive (numpy.savez / savez_compressed): one tensor per member, keyed by
/// the member name without `.npy`.
public func readNPZ(path: String) throws -> [String: Tensor] {
    let archive: Archive
    do { archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read) } catch {
        throw FerryError("not a readable .npz (zip) archive", file: path)
    }
    var tensors: [String: Tensor] = [:]
    // Every member is read into memory: its header's size is bounded (by 16 GiB and by what
    // deflate can give from its compressed bytes) and the members' sum by the expansion limit a
    // .keras has, before anything is read; a member may not hold more than it declared.
    let members = archive.filter { $0.type == .file && $0.path.hasSuffix(".npy") }
    do {
        for entry in members { try ZipLimits.checkDeclaredSize(entry, entry.path, limit: 1 << 34, archivePath: path) }
        try ZipLimits.checkExpansion(members)
    } catch let e as FerryError {
        throw e.inFile(path)
    }
    struct SizeLie: Error {}
    for entry in members {
        var bytes: [UInt8] = []
        do {
            _ = try archive.extract(entry, skipCRC32: false) { chunk in
                guard bytes.count + chunk.count <= Int(entry.uncompressedSize) else { throw SizeLie() }
                bytes += chunk
            }
        } catch is SizeLie {
            throw FerryError("member '\(entry.path)' holds more than the \(entry.uncompressedSize) bytes its header declares", file: path)
        } catch {
            throw FerryError("member '\(entry.path)' cannot be read: \(error)", file: path)
        }
        do {
            tensors[String(entry.path.dropLast(4))] = try NumPy.decode(bytes, float64AsFloat32: true)
        } catch let e as FerryError {
            throw FerryError("member '\(entry.path)': \(e.message)", file: path)
        }
    }
    return tensors
}
