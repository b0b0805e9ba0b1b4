import Testing
@testable import FerryIR

/// `RecordedLayerGroup.match` and `complete` on a graph where the optimizer merged one layer's
/// node into another's (common subexpressions: the same op on the same input), as it merges two
/// MultiHeadAttention layers' Unsqueeze of one mask.
@Suite struct RecordedLayerTests {
    let a = Origin(layer: "a", type: "MultiHeadAttention")
    let b = Origin(layer: "b", type: "MultiHeadAttention")
    let unsqueeze = Op.unsqueeze(axes: [1])

    /// a: Cast(Unsqueeze(mask)); b: Unsqueeze(x) + Unsqueeze(mask), its Unsqueeze of the mask
    /// merged into a's (which then names both layers among its origins, unless `mergedOrigins`
    /// is false).
    func graph(mergedOrigins: Bool = true) -> Graph {
        let f32 = { (dims: [Int]) in TensorType(.float32, Shape(dims)) }
        return Graph(name: "merged", inputs: [Value(name: "x", type: f32([2, 3])), Value(name: "mask", type: f32([2, 3]))],
                     outputs: [Value(name: "a", type: f32([2, 1, 3])), Value(name: "b", type: f32([2, 1, 3]))],
                     nodes: [
                         Node(name: "a/mask_heads", op: unsqueeze, inputs: ["mask"], outputs: ["a/mask_heads"],
                              origins: mergedOrigins ? [a, b] : [a]),
                         Node(name: "a", op: .cast(to: .float32), inputs: ["a/mask_heads"], outputs: ["a"], origins: [a]),
                         Node(name: "b/x_heads", op: unsqueeze, inputs: ["x"], outputs: ["b/x_heads"], origins: [b]),
                         Node(name: "b", op: .add, inputs: ["b/x_heads", "a/mask_heads"], outputs: ["b"], origins: [b]),
                     ])
    }

    let groupA = RecordedLayerGroup(layer: "a", inputs: ["mask"], outputs: ["a"],
                                    nodes: [("a/mask_heads", "\(Op.unsqueeze(axes: [1]))"), ("a", "\(Op.cast(to: .float32))")],
                                    weights: [])
    let groupB = RecordedLayerGroup(layer: "b", inputs: ["x", "mask"], outputs: ["b"],
                                    nodes: [("b/x_heads", "\(Op.unsqueeze(axes: [1]))"), ("b/mask_heads", "\(Op.unsqueeze(axes: [1]))"),
                                            ("b", "\(Op.add)")],
                                    weights: [])

    func matches(_ g: Graph, _ groups: [RecordedLayerGroup]) -> [Int: (group: RecordedLayerGroup, match: RecordedLayerMatch, payload: String)] {
        let index = Dictionary(uniqueKeysWithValues: g.nodes.enumerated().map { ($1.name, $0) })
        let readers = g.consumerIndices()
        var out: [Int: (group: RecordedLayerGroup, match: RecordedLayerMatch, payload: String)] = [:]
        for group in groups {
            guard let m = group.match(in: g, index: index, readers: readers) else { continue }
            out[m.nodes.min()!] = (group, m, group.layer)
        }
        return out
    }

    @Test func aMergedNodeStandsForBothLayers() throws {
        let g = graph()
        let index = Dictionary(uniqueKeysWithValues: g.nodes.enumerated().map { ($1.name, $0) })
        let readers = g.consumerIndices()
        let mb = try #require(groupB.match(in: g, index: index, readers: readers))
        #expect(mb.nodes == [2, 3] && mb.shared == [0] && mb.exposed.isEmpty)
        let ma = try #require(groupA.match(in: g, index: index, readers: readers))
        #expect(ma.nodes == [0, 1] && ma.shared.isEmpty && ma.exposed == [0: [3]])
        let kept = RecordedLayerGroup.complete(matches(g, [groupA, groupB]), in: g)
        #expect(Set(kept.values.map(\.payload)) == ["a", "b"])
    }

    @Test func aSharedNodeNeedsBothLayersKept() {
        // Without b's group, b's Add (written on its own) reads a's Unsqueeze, which a's layer hides.
        let g = graph()
        #expect(RecordedLayerGroup.complete(matches(g, [groupA]), in: g).isEmpty)
    }

    @Test func anotherLayersNodeOfTheSameOpIsNotTakenUnlessMerged() {
        // The same op on the same input, but not merged from b's node: b does not hold its nodes.
        let g = graph(mergedOrigins: false)
        let kept = RecordedLayerGroup.complete(matches(g, [groupA, groupB]), in: g)
        #expect(kept.isEmpty)
    }
}
