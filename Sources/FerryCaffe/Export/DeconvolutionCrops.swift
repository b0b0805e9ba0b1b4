import FerryIR

extension CaffeExporter {
    /// A ConvTranspose cutting more cells from one end of an axis than from the other (Keras's
    /// `same` with a stride), or adding output_padding cells that its end pad still covers, reads
    /// the full scattered output from `pad begin` to `full + output_padding - pad end`: that is a
    /// ConvTranspose with the smaller cut on both sides (Caffe's symmetric Deconvolution pad) and
    /// a Slice of the rest, which only drops computed cells. output_padding beyond the end pad
    /// (cells past the full output, holding only the bias) comes from zero taps added at the
    /// kernel's end.
    static func croppingAsymmetricDeconvolutions(_ source: Graph) throws -> Graph {
        var g = source
        var taken = Set(g.nodes.flatMap(\.outputs)).union(g.inputs.map(\.name)).union(g.initializers.keys)
        var nodes: [Node] = []
        for node in g.nodes {
            guard case .convTranspose(let a) = node.op, a.kernelShape.count == 2, node.outputs.count == 1 else {
                nodes.append(node)
                continue
            }
            let begins = [a.pads[0], a.pads[1]]
            var ends = (0..<2).map { a.pads[2 + $0] - a.outputPadding[$0] }  // cells cut from the full output's end
            guard begins != ends || a.outputPadding.contains(where: { $0 != 0 }) else {
                nodes.append(node)
                continue
            }
            var inputs = node.inputs
            var b = a
            // output_padding past the full output: zero taps at the kernel's end add cells that
            // receive nothing (the bias only), as those cells are.
            if ends.contains(where: { $0 < 0 }) {
                guard var w = g.initializers[node.inputs[1]], w.rank == 4 else {
                    nodes.append(node)
                    continue
                }
                for axis in 0..<2 where ends[axis] < 0 {
                    let taps = (-ends[axis] + a.dilations[axis] - 1) / a.dilations[axis]
                    w = zeroExtended(w, axis: 2 + axis, by: taps, atFront: false)
                    b.kernelShape[axis] += taps
                    ends[axis] += taps * a.dilations[axis]
                }
                var name = "\(node.inputs[1])/zero_taps"
                var k = 1
                while taken.contains(name) { name = "\(node.inputs[1])/zero_taps_\(k)"; k += 1 }
                taken.insert(name)
                g.initializers[name] = w
                inputs[1] = name
            }
            let symmetric = (0..<2).map { min(begins[$0], ends[$0]) }
            b.pads = symmetric + symmetric
            b.outputPadding = [0, 0]
            var full = "\(node.outputs[0])/uncropped"
            var k = 1
            while taken.contains(full) { full = "\(node.outputs[0])/uncropped_\(k)"; k += 1 }
            taken.insert(full)
            nodes.append(Node(name: node.name, op: .convTranspose(b), inputs: inputs, outputs: [full], origins: node.origins))
            // Cut what the symmetric pad left: from the start and (as a negative end) from the end.
            let axes = (0..<2).filter { begins[$0] != symmetric[$0] || ends[$0] != symmetric[$0] }
            nodes.append(Node(name: "\(node.name)/crop",
                              op: .slice(SliceAttributes(starts: axes.map { begins[$0] - symmetric[$0] },
                                                         ends: axes.map { ends[$0] == symmetric[$0] ? Int.max : symmetric[$0] - ends[$0] },
                                                         axes: axes.map { $0 + 2 })),
                              inputs: [full], outputs: node.outputs, origins: node.origins))
        }
        g.nodes = nodes
        return g
    }
}
