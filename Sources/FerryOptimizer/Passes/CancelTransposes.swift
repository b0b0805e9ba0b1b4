import FerryIR

/// Composes a Transpose that reads another Transpose into one (x.T(p).T(q) = x.T(p[q])); when
/// the two cancel, the second reads the original value directly. The first becomes dead if
/// nothing else reads it.
public struct CancelTransposes: Pass {
    public let name = "cancel-transposes"
    public let unit = "transposes merged"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var merged = 0
        let producers = graph.producers()
        for i in graph.nodes.indices {
            guard case .transpose(let second) = graph.nodes[i].op,
                  let p = producers[graph.nodes[i].inputs[0]],
                  case .transpose(let first) = graph.nodes[p].op else { continue }
            let composed = second.map { first[$0] }
            graph.nodes[i].op = .transpose(perm: composed)
            graph.absorb(producer: p, into: i)
            merged += 1
        }
        return merged
    }
}
