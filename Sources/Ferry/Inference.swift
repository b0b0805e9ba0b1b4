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
