import FerryConformance
import FerryIR
import Foundation
import Testing

/// The ONNX backend node tests listed in conformance.txt must pass (import, reference runtime,
/// rtol 1e-3 / atol 1e-7). `swift run ferry-conformance` lists cases that pass but are not listed.
@Suite struct ConformanceTests {
    static let manifestPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("conformance.txt").path

    static func manifest() throws -> ConformanceManifest {
        try ConformanceManifest(text: String(contentsOfFile: manifestPath, encoding: .utf8))
    }

    @Test func manifestAccountsForEveryCaseOnce() throws {
        let root = try #require(Conformance.dataRoot(), "install libonnx-testdata (tools/setup.sh) or set FERRY_ONNX_TESTDATA")
        let m = try Self.manifest()
        let listed = m.passing + m.excluded.map(\.id)
        #expect(Set(listed).count == listed.count, "a case is listed twice")
        #expect(Set(listed) == Set(Conformance.cases(root: root).map(\.id)))
        #expect(m.excluded.allSatisfy { !$0.reason.isEmpty })
    }

    @Test func listedCasesPass() throws {
        let root = try #require(Conformance.dataRoot(), "install libonnx-testdata (tools/setup.sh) or set FERRY_ONNX_TESTDATA")
        let m = try Self.manifest()
        #expect(!m.passing.isEmpty)
        var failures: [String] = []
        for id in m.passing {
            guard let c = Conformance.findCase(id, root: root) else {
                failures.append("\(id): no such case")
                continue
            }
            if let reason = Conformance.run(c) { failures.append("\(id): \(reason)") }
        }
        #expect(failures.isEmpty, Comment(rawValue: "\(failures.count) listed cases fail:\n" + failures.joined(separator: "\n")))
    }

    /// The comparison follows numpy's assert_allclose: |a - b| <= atol + rtol * |b|, NaNs match.
    @Test func comparisonRule() throws {
        let ref = Tensor(shape: [3], floats: [1000, 0, .nan])
        #expect(Conformance.compare(Tensor(shape: [3], floats: [1000.9, 0, .nan]), ref) == nil)
        #expect(Conformance.compare(Tensor(shape: [3], floats: [1001.1, 0, .nan]), ref) != nil)
        #expect(Conformance.compare(Tensor(shape: [3], floats: [1000, 1e-6, .nan]), ref) != nil)
        #expect(Conformance.compare(Tensor(shape: [3], floats: [1000, 0, 0]), ref) != nil)
        #expect(Conformance.compare(Tensor(shape: [1, 3], floats: [1000, 0, .nan]), ref) != nil)
        #expect(Conformance.compare(Tensor(shape: [3], int64s: [1, 2, 3]), Tensor(shape: [3], int64s: [1, 2, 3])) == nil)
        #expect(Conformance.compare(Tensor(shape: [3], int64s: [1, 2, 4]), Tensor(shape: [3], int64s: [1, 2, 3])) != nil)
    }
}
