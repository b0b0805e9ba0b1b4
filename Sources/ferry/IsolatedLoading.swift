import ArgumentParser
import Ferry
import Foundation

/// libhdf5 can crash or loop forever on a damaged file (tools/fuzz.py finds such files), and a
/// crash inside a C library cannot be caught in-process. So before the CLI reads an HDF5-based
/// model (.h5, .keras, Keras JSON + weights), a child `ferry` process reads it first, under a
/// time limit and a memory limit; a crash, hang or runaway allocation there becomes exit 2 with a
/// clear message here, and only a file the child read cleanly is read again in this process.
func loadModelSafely(path: String, weights: String? = nil) throws -> Graph {
    let usesHDF5 = [path, weights ?? ""].contains { p in
        ["h5", "hdf5", "keras", "json"].contains(URL(fileURLWithPath: p).pathExtension.lowercased())
    }
    if usesHDF5, ProcessInfo.processInfo.environment["FERRY_NO_ISOLATION"] == nil {
        try probeInChild(path: path, weights: weights)
    }
    let graph = try loadModel(path: path, weights: weights)
    // Importers record what they dropped or changed (a train_val net's data and loss layers).
    for warning in (graph.metadata["warnings"] ?? "").split(separator: "\n") {
        FileHandle.standardError.write(Data("warning: \(path): \(warning)\n".utf8))
    }
    return graph
}

/// Runs `ferry probe-model` on the file in a child process and turns its failure into a FerryError.
func probeInChild(path: String, weights: String?) throws {
    let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    let limit = ProcessInfo.processInfo.environment["FERRY_PROBE_TIMEOUT"].flatMap(Double.init)
        ?? 60 + Double(size) / 50_000_000
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    process.arguments = ["probe-model", path] + (weights.map { ["--weights", $0] } ?? [])
    process.environment = ProcessInfo.processInfo.environment.merging(["FERRY_NO_ISOLATION": "1"]) { $1 }
    let errors = Pipe()
    process.standardError = errors
    process.standardOutput = FileHandle.nullDevice
    let finished = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in finished.signal() }
    do { try process.run() } catch {
        // No child to be had: read in this process rather than refuse the file.
        return
    }
    if finished.wait(timeout: .now() + limit) == .timedOut {
        process.terminate()
        if finished.wait(timeout: .now() + 2) == .timedOut { kill(process.processIdentifier, SIGKILL) }
        throw FerryError("reading the file did not finish within \(Int(limit)) s (libhdf5 loops on some damaged files); the file is damaged", file: path)
    }
    // The child writes at most an error line, well within a pipe's buffer.
    let message = errors.fileHandleForReading.availableData
    let text = String(decoding: message, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    switch (process.terminationReason, process.terminationStatus) {
    case (.exit, 0):
        return
    case (.exit, 2) where text.hasPrefix("error: "):
        // The child's own error line says what is wrong; it is ours now.
        throw ProbeError(line: String(text.split(separator: "\n")[0]))
    case (.uncaughtSignal, let signal):
        let gib = Double(probeMemoryLimit(files: [path] + (weights.map { [$0] } ?? []))) / Double(1 << 30)
        throw FerryError(String(format: "reading the file crashed (signal %d) inside libhdf5, or ran past the reading process's memory limit of %.1f GiB (FERRY_PROBE_MEMORY); the file is damaged", signal, gib), file: path)
    default:
        throw FerryError("reading the file failed in a child process (status \(process.terminationStatus))\(text.isEmpty ? "" : ": " + text)", file: path)
    }
}

/// An error line already formatted by the child process.
struct ProbeError: Error, CustomStringConvertible {
    var line: String
    var description: String { line }
}

/// `ferry probe-model FILE`: reads a model and exits 0, or prints the error and exits 2.
/// Used by `loadModelSafely` to read HDF5 files in a child process; hidden from help.
struct ProbeModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe-model", abstract: "Read a model and report only whether that worked.",
        shouldDisplay: false)

    @Argument var model: String
    @Option var weights: String?

    func run() throws {
        limitMemory(to: probeMemoryLimit(files: [model] + (weights.map { [$0] } ?? [])))
        _ = try loadModel(path: model, weights: weights)
    }
}

/// Bytes the probing child may allocate: 2 GiB plus 16 times the files (float16 weights double,
/// and a gzip-compressed dataset is allowed up to 1032 times its stored bytes, so this is no
/// bound on real models, only on a damaged file that makes libhdf5 allocate without end: seen
/// reaching 8 GiB in 30 s from a 28 KB `.keras`). FERRY_PROBE_MEMORY (bytes) overrides it.
func probeMemoryLimit(files: [String]) -> Int {
    if let bytes = ProcessInfo.processInfo.environment["FERRY_PROBE_MEMORY"].flatMap(Int.init) { return bytes }
    let sizes = files.map { ((try? FileManager.default.attributesOfItem(atPath: $0)[.size]) as? Int) ?? 0 }
    return (2 << 30) + 16 * sizes.reduce(0, +)
}

/// Caps this process's data segment (heap and private mappings): an allocation beyond it fails,
/// and the process dies instead of taking the machine's memory.
func limitMemory(to bytes: Int) {
    var limit = rlimit(rlim_cur: rlim_t(bytes), rlim_max: rlim_t(bytes))
    _ = setrlimit(__rlimit_resource_t(RLIMIT_DATA.rawValue), &limit)
}
