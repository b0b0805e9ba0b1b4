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
        subcommands: [Inspect.self, Convert.self, Run.self, Check.self, Bench.self, GraphCommand.self]
    )

    /// Parses and runs, mapping errors to the documented exit statuses: 0 success,
    /// 1 a check found a difference, 2 bad input or usage.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as FerryError {
            fail(error.description)
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
    @Option(help: "Caffe weights (.caffemodel) when not beside the .prototxt.")
    var weights: String?

    @Flag(help: "Skip the graph optimizer.")
    var noOptimize = false
}

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

    @Flag(help: "Print each optimizer pass with what it changed.")
    var passes = false

    func run() throws {
        if passes {
            throw FerryError("--passes is not supported yet: the optimizer has no passes in this version", file: model)
        }
        let graph = try loadModel(path: model, weights: options.weights)
        let summary = ModelSummary(graph: graph, file: model)
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

    @Argument(help: "Destination file (.onnx; .h5/.keras and .prototxt in later versions).")
    var destination: String

    @Option(help: "Target format: onnx, keras or caffe (default: from the destination's extension).")
    var to: String?

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
        if URL(fileURLWithPath: source).standardizedFileURL == URL(fileURLWithPath: destination).standardizedFileURL {
            throw FerryError("the destination is the source; refusing to overwrite an input", file: destination)
        }
        let graph = try loadModel(path: source, weights: options.weights)
        try saveModel(graph, to: destination, format: format)
        print("wrote \(destination) (\(format.rawValue), \(graph.nodes.count) nodes, \(graph.parameterCount) parameters)")
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

    @OptionGroup var options: ModelOptions

    func validate() throws {
        guard (output == nil) != (outputDir == nil) else {
            throw ValidationError("give exactly one of --output FILE.npy or --output-dir DIR")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let graph = try loadModel(path: model, weights: options.weights)
        var feeds: [String: Tensor] = [:]
        var unnamed = graph.inputs.map(\.name).makeIterator()
        for spec in input {
            let name: String
            let file: String
            if let eq = spec.firstIndex(of: "="), !FileManager.default.fileExists(atPath: spec) {
                name = String(spec[..<eq])
                file = String(spec[spec.index(after: eq)...])
                guard graph.inputs.contains(where: { $0.name == name }) else {
                    throw FerryError("the model has no input '\(name)' (inputs: \(graph.inputs.map(\.name).joined(separator: ", ")))", file: model)
                }
            } else {
                guard let next = unnamed.next() else {
                    throw FerryError("more --input files than model inputs (\(graph.inputs.count))", file: model)
                }
                name = next
                file = spec
            }
            guard feeds[name] == nil else { throw FerryError("input '\(name)' is given twice", file: model) }
            feeds[name] = try NumPy.read(path: file, float64AsFloat32: true)
        }
        let results = try runModel(graph, inputs: feeds, threads: threads)
        if let output {
            guard graph.outputs.count == 1 else {
                throw FerryError("the model has \(graph.outputs.count) outputs (\(graph.outputs.map(\.name).joined(separator: ", "))); use --output-dir", file: model)
            }
            try NumPy.write(results[graph.outputs[0].name]!, path: output)
        } else if let outputDir {
            try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
            for out in graph.outputs {
                let path = URL(fileURLWithPath: outputDir).appendingPathComponent(outputFileName(for: out.name)).path
                try NumPy.write(results[out.name]!, path: path)
            }
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that models compute the same outputs (not supported yet).")

    @Argument(help: "Models to compare.")
    var models: [String] = []

    func run() throws {
        throw FerryError("'ferry check' is not supported yet")
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark a model's inference latency (not supported yet).")

    @Argument(help: "Model file.")
    var model: String

    func run() throws {
        throw FerryError("'ferry bench' is not supported yet", file: model)
    }
}

struct GraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph", abstract: "Draw a model's graph as .dot or .svg (not supported yet).")

    @Argument(help: "Model file.")
    var model: String

    @Option(name: .shortAndLong, help: "Output .dot or .svg file.")
    var output: String

    func run() throws {
        throw FerryError("'ferry graph' is not supported yet", file: model)
    }
}
