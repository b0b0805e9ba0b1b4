import FerryIR

/// One rewrite of the graph. A pass is a small value with a name; `run` rewrites the graph in
/// place and says what it changed (0 changes means it found nothing to do).
public protocol Pass: Sendable {
    var name: String { get }
    /// What one change is, for reports: "nodes folded", "transposes cancelled".
    var unit: String { get }
    func run(_ graph: inout Graph) throws -> Int
}

/// A pass that looks at each node in turn and rewrites the pattern ending at it, if any. The
/// walk is shared: after a rewrite the same position is looked at again (the node there is
/// new, or the next one), so one run catches chains.
public protocol NodeRewritePass: Pass {
    /// Rewrites the pattern ending at node `i`; false (graph untouched) when there is none.
    func rewrite(at i: Int, in graph: inout Graph) throws -> Bool
}

extension NodeRewritePass {
    public func run(_ graph: inout Graph) throws -> Int {
        var changes = 0
        var i = 0
        while i < graph.nodes.count {
            if try rewrite(at: i, in: &graph) { changes += 1 } else { i += 1 }
        }
        return changes
    }
}

/// What one pass did over the whole optimization.
public struct PassReport: Sendable, Codable {
    public var pass: String
    public var unit: String
    public var changes: Int

    public var description: String { "\(pass): \(changes) \(unit)" }
}

/// The outcome of optimizing a graph.
public struct OptimizationResult: Sendable {
    public var graph: Graph
    public var reports: [PassReport]
    public var nodesBefore: Int
    public var nodesAfter: Int
    public var rounds: Int
}

/// Runs an ordered list of passes until none changes anything (as tract and ncnnoptimize do).
/// With `verifyEachPass` the graph is verified after every pass that changed it, and an error
/// names the pass that broke it.
public struct PassManager: Sendable {
    public var passes: [any Pass]
    public var maxRounds = 20
    public var verifyEachPass: Bool

    public init(passes: [any Pass] = PassManager.standardPasses, verifyEachPass: Bool = PassManager.verifyByDefault) {
        self.passes = passes
        self.verifyEachPass = verifyEachPass
    }

    /// Verification after each pass is on in debug builds (and tests), off in release.
    public static var verifyByDefault: Bool {
        #if DEBUG
        return true
        #else
        return false
        #endif
    }

    /// The default pipeline, in order: clean-ups first so folds see simple patterns, folds and
    /// fusions next, dead-code removal last.
    public static let standardPasses: [any Pass] = [
        EliminateIdentity(),
        EliminateDuplicates(),
        EliminateNoOpReshapes(),
        CancelTransposes(),
        PushTransposes(),
        PullTransposesToInputs(),
        MergeReshapes(),
        FoldConstants(),
        MergeAffineChains(),
        FoldPadIntoConv(),
        FoldPadIntoPool(),
        FuseMatMulAdd(),
        FoldTransposeIntoGemm(),
        FuseFlattenGemm(),
        FoldBatchNorm(),
        FoldAffineIntoConv(),
        FuseResidualAdd(),
        FuseActivation(),
        FuseSwish(),
        EliminateDeadNodes(),
    ]

    /// Pass the graph with `consume` when the caller keeps only the result: the passes then
    /// rewrite weights without the caller's copy holding the originals.
    public func optimize(_ graph: consuming Graph) throws -> OptimizationResult {
        let nodesBefore = graph.nodes.count
        var g = consume graph
        var totals = passes.map { PassReport(pass: $0.name, unit: $0.unit, changes: 0) }
        var rounds = 0
        while rounds < maxRounds {
            rounds += 1
            var changed = false
            for (i, pass) in passes.enumerated() {
                let n = try pass.run(&g)
                guard n > 0 else { continue }
                changed = true
                totals[i].changes += n
                if verifyEachPass {
                    do { try g.verify() } catch let e as FerryError {
                        throw FerryError("optimizer pass \(pass.name) left a broken graph: \(e.message)",
                                         layer: e.layer, layerType: e.layerType)
                    }
                }
            }
            if !changed { break }
        }
        return OptimizationResult(graph: g, reports: totals, nodesBefore: nodesBefore,
                                  nodesAfter: g.nodes.count, rounds: rounds)
    }
}
