import FerryIR

/// How an elementwise merge combines its inputs: a chain of one binary op, optionally scaled
/// (Average is the IR's Mean).
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
        if Kind.averages && values.count >= 2 {
            // The IR's Mean: the sum divided by the count, as Keras computes it, in one node the
            // Keras writer maps back to one Average layer.
            let mean = try ctx.emit(.mean, values, role: "average")
            return [channelsFirst ? KerasTensor(channelsFirst: mean) : KerasTensor(keras: mean)]
        }
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

/// Dot: Keras's batch_dot of two tensors along one axis each (2-D: a sum of products, giving
/// (N, 1); 3-D: a batched matrix product), optionally of L2-normalized inputs (cosine).
struct DotSpec: KerasLayer {
    var axes: [Int]
    var normalize: Bool

    init(config: ConfigReader) throws {
        if let list = config.raw("axes")?.array {
            axes = try list.map { try JSONValue.int($0, orThrow: config.error("axes should hold integers")) }
        } else {
            axes = [try config.int("axes")]
        }
        if axes.count == 1 { axes.append(axes[0]) }
        guard axes.count == 2 else { throw config.error("axes should be one integer or two") }
        normalize = try config.bool("normalize", default: false)
    }

    func build(_ inputs: [KerasTensor], _ ctx: LayerContext) throws -> [KerasTensor] {
        guard inputs.count == 2 else { throw ctx.error("expects two inputs, is called on \(inputs.count)") }
        var x = try ctx.kerasLayout(inputs[0]), y = try ctx.kerasLayout(inputs[1])
        guard x.rank == y.rank, x.rank == 2 || x.rank == 3 else {
            throw ctx.error("Dot of \(x.shape) and \(y.shape) is not supported (only two 2-D or two 3-D inputs)")
        }
        let rank = x.rank
        let ax = axes[0] < 0 ? axes[0] + rank : axes[0], ay = axes[1] < 0 ? axes[1] + rank : axes[1]
        guard ax >= 1, ax < rank, ay >= 1, ay < rank else { throw ctx.error("axes \(axes) are out of range") }
        if normalize {
            x = try ctx.emit(.lpNormalization(axis: ax, p: 2), [x], role: "normalize_a")
            y = try ctx.emit(.lpNormalization(axis: ay, p: 2), [y], role: "normalize_b")
        }
        if rank == 2 {
            let p = try ctx.emit(.mul, [x, y], role: "mul")
            return [KerasTensor(keras: try ctx.emit(.reduce(.sum, axes: [1], keepDims: true), [p], role: "sum"))]
        }
        // (N, a, d) x (N, d, b): the contracted axis last in x and first (after N) in y.
        if ax == 1 { x = try ctx.emit(.transpose(perm: [0, 2, 1]), [x], role: "transpose_a") }
        if ay == 2 { y = try ctx.emit(.transpose(perm: [0, 2, 1]), [y], role: "transpose_b") }
        return [KerasTensor(keras: try ctx.emit(.matMul, [x, y], role: "matmul"))]
    }
}
