import COpenBLAS
import CFerryCPU
import FerryIR
import Foundation

/// Runs a graph through compiled plans: the first run with a set of input shapes compiles a plan
/// for them (kept for later runs with the same shapes), later runs only execute it. Not for use
/// from several threads at once (a plan owns one arena).
public final class PlanRuntime {
    /// The graph; with `releasesPackedWeights`, convolution weights that plans read only through
    /// packed copies are missing from its initializers. nil only while a plan is compiled (the
    /// builder holds it, as its only holder, so that released weights are freed).
    private var graph: Graph!
    /// Threads for Ferry's kernels and for OpenBLAS (one budget, never both at once).
    public let threads: Int
    /// Runs graphs whose value sizes depend on the data (DetectionOutput): such a node cannot
    /// have an arena offset. nil for every other graph.
    private let reference: ReferenceRuntime?
    private var plans: [[[Int]]: ExecutionPlan] = [:]
    /// Plans kept at most (a few batch sizes); the oldest is dropped first.
    private static let cacheLimit = 4
    private var planOrder: [[[Int]]] = []
    private let packedWeights = PackedWeightStore()
    /// Whether weights held packed are dropped from the graph (the memory of one copy instead
    /// of two), to be unpacked when another plan is compiled.
    public let releasesPackedWeights: Bool

    /// Validates the graph (verifies, every op is supported); `threads` defaults to every core.
    /// With `releasesPackedWeights`, the runtime should be the graph's only holder (pass it with
    /// `consume`): weights another copy of the graph still holds are not freed.
    public init(graph: consuming Graph, threads: Int? = nil, releasesPackedWeights: Bool = false) throws {
        if let threads, threads < 1 { throw FerryError("thread count must be at least 1, got \(threads)") }
        let dataDependent = graph.nodes.contains { if case .detectionOutput = $0.op { return true } else { return false } }
        let validated = try ReferenceRuntime(graph: copy graph)
        reference = dataDependent ? validated : nil
        self.releasesPackedWeights = releasesPackedWeights && !dataDependent
        self.graph = graph
        self.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
    }

    /// Initializers held only as packed copies (released from the graph).
    public var releasedWeights: Set<String> { packedWeights.names.subtracting(graph.initializers.keys) }

    /// The plan for inputs of these shapes (by graph input name), compiled on first use.
    public func plan(forShapes shapes: [String: [Int]]) throws -> ExecutionPlan {
        let key = graph.inputs.map { shapes[$0.name] ?? [] }
        if let plan = plans[key] { return plan }
        let types = try PlanBuilder.fixedTypes(graph, inputShapes: shapes, held: packedWeights.originalTypes(releasedWeights))
        let taken = graph!
        graph = nil
        let builder = PlanBuilder(graph: consume taken, types: types, inputShapes: shapes, threads: threads,
                                  packedWeights: packedWeights, releasesPackedWeights: releasesPackedWeights)
        defer { graph = builder.graph }
        let plan = try ExecutionPlan(builder: builder)
        // The originals the packing released left holes among small heap blocks: give their
        // pages back before the arena is touched (the whole run's peak 0.2-0.55 MB lower for the
        // 96x96 apps as .h5 files).
        ferry_return_free_heap_pages()
        if planOrder.count >= Self.cacheLimit { plans[planOrder.removeFirst()] = nil }
        plans[key] = plan
        planOrder.append(key)
        return plan
    }

    /// Runs the graph on inputs keyed by graph input name; returns the graph outputs by name.
    /// Inputs passed with `consume` are dropped once copied into the plan's arena.
    public func run(_ inputs: consuming [String: Tensor]) throws -> [String: Tensor] {
        if let reference { return try reference.run(inputs) }
        let bound = try ReferenceRuntime.bind(inputs, to: graph.inputs)
        inputs = [:]
        return try plan(forShapes: bound.mapValues(\.shape)).run(consume bound)
    }
}

/// Where a value lives while a plan runs.
enum ValueHome {
    /// float32 in the arena: inside `block`, `offset` elements from its start (aliases of a
    /// larger block, like a Concat's parts, start later).
    case arena(block: Int, offset: Int)
    /// An initializer (float32 ones are read in place through a pointer).
    case constant
    /// Any other element type, kept as a tensor (only reference kernels read and write them).
    case boxed(slot: Int)
}

/// Tensors of other element types than float32, made and read by reference kernels.
final class BoxStore {
    var slots: [Tensor?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
}

/// One node's kernel as chosen at compile time: its name (for reports), the scratch it needs
/// (float32 elements: a block of the arena that lives during this step only, so a kernel may
/// take more scratch where few intermediates are live), and how to make its step once every
/// value has an address.
struct PlannedKernel {
    var name: String
    var scratch: Int = 0
    /// nil: the node needs no work (its output aliases its input).
    var make: ((PlanBuilder) throws -> () throws -> Void)?
}

/// A compiled plan for one set of input shapes: every shape fixed, one kernel per node, every
/// float32 intermediate at a fixed offset in one arena (offsets reused by liveness), each
/// kernel's scratch a block of the same arena living during its step only. Running copies the inputs in, runs the steps and copies the outputs out;
/// the steps allocate nothing except in the reference kernels used as fallbacks.
public final class ExecutionPlan {
    public let inputShapes: [String: [Int]]
    public let threads: Int
    /// The arena's blocks of intermediates, and of the kernels' scratch (for tests: no two live
    /// blocks share memory).
    public let blocks: [ArenaBlock]
    public let scratchBlocks: [ArenaBlock]
    /// Bytes of the arena (intermediates and scratch), and the largest scratch of one step.
    public let arenaBytes: Int
    public let scratchBytes: Int
    /// Each node's kernel, in step order.
    public let kernels: [(node: String, kernel: String)]
    /// The largest total of blocks live at one step (the arena can be no smaller).
    public let peakLiveBytes: Int

    private let memory: UnsafeMutableRawPointer
    private let steps: [(node: Node, body: (() throws -> Void)?)]
    private let inputCopies: [(name: String, home: ValueHome, pointer: UnsafeMutablePointer<Float>?)]
    private let outputReaders: [(name: String, read: () -> Tensor)]
    private let boxes: BoxStore
    /// Initializer arrays read in place through pointers: kept alive (and never written) here.
    private let pinned: [[Float]]
    private let lock = NSLock()

    init(builder: PlanBuilder) throws {
        try builder.planNodes()
        let graph = builder.graph
        self.inputShapes = builder.inputShapes
        self.threads = builder.threads
        self.blocks = builder.blocks
        self.scratchBlocks = builder.scratchBlocks.compactMap { $0 }
        let arenaCount = builder.arenaCount
        arenaBytes = arenaCount * 4
        scratchBytes = scratchBlocks.map(\.bytes).max() ?? 0
        peakLiveBytes = builder.peakLiveCount * 4
        memory = UnsafeMutableRawPointer.allocate(byteCount: max(arenaBytes, 64), alignment: 64)
        let base = memory.bindMemory(to: Float.self, capacity: max(arenaCount, 16))
        builder.arena = base
        var steps: [(Node, (() throws -> Void)?)] = []
        for (i, (node, kernel)) in zip(graph.nodes, builder.chosen).enumerated() {
            builder.scratch = builder.scratchBlocks[i].map { base + $0.offset }
            do {
                steps.append((node, try kernel.make?(builder)))
            } catch let e as FerryError {
                let (layer, type) = node.sourceLayer
                throw e.atLayer(layer, type: type)
            }
        }
        self.steps = steps
        kernels = zip(graph.nodes, builder.chosen).map { ($0.name, $1.name) }
        inputCopies = graph.inputs.map { v in
            let home = builder.homes[v.name]!
            if case .arena = home { return (v.name, home, builder.pointer(v.name)) }
            return (v.name, home, nil)
        }
        outputReaders = graph.outputs.map { ($0.name, builder.reader($0.name)) }
        boxes = builder.boxes
        pinned = builder.pinned
    }

    deinit { memory.deallocate() }

    /// Per step, in step order: bytes of the intermediates live during it and of its scratch.
    public var stepMemory: [(liveBytes: Int, scratchBytes: Int)] {
        (0..<kernels.count).map { step in
            let live = blocks.filter { $0.firstStep <= step && step <= $0.lastStep }.reduce(0) { $0 + $1.bytes }
            return (live, scratchBlocks.first { $0.firstStep == step }?.bytes ?? 0)
        }
    }

    /// Bytes of the arrays the plan keeps alive: initializers it reads in place, copies it made
    /// and the packed weights it reads (shared with the runtime's store, counted here too).
    public var pinnedBytes: Int { pinned.reduce(0) { $0 + $1.count * 4 } }

    /// Counts of nodes per kernel, most used first.
    public var kernelCounts: [(kernel: String, count: Int)] {
        var counts: [String: Int] = [:]
        for (_, k) in kernels { counts[k, default: 0] += 1 }
        return counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Runs the plan on inputs of its shapes (checked by `PlanRuntime`); returns the outputs.
    /// Inputs passed with `consume` are dropped once copied into the arena (an image's input is
    /// otherwise held twice while the plan runs: 0.6 MB at 224x224, 4.8 at batch 8).
    public func run(_ inputs: consuming [String: Tensor]) throws -> [String: Tensor] {
        try run(consume inputs, stepNanoseconds: nil)
    }

    /// Runs the plan `runs` times and returns each step's fastest time (nanoseconds), in step
    /// order with its node and kernel (`ferry bench --profile`).
    public func profile(_ inputs: [String: Tensor], runs: Int) throws -> [(node: String, kernel: String, nanoseconds: UInt64)] {
        var fastest = [UInt64](repeating: .max, count: steps.count)
        var times = [UInt64](repeating: 0, count: steps.count)
        for _ in 0..<max(runs, 1) {
            _ = try run(inputs, stepNanoseconds: &times)
            for i in times.indices { fastest[i] = min(fastest[i], times[i]) }
        }
        return zip(kernels, fastest).map { ($0.node, $0.kernel, $1) }
    }

    private func run(_ inputs: consuming [String: Tensor], stepNanoseconds: UnsafeMutablePointer<[UInt64]>?) throws -> [String: Tensor] {
        lock.lock()
        defer { lock.unlock() }
        BLASThreads.set(threads)
        for (name, home, pointer) in inputCopies {
            guard let t = inputs[name] else { throw FerryError("missing input '\(name)'") }
            guard t.shape == inputShapes[name] else {
                throw FerryError("input '\(name)' has shape \(t.shape), the plan was compiled for \(inputShapes[name] ?? [])")
            }
            switch home {
            case .arena:
                guard case .float32(let values) = t.storage else { throw FerryError("input '\(name)' is \(t.dtype), not float32") }
                values.withUnsafeBufferPointer { if let a = $0.baseAddress { pointer!.update(from: a, count: $0.count) } }
            case .boxed(let slot):
                boxes.slots[slot] = t
            case .constant:
                break
            }
        }
        defer { for i in boxes.slots.indices { boxes.slots[i] = nil } }
        inputs = [:]
        for (i, (node, body)) in steps.enumerated() {
            guard let body else { stepNanoseconds?.pointee[i] = 0; continue }
            let start = stepNanoseconds == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            defer { if let stepNanoseconds { stepNanoseconds.pointee[i] = DispatchTime.now().uptimeNanoseconds - start } }
            do {
                try body()
            } catch let e as FerryError {
                let (layer, type) = node.sourceLayer
                throw e.atLayer(layer, type: type)
            } catch {
                let (layer, type) = node.sourceLayer
                throw FerryError("\(error)", layer: layer, layerType: type)
            }
        }
        var results: [String: Tensor] = [:]
        for (name, read) in outputReaders { results[name] = read() }
        return results
    }
}

/// OpenBLAS's thread count is process-wide: set only when it changes.
enum BLASThreads {
    nonisolated(unsafe) private static var current = -1
    private static let lock = NSLock()

    static func set(_ n: Int) {
        lock.lock()
        defer { lock.unlock() }
        if current != n {
            openblas_set_num_threads(Int32(clamping: n))
            current = n
        }
    }
}

/// Compiles a plan: fixes shapes, gives every value a home, picks kernels, places the arena's
/// blocks by liveness; then (once the arena exists) hands kernels the addresses they use.
final class PlanBuilder {
    /// The graph being compiled; with `releasesPackedWeights`, a convolution weight read by one
    /// node and packed for it is removed from it (freed, when the builder is its only holder).
    private(set) var graph: Graph
    let inputShapes: [String: [Int]]
    let threads: Int
    /// Every value's type with fixed sizes.
    let types: [String: TensorType]
    var homes: [String: ValueHome] = [:]
    var blocks: [ArenaBlock] = []
    var chosen: [PlannedKernel] = []
    /// Each step's scratch block (nil: the kernel needs none).
    var scratchBlocks: [ArenaBlock?] = []
    /// Elements free in the arena at each step, estimated before any kernel is chosen, and the
    /// step being planned (for `scratchRoom`).
    private var freeEstimate: [Int] = []
    /// Elements each step's live intermediates leave above them, to the top of all.
    private var aboveEstimate: [Int] = []
    /// Elements the arena may grow past its intermediates' top within issue 7's budget of 1.5x
    /// the largest live set (0 when the placement alone reaches that).
    private var budgetSlack = 0
    private var currentStep = 0
    var arenaCount = 0
    var peakLiveCount = 0
    let boxes: BoxStore
    private var boxCount = 0
    var pinned: [[Float]] = []
    /// Initializers read in place, by root name (pinned on first use, so that an initializer
    /// only read through a packed copy is not held by the plan).
    private var constantPointers: [String: UnsafeMutablePointer<Float>] = [:]
    /// The initializer each constant value (an initializer, or an alias of one) reads.
    private var constantRoots: [String: String] = [:]
    /// Packed convolution weights, shared with the runtime's other plans.
    let packedWeightStore: PackedWeightStore
    let releasesPackedWeights: Bool
    /// Nodes reading each initializer (an initializer read by one node only may be released
    /// once that node has packed it), and the graph's outputs (never released).
    private let readers: [String: Int]
    /// Names of every initializer, in the graph or released.
    private let constants: Set<String>
    /// Set once the arena is allocated; `scratch` is the scratch of the step being made.
    var arena: UnsafeMutablePointer<Float>!
    var scratch: UnsafeMutablePointer<Float>!

    /// Every value's type in `graph` with its inputs of these shapes (all sizes fixed, or an error).
    static func fixedTypes(_ graph: Graph, inputShapes: [String: [Int]], held: [String: TensorType] = [:]) throws -> [String: TensorType] {
        var fixed = graph
        for i in fixed.inputs.indices {
            guard let shape = inputShapes[fixed.inputs[i].name] else {
                throw FerryError("no shape for input '\(fixed.inputs[i].name)'")
            }
            fixed.inputs[i].type.shape = Shape(shape)
        }
        let types = try fixed.inferTypes(assuming: held)
        for (name, t) in types where !t.shape.isFullyFixed {
            throw FerryError("value '\(name)' has shape \(t.shape) even with every input's shape fixed")
        }
        return types
    }

    /// `types` from `fixedTypes` for the same graph and input shapes.
    init(graph: consuming Graph, types: [String: TensorType], inputShapes: [String: [Int]], threads: Int,
         packedWeights: PackedWeightStore, releasesPackedWeights: Bool = false) {
        // Initializers, including those an earlier plan released (held packed in the store).
        let constants = Set(graph.initializers.keys).union(packedWeights.names)
        var readers: [String: Int] = [:]
        for node in graph.nodes {
            for name in Set(node.inputs) where constants.contains(name) { readers[name, default: 0] += 1 }
        }
        for v in graph.outputs where constants.contains(v.name) { readers[v.name, default: 0] += 1 }
        self.constants = constants
        self.readers = readers
        self.graph = graph
        self.types = types
        self.inputShapes = inputShapes
        self.threads = threads
        packedWeightStore = packedWeights
        self.releasesPackedWeights = releasesPackedWeights
        boxes = BoxStore(count: 0)
    }

    func shape(_ name: String) -> [Int] { types[name]!.shape.fixedSizes! }
    func count(_ name: String) -> Int { elementCount(shape(name)) }
    func isFloat(_ name: String) -> Bool { !name.isEmpty && types[name]?.dtype == .float32 }
    /// An initializer's value (unpacked again when an earlier plan released it).
    func constant(_ name: String) -> Tensor? {
        if let t = graph.initializers[name] { return t }
        guard let restored = packedWeightStore.restore(name) else { return nil }
        graph.initializers[name] = restored
        return restored
    }

    /// Packs a convolution's constant weights `name` (or takes the runtime's packed copy),
    /// releasing the original when this node is its only reader (packed as it is given back);
    /// returns the address of the packed groups (or of the tap-major weights, for Winograd).
    func packedConvWeights(_ name: String, narrow: Bool, group: Int, rows: Int, depth: Int) -> UnsafePointer<Float> {
        packedConvWeights(name, layout: .gemm(narrow: narrow), group: group, rows: rows, depth: depth)
    }

    func packedConvWeights(_ name: String, layout: PackedWeightStore.Layout, group: Int, rows: Int, depth: Int) -> UnsafePointer<Float> {
        let root = constantRoot(name)
        let releases = releasesOriginal(name, root: root)
        let entry: PackedWeightStore.Entry
        if let done = packedWeightStore.existing(root, layout: layout, group: group, rows: rows, depth: depth) {
            entry = done
        } else if releases, let shape = constant(root)?.shape, graph.initializers[root]?.dtype == .float32 {
            // Passed on as a temporary, so that nothing here still holds the elements.
            entry = packedWeightStore.packedTakingWeights(root, Self.takeFloats(&graph.initializers, root), shape: shape,
                                                          layout: layout, group: group, rows: rows, depth: depth)
        } else {
            entry = packedWeightStore.packed(root, weights: constant(root)!, layout: layout, group: group, rows: rows, depth: depth)
        }
        if releases { graph.initializers[root] = nil }
        return pin(entry.values)
    }

    /// Depthwise weights `name` ([channels, 1, kh, kw]) interleaved for
    /// `conv.depthwise-interleaved` (or the runtime's interleaved copy), releasing the original
    /// as `packedConvWeights` does (both were held before: 0.7 MB of EfficientNetB0); nil when
    /// they are no float32 constant of that size.
    func interleavedDepthwiseWeights(_ name: String, channels: Int, taps: Int) -> UnsafePointer<Float>? {
        let root = constantRoot(name)
        let values: [Float]
        if let done = packedWeightStore.existingInterleaved(root, channels: channels, taps: taps) {
            values = done
        } else {
            guard let weights = constant(root), weights.dtype == .float32, weights.count == channels * taps else { return nil }
            values = packedWeightStore.interleavedDepthwise(root, weights: weights, channels: channels, taps: taps)
        }
        if releasesOriginal(name, root: root) { graph.initializers[root] = nil }
        return pin(values)
    }

    /// Recurrent weights `name` (R, [directions, gates·hidden, hidden]) packed for the recurrent
    /// kernels (or the runtime's packed copy), releasing the original as `packedConvWeights`
    /// does; nil when they are no float32 constant of that size (packed on every run then).
    func recurrentWeights(_ name: String, _ packing: RecurrentPacking) -> UnsafePointer<Float>? {
        let root = constantRoot(name)
        let values: [Float]
        let releases = releasesOriginal(name, root: root)
        if let done = packedWeightStore.existingRecurrent(root, packing) {
            values = done
        } else {
            // (Only the shape is kept: a tensor held here would share the elements taken below.)
            guard let shape = constant(root).flatMap({ $0.dtype == .float32 && $0.count == packing.originalCount ? $0.shape : nil })
            else { return nil }
            if releases, graph.initializers[root] != nil {
                // Passed on as a temporary, so that nothing here still holds the elements.
                values = packedWeightStore.packedRecurrentTakingWeights(root, Self.takeFloats(&graph.initializers, root),
                                                                        shape: shape, packing)
            } else {
                values = packedWeightStore.packedRecurrent(root, weights: constant(root)!, packing)
            }
        }
        if releases { graph.initializers[root] = nil }
        return pin(values)
    }

    /// Whether a weight's original may go once its packed copy is made: this runtime releases
    /// packed weights, and only this node reads the initializer, under its own name.
    private func releasesOriginal(_ name: String, root: String) -> Bool {
        releasesPackedWeights && root == name && readers[root] == 1
    }

    /// Removes float32 initializer `name` and returns its elements (then held by nobody else,
    /// unless another copy of the graph shares them).
    private static func takeFloats(_ initializers: inout [String: Tensor], _ name: String) -> [Float] {
        initializers.removeValue(forKey: name)!.floats
    }

    /// The initializer a constant value reads (itself, or the one it aliases).
    func constantRoot(_ name: String) -> String { constantRoots[name] ?? name }

    /// Address of a float32 value (arena or initializer). Kernels never write initializers.
    func pointer(_ name: String) -> UnsafeMutablePointer<Float> {
        switch homes[name]! {
        case .arena(let block, let offset): return arena + blocks[block].offset + offset
        case .constant:
            let root = constantRoot(name)
            if let p = constantPointers[root] { return p }
            guard case .float32(let values) = constant(root)!.storage else { preconditionFailure("'\(name)' is not float32") }
            pinned.append(values)
            // The array's storage stays where it is while `pinned` holds it and nobody writes it.
            let p = values.withUnsafeBufferPointer { UnsafeMutablePointer(mutating: $0.baseAddress) }
                ?? UnsafeMutablePointer<Float>.allocate(capacity: 1)
            constantPointers[root] = p
            return p
        case .boxed: preconditionFailure("'\(name)' is not float32")
        }
    }

    /// Address of an optional float32 input (nil when absent).
    func optionalPointer(_ node: Node, _ i: Int) -> UnsafeMutablePointer<Float>? {
        i < node.inputs.count && !node.inputs[i].isEmpty ? pointer(node.inputs[i]) : nil
    }

    /// A new block written at `step`.
    private func newBlock(_ name: String, step: Int) {
        blocks.append(ArenaBlock(offset: 0, size: ArenaPlanner.aligned(count(name)), firstStep: step, lastStep: step))
        homes[name] = .arena(block: blocks.count - 1, offset: 0)
    }

    private func newBox(_ name: String) {
        homes[name] = .boxed(slot: boxCount)
        boxCount += 1
    }

    /// Keeps an array the plan made (packed weights) for the plan's life; returns its address.
    func pin(_ values: [Float]) -> UnsafePointer<Float> {
        pinned.append(values)
        return values.withUnsafeBufferPointer { $0.baseAddress } ?? UnsafePointer(UnsafeMutablePointer<Float>.allocate(capacity: 1))
    }

    /// Gives `name` the home of `source` (same elements, another shape).
    func alias(_ name: String, to source: String) {
        homes[name] = homes[source]
        if case .constant = homes[source] { constantRoots[name] = constantRoots[source] }
    }

    func planNodes() throws {
        for name in constants {
            homes[name] = .constant
            constantRoots[name] = name
        }
        for v in graph.inputs {
            if isFloat(v.name) { newBlock(v.name, step: -1) } else { newBox(v.name) }
        }
        (freeEstimate, aboveEstimate, budgetSlack) = estimateFreeRoom()
        for (i, node) in graph.nodes.enumerated() {
            currentStep = i
            let kernel = try planAlias(node) ?? choose(node) ?? fallback(node)
            for name in node.outputs where !name.isEmpty && homes[name] == nil {
                if isFloat(name) { newBlock(name, step: i) } else { newBox(name) }
            }
            chosen.append(kernel)
            scratchBlocks.append(kernel.scratch > 0
                ? ArenaBlock(offset: 0, size: ArenaPlanner.aligned(kernel.scratch), firstStep: i, lastStep: i) : nil)
        }
        boxes.slots = Array(repeating: nil, count: boxCount)
        // Liveness: a block lives until the last step reading any value it holds.
        for (i, node) in graph.nodes.enumerated() {
            for name in node.inputs where !name.isEmpty {
                if case .arena(let b, _) = homes[name] { blocks[b].lastStep = max(blocks[b].lastStep, i) }
            }
        }
        for v in graph.outputs {
            if case .arena(let b, _) = homes[v.name] { blocks[b].lastStep = graph.nodes.count }
        }
        // The intermediates first, then each step's scratch in what they leave free at that step
        // (placed together, the short-lived scratch blocks scattered the long-lived values:
        // ResNet50's arena grew from 10.7 to 13.2 MB).
        _ = ArenaPlanner.place(&blocks)
        var scratch = scratchBlocks.compactMap { $0 }
        arenaCount = ArenaPlanner.place(&scratch, around: blocks)
        var placedScratch = scratch.makeIterator()
        for i in scratchBlocks.indices where scratchBlocks[i] != nil { scratchBlocks[i] = placedScratch.next() }
        // The largest set of live intermediates (scratch not counted).
        for step in -1...graph.nodes.count {
            let live = blocks.filter { $0.firstStep <= step && step <= $0.lastStep }.reduce(0) { $0 + $1.size }
            peakLiveCount = max(peakLiveCount, live)
        }
    }

    /// Floats of scratch a kernel may take at the current step without making the arena larger
    /// than its intermediates need (what they leave free at the step), and never less than
    /// `minimumScratch`: a kernel wanting more than this should take a way that needs less
    /// (Winograd shrinks its blocks and chunks, or falls back to im2col).
    func scratchRoom(_ node: Node) -> Int { Swift.max(Self.minimumScratch, freeRoom(node)) }

    /// What the step's intermediates leave free in the arena, with no minimum (a kernel that
    /// can shrink its scratch tries this first).
    func freeRoom(_ node: Node) -> Int {
        currentStep < freeEstimate.count ? freeEstimate[currentStep] : 0
    }

    /// The larger of `freeRoom` and the space above the step's live blocks plus what the arena
    /// may grow within 1.5x its largest live set: the room a kernel tries, when `freeRoom` is
    /// too small, before growing the arena past the budget
    /// (a small image's arena otherwise grows by a kernel's fixed tile: ResNet50's at 96x96 was
    /// twice its 1.3 MB of live intermediates).
    func roomWithinBudget(_ node: Node) -> Int {
        // A gap between live blocks cannot grow; the space above them can, by the slack.
        let above = currentStep < aboveEstimate.count ? aboveEstimate[currentStep] : 0
        return Swift.max(freeRoom(node), above + budgetSlack)
    }

    /// 4 MB: the im2col tiles and packing buffers of two threads fit in it (1 MB made VGG16's
    /// 224x224 block1_conv2 too tight for Winograd and gave ResNet50's arena nothing back).
    static let minimumScratch = 1 << 20

    /// Elements of the arena free at each step: float32 intermediates (written by an earlier or
    /// this step, read by this or a later one; graph inputs from the start, outputs to the end;
    /// a reshape-like node's output sharing its input's elements as `planAlias` makes it)
    /// placed before any kernel is chosen.
    private func estimateFreeRoom() -> (free: [Int], above: [Int], slack: Int) {
        let steps = graph.nodes.count
        var root: [String: String] = [:]
        var span: [String: (first: Int, last: Int, size: Int)] = [:]
        func note(_ name: String, _ step: Int) {
            let r = root[name] ?? name
            guard var s = span[r] else { return }
            s.first = Swift.min(s.first, step)
            s.last = Swift.max(s.last, step)
            span[r] = s
        }
        for v in graph.inputs where isFloat(v.name) { span[v.name] = (-1, -1, ArenaPlanner.aligned(count(v.name))) }
        for (i, node) in graph.nodes.enumerated() {
            for name in node.inputs where !name.isEmpty { note(name, i) }
            switch node.op {
            case .reshape, .flatten, .squeeze, .unsqueeze, .identity:
                if isFloat(node.inputs[0]) {
                    root[node.outputs[0]] = root[node.inputs[0]] ?? node.inputs[0]
                    continue
                }
            default: break
            }
            for name in node.outputs where isFloat(name) && !constants.contains(name) {
                span[name] = (i, i, ArenaPlanner.aligned(count(name)))
            }
        }
        for v in graph.outputs { note(v.name, steps) }
        // Placed as the arena will place them: what a step's scratch can take without making
        // the arena larger is the space above its live blocks (to the top of all) or the
        // largest gap between them.
        var blocks = span.values.filter { $0.last >= 0 }
            .map { ArenaBlock(offset: 0, size: $0.size, firstStep: $0.first, lastStep: $0.last) }
        let top = ArenaPlanner.place(&blocks)
        var free = [Int](repeating: 0, count: steps), above = free
        var peakLive = 0
        for step in 0..<steps {
            let live = blocks.filter { $0.firstStep <= step && step <= $0.lastStep && $0.size > 0 }.sorted { $0.offset < $1.offset }
            var end = 0, largest = 0
            for b in live {
                largest = Swift.max(largest, b.offset - end)
                end = Swift.max(end, b.offset + b.size)
            }
            free[step] = Swift.max(largest, top - end)
            above[step] = top - end
            peakLive = Swift.max(peakLive, live.reduce(0) { $0 + $1.size })
        }
        return (free, above, Swift.max(0, peakLive * 3 / 2 - top))
    }

    /// Reshape-like nodes on float32 values: the output is the input under another shape.
    private func planAlias(_ node: Node) -> PlannedKernel? {
        switch node.op {
        case .reshape, .flatten, .squeeze, .unsqueeze, .identity:
            guard isFloat(node.inputs[0]), homes[node.inputs[0]] != nil else { return nil }
            alias(node.outputs[0], to: node.inputs[0])
            return PlannedKernel(name: "alias", make: nil)
        default:
            return nil
        }
    }

    /// A fast kernel for the node, or nil to use the reference kernel.
    private func choose(_ node: Node) throws -> PlannedKernel? {
        // Recurrent layers read integer sequence_lens: they check their own inputs.
        switch node.op {
        case .lstm(let a), .gru(let a), .rnn(let a): return planRecurrent(node, a)
        default: break
        }
        // Fast kernels take float32 inputs and outputs only.
        guard node.inputs.allSatisfy({ $0.isEmpty || isFloat($0) }),
              node.outputs.allSatisfy({ $0.isEmpty || isFloat($0) }) else { return nil }
        switch node.op {
        case .conv(let a): return planConv(node, a)
        case .gemm(let a): return planGemm(node, a)
        case .matMul: return planMatMul(node)
        case .maxPool(let a): return planPool(node, a, average: false)
        case .averagePool(let a): return planPool(node, a, average: true)
        case .globalAveragePool: return planGlobalPool(node, average: true)
        case .globalMaxPool: return planGlobalPool(node, average: false)
        case .softmax(let axis): return planSoftmax(node, axis: axis)
        case .lrn(let size, let alpha, let beta, let bias): return planLRN(node, size: size, alpha: alpha, beta: beta, bias: bias)
        case .add, .sub, .mul, .div: return planBinary(node)
        case .batchNormalization(let epsilon): return planBatchNormalization(node, epsilon: epsilon)
        case .concat(let axis): return planConcat(node, axis: axis)
        case .transpose(let perm): return planTranspose(node, perm: perm)
        default:
            if let activation = FusedActivation(node.op) { return planActivation(node, activation) }
            return nil
        }
    }

    /// Reads a value as a tensor (a copy for arena values).
    func reader(_ name: String) -> () -> Tensor {
        let shape = shape(name)
        switch homes[name]! {
        case .arena:
            let p = pointer(name), n = count(name)
            return { Tensor(shape: shape, floats: Array(UnsafeBufferPointer(start: p, count: n))) }
        case .constant:
            let t = constant(constantRoot(name))!.reshaped(shape)
            return { t }
        case .boxed(let slot):
            let boxes = boxes
            return { boxes.slots[slot]! }
        }
    }

    /// The reference kernel on tensors copied out of (and results copied into) the arena.
    private func fallback(_ node: Node) -> PlannedKernel {
        PlannedKernel(name: "reference") { b in
            let readers: [(() -> Tensor)?] = node.inputs.map { $0.isEmpty ? nil : b.reader($0) }
            var writers: [((Tensor) throws -> Void)?] = []
            for name in node.outputs {
                if name.isEmpty { writers.append(nil); continue }
                let shape = b.shape(name)
                switch b.homes[name]! {
                case .arena:
                    let p = b.pointer(name)
                    writers.append { t in
                        guard t.shape == shape, case .float32(let values) = t.storage else {
                            throw FerryError("'\(name)' came out as \(t.dtype)\(t.shape), planned float32\(shape)")
                        }
                        values.withUnsafeBufferPointer { if let a = $0.baseAddress { p.update(from: a, count: $0.count) } }
                    }
                case .boxed(let slot):
                    let boxes = b.boxes
                    writers.append { t in boxes.slots[slot] = t }
                case .constant:
                    writers.append(nil)
                }
            }
            let op = node.op
            return {
                let results = try ReferenceKernels.evaluate(op, readers.map { $0?() })
                for (write, t) in zip(writers, results) { try write?(t) }
            }
        }
    }
}

/// An integer from the environment (tuning knobs for benchmarks), nil when unset or not a number.
func environmentInteger(_ name: String) -> Int? {
    ProcessInfo.processInfo.environment[name].flatMap { Int($0) }
}
