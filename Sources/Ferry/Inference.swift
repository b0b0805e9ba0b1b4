import FerryRuntime

/// Runs a graph on named inputs with the reference runtime; returns every graph output by name.
public func runModel(_ graph: Graph, inputs: [String: Tensor], threads: Int? = nil) throws -> [String: Tensor] {
    try ReferenceRuntime(graph: graph, threads: threads).run(inputs)
}

/// A file name for an output value: every character outside [A-Za-z0-9._-] becomes "_".
public func outputFileName(for valueName: String) -> String {
    let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
    return String(valueName.map { allowed.contains($0) ? $0 : "_" }) + ".npy"
}

/// Latency figures of repeated runs.
public struct BenchmarkResult: Codable, Sendable {
    public var runs: Int
    public var medianMilliseconds: Double
    public var minMilliseconds: Double
    public var p90Milliseconds: Double
}

/// Times `runs` runs of the graph after `warmup` untimed ones (the runtime is set up once).
public func benchmark(_ graph: Graph, inputs: [String: Tensor], runs: Int, warmup: Int, threads: Int?) throws -> BenchmarkResult {
    let runtime = try ReferenceRuntime(graph: graph, threads: threads)
    for _ in 0..<warmup { _ = try runtime.run(inputs) }
    var times: [Double] = []
    let clock = ContinuousClock()
    for _ in 0..<runs {
        let start = clock.now
        _ = try runtime.run(inputs)
        let elapsed = clock.now - start
        times.append(Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) * 1e-15)
    }
    times.sort()
    return BenchmarkResult(runs: runs, medianMilliseconds: times[times.count / 2], minMilliseconds: times[0],
                           p90Milliseconds: times[min(times.count - 1, Int(Double(times.count) * 0.9))])
}
