import FerryIR

/// A constant Pad of the spatial axes before a pooling becomes the pooling's own padding, where
/// that computes the same thing exactly (floor-mode pooling only: a ceil-mode window may start
/// in the end padding, and whether it counts would change):
/// - MaxPool pads with -infinity. A Pad's fill v gives the same maximum when every window keeps
///   at least one input cell (each side's total pad below the kernel size, as ONNX requires of
///   pooling pads anyway) and v is at most
///   every input value: v = -infinity, or a lower bound of the producer (Keras ResNet's
///   ZeroPadding2D after a ReLU: 0 <= relu(x)).
/// - AveragePool of a zero Pad divides by the whole window, zeros included: the same as
///   count_include_pad = 1, provided the pooling had no padding of its own or already counted it.
public struct FoldPadIntoPool: Pass {
    public let name = "fold-pad-into-pool"
    public let unit = "Pads folded"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var folded = 0
        for c in graph.nodes.indices {
            let isMax: Bool
            var attributes: PoolAttributes
            switch graph.nodes[c].op {
            case .maxPool(let a): isMax = true; attributes = a
            case .averagePool(let a): isMax = false; attributes = a
            default: continue
            }
            let spatial = attributes.kernelShape.count
            // Indices would count the padded input's cells; dilated windows are left alone.
            guard !attributes.ceilMode, graph.nodes[c].outputs.count == 1, attributes.dilations.allSatisfy({ $0 == 1 }),
                  let (p, pad, pads) = spatialPad(feeding: c, adding: attributes.pads, in: graph) else { continue }
            // Pooling pads stay below the kernel size (ONNX's rule); for MaxPool that also
            // means every window keeps at least one input cell.
            guard (0..<spatial).allSatisfy({ pads[$0] < attributes.kernelShape[$0] && pads[spatial + $0] < attributes.kernelShape[$0] }) else {
                continue
            }
            if isMax {
                let fillIsBelowInput = pad.value == -.infinity
                    || lowerBound(of: graph.nodes[p].inputs[0], in: graph, graph.producers()).map { pad.value <= $0 } == true
                guard fillIsBelowInput else { continue }
                attributes.pads = pads
                graph.nodes[c].op = .maxPool(attributes)
            } else {
                guard pad.value == 0, attributes.countIncludePad || attributes.pads.allSatisfy({ $0 == 0 }) else { continue }
                attributes.pads = pads
                attributes.countIncludePad = true
                graph.nodes[c].op = .averagePool(attributes)
            }
            graph.absorb(producer: p, into: c)
            folded += 1
        }
        return folded
    }

    /// A value no element of `value` is below, known from the op producing it (an activation,
    /// standalone or fused into a Conv or Gemm).
    func lowerBound(of value: String, in graph: Graph, _ producers: [String: Int]) -> Float? {
        guard let p = producers[value] else { return nil }
        let op = graph.nodes[p].op
        if let fused = op.fusedActivation { return lowerBound(of: fused) }
        return FusedActivation(op).flatMap(lowerBound(of:))
    }

    func lowerBound(of activation: FusedActivation) -> Float? {
        switch activation {
        case .relu, .sigmoid, .hardSigmoid: return 0
        case .clip(let lo, _): return lo
        case .leakyRelu, .tanh, .elu, .gelu, .hardSwish, .swish: return nil
        }
    }
}
