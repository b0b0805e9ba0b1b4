import FerryIR

/// A zero Pad of the spatial axes before a Conv becomes the Conv's own padding (Keras
/// ZeroPadding2D before a 'valid' convolution, as in ResNet's stem). A pad of the batch or
/// channel axes, a negative pad, or a non-zero or non-constant fill stays a Pad.
public struct FoldPadIntoConv: Pass {
    public let name = "fold-pad-into-conv"
    public let unit = "Pads folded"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var folded = 0
        for c in graph.nodes.indices {
            guard case .conv(var attributes) = graph.nodes[c].op else { continue }
            let producers = graph.producers()
            guard let p = producers[graph.nodes[c].inputs[0]], case .pad(let pad) = graph.nodes[p].op,
                  pad.mode == .constant, pad.value == 0, pad.pads.allSatisfy({ $0 >= 0 }),
                  graph.consumers()[graph.nodes[p].outputs[0]]?.count == 1,
                  !graph.outputNames.contains(graph.nodes[p].outputs[0]) else { continue }
            let rank = pad.pads.count / 2, spatial = attributes.kernelShape.count
            guard rank == spatial + 2, pad.pads[0] == 0, pad.pads[1] == 0, pad.pads[rank] == 0, pad.pads[rank + 1] == 0 else {
                continue
            }
            for i in 0..<spatial {
                attributes.pads[i] += pad.pads[2 + i]
                attributes.pads[spatial + i] += pad.pads[rank + 2 + i]
            }
            graph.nodes[c].op = .conv(attributes)
            graph.nodes[c].inputs[0] = graph.nodes[p].inputs[0]
            mergeOrigins(&graph.nodes[c], graph.nodes[p])
            folded += 1
        }
        return folded
    }
}
