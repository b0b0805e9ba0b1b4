import FerryIR

extension CaffeExporter {
    /// 1-D convolutions (transposed too) and pooling (N, C, L) as their 2-D forms over (N, C, 1, L): OpenCV's Caffe
    /// layers are 2-D. Each becomes Unsqueeze (axis 2) -> the op with a unit first spatial axis
    /// (kernel 1, stride 1, no pads, weights (M, C/g, 1, k) or (C, M/g, 1, k)) -> Squeeze (axis 2); inserting or
    /// dropping a unit axis moves no element, and the unit axis adds no window or cell, so the
    /// values are the same. A Squeeze read only by the next lifted op's Unsqueeze cancels it,
    /// so a run of 1-D layers stays 2-D between them. The Unsqueeze and Squeeze carry no
    /// origin, so the op keeps its source layer's name (`<op>/to_2d`, `<op>/to_1d` for them).
    static func liftingOneDimensionalTo2D(_ source: Graph) throws -> Graph {
        var g = source
        let types = try g.inferTypes()
        var names = ValueNames(g)
        func fresh(_ base: String) -> String { names.fresh(base) }
        var nodes: [Node] = []
        /// Squeezes this pass made: squeezed value -> the 4-D value it came from.
        var squeezedFrom: [String: String] = [:]
        for node in g.nodes {
            guard let type = types[node.inputs.first ?? ""], type.shape.rank == 3, node.outputs.count == 1,
                  let lifted = liftedOp(node.op) else {
                nodes.append(node)
                continue
            }
            var inputs = node.inputs
            if let wide = squeezedFrom[inputs[0]] {
                inputs[0] = wide
            } else {
                let wide = fresh("\(inputs[0])/2d")
                nodes.append(Node(name: fresh("\(node.name)/to_2d"), op: .unsqueeze(axes: [2]), inputs: [inputs[0]], outputs: [wide]))
                inputs[0] = wide
            }
            if node.inputs.count > 1, let w = g.initializers[node.inputs[1]], w.rank == 3 {
                let name = fresh("\(node.inputs[1])/2d")
                g.initializers[name] = w.reshaped([w.shape[0], w.shape[1], 1, w.shape[2]])
                inputs[1] = name
            }
            let wideOut = fresh("\(node.outputs[0])/2d")
            nodes.append(Node(name: node.name, op: lifted, inputs: inputs, outputs: [wideOut] + node.outputs.dropFirst(),
                              origins: node.origins))
            nodes.append(Node(name: fresh("\(node.name)/to_1d"), op: .squeeze(axes: [2]), inputs: [wideOut], outputs: [node.outputs[0]]))
            squeezedFrom[node.outputs[0]] = wideOut
        }
        // A Squeeze nothing reads any longer (every reader took its 4-D value) goes.
        let read = Set(nodes.flatMap(\.inputs)).union(g.outputs.map(\.name))
        g.nodes = nodes.filter { n in
            guard case .squeeze = n.op, squeezedFrom[n.outputs[0]] != nil else { return true }
            return read.contains(n.outputs[0])
        }
        return g
    }

    /// The 2-D form of a 1-D op over (N, C, 1, L), or nil when the op is not one this lifts.
    private static func liftedOp(_ op: Op) -> Op? {
        switch op {
        case .conv(let a) where a.kernelShape.count == 1:
            return .conv(lifted(a))
        case .convTranspose(let a) where a.kernelShape.count == 1:
            var b = lifted(a)
            b.outputPadding = [0] + a.outputPadding
            return .convTranspose(b)
        case .maxPool(let a) where a.kernelShape.count == 1: return .maxPool(lifted(a))
        case .averagePool(let a) where a.kernelShape.count == 1: return .averagePool(lifted(a))
        case .globalAveragePool, .globalMaxPool: return op
        default: return nil
        }
    }

    /// A 1-D window over (1, L): height 1, unpadded along it.
    private static func lifted<Window: SlidingWindow>(_ a: Window) -> Window {
        var b = a
        b.kernelShape = [1] + a.kernelShape
        b.strides = [1] + a.strides
        b.dilations = [1] + a.dilations
        b.pads = [0, a.pads[0], 0, a.pads[1]]
        return b
    }
}

/// The window geometry convolutions and pooling share (what lifting to 2-D changes).
private protocol SlidingWindow {
    var kernelShape: [Int] { get set }
    var strides: [Int] { get set }
    var dilations: [Int] { get set }
    var pads: [Int] { get set }
}

extension ConvAttributes: SlidingWindow {}
extension ConvTransposeAttributes: SlidingWindow {}
extension PoolAttributes: SlidingWindow {}
