import Testing
@testable import FerryIR
@testable import FerryOptimizer

@Suite struct FoldPadIntoPoolTests {
    /// x -> producer -> Pad -> pool; returns the graph.
    func padThenPool(producer: Op?, pad: PadAttributes, pool: Op) -> Graph {
        var b = GraphBuilder(name: "g")
        var v = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(2), .fixed(7), .fixed(6)])))
        if let producer {
            let w = b.addInitializer("w", randomTensor([2, 2, 1, 1], seed: 100, scale: 3))
            v = b.add(producer == .relu ? .conv(ConvAttributes(kernelShape: [1, 1], activation: .relu)) : producer,
                      inputs: producer == .relu ? [v, w] : [v], output: "act", origin: origin("act"))
        }
        let p = b.add(.pad(pad), inputs: [v], output: "p", origin: origin("pad"))
        b.addOutput(b.add(pool, inputs: [p], output: "y", origin: origin("pool")))
        return try! b.finish()
    }

    let spatialPad = PadAttributes(pads: [0, 0, 1, 2, 0, 0, 2, 1])

    /// Keras ResNet's stem: ZeroPadding2D after a ReLU (fused into its Conv), then MaxPool.
    @Test func zeroPadAfterReluFoldsIntoMaxPool() throws {
        let pool = Op.maxPool(PoolAttributes(kernelShape: [3, 3], strides: [2, 2]))
        let g = try checkEquivalent(padThenPool(producer: .relu, pad: spatialPad, pool: pool), [FoldPadIntoPool(), EliminateDeadNodes()])
        #expect(g.nodes.map(\.op.name) == ["Conv", "MaxPool"])
        if case .maxPool(let a) = g.nodes[1].op { #expect(a.pads == [1, 2, 2, 1]) }
        #expect(g.nodes[1].origins.map(\.layer) == ["pool", "pad"])
        // -infinity fill folds whatever the input; a fill at or below a Clip's minimum too.
        let minusInf = PadAttributes(pads: spatialPad.pads, value: -.infinity)
        try checkEquivalent(padThenPool(producer: .tanh, pad: minusInf, pool: pool), [FoldPadIntoPool()])
        let belowClip = PadAttributes(pads: spatialPad.pads, value: -1)
        try checkEquivalent(padThenPool(producer: .clip(min: -0.5, max: 1), pad: belowClip, pool: pool), [FoldPadIntoPool()])
    }

    @Test func maxPoolFoldIsRefusedWhereItWouldChangeResults() throws {
        let pool = Op.maxPool(PoolAttributes(kernelShape: [3, 3], strides: [2, 2]))
        // Zero fill, input may be negative: the padded zeros can be the maximum.
        try checkEquivalent(padThenPool(producer: .tanh, pad: spatialPad, pool: pool), [FoldPadIntoPool()], expectChanges: false)
        try checkEquivalent(padThenPool(producer: nil, pad: spatialPad, pool: pool), [FoldPadIntoPool()], expectChanges: false)
        // A window entirely in the padding: the fill would be its maximum, -infinity after.
        let wide = PadAttributes(pads: [0, 0, 2, 0, 0, 0, 0, 0])
        try checkEquivalent(padThenPool(producer: .relu, pad: wide, pool: .maxPool(PoolAttributes(kernelShape: [2, 2]))),
                            [FoldPadIntoPool()], expectChanges: false)
        // Ceil mode, channel pads, edge mode stay.
        let ceil = Op.maxPool(PoolAttributes(kernelShape: [3, 3], strides: [2, 2], ceilMode: true))
        try checkEquivalent(padThenPool(producer: .relu, pad: spatialPad, pool: ceil), [FoldPadIntoPool()], expectChanges: false)
        let channel = PadAttributes(pads: [0, 1, 0, 0, 0, 0, 0, 0])
        try checkEquivalent(padThenPool(producer: .relu, pad: channel, pool: pool), [FoldPadIntoPool()], expectChanges: false)
        let edge = PadAttributes(pads: spatialPad.pads, mode: .edge)
        try checkEquivalent(padThenPool(producer: .relu, pad: edge, pool: pool), [FoldPadIntoPool()], expectChanges: false)
    }

    /// A zero Pad before AveragePool counts the zeros: count_include_pad = 1 after the fold.
    @Test func zeroPadFoldsIntoAveragePoolCountingThePadding() throws {
        for (own, include) in [([0, 0, 0, 0], false), ([0, 0, 0, 0], true), ([1, 0, 0, 0], true)] {
            let pool = Op.averagePool(PoolAttributes(kernelShape: [3, 3], strides: [2, 2], pads: own, countIncludePad: include))
            let g = try checkEquivalent(padThenPool(producer: nil, pad: spatialPad, pool: pool), [FoldPadIntoPool(), EliminateDeadNodes()])
            guard case .averagePool(let a) = g.nodes[0].op else { Issue.record("no AveragePool"); continue }
            #expect(g.nodes.count == 1 && a.countIncludePad)
        }
        // The pool's own padding excluded from the count, or a non-zero fill: no single pooling does it.
        let excluding = Op.averagePool(PoolAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1], countIncludePad: false))
        try checkEquivalent(padThenPool(producer: nil, pad: spatialPad, pool: excluding), [FoldPadIntoPool()], expectChanges: false)
        let ones = PadAttributes(pads: spatialPad.pads, value: 1)
        let plain = Op.averagePool(PoolAttributes(kernelShape: [3, 3]))
        try checkEquivalent(padThenPool(producer: nil, pad: ones, pool: plain), [FoldPadIntoPool()], expectChanges: false)
    }
}

@Suite struct EliminateDuplicatesTests {
    @Test func sameOpOnSameInputsAndSameWeightsMerge() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(2), .fixed(5), .fixed(5)])))
        let w1 = b.addInitializer("w1", randomTensor([3, 2, 3, 3], seed: 110))
        let w2 = b.addInitializer("w2", randomTensor([3, 2, 3, 3], seed: 110))
        let c1 = b.add(.conv(ConvAttributes(kernelShape: [3, 3])), inputs: [x, w1], output: "c1", origin: origin("branch1"))
        let c2 = b.add(.conv(ConvAttributes(kernelShape: [3, 3])), inputs: [x, w2], output: "c2", origin: origin("branch2"))
        let r1 = b.add(.relu, inputs: [c1], output: "r1", origin: nil)
        let r2 = b.add(.relu, inputs: [c2], output: "r2", origin: nil)
        let s = b.add(.add, inputs: [r1, r2], output: "s", origin: nil)
        // Same op, other attributes: stays.
        let c3 = b.add(.conv(ConvAttributes(kernelShape: [3, 3], group: 1, activation: .relu)), inputs: [x, w2], output: "c3", origin: nil)
        b.addOutput(b.add(.add, inputs: [s, c3], output: "y", origin: nil))
        let g = try checkEquivalent(try b.finish(), [EliminateDuplicates(), EliminateDeadNodes()])
        #expect(g.nodes.map(\.op.name) == ["Conv", "Relu", "Add", "Conv", "Add"])
        #expect(g.initializers.count == 1)
        #expect(g.nodes[0].origins.map(\.layer) == ["branch1", "branch2"])
    }

    @Test func weightsThatDifferOnlyInSignOfZeroStayApartAndOutputsKeepTheirNames() throws {
        var b = GraphBuilder(name: "g")
        let x = b.addInput("x", TensorType(.float32, Shape([batch, .fixed(2)])))
        let plus = b.addInitializer("plus", Tensor(shape: [2], floats: [0, 1]))
        let minus = b.addInitializer("minus", Tensor(shape: [2], floats: [-0.0, 1]))
        b.addOutput(b.add(.div, inputs: [x, plus], output: "a", origin: nil))
        b.addOutput(b.add(.div, inputs: [x, minus], output: "b", origin: nil))
        b.addOutput(b.add(.sigmoid, inputs: [x], output: "c", origin: nil))
        b.addOutput(b.add(.sigmoid, inputs: [x], output: "d", origin: nil))
        let g = try b.finish()
        let result = try PassManager(passes: [EliminateDuplicates()], verifyEachPass: true).optimize(g)
        #expect(result.graph.nodes.count == 4 && result.graph.initializers.count == 2)
    }
}
