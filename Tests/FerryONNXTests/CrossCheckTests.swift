import Foundation
import FerryIR
import FerryONNX
import FerryRuntime
import Testing

/// Runs exported models through `tools/onnx_crosscheck.py`: the ONNX checker with full
/// (strict) shape inference, then onnxruntime. Needs the repository's `.venv` (numpy, onnx,
/// onnxruntime) or a Python named by FERRY_PYTHON; skipped otherwise.
enum CrossCheck {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let tool = root.appendingPathComponent("tools/onnx_crosscheck.py").path
    static let python: String? = {
        let candidates: [String?] = [ProcessInfo.processInfo.environment["FERRY_PYTHON"], root.appendingPathComponent(".venv/bin/python").path]
        return candidates.compactMap { $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()
    static var available: Bool { python != nil }

    /// A fresh temporary directory.
    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-onnx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs the tool; returns its exit status and combined output.
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python!)
        process.arguments = [tool] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A little-endian float32 .npy file (format version 1.0).
    static func npy(_ values: [Float], shape: [Int]) -> Data {
        npy(Tensor(shape: shape, floats: values))
    }

    /// A tensor as a little-endian .npy file (format version 1.0), any element type.
    static func npy(_ tensor: Tensor) -> Data {
        let shape = tensor.shape
        let descr: String
        let body: Data
        switch tensor.storage {
        case .float32(let a): descr = "<f4"; body = a.withUnsafeBytes { Data($0) }
        case .int64(let a): descr = "<i8"; body = a.withUnsafeBytes { Data($0) }
        case .bool(let a): descr = "|b1"; body = Data(a.map { $0 ? 1 : 0 })
        case .float16(let a): descr = "<f2"; body = a.withUnsafeBytes { Data($0) }
        case .int32(let a): descr = "<i4"; body = a.withUnsafeBytes { Data($0) }
        case .int8(let a): descr = "|i1"; body = a.withUnsafeBytes { Data($0) }
        case .uint8(let a): descr = "|u1"; body = Data(a)
        case .float64(let a): descr = "<f8"; body = a.withUnsafeBytes { Data($0) }
        case .int16(let a): descr = "<i2"; body = a.withUnsafeBytes { Data($0) }
        case .uint64(let a): descr = "<u8"; body = a.withUnsafeBytes { Data($0) }
        case .uint32(let a): descr = "<u4"; body = a.withUnsafeBytes { Data($0) }
        case .uint16(let a): descr = "<u2"; body = a.withUnsafeBytes { Data($0) }
        case .bfloat16, .string: preconditionFailure("no test writes \(tensor.dtype) .npy files")
        }
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(dims)), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        data.append(body)
        return data
    }
}

@Suite(.enabled(if: CrossCheck.available, "needs .venv/bin/python with onnx and onnxruntime"), .serialized)
struct CrossCheckTests {
    /// Every graph passes the full checker and runs in onnxruntime at the default opset.
    @Test(arguments: ["tiny_cnn", "broadcast", "every_op"])
    func checkerAndRuntimeAccept(_ which: String) throws {
        let graph = switch which {
        case "tiny_cnn": try Graphs.cnn()
        case "broadcast": try Graphs.broadcast()
        default: try Graphs.everyOp()
        }
        let dir = try CrossCheck.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("\(which).onnx")
        try ONNXExporter.write(graph, to: path)
        let (status, output) = try CrossCheck.run([path.path, "--dim", "N=2", "--dim", "batch=3"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("checker: ok (ir_version 8, opset ai.onnx:17)"))
    }

    /// onnxruntime computes what Ferry's reference runtime computes for every op of the IR,
    /// within 1e-5 of max(1, max |reference|), at the default opset and at the opsets where
    /// ops are written in another form (decomposed before their opset, bounds as inputs).
    @Test(arguments: [17, 13, 24])
    func everyOpMatchesReferenceRuntime(_ opset: Int) throws {
        let graph = try Graphs.everyOp()
        let dir = try CrossCheck.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let batch = 2
        var inputs: [String: Tensor] = [:]
        var arguments: [String] = []
        for (i, value) in graph.inputs.enumerated() {
            let shape = value.type.shape.dims.map { $0.value ?? batch }
            // Values in [-2, 2): beyond the kinks of the piecewise activations.
            let t = Tensor(shape: shape, floats: Graphs.floats(shape.reduce(1, *), seed: 100 + UInt64(i)).map { $0 * 2 })
            inputs[value.name] = t
            let file = dir.appendingPathComponent("in_\(value.name).npy")
            try CrossCheck.npy(t).write(to: file)
            arguments += ["--input", "\(value.name)=\(file.path)"]
        }
        let outputs = try ReferenceRuntime(graph: graph).run(inputs)
        for (name, t) in outputs {
            let file = dir.appendingPathComponent("out_\(name).npy")
            try CrossCheck.npy(t).write(to: file)
            arguments += ["--expect", "\(name)=\(file.path)"]
        }
        let model = dir.appendingPathComponent("every_op-\(opset).onnx")
        try ONNXExporter.write(graph, to: model, opset: opset)
        let r = try CrossCheck.run([model.path, "--rtol", "1e-5"] + arguments)
        #expect(r.status == 0, "opset \(opset): \(r.output)")
        #expect(r.output.components(separatedBy: ": ok").count - 1 == graph.outputs.count + 1, "\(r.output)")
    }

    /// Older and newer opsets load too.
    @Test func otherOpsets() throws {
        let dir = try CrossCheck.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [(Graph, Int)] = [(try Graphs.broadcast(), 7), (try Graphs.cnn(), 9), (try Graphs.cnn(), 11),
                                     (try Graphs.everyOp(), 13), (try Graphs.everyOp(), 21), (try Graphs.everyOp(), 24)]
        for (graph, opset) in cases {
            let path = dir.appendingPathComponent("\(graph.name)-\(opset).onnx")
            try ONNXExporter.write(graph, to: path, opset: opset)
            let (status, output) = try CrossCheck.run([path.path])
            #expect(status == 0, "\(graph.name) opset \(opset): \(output)")
        }
    }

    /// A model written with external data (a small threshold stands in for 2 GiB) loads in
    /// onnx and onnxruntime and computes the same as the inline file.
    @Test func externalDataLoadsInOnnxruntime() throws {
        let dir = try CrossCheck.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("broadcast.onnx")
        #expect(try ONNXExporter.write(try Graphs.everyOp(), to: model, externalDataThreshold: 0,
                                            externalTensorMinimumBytes: 0) != nil)
        let n = 2
        let xFile = dir.appendingPathComponent("x.npy")
        try CrossCheck.npy(Graphs.floats(n * 3 * 9 * 8, seed: 3), shape: [n, 3, 9, 8]).write(to: xFile)
        let inline = dir.appendingPathComponent("inline.onnx")
        try ONNXExporter.write(try Graphs.everyOp(), to: inline)
        let expected = dir.appendingPathComponent("expected")
        let first = try CrossCheck.run([inline.path, "--input", "image=\(xFile.path)", "--save-outputs", expected.path])
        #expect(first.status == 0, "\(first.output)")
        let r = try CrossCheck.run([model.path, "--input", "image=\(xFile.path)",
                                    "--expect", "out=\(expected.appendingPathComponent("out.npy").path)",
                                    "--expect", "gemm=\(expected.appendingPathComponent("gemm.npy").path)", "--rtol", "0"])
        #expect(r.status == 0, "\(r.output)")
    }

    /// onnxruntime computes what the IR means (reference computed here), and the tool's exit
    /// status tells a match (0) from a mismatch (1) and a broken file (2).
    @Test func outputsMatchReference() throws {
        let dir = try CrossCheck.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("broadcast.onnx")
        try ONNXExporter.write(try Graphs.broadcast(), to: model)
        let n = 3
        let x = Graphs.floats(n * 12, seed: 42)
        let y = Graphs.broadcastReference(x, n: n)
        let xFile = dir.appendingPathComponent("x.npy"), yFile = dir.appendingPathComponent("y.npy")
        let badFile = dir.appendingPathComponent("bad.npy")
        try CrossCheck.npy(x, shape: [n, 12]).write(to: xFile)
        try CrossCheck.npy(y, shape: [n, 6]).write(to: yFile)
        try CrossCheck.npy(y.map { $0 + 0.01 }, shape: [n, 6]).write(to: badFile)

        let outputs = dir.appendingPathComponent("out")
        let good = try CrossCheck.run([model.path, "--input", "x=\(xFile.path)", "--expect", "y=\(yFile.path)",
                                       "--save-outputs", outputs.path])
        #expect(good.status == 0, "\(good.output)")
        #expect(good.output.contains("output y: ok"))
        #expect(FileManager.default.fileExists(atPath: outputs.appendingPathComponent("y.npy").path))

        let bad = try CrossCheck.run([model.path, "--input", "x=\(xFile.path)", "--expect", "y=\(badFile.path)"])
        #expect(bad.status == 1, "\(bad.output)")
        #expect(bad.output.contains("output y: FAIL"))

        let broken = dir.appendingPathComponent("broken.onnx")
        try Data([1, 2, 3]).write(to: broken)
        #expect(try CrossCheck.run([broken.path]).status == 2)
        #expect(try CrossCheck.run([model.path, "--input", "nope=\(xFile.path)"]).status == 2)
    }

    /// Pooling with ceil_mode, as restated for ONNX, computes what the IR means, at opset 17
    /// and (where it can be said) at opset 9, and passes the full checker.
    @Test(arguments: PoolCase.all)
    func poolingMatchesIRSemantics(_ pool: PoolCase) throws {
        let dir = try CrossCheck.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let x = Graphs.floats(pool.input.reduce(1, *), seed: 11)
        let (y, shape) = try pool.reference(x)
        let xFile = dir.appendingPathComponent("x.npy"), yFile = dir.appendingPathComponent("y.npy")
        try CrossCheck.npy(x, shape: pool.input).write(to: xFile)
        try CrossCheck.npy(y, shape: shape).write(to: yFile)
        for opset in [17, 9] {
            let model = dir.appendingPathComponent("\(pool.name)-\(opset).onnx")
            do {
                try ONNXExporter.write(try pool.graph(), to: model, opset: opset)
            } catch let e as FerryError where opset < 10 && e.description.contains("opset 10") {
                continue
            }
            let r = try CrossCheck.run([model.path, "--input", "x=\(xFile.path)", "--expect", "y=\(yFile.path)", "--rtol", "1e-5"])
            #expect(r.status == 0, "\(pool.name) opset \(opset): \(r.output)")
        }
    }
}
