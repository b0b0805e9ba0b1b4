import ArgumentParser
import Ferry
import Foundation

/// The `ferry` command: convert, run, inspect and check neural-network models.
/// Thin over the `Ferry` facade; every failure is one `error:` line and exit status 2.
@main
struct FerryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry",
        abstract: "Convert, run and check neural-network models (Keras, Caffe, ONNX).",
        version: "0.1.0",
        subcommands: [Inspect.self, Convert.self, Run.self, Check.self, Bench.self, GraphCommand.self, ProbeModel.self, FuzzTarget.self]
    )

    /// Parses and runs, mapping errors to the documented exit statuses: 0 success,
    /// 1 a check found a difference, 2 bad input or usage.
    static func main() {
        returnLargeBuffersWhenFreed()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as FerryError {
            fail(error.description)
        } catch let error as ProbeError {
            fail(error.line)
        } catch let error as CheckFailed {
            FileHandle.standardError.write(Data((error.summary + "\n").utf8))
            Foundation.exit(1)
        } catch {
            if exitCode(for: error) == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            // One line, as for every other error; `--help` has the details.
            let text = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            fail("error: " + text.replacingOccurrences(of: "Error: ", with: "") + " (see 'ferry --help')")
        }
    }

    static func fail(_ line: String) -> Never {
        FileHandle.standardError.write(Data((line + "\n").utf8))
        Foundation.exit(2)
    }
}

/// Thrown by a check that found outputs differing beyond tolerance (exit status 1).
struct CheckFailed: Error {
    var summary: String
}

/// Options shared by commands that load a model.
struct ModelOptions: ParsableArguments {
    @Option(help: "Weights file: a Caffe .caffemodel when not beside the .prototxt, or the weights .h5 of a Keras .json.")
    var weights: String?

    @Flag(help: "Skip the graph optimizer.")
    var noOptimize = false

    @Option(help: ArgumentHelp("Interface layout: source (the model's own) or nchw.",
                               discussion: "nchw gives a Keras model's channels-last image inputs and outputs the channels-first order (N, C, H, W) of the graph inside: the converted or run graph then has no Transpose at all. Models already channels first are unchanged."))
    var layout: InterfaceLayout = .source

    /// Loads the model at `path` with these options' weights and layout.
    func load(_ path: String) throws -> Graph {
        applyingLayout(try loadModelSafely(path: path, weights: weights), layout)
    }
}

extension InterfaceLayout: ExpressibleByArgument {}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's format, inputs, outputs, op counts, parameters and FLOPs.")

    @Argument(help: "Model file (.h5, .keras, .prototxt, .onnx).")
    var model: String

    @OptionGroup var options: ModelOptions

    @Flag(help: "Print the summary as JSON.")
    var json = false

    @Flag(help: "Print the whole IR graph, one line per node.")
    var ir = false

    @Flag(help: "Optimize, and print each optimizer pass with what it changed (with --ir or --json: of the optimized graph).")
    var passes = false

    func run() throws {
        var graph = try options.load(model)
        var optimizer: OptimizerSummary?
        if passes {
            let result = try optimizeModel(graph)
            graph = result.graph
            optimizer = OptimizerSummary(result)
            if !json { print(result.text) }
            if !json && !ir { return }
        }
        var summary = ModelSummary(graph: graph, file: model)
        summary.optimizer = optimizer
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
        } else {
            print(summary.text)
        }
        if ir { print(graph.dump(), terminator: "") }
    }
}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a model to another format (chosen by the destination's extension or --to).")

    @Argument(help: "Source model.")
    var source: String

    @Argument(help: "Destination file: .onnx, .prototxt (with the .caffemodel beside it), .h5 or .keras.")
    var destination: String

    @Option(help: "Target format: onnx, keras or caffe (default: from the destination's extension).")
    var to: String?

    @Flag(help: "Replace the destination if it exists.")
    var force = false

    @Option(help: "ONNX opset to write, 13 to 21 (default 17).")
    var opset: Int?

    @Flag(help: "ONNX: write the weights to <destination>.data beside the model (external data; automatic at 2 GiB).")
    var externalData = false

    @OptionGroup var options: ModelOptions

    func run() throws {
        let format: ModelFormat
        if let to {
            guard let f = ModelFormat(target: to, path: destination) else {
                throw FerryError("unknown target format '\(to)' (onnx, keras or caffe)")
            }
            format = f
        } else {
            guard let f = ModelFormat(path: destination) else {
                throw FerryError("cannot tell the target format from the extension; use --to onnx|keras|caffe", file: destination)
            }
            format = f
        }
        if let opset {
            guard format == .onnx else { throw FerryError("--opset applies to ONNX output only", file: destination) }
            guard (13...21).contains(opset) else { throw FerryError("--opset \(opset): ONNX output is written at opsets 13 to 21") }
        }
        if externalData && format != .onnx {
            throw FerryError("--external-data applies to ONNX output only", file: destination)
        }
        let files = outputFiles(for: destination, format: format)
        // ONNX may also write its weights to <destination>.data beside it.
        try refuseOverwritingInputs(files + (format == .onnx ? [destination + ".data"] : []),
                                    inputs: modelFiles(source, weights: options.weights))
        try refuseExisting(files, force: force)
        var graph = try options.load(source)
        // Keras and Caffe are written from the graph as imported: layers, names and weights stay
        // the source's (BatchNorm stays a layer), and the target's tools optimize on their own.
        if !options.noOptimize && !exportsUnoptimizedGraph(format) { graph = try optimizeModel(consume graph).graph }
        // Whether ONNX weights go to <destination>.data is known only now, from their size.
        try refuseExisting(outputFiles(for: destination, format: format, graph: graph, externalData: externalData), force: force)
        let saved = try saveModel(graph, to: destination, format: format, opset: opset, externalData: externalData)
        print("wrote \(saved.files.joined(separator: " and ")) (\(format.rawValue), \(graph.nodes.count) nodes, \(graph.parameterCount) parameters)")
        for change in saved.layoutChanges { print("layout: \(change)") }
        for warning in saved.warnings { FileHandle.standardError.write(Data("warning: \(destination): \(warning)\n".utf8)) }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on .npy inputs and write its outputs as .npy.")

    @Argument(help: "Model file.")
    var model: String

    @Option(name: .long, help: "An input as [NAME=]FILE.npy; repeat for several inputs (unnamed ones are taken in the model's input order).")
    var input: [String] = []

    @Option(help: "Output file, when the model has one output.")
    var output: String?

    @Option(help: "Folder for one <name>.npy per output.")
    var outputDir: String?

    @Option(help: "Threads to use (default: all cores).")
    var threads: Int?

    @Flag(help: "Replace output files that exist.")
    var force = false

    @OptionGroup var options: ModelOptions

    func validate() throws {
        guard (output == nil) != (outputDir == nil) else {
            throw ValidationError("give exactly one of --output FILE.npy or --output-dir DIR")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        MemoryTrace.mark("start")
        var graph = try options.load(model)
        MemoryTrace.mark("import")
        if !options.noOptimize { graph = try optimizeModel(consume graph).graph }
        MemoryTrace.mark("optimization")
        let feeds = try readInputFiles(input, for: graph, model: model)
        MemoryTrace.mark("reading inputs")
        let outputPaths = output.map { [$0] } ?? graph.outputs.map {
            URL(fileURLWithPath: outputDir!).appendingPathComponent(outputFileName(for: $0.name)).path
        }
        try refuseOverwritingInputs(outputPaths, inputs: modelFiles(model, weights: options.weights) + inputFilePaths(input))
        try refuseExisting(outputPaths, force: force)
        let outputs = graph.outputs
        // The runtime becomes the graph's only holder, so it keeps each convolution's weights once,
        // and the inputs' (dropped once copied into the plan's arena).
        let results = try runModel(consume graph, inputs: consume feeds, threads: threads)
        MemoryTrace.mark("run")
        if let output {
            guard outputs.count == 1 else {
                throw FerryError("the model has \(outputs.count) outputs (\(outputs.map(\.name).joined(separator: ", "))); use --output-dir", file: model)
            }
            try NumPy.write(results[outputs[0].name]!, path: output)
        } else if let outputDir {
            try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
            // All outputs or none: a failure on one leaves no file of the others either.
            try NumPy.writeAll(outputs.map { out in
                (results[out.name]!, URL(fileURLWithPath: outputDir).appendingPathComponent(outputFileName(for: out.name)).path)
            })
        }
        MemoryTrace.mark("writing outputs")
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that two models compute the same outputs (exit 0 same, 1 different, 2 error).",
        discussion: """
        ferry check A B        compares B against the reference A on the same inputs
        ferry check A --save-golden DIR    stores A's inputs and outputs
        ferry check A --golden DIR         compares A against stored golden files
        An element fails only when its error exceeds both --atol and --rtol times the reference.
        """)

    @Argument(help: "The reference model, and the model to compare with it.")
    var models: [String] = []

    @Option(name: .long, help: "Input data as [NAME=]FILE.npy, or FILE.npz holding every input; repeat for several inputs.")
    var input: [String] = []

    @Option(help: "Random samples to compare when no --input is given.")
    var samples = 1

    @Option(help: "Seed for random inputs.")
    var seed: UInt64 = 0

    @Option(help: "Size of the open (batch) dimension of random inputs.")
    var batch = 1

    @Option(help: "Value range of random inputs as [NAME=]LOW:HIGH (default -1:1).")
    var range: [String] = []

    @Option(help: "Absolute tolerance, or NAME=X for one output (default 1e-5).")
    var atol: [String] = []

    @Option(help: "Relative tolerance, or NAME=X for one output (default 1e-4).")
    var rtol: [String] = []

    @Flag(help: "Also compare corresponding layers, each fed the reference's inputs, and name the first that diverges.")
    var layerwise = false

    @Option(help: "Write the report as JSON.")
    var report: String?

    @Option(help: "Write the result as JUnit XML.")
    var junit: String?

    @Option(help: "Store the model's inputs and outputs in this folder.")
    var saveGolden: String?

    @Option(help: "Compare the model against golden files stored in this folder.")
    var golden: String?

    @Option(help: "Caffe weights of the first model, when not beside its .prototxt.")
    var weights: String?

    @Option(help: "Caffe weights of the second model.")
    var weightsB: String?

    @Flag(help: "Replace existing report, JUnit and golden files.")
    var force = false

    func validate() throws {
        let single = saveGolden != nil || golden != nil
        guard models.count == (single ? 1 : 2) else {
            throw ValidationError(single ? "--save-golden and --golden take one model" : "give two models to compare (or one with --golden / --save-golden)")
        }
        guard saveGolden == nil || golden == nil else { throw ValidationError("give --save-golden or --golden, not both") }
        guard samples >= 1, batch >= 1 else { throw ValidationError("--samples and --batch must be at least 1") }
    }

    /// The files this check writes.
    var outputFiles: [String] {
        [report, junit, saveGolden.map { URL(fileURLWithPath: $0).appendingPathComponent("golden.json").path }].compactMap { $0 }
    }

    func run() throws {
        let inputs = modelFiles(models[0], weights: weights) + (models.count > 1 ? modelFiles(models[1], weights: weightsB) : [])
            + inputFilePaths(input)
        try refuseOverwritingInputs(outputFiles, inputs: inputs)
        try refuseExisting(outputFiles, force: force)
        var options = CheckOptions()
        options.samples = samples
        options.seed = seed
        options.batch = batch
        options.layerwise = layerwise
        for spec in range {
            let (name, value) = split(spec)
            let parts = value.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let lo = Float(parts[0]), let hi = Float(parts[1]), lo <= hi else {
                throw FerryError("--range '\(spec)' should be [NAME=]LOW:HIGH")
            }
            if let name { options.ranges[name] = lo...hi } else { options.defaultRange = lo...hi }
        }
        // Per-output values override one tolerance; the other stays the global one.
        var perOutput: [String: (atol: Double?, rtol: Double?)] = [:]
        for (flag, specs) in [("atol", atol), ("rtol", rtol)] {
            for spec in specs {
                let (name, value) = split(spec)
                guard let x = Double(value), x >= 0 else { throw FerryError("--\(flag) '\(spec)' should be [NAME=]NUMBER") }
                switch (name, flag) {
                case (nil, "atol"): options.tolerance.atol = x
                case (nil, _): options.tolerance.rtol = x
                case (let n?, "atol"): perOutput[n, default: (nil, nil)].atol = x
                case (let n?, _): perOutput[n, default: (nil, nil)].rtol = x
                }
            }
        }
        for (name, t) in perOutput {
            options.outputTolerances[name] = Tolerance(atol: t.atol ?? options.tolerance.atol, rtol: t.rtol ?? options.tolerance.rtol)
        }

        let reference = try loadModelSafely(path: models[0], weights: weights)
        if !input.isEmpty { options.givenSamples = [try readInputFiles(input, for: reference, model: models[0])] }

        if let saveGolden {
            let data = try options.givenSamples ?? (0..<samples).map { sample in
                do { return try randomInputs(for: reference, options: options, sample: sample) } catch let e as FerryError { throw e.inFile(models[0]) }
            }
            try Golden.save(graph: reference, modelName: models[0], samples: data, to: saveGolden)
            print("wrote golden files for \(data.count) sample(s) to \(saveGolden)")
            return
        }
        let result: CheckReport
        if let golden {
            result = try Golden.check(graph: reference, modelName: models[0], directory: golden, options: options)
        } else {
            let candidate = try loadModelSafely(path: models[1], weights: weightsB)
            result = try checkModels(reference: reference, candidate: candidate, referenceName: models[0],
                                     candidateName: models[1], options: options)
        }
        print(result.text)
        if let report {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            try writeFileAtomically(try encoder.encode(result), to: report)
        }
        if let junit { try writeFileAtomically(Data(result.junitXML.utf8), to: junit) }
        if !result.passed { throw CheckFailed(summary: "ferry check: outputs differ beyond tolerance") }
    }

    func split(_ spec: String) -> (String?, String) {
        guard let eq = spec.lastIndex(of: "=") else { return (nil, spec) }
        return (String(spec[..<eq]), String(spec[spec.index(after: eq)...]))
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a model's inference latency on random inputs (median of timed runs after warm-up).")

    @Argument(help: "Model file.")
    var model: String

    @Option(help: "Size of the open (batch) dimension.")
    var batch = 1

    @Option(help: "Timed runs.")
    var runs = 20

    @Option(help: "Untimed runs first.")
    var warmup = 3

    @Option(help: "Threads to use (default: all cores).")
    var threads: Int?

    @Flag(help: "Print the figures as JSON.")
    var json = false

    @Flag(help: "Also time each node's step (fastest of --runs more runs): totals per kernel and the slowest nodes.")
    var profile = false

    @OptionGroup var options: ModelOptions

    /// Per kernel: nodes, summed fastest times and share; then the ten slowest nodes.
    func profileText(_ steps: [StepTime]) -> String {
        let total = steps.reduce(0) { $0 + $1.milliseconds }
        var byKernel: [String: (count: Int, ms: Double)] = [:]
        for s in steps { byKernel[s.kernel, default: (0, 0)].count += 1; byKernel[s.kernel, default: (0, 0)].ms += s.milliseconds }
        var lines = [String(format: "profile: steps sum to %.3f ms (each step's fastest run)", total)]
        for (kernel, v) in byKernel.sorted(by: { $0.value.ms > $1.value.ms }) {
            lines.append("  " + kernel.padding(toLength: max(kernel.count, 28), withPad: " ", startingAt: 0)
                         + String(format: " %4d nodes %9.3f ms %5.1f%%", v.count, v.ms, 100 * v.ms / max(total, 1e-9)))
        }
        lines.append("slowest nodes:")
        for s in steps.sorted(by: { $0.milliseconds > $1.milliseconds }).prefix(10) {
            lines.append(String(format: "  %9.3f ms  %@ (%@)", s.milliseconds, s.node, s.kernel))
        }
        // What sizes the arena: intermediates live at a step plus its kernel's scratch.
        lines.append("largest steps in the arena (live intermediates + scratch, MB):")
        for s in steps.sorted(by: { $0.liveBytes + $0.scratchBytes > $1.liveBytes + $1.scratchBytes }).prefix(5) {
            lines.append(String(format: "  %7.2f + %6.2f  %@ (%@)", Double(s.liveBytes) / 1e6, Double(s.scratchBytes) / 1e6,
                                s.node, s.kernel))
        }
        return lines.joined(separator: "\n")
    }

    func validate() throws {
        guard batch >= 1, runs >= 1, warmup >= 0 else { throw ValidationError("--batch and --runs must be at least 1") }
    }

    func run() throws {
        var graph = try options.load(model)
        if !options.noOptimize { graph = try optimizeModel(consume graph).graph }
        var checkOptions = CheckOptions()
        checkOptions.batch = batch
        let feeds: [String: Tensor]
        do { feeds = try randomInputs(for: graph, options: checkOptions, sample: 0) } catch let e as FerryError { throw e.inFile(model) }
        let result = try benchmark(consume graph, inputs: feeds, batch: batch, runs: runs, warmup: warmup, threads: threads,
                                   profile: profile)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            func mb(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }
            print(String(format: "%@: batch %d, %d threads, %d runs: median %.3f ms, min %.3f ms, max %.3f ms, p90 %.3f ms, %.1f samples/s",
                         model, batch, result.threads, runs, result.medianMilliseconds, result.minMilliseconds,
                         result.maxMilliseconds, result.p90Milliseconds, result.samplesPerSecond))
            print("plan: arena \(mb(result.arenaBytes)) (peak live intermediates \(mb(result.peakLiveBytes)); the largest step's scratch \(mb(result.scratchBytes)), in the arena), weights \(mb(result.weightsBytes))")
            print("SIMD kernels: \(result.kernelInstructionSet)" + (result.simdKernels ? "" : " (not supported by this CPU: scalar kernels ran)"))
            print("kernels: " + result.kernels.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            if let steps = result.steps { print(profileText(steps)) }
        }
    }
}

struct GraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Draw a model's graph as .dot or .svg; with two models, color what differs.")

    @Argument(help: "Model file, or two model files to compare.")
    var models: [String]

    @Option(name: .shortAndLong, help: "Output .dot or .svg file (.svg needs Graphviz's dot).")
    var output: String

    @Flag(help: "Replace the output file if it exists.")
    var force = false

    @Option(help: "Caffe weights of the first model, when not beside its .prototxt.")
    var weights: String?

    func validate() throws {
        guard (1...2).contains(models.count) else { throw ValidationError("give one model, or two to compare") }
    }

    func run() throws {
        try refuseOverwritingInputs([output], inputs: models.flatMap { modelFiles($0, weights: $0 == models[0] ? weights : nil) })
        try refuseExisting([output], force: force)
        let first = try loadModelSafely(path: models[0], weights: weights)
        let text: String
        if models.count == 2 {
            let second = try loadModelSafely(path: models[1])
            text = GraphDrawing.diffDot(first, second, labels: (models[0], models[1]))
        } else {
            text = GraphDrawing.dot(first)
        }
        try GraphDrawing.write(text, to: output)
        print("wrote \(output)")
    }
}

/// Output files are never replaced silently: an existing one needs --force.
func refuseExisting(_ paths: [String], force: Bool) throws {
    guard !force else { return }
    for path in paths where FileManager.default.fileExists(atPath: path) {
        throw FerryError("exists already; use --force to replace it", file: path)
    }
}

/// An input is never overwritten, --force or not: an output that is the same file as an input
/// (by path after resolving links, or by device and inode) is refused before anything is read.
func refuseOverwritingInputs(_ outputs: [String], inputs: [String?]) throws {
    func identity(_ path: String) -> (String, [FileAttributeKey: Any]?) {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        let resolved = url.deletingLastPathComponent().resolvingSymlinksInPath().appendingPathComponent(url.lastPathComponent)
        return (resolved.resolvingSymlinksInPath().path, try? FileManager.default.attributesOfItem(atPath: path))
    }
    let sources = inputs.compactMap { $0 }.map(identity)
    for output in outputs {
        let (path, attributes) = identity(output)
        for (inputPath, inputAttributes) in sources {
            var same = path == inputPath
            if let a = attributes, let b = inputAttributes,
               let da = a[.systemNumber] as? Int, let db = b[.systemNumber] as? Int,
               let ia = a[.systemFileNumber] as? Int, let ib = b[.systemFileNumber] as? Int {
                same = same || (da == db && ia == ib)
            }
            if same { throw FerryError("is also an input of this command; refusing to overwrite an input", file: output) }
        }
    }
}

/// The files named by `--input` options ([NAME=]FILE).
func inputFilePaths(_ specs: [String]) -> [String] {
    specs.map { spec in
        if let eq = spec.firstIndex(of: "="), !FileManager.default.fileExists(atPath: spec) {
            return String(spec[spec.index(after: eq)...])
        }
        return spec
    }
}

/// A model's files: itself, its weights, and the .caffemodel a .prototxt reads from beside it.
func modelFiles(_ model: String, weights: String?) -> [String?] {
    var files: [String?] = [model, weights]
    if model.lowercased().hasSuffix(".prototxt") {
        files.append(URL(fileURLWithPath: model).deletingPathExtension().appendingPathExtension("caffemodel").path)
    }
    return files
}

/// The tensors of `--input` options: `NAME=FILE.npy`, a bare `FILE.npy` (taken in the model's
/// input order), or a `FILE.npz` holding inputs by name. float64 files are rounded to float32.
func readInputFiles(_ specs: [String], for graph: Graph, model: String) throws -> [String: Tensor] {
    var feeds: [String: Tensor] = [:]
    var unnamed = graph.inputs.map(\.name).makeIterator()
    func add(_ name: String, _ tensor: Tensor) throws {
        guard graph.inputs.contains(where: { $0.name == name }) else {
            throw FerryError("the model has no input '\(name)' (inputs: \(graph.inputs.map(\.name).joined(separator: ", ")))", file: model)
        }
        guard feeds[name] == nil else { throw FerryError("input '\(name)' is given twice", file: model) }
        feeds[name] = tensor
    }
    for spec in specs {
        var name: String?
        var file = spec
        if let eq = spec.firstIndex(of: "="), !FileManager.default.fileExists(atPath: spec) {
            name = String(spec[..<eq])
            file = String(spec[spec.index(after: eq)...])
        }
        if name == nil, file.lowercased().hasSuffix(".npz") {
            for (key, tensor) in try readNPZ(path: file).sorted(by: { $0.key < $1.key }) { try add(key, tensor) }
            continue
        }
        guard let target = name ?? unnamed.next() else {
            throw FerryError("more --input files than model inputs (\(graph.inputs.count))", file: model)
        }
        try add(target, try NumPy.read(path: file, float64AsFloat32: true))
    }
    return feeds
}
