import Foundation
import FerryIR
import FerryONNX
import FerryRuntime

/// The ONNX backend node tests (Debian's `libonnx-testdata`, onnx 1.12) as Ferry's conformance
/// suite: each case's `model.onnx` is imported, run with the reference runtime on
/// `test_data_set_*/input_*.pb`, and compared with `output_*.pb` by the upstream runner's rule
/// (`numpy.testing.assert_allclose` with rtol 1e-3, atol 1e-7; exact for non-float outputs;
/// same dtype and shape).
public enum Conformance {
    /// The categories, in the order reports list them.
    public static let categories = ["node", "simple", "pytorch-operator", "pytorch-converted"]
    public static let rtol = 1e-3

    /// Why cases are left out where the error alone would not say it precisely (a semantic
    /// choice, a defect of the test data, a kind of value the IR does not hold and why);
    /// `--update` writes these instead of the error.
    public static let explained: [String: String] = [
        "node/test_cast_FLOAT_to_BFLOAT16":
            "onnx 1.12's generator truncates float32 to bfloat16 (keeps the upper 16 bits); ONNX's reference (onnx 1.23, ml_dtypes), onnxruntime and Ferry round to nearest even: 6 of the 12 elements differ by one bfloat16 ulp",
        "node/test_castlike_FLOAT_to_BFLOAT16":
            "the data feeds 'like' with shape [1] where the model declares [3,4] (Ferry, like onnxruntime, refuses an input that contradicts its declared shape); the expected output also truncates to bfloat16 where ONNX rounds to nearest even",
        "node/test_castlike_FLOAT_to_BFLOAT16_expanded":
            "the data feeds 'like' with shape [1] where the model declares [3,4] (Ferry, like onnxruntime, refuses an input that contradicts its declared shape); the expected output also truncates to bfloat16 where ONNX rounds to nearest even",
        "node/test_castlike_BFLOAT16_to_FLOAT":
            "the data feeds 'like' with shape [1] where the model declares [3,4]; Ferry, like onnxruntime, refuses an input that contradicts its declared shape",
        "node/test_castlike_BFLOAT16_to_FLOAT_expanded":
            "the data feeds 'like' with shape [1] where the model declares [3,4]; Ferry, like onnxruntime, refuses an input that contradicts its declared shape",
        "node/test_training_dropout":
            "Dropout in training mode (ratio 0.75, seed 0) draws a random mask from a generator ONNX leaves undefined; the expected output is numpy's legacy MT19937 stream (np.random.seed(0), uniform >= ratio), which onnxruntime's generator matches on only 62% of the elements; Ferry imports Dropout for inference only",
        "node/test_training_dropout_mask":
            "Dropout in training mode (ratio 0.75, seed 0) draws a random mask from a generator ONNX leaves undefined; the expected output is numpy's legacy MT19937 stream (np.random.seed(0), uniform >= ratio), which onnxruntime's generator matches on only 62% of the elements; Ferry imports Dropout for inference only",
        "node/test_training_dropout_default":
            "Dropout in training mode (ratio 0.5, seed 0) draws a random mask from a generator ONNX leaves undefined; the expected output is numpy's legacy MT19937 stream (np.random.seed(0), uniform >= ratio), which onnxruntime's generator matches on only 47% of the elements; Ferry imports Dropout for inference only",
        "node/test_training_dropout_default_mask":
            "Dropout in training mode (ratio 0.5, seed 0) draws a random mask from a generator ONNX leaves undefined; the expected output is numpy's legacy MT19937 stream (np.random.seed(0), uniform >= ratio), which onnxruntime's generator matches on only 47% of the elements; Ferry imports Dropout for inference only",
        "node/test_identity_sequence":
            "Identity of a sequence of tensors (onnxruntime, which has sequence values, passes it): Ferry's IR holds tensors only; sequence values would be a new kind of value through the IR, runtimes and exporter, which no format Ferry converts from (Keras, Caffe) produces",
        "node/test_identity_opt":
            "Identity of an optional tensor (onnxruntime, which has optional values, passes it): Ferry's IR holds tensors only; optional values would be a new kind of value through the IR, runtimes and exporter, which no format Ferry converts from (Keras, Caffe) produces",
    ]
    public static let atol = 1e-7

    /// Where the test data lives: FERRY_ONNX_TESTDATA, else the Debian package's folder.
    public static func dataRoot() -> URL? {
        let candidates = [ProcessInfo.processInfo.environment["FERRY_ONNX_TESTDATA"],
                          "/usr/share/libonnx-testdata/data"]
        for case let path? in candidates {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path + "/node", isDirectory: &isDirectory), isDirectory.boolValue {
                return URL(fileURLWithPath: path)
            }
        }
        return nil
    }

    /// One test case: `category/name`, a folder with model.onnx and test_data_set_*.
    public struct Case: Sendable, Hashable {
        public var category: String
        public var name: String
        public var directory: URL
        public var id: String { "\(category)/\(name)" }
    }

    /// Every case under the root, sorted by category order then name.
    public static func cases(root: URL) -> [Case] {
        var result: [Case] = []
        for category in categories {
            let dir = root.appendingPathComponent(category)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            for name in names.sorted()
            where FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).appendingPathComponent("model.onnx").path) {
                result.append(Case(category: category, name: name, directory: dir.appendingPathComponent(name)))
            }
        }
        return result
    }

    /// The case of an id `category/name`.
    public static func findCase(_ id: String, root: URL) -> Case? {
        let parts = id.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, categories.contains(parts[0]) else { return nil }
        let dir = root.appendingPathComponent(parts[0]).appendingPathComponent(parts[1])
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.onnx").path) else { return nil }
        return Case(category: parts[0], name: parts[1], directory: dir)
    }

    /// nil when the case passes, else one line saying why not.
    public static func run(_ c: Case) -> String? {
        do {
            try check(c)
            return nil
        } catch let e as FerryError {
            return oneLine(e.message, layer: e.layer, type: e.layerType)
        } catch {
            return oneLine("\(error)", layer: nil, type: nil)
        }
    }

    static func oneLine(_ message: String, layer: String?, type: String?) -> String {
        var text = message
        if let layer { text = "\(layer) (\(type ?? "?")): " + text }
        text = text.replacingOccurrences(of: "\n", with: " ")
        return text.count > 240 ? String(text.prefix(237)) + "..." : text
    }

    /// Imports, runs and compares every test data set of a case; throws the first difference.
    /// Graph inputs that an op needs as constants (shape operands the tests feed as inputs)
    /// are bound to the data set's values at import (`InputBinder`), so each set is imported
    /// on its own.
    public static func check(_ c: Case) throws {
        let modelPath = c.directory.appendingPathComponent("model.onnx").path
        let feeds = try ONNXImporter.feeds(path: modelPath)
        let feedNames = feeds.map(\.name)
        let sets = ((try? FileManager.default.contentsOfDirectory(atPath: c.directory.path)) ?? [])
            .filter { $0.hasPrefix("test_data_set_") }.sorted()
        guard !sets.isEmpty else { throw FerryError("no test_data_set_* folder") }
        for set in sets {
            let dir = c.directory.appendingPathComponent(set)
            let inputs: [Tensor], expected: [Tensor]
            do {
                inputs = try numbered("input", in: dir)
                expected = try numbered("output", in: dir)
            } catch {
                // Sequence and optional test data are not TensorProtos: the import names the
                // non-tensor value more clearly than the decoder.
                _ = try ONNXImporter.load(path: modelPath)
                throw error
            }
            guard inputs.count == feedNames.count else {
                throw FerryError("\(set) has \(inputs.count) inputs, the model takes \(feedNames.count)")
            }
            let values = Dictionary(zip(feedNames, try zip(feeds, inputs).map { try asRunnerFeeds($1, declared: $0.dtype) }),
                                    uniquingKeysWith: { a, _ in a })
            let graph = try ONNXImporter.load(path: modelPath, evaluate: { try ReferenceKernels.evaluate($0, $1) },
                                              bind: { values[$0] })
            let runtime = try ReferenceRuntime(graph: graph)
            guard expected.count == graph.outputs.count else {
                throw FerryError("\(set) has \(expected.count) outputs, the imported graph makes \(graph.outputs.count)")
            }
            var feeds: [String: Tensor] = [:]
            for value in graph.inputs {
                guard let t = values[value.name] else { throw FerryError("no test data for input '\(value.name)'") }
                feeds[value.name] = t
            }
            let results = try runtime.run(feeds)
            for (value, reference) in zip(graph.outputs, expected) {
                guard let actual = results[value.name] else { throw FerryError("output '\(value.name)' was not computed") }
                if let difference = compare(asRunnerSees(actual, reference: reference), reference) {
                    throw FerryError("output '\(value.name)': \(difference)")
                }
            }
        }
    }

    /// onnx 1.12's generator stores bfloat16 test tensors as uint16 tensors of their bits (its
    /// numpy has no bfloat16), and its runner feeds and compares them as such: a uint16 data
    /// tensor for a bfloat16 input is those bits.
    static func asRunnerFeeds(_ t: Tensor, declared: DType?) throws -> Tensor {
        guard declared == .bfloat16, case .uint16(let bits) = t.storage else { return t }
        return try Tensor(shape: t.shape, storage: .bfloat16(bits))
    }

    /// A bfloat16 output as the runner compares it with a uint16 expected tensor: its bits,
    /// exactly (the runner's rule for integer arrays).
    static func asRunnerSees(_ t: Tensor, reference: Tensor) -> Tensor {
        guard reference.dtype == .uint16, case .bfloat16(let bits) = t.storage else { return t }
        return try! Tensor(shape: t.shape, storage: .uint16(bits))
    }

    /// `input_0.pb`, `input_1.pb`, ... in number order.
    static func numbered(_ prefix: String, in dir: URL) throws -> [Tensor] {
        var tensors: [Tensor] = []
        while true {
            let file = dir.appendingPathComponent("\(prefix)_\(tensors.count).pb")
            guard let data = FileManager.default.contents(atPath: file.path) else { return tensors }
            tensors.append(try ONNXImporter.tensor(serialized: data, what: "\(prefix)_\(tensors.count).pb"))
        }
    }

    /// nil when `actual` matches `reference` by the upstream rule, else what differs.
    public static func compare(_ actual: Tensor, _ reference: Tensor) -> String? {
        guard actual.dtype == reference.dtype else { return "dtype \(actual.dtype), expected \(reference.dtype)" }
        guard actual.shape == reference.shape else { return "shape \(actual.shape), expected \(reference.shape)" }
        func floating(_ a: [Double], _ b: [Double]) -> String? {
            var worst: (index: Int, diff: Double)?
            for i in 0..<a.count {
                let x = a[i], y = b[i]
                if x.isNaN || y.isNaN {
                    if x.isNaN != y.isNaN { return "element \(i) is \(x), expected \(y)" }
                    continue
                }
                if x == y { continue }  // equal infinities
                let diff = abs(x - y)
                if !(diff <= atol + rtol * abs(y)), worst == nil || diff > worst!.diff { worst = (i, diff) }
            }
            guard let worst else { return nil }
            return "element \(worst.index) is \(a[worst.index]), expected \(b[worst.index]) (|diff| \(worst.diff); rtol \(rtol), atol \(atol))"
        }
        switch (actual.storage, reference.storage) {
        case (.float32(let a), .float32(let b)):
            return floating(a.map(Double.init), b.map(Double.init))
        case (.float16(let a), .float16(let b)):
            return floating(a.map { Double(Float(float16Bits: $0)) }, b.map { Double(Float(float16Bits: $0)) })
        case (.bfloat16(let a), .bfloat16(let b)):
            // As onnx's runner: both widened to float32 (exactly), then the same rule.
            return floating(a.map { Double(BFloat16.value($0)) }, b.map { Double(BFloat16.value($0)) })
        case (.float64(let a), .float64(let b)):
            return floating(a, b)
        case (.string(let a), .string(let b)):
            guard let i = a.indices.first(where: { a[$0] != b[$0] }) else { return nil }
            return "element \(i) is '\(a[i])', expected '\(b[i])'"
        case (.uint64(let a), .uint64(let b)):
            guard let i = a.indices.first(where: { a[$0] != b[$0] }) else { return nil }
            return "element \(i) is \(a[i]), expected \(b[i])"
        case (.bool(let a), .bool(let b)):
            guard let i = a.indices.first(where: { a[$0] != b[$0] }) else { return nil }
            return "element \(i) is \(a[i]), expected \(b[i])"
        default:
            guard let a = actual.int64s, let b = reference.int64s else { return "cannot compare \(actual.dtype) elements" }
            guard let i = a.indices.first(where: { a[$0] != b[$0] }) else { return nil }
            return "element \(i) is \(a[i]), expected \(b[i])"
        }
    }
}

/// The manifest of cases expected to pass, and a one-line reason for every case left out.
///
/// Format (Tests/FerryONNXTests/conformance.txt): `#` comments; a `[pass]` section with one
/// case id per line; a `[fail]` section with `id: reason` lines.
public struct ConformanceManifest: Sendable {
    public var passing: [String] = []
    public var excluded: [(id: String, reason: String)] = []

    public init() {}

    public init(text: String) throws {
        var section = ""
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line == "[pass]" || line == "[fail]" { section = line; continue }
            switch section {
            case "[pass]": passing.append(line)
            case "[fail]":
                guard let colon = line.firstIndex(of: ":") else {
                    throw FerryError("conformance manifest line \(number + 1): a left-out case needs 'id: reason'")
                }
                excluded.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            default:
                throw FerryError("conformance manifest line \(number + 1): outside a [pass] or [fail] section")
            }
        }
    }

    public var text: String {
        var lines = ["# ONNX backend node tests (Debian libonnx-testdata, onnx 1.12) that Ferry passes: imported,",
                     "# run with the reference runtime, compared with rtol 1e-3 / atol 1e-7. `swift test` fails when a",
                     "# [pass] case breaks; `swift run ferry-conformance` lists cases that pass but are not listed,",
                     "# and `swift run ferry-conformance --update` rewrites this file (reasons come from the errors).",
                     "[pass]"]
        lines += passing
        lines += ["", "[fail]"]
        lines += excluded.map { "\($0.id): \($0.reason)" }
        return lines.joined(separator: "\n") + "\n"
    }
}
