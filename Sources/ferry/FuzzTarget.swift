import ArgumentParser
import Ferry
import Foundation

/// `ferry fuzz-target`: the in-process end of tools/fuzz.py. Starting a process per case costs
/// more than the case itself, so one process takes many cases from standard input and answers
/// one line each; the driver restarts it when it dies, and the case it was given last is the one
/// that crashed it. Hidden from help.
///
/// A case is a header line `CASE <id> <file count>`, then per file a line `<name> <byte count>`
/// and the bytes. The first file is the model (a `.npy` under `--model` is the input instead);
/// a file named `weights.*` is passed as `--weights`; the others sit beside it (a prototxt's
/// caffemodel). Each case is read the way `ferry inspect` reads it, and a model that reads is
/// optimized and run on random inputs, as `ferry run` does. The answer is
/// `<id> <outcome> <message>`, outcome `ran`, `read` (too large to run here), `refused` (a
/// FerryError, as the CLI reports it) or `unclear` (another error: the CLI would print it
/// without saying which file or layer).
struct FuzzTarget: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz-target", abstract: "Read fuzz cases from standard input (tools/fuzz.py).",
        shouldDisplay: false)

    @Option(help: "Model a .npy case is fed to.")
    var model: String?

    @Option(help: "Folder for the case files (default: a new one under /dev/shm or the temporary folder).")
    var work: String?

    @Option(help: "Largest activation (elements) a case may need to be run rather than only read (and 50 FLOPs per element of it).")
    var runLimit = 1_000_000

    func run() throws {
        CrashReport.install()
        let base = work ?? (FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory())
        let folder = URL(fileURLWithPath: base).appendingPathComponent("ferry-fuzz-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let npyModel = try model.map { try loadModel(path: $0) }
        var input = StandardInput()
        while let header = input.line() {
            let parts = header.split(separator: " ")
            guard parts.count == 3, parts[0] == "CASE", let count = Int(parts[2]) else {
                throw FerryError("fuzz-target: bad case header '\(header)'")
            }
            let id = parts[1]
            var paths: [String] = []
            for entry in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
                try FileManager.default.removeItem(at: folder.appendingPathComponent(entry))
            }
            for _ in 0..<count {
                guard let line = input.line(), let space = line.lastIndex(of: " "),
                      let size = Int(line[line.index(after: space)...]), let bytes = input.bytes(size) else {
                    throw FerryError("fuzz-target: truncated case \(id)")
                }
                let name = String(line[..<space])
                guard !name.contains("/"), !name.hasPrefix(".") else { throw FerryError("fuzz-target: bad file name '\(name)'") }
                let path = folder.appendingPathComponent(name).path
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                paths.append(path)
            }
            let (outcome, message) = runCase(paths, npyModel: npyModel)
            let oneLine = message.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: folder.path + "/", with: "")
            FileHandle.standardOutput.write(Data("\(id) \(outcome) \(oneLine.prefix(300))\n".utf8))
        }
    }

    func runCase(_ paths: [String], npyModel: Graph?) -> (String, String) {
        guard let main = paths.first else { return ("refused", "no files") }
        do {
            var graph: Graph
            var feeds: [String: Tensor]?
            if let npyModel {
                graph = npyModel
                let tensor = try NumPy.read(path: main, float64AsFloat32: true)
                guard let first = npyModel.inputs.first else { return ("read", "") }
                feeds = [first.name: tensor]
            } else {
                let weights = paths.dropFirst().first { URL(fileURLWithPath: $0).lastPathComponent.hasPrefix("weights.") }
                graph = try loadModel(path: main, weights: weights)
                _ = ModelSummary(graph: graph, file: main).text
            }
            graph = try optimizeModel(consume graph).graph
            if feeds == nil {
                // Cases that would take seconds to run here are only read: the time limit is for hangs.
                guard let largest = largestActivation(graph), largest <= runLimit,
                      let flops = graph.estimatedFLOPs(batch: 1), flops <= 50 * runLimit else { return ("read", "") }
                feeds = try randomInputs(for: graph, options: CheckOptions(), sample: 0)
            }
            _ = try runModel(graph, inputs: feeds!, threads: 1)
            return ("ran", "")
        } catch let error as FerryError {
            return ("refused", error.description)
        } catch {
            return ("unclear", "\(type(of: error)): \(error)")
        }
    }

    /// The element count of the largest value when the graph runs at batch 1, if every shape is known.
    func largestActivation(_ graph: Graph) -> Int? {
        guard let types = try? graph.bindingSymbolicDims(to: 1).inferTypes() else { return nil }
        var largest = 0
        for type in types.values {
            guard let sizes = type.shape.fixedSizes, let n = checkedElementCount(sizes) else { return nil }
            largest = max(largest, n)
        }
        return largest
    }
}

/// Unbuffered-enough reading of standard input: lines and exact byte counts.
struct StandardInput {
    private var buffer: [UInt8] = []
    private var start = 0
    private var atEnd = false

    private mutating func fill() -> Bool {
        guard !atEnd else { return false }
        if start > 0 {
            buffer.removeFirst(start)
            start = 0
        }
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        guard n > 0 else {
            atEnd = true
            return false
        }
        buffer += chunk[0..<n]
        return true
    }

    mutating func line() -> String? {
        while true {
            if let nl = buffer[start...].firstIndex(of: 0x0A) {
                let text = String(decoding: buffer[start..<nl], as: UTF8.self)
                start = nl + 1
                return text
            }
            guard fill() else { return nil }
        }
    }

    mutating func bytes(_ count: Int) -> [UInt8]? {
        while buffer.count - start < count {
            guard fill() else { return nil }
        }
        let out = Array(buffer[start..<(start + count)])
        start += count
        return out
    }
}

/// On a fatal signal the fuzz target prints the crashed thread's stack with glibc's
/// `backtrace_symbols_fd` (it unwinds through C libraries built without frame pointers, such as
/// libhdf5), one `library(symbol+offset) [address]` line per frame, so that tools/fuzz.py can
/// tell a crash inside libhdf5 from one in Ferry's code. A hang is shown the same way: the
/// driver sends SIGABRT. Then the signal is raised again with its default action.
///
/// The handler allocates nothing: a crash inside libhdf5 is often a write past a heap buffer
/// (H5HG_read), and a handler that formatted a String with a trashed heap died silently, so the
/// crash looked like one in Ferry. Its stack, frame buffer and messages live in their own
/// mapping, away from the heap.
enum CrashReport {
    typealias Backtrace = @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?, Int32) -> Int32
    typealias SymbolsToFD = @convention(c) (UnsafePointer<UnsafeMutableRawPointer?>?, Int32, Int32) -> Void
    nonisolated(unsafe) static var backtrace: Backtrace?
    nonisolated(unsafe) static var symbols: SymbolsToFD?
    static let frameCapacity = 128, messageSize = 64, signalCount = 32, stackSize = 1 << 16
    /// [alternate stack | frames | one message per signal number], mapped at install.
    nonisolated(unsafe) static var region: UnsafeMutableRawPointer?

    static func install() {
        guard let b = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "backtrace"),
              let s = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "backtrace_symbols_fd") else { return }
        let size = stackSize + frameCapacity * MemoryLayout<UnsafeMutableRawPointer?>.stride + signalCount * messageSize
        let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let mapped, mapped != MAP_FAILED else { return }
        region = mapped
        backtrace = unsafeBitCast(b, to: Backtrace.self)
        symbols = unsafeBitCast(s, to: SymbolsToFD.self)
        _ = backtrace?(frames, 1)  // loads libgcc_s now, not inside the handler
        for sig in 0..<Int32(signalCount) {
            let text = Array("fatal signal \(sig); stack:\n".utf8.prefix(messageSize - 1)) + [0]
            text.withUnsafeBytes { (message(sig) as UnsafeMutableRawPointer).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
        // A stack of its own, so that a stack overflow can still be reported.
        var stack = stack_t()
        stack.ss_sp = mapped
        stack.ss_size = stackSize
        sigaltstack(&stack, nil)
        for sig in [SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGILL, SIGTRAP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in
                if sig >= 0 && sig < Int32(CrashReport.signalCount) {
                    let text = CrashReport.message(sig)
                    _ = write(2, text, strlen(text.assumingMemoryBound(to: CChar.self)))
                }
                if let count = CrashReport.backtrace?(CrashReport.frames, Int32(CrashReport.frameCapacity)) {
                    CrashReport.symbols?(CrashReport.frames, count, 2)
                }
                signal(sig, SIG_DFL)
                raise(sig)
            }
            action.sa_flags = Int32(SA_ONSTACK)
            sigaction(sig, &action, nil)
        }
    }

    static var frames: UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        (region! + stackSize).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }

    static func message(_ sig: Int32) -> UnsafeMutableRawPointer {
        region! + stackSize + frameCapacity * MemoryLayout<UnsafeMutableRawPointer?>.stride + Int(sig) * messageSize
    }
}
