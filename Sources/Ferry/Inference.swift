import CFerryCPU
import Foundation
import FerryRuntime

/// For a process that imports, optimizes and runs one model: buffers of 128 KiB and more are
/// returned to the system as soon as they are freed, so that the weights an importer or a pass
/// replaced do not stay in the process's memory (about 15 MB of ResNet50's peak otherwise).
public func returnLargeBuffersWhenFreed() {
    ferry_map_buffers_from(128 * 1024)
}

/// Runs a graph on named inputs with the plan runtime (a plan compiled for these input shapes);
/// returns every graph output by name. `threads` defaults to every core. Convolution weights are
/// held once, packed for the kernels, when the caller passes its graph with `consume`, and the
/// inputs are dropped once copied into the plan's arena when it passes them so.
public func runModel(_ graph: consuming Graph, inputs: consuming [String: Tensor], threads: Int? = nil) throws -> [String: Tensor] {
    try checkMemoryNeeds(graph, inputs: inputs)
    let runtime = try PlanRuntime(graph: consume graph, threads: threads, releasesPackedWeights: true)
    if MemoryTrace.enabled {
        // The plan compiled apart from its run, so that the trace shows the two phases.
        _ = try? runtime.plan(forShapes: inputs.mapValues(\.shape))
        MemoryTrace.mark("planning")
    }
    return try runtime.run(consume inputs)
}

/// Refuses a run in which one value alone would need more bytes than the machine has (a model
/// file whose sizes ask for terabytes fails with an error, not an allocation crash).
public func checkMemoryNeeds(_ graph: Graph, inputs: [String: Tensor]) throws {
    var bound = graph
    bound.inputs = graph.inputs.map { v in
        inputs[v.name].map { Value(name: v.name, type: TensorType(v.type.dtype, Shape($0.shape))) } ?? v
    }
    // Shapes that do not fit are the runtime's to report, with its own message.
    guard let types = try? bound.inferTypes() else { return }
    let memory = Double(ProcessInfo.processInfo.physicalMemory)
    for (name, type) in types {
        guard let sizes = type.shape.fixedSizes else { continue }
        let bytes = sizes.reduce(Double(type.dtype.byteSize)) { $0 * Double($1) }
        if bytes > memory {
            throw FerryError(String(format: "value '%@' of shape %@ would need %.1f GiB, more than this machine's %.1f GiB",
                                    name, type.shape.description, bytes / 1_073_741_824, memory / 1_073_741_824))
        }
    }
}

/// A file name for an output value: every character outside [A-Za-z0-9._-] becomes "_".
public func outputFileName(for valueName: String) -> String {
    let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
    return String(valueName.map { allowed.contains($0) ? $0 : "_" }) + ".npy"
}

/// Latency figures of repeated runs, and the plan they ran.
public struct BenchmarkResult: Codable, Sendable {
    public var runs: Int
    public var batch: Int
    public var threads: Int
    public var medianMilliseconds: Double
    public var minMilliseconds: Double
    public var maxMilliseconds: Double
    public var p90Milliseconds: Double
    /// Samples (batch elements) per second at the median latency.
    public var samplesPerSecond: Double
    /// The plan's arena (intermediates, reused by liveness) and the kernels' scratch.
    public var arenaBytes: Int
    public var scratchBytes: Int
    /// The largest total of intermediates live at one step.
    public var peakLiveBytes: Int
    public var weightsBytes: Int
    /// Nodes per kernel of the plan.
    public var kernels: [String: Int]
    /// What the SIMD kernels were compiled for ("generic" when built portable), and whether this
    /// CPU runs them (otherwise the plan runs the scalar kernels).
    public var kernelInstructionSet: String
    public var simdKernels: Bool
    /// With profiling: each step's fastest time over the timed runs, in step order.
    public var steps: [StepTime]?
}

/// One node's step in a profiled plan.
public struct StepTime: Codable, Sendable {
    public var node: String
    public var kernel: String
    public var milliseconds: Double
    /// Bytes of intermediates live during the step, and of its kernel's scratch.
    public var liveBytes: Int
    public var scratchBytes: Int
}

/// Times `runs` runs of the graph after `warmup` untimed ones; the plan is compiled before.
/// Weights are held as `runModel` holds them (pass the graph with `consume`).
/// With `profile`, each step is also timed over another `runs` runs (kept apart from the
/// latency runs, whose figures the clock reads would disturb).
public func benchmark(_ graph: consuming Graph, inputs: [String: Tensor], batch: Int, runs: Int, warmup: Int,
                      threads: Int?, profile: Bool = false) throws -> BenchmarkResult {
    try checkMemoryNeeds(graph, inputs: inputs)
    let weightsBytes = graph.parameterBytes
    let runtime = try PlanRuntime(graph: consume graph, threads: threads, releasesPackedWeights: true)
    let plan = try runtime.plan(forShapes: inputs.mapValues(\.shape))
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
    let median = times[times.count / 2]
    return BenchmarkResult(runs: runs, batch: batch, threads: runtime.threads, medianMilliseconds: median,
                           minMilliseconds: times[0], maxMilliseconds: times[times.count - 1],
                           p90Milliseconds: times[min(times.count - 1, Int(Double(times.count) * 0.9))],
                           samplesPerSecond: Double(batch) * 1000 / median, arenaBytes: plan.arenaBytes,
                           scratchBytes: plan.scratchBytes, peakLiveBytes: plan.peakLiveBytes,
                           weightsBytes: weightsBytes,
                           kernels: Dictionary(uniqueKeysWithValues: plan.kernelCounts.map { ($0.kernel, $0.count) }),
                           kernelInstructionSet: String(cString: ferry_kernels_instruction_set()),
                           simdKernels: ferry_kernels_unsupported_cpu() == nil,
                           steps: profile ? try zip(plan.profile(inputs, runs: runs), plan.stepMemory).map { step, memory in
                               StepTime(node: step.node, kernel: step.kernel, milliseconds: Double(step.nanoseconds) / 1e6,
                                        liveBytes: memory.liveBytes, scratchBytes: memory.scratchBytes)
                           } : nil)
}
