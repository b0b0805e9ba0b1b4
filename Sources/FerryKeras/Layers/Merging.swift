import FerryIR

/// How an elementwise merge combines its inputs: a chain of one binary op, optionally scaled
/// (Average is the sum times 1/n).
protocol MergeKind {
    static var op: Op { get }
    static var role: String { get }
    static var exactlyTwo: Bool { get }
    static var averages: Bool { get }
}

extension MergeKind {
    static var exactlyTwo: Bool { false }
    static var averages: Bool { false }
}

enum AddMerge: MergeKind {
    static var op: Op { .add }
    static var role: String { "add" }
}

enum SubtractMerge: MergeKind {
    static var op: Op { .sub }
    static var role: String { "sub" }
    static var exactlyTwo: Bool { true }
}

enum MultiplyMerge: MergeKind {
    static var op: Op { .mul }
    static var role: String { "mul" }
}

enum AverageMerge: MergeKind {
    static var op: Op { .add }
    static var role: String { "add" }
    static var averages: Bool { true }
}

enum MaximumMerge: MergeKind {
    static var op: Op { .max }
    static var role: String { "max" }
}

enum MinimumMerge: MergeKind {
    static var op: Op { .min }
    static var role: String { "min" }
}

/// Add, Subtract, Multiply, Average, Maximum, Minimum: elementwise over inputs of one shape. The inputs are
/// taken channels first when every one of them already is, else in Keras layout.
struct ElementwiseMergeSpec<Kind: MergeKind>: KerasLayer {
    init(config: ConfigReader) throws {}

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        if Kind.exactlyTwo {
            guard inputs.count == 2 else { throw ctx.error("expects exactly two inputs, is called on \(inputs.count)") }
        } else {
            guard inputs.count >= 1 else { throw ctx.error("is called on no inputs") }
        }
        let (values, channelsFirst) = try ctx.commonLayout(inputs)
        var acc = values[0]
        for v in values.dropFirst() {
            acc = try ctx.emit(Kind.op, [acc, v], role: Kind.role)
        }
        if Kind.averages {
            let scale = ctx.constant("inverse_count", Tensor(shape: [], floats: [1 / Float(values.count)]))
            acc = try ctx.emit(.mul, [acc, scale], role: "average")
        } else if values.count == 1 {
            acc = try ctx.emit(.identity, [acc], role: "identity")
        }
        return [channelsFirst ? KerasTensor(channelsFirst: acc) : KerasTensor(keras: acc)]
    }
}

extension LayerContext {
    /// The tensors in one layout: channels first when all are held so, else Keras layout.
    func commonLayout(_ tensors: [KerasTensor]) throws -> (values: [IRValue], channelsFirst: Bool) {
        if tensors.allSatisfy({ anyLayout($0).channelsFirst }) {
            return (tensors.map { anyLayout($0).value }, true)
        }
        return (try tensors.map { try kerasLayout($0) }, false)
    }
}
