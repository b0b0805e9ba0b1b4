import FerryIR

/// A recurrent layer seen as the cell of the generic RNN layer: SimpleRNNCell, LSTMCell and
/// GRUCell compute what SimpleRNN, LSTM and GRU compute (their configs hold the same fields
/// but the returns, which the RNN layer sets).
protocol RecurrentCellLayer {
    var units: Int { get }
    var stateCount: Int { get }
    var useBias: Bool { get }
    var returnSequences: Bool { get set }
    var returnState: Bool { get set }
    var goBackwards: Bool { get set }
    func weightSpecs(features: Int) -> [WeightSpec]
    func onnxWeights(first: Int, features: Int, prefix: String) -> [PlacedWeight]
    func run(_ x: IRValue, weights: [IRValue], initialStates: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor]
}

extension RecurrentSpec: RecurrentCellLayer {
    var stateCount: Int { Kind.stateCount }
}

/// The cell classes the RNN layer takes, to the recurrent layer each is one step of.
let recurrentCellTable: [String: @Sendable (ConfigReader) throws -> any RecurrentCellLayer] = [
    "SimpleRNNCell": { try RecurrentSpec<SimpleRNNKind>(config: $0) },
    "LSTMCell": { try RecurrentSpec<LSTMKind>(config: $0) },
    "GRUCell": { try RecurrentSpec<GRUKind>(config: $0) },
]

/// The generic RNN layer over a built-in cell, or over StackedRNNCells (also what a list of
/// cells is saved as): each cell reads the outputs of the one before at every step, which is
/// the cells run one after another over the whole sequence. Outputs: the last cell's output
/// (sequence or last step), then with return_state every cell's states in order (h, and c of
/// an LSTM cell), as Keras flattens them. go_backwards reverses the input once; every cell then
/// runs forwards and the sequence comes out in processing order, as Keras returns it.
struct GenericRNNSpec: KerasLayer {
    var cells: [any RecurrentCellLayer]
    /// Keras 3's groups of the cells' weights: `cell` for one, `cell/cells/<auto name>` for a
    /// stack (snake-case class name, numbered per class in list order).
    var weightGroups: [[String]]
    var returnSequences: Bool
    var returnState: Bool
    var goBackwards: Bool
    var maskEffect: KerasMaskEffect { .reads }

    init(config: ConfigReader) throws {
        returnSequences = try config.bool("return_sequences", default: false)
        returnState = try config.bool("return_state", default: false)
        goBackwards = try config.bool("go_backwards", default: false)
        // As for the recurrent layers: a loaded stateful model starts from zero states.
        _ = try config.bool("stateful", default: false)
        if try config.bool("time_major", default: false) {
            throw config.error("time_major inputs are not supported")
        }
        let cell = try config.object("cell")
        let className = try cell.string("class_name")
        let cellConfig = try cell.object("config")
        func parse(_ entry: ConfigReader, _ name: String, _ config: ConfigReader) throws -> any RecurrentCellLayer {
            guard let parser = recurrentCellTable[name] else {
                let known = recurrentCellTable.keys.sorted().joined(separator: ", ")
                throw entry.error("an RNN cell of class \(name) is not supported (\(known) and StackedRNNCells are)")
            }
            return try parser(config)
        }
        if className == "StackedRNNCells" {
            let entries = try cellConfig.objects("cells")
            guard !entries.isEmpty else { throw cellConfig.error("StackedRNNCells holds no cells") }
            var used: [String: Int] = [:]
            cells = []
            weightGroups = []
            for entry in entries {
                let name = try entry.string("class_name")
                cells.append(try parse(entry, name, try entry.object("config")))
                let base = ModelConfig.snakeCase(name)
                let n = used[base].map { $0 + 1 } ?? 0
                used[base] = n
                weightGroups.append(["cell", "cells", n == 0 ? base : "\(base)_\(n)"])
            }
        } else {
            cells = [try parse(cell, className, cellConfig)]
            weightGroups = [["cell"]]
        }
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        guard let first = inputs.first else { throw ctx.error("is called on no inputs") }
        var x = try recurrentInput(first, ctx)
        let states = Array(inputs.dropFirst()) + ctx.keywordInputs("initial_state")
        let stateCounts = cells.map(\.stateCount)
        guard states.isEmpty || states.count == stateCounts.reduce(0, +) else {
            throw ctx.error("is given \(states.count) initial states, its cells need \(stateCounts.reduce(0, +))")
        }
        // Each cell's input width: the layer's features, then the previous cell's units.
        let widths = [x.shape[2].value!] + cells.dropLast().map(\.units)
        let specs = zip(cells, widths).map { $0.weightSpecs(features: $1) }
        var firstWeight = 0
        let placed = cells.indices.flatMap { i -> [PlacedWeight] in
            defer { firstWeight += specs[i].count }
            return cells[i].onnxWeights(first: firstWeight, features: widths[i], prefix: cells.count == 1 ? "" : "cell\(i)_")
        }
        let weights = try ctx.placedWeights(specs.flatMap { $0 }, placed)
        if cells.count == 1 {
            var cell = cells[0]
            (cell.returnSequences, cell.returnState, cell.goBackwards) = (returnSequences, returnState, goBackwards)
            return try cell.run(x, weights: weights, initialStates: states, ctx)
        }
        if goBackwards { x = try reverseTime(x, ctx) }
        var outputs: [KerasTensor] = []
        var finalStates: [KerasTensor] = []
        var weightStart = 0, stateStart = 0
        for (i, var cell) in cells.enumerated() {
            (cell.returnSequences, cell.returnState, cell.goBackwards) = (i < cells.count - 1 || returnSequences, returnState, false)
            let count = cell.useBias ? 3 : 2
            let given = states.isEmpty ? [] : Array(states[stateStart..<(stateStart + cell.stateCount)])
            outputs = try cell.run(x, weights: Array(weights[weightStart..<(weightStart + count)]), initialStates: given, ctx)
            weightStart += count
            stateStart += cell.stateCount
            finalStates += outputs.dropFirst()
            x = try ctx.kerasLayout(outputs[0])
        }
        return [outputs[0]] + finalStates
    }
}
