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
            guard case .conv(var attributes) = graph.nodes[c].op,
                  let (p, pad, pads) = spatialPad(feeding: c, adding: attributes.pads, in: graph), pad.value == 0 else { continue }
            attributes.pads = pads
            graph.nodes[c].op = .conv(attributes)
            graph.absorb(producer: p, into: c)
            folded += 1
        }
        return folded
    }
}

/// The Pad feeding node `c` (a Conv or pooling with `pads`, all begins then all ends, over
/// its spatial axes) when it pads only those axes, by non-negative amounts with a constant
/// fill, and nothing else reads it: its index, its attributes, and `pads` with its pads added.
func spatialPad(feeding c: Int, adding pads: [Int], in graph: Graph) -> (index: Int, pad: PadAttributes, pads: [Int])? {
    guard let p = graph.producers()[graph.nodes[c].inputs[0]], case .pad(let pad) = graph.nodes[p].op,
          pad.mode == .constant, pad.pads.allSatisfy({ $0 >= 0 }), graph.isPrivate(graph.nodes[p].outputs[0]) else { return nil }
    let rank = pad.pads.count / 2, spatial = pads.count / 2
    guard rank == spatial + 2, pad.pads[0] == 0, pad.pads[1] == 0, pad.pads[rank] == 0, pad.pads[rank + 1] == 0 else { return nil }
    var sum = pads
    for i in 0..<spatial {
        sum[i] += pad.pads[2 + i]
        sum[spatial + i] += pad.pads[rank + 2 + i]
    }
    return (p, pad, sum)
}
