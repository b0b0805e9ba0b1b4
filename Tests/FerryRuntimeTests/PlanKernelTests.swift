import FerryIR
@testable import FerryRuntime
import Testing

@Suite struct PlanKernelTests {
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func gemmWithBiasShapesAndActivation(_ trans: (Bool, Bool)) throws {
        let (m, k, n) = (5, 7, 6)
        for (cShape, activation) in [([n], FusedActivation?.none), ([m, n], .relu), ([m, 1], .sigmoid), ([1], .clip(min: -0.2, max: 0.3)),
                                     ([], .none)] {
            let attributes = GemmAttributes(alpha: 0.7, beta: 1.3, transA: trans.0, transB: trans.1, activation: activation)
            let bShape = trans.1 ? [n, k] : [k, n]
            var weights = [("b", randomTensor(bShape, seed: 5))]
            if !cShape.isEmpty { weights.append(("c", randomTensor(cShape, seed: 6))) }
            let g = try singleNodeGraph(.gemm(attributes), inputs: [("x", trans.0 ? [k, m] : [m, k])], weights: weights)
            let plan = try expectPlanMatchesReference(g, ["x": randomTensor(trans.0 ? [k, m] : [m, k], seed: 7)])
            #expect(plan.kernels[0].kernel == "gemm.sgemm")
        }
    }

    /// One row (batch 1): the streaming kernels, B plain and transposed, column ranges with
    /// whole 64-column blocks, single vectors and a partial one, split between threads or not.
    @Test(arguments: [false, true])
    func oneRowGemm(_ transB: Bool) throws {
        for (k, n, threads) in [(1, 1, 2), (9, 7, 2), (13, 8, 1), (300, 67, 2), (513, 300, 2), (64, 1000, 2), (40, 130, 1)] {
            for (cShape, activation) in [([n], FusedActivation.relu), ([], nil), ([1, 1], .sigmoid)] as [([Int], FusedActivation?)] {
                let attributes = GemmAttributes(alpha: cShape.count == 2 ? 0.5 : 1, beta: 1.5, transB: transB, activation: activation)
                var weights = [("b", randomTensor(transB ? [n, k] : [k, n], seed: 21))]
                if !cShape.isEmpty { weights.append(("c", randomTensor(cShape, seed: 22))) }
                let g = try singleNodeGraph(.gemm(attributes), inputs: [("x", [1, k])], weights: weights)
                let plan = try expectPlanMatchesReference(g, ["x": randomTensor([1, k], seed: 23)], threads: threads)
                #expect(plan.kernels[0].kernel == "gemm.row")
            }
        }
    }

    @Test func matMulBatches() throws {
        let shared = try singleNodeGraph(.matMul, inputs: [("x", [2, 3, 4, 5])], weights: [("w", randomTensor([5, 6], seed: 8))])
        #expect(try expectPlanMatchesReference(shared, ["x": randomTensor([2, 3, 4, 5], seed: 9)]).kernels[0].kernel == "matmul.sgemm")
        let batched = try singleNodeGraph(.matMul, inputs: [("x", [3, 4, 5]), ("y", [3, 5, 2])])
        try expectPlanMatchesReference(batched, ["x": randomTensor([3, 4, 5], seed: 10), "y": randomTensor([3, 5, 2], seed: 11)])
        let broadcast = try singleNodeGraph(.matMul, inputs: [("x", [3, 4, 5]), ("y", [2, 1, 5, 2])])
        try expectPlanMatchesReference(broadcast, ["x": randomTensor([3, 4, 5], seed: 12), "y": randomTensor([2, 1, 5, 2], seed: 13)])
    }

    @Test(arguments: [
        PoolAttributes(kernelShape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]),
        PoolAttributes(kernelShape: [2, 3], strides: [2, 1], pads: [0, 1, 1, 0], ceilMode: true),
        PoolAttributes(kernelShape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true, countIncludePad: true),
        PoolAttributes(kernelShape: [3, 3], strides: [3, 3], ceilMode: true, countIncludePad: true),
        PoolAttributes(kernelShape: [3], strides: [2], pads: [1, 1]),
    ])
    func pooling(_ a: PoolAttributes) throws {
        let shape = a.kernelShape.count == 2 ? [2, 3, 11, 8] : [2, 3, 11]
        for average in [false, true] {
            let g = try singleNodeGraph(average ? .averagePool(a) : .maxPool(a), inputs: [("x", shape)])
            let plan = try expectPlanMatchesReference(g, ["x": randomTensor(shape, seed: 14)], atol: 1e-5, rtol: 1e-5)
            #expect(plan.kernels[0].kernel == (average ? "pool.average" : "pool.max"))
        }
    }

    /// Rows of several vectors and a partial one (the window's rows are combined a vector of
    /// input columns at a time), windows taller than wide and wider than tall, empty windows.
    @Test(arguments: [
        PoolAttributes(kernelShape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]),
        PoolAttributes(kernelShape: [5, 4], strides: [1, 3], pads: [2, 0, 2, 3], ceilMode: true),
        PoolAttributes(kernelShape: [2, 7], strides: [3, 1], pads: [1, 3, 1, 3], countIncludePad: true),
    ])
    func poolingWideRows(_ a: PoolAttributes) throws {
        let shape = [1, 2, 9, 37]
        for average in [false, true] {
            let g = try singleNodeGraph(average ? .averagePool(a) : .maxPool(a), inputs: [("x", shape)])
            let plan = try expectPlanMatchesReference(g, ["x": randomTensor(shape, seed: 15)], atol: 1e-5, rtol: 1e-5)
            #expect(plan.kernels[0].kernel == (average ? "pool.average" : "pool.max"))
        }
    }

    /// Planes shorter than a vector, with whole 32-float blocks, single vectors and a partial
    /// one, and a 112x112 plane (the vector partial sums of the average against the in-order sum).
    @Test func globalPooling() throws {
        for shape in [[3, 5, 7, 6], [1, 3, 1, 3], [2, 3, 5, 9], [1, 2, 112, 112]] {
            for op in [Op.globalAveragePool, .globalMaxPool] {
                let g = try singleNodeGraph(op, inputs: [("x", shape)])
                try expectPlanMatchesReference(g, ["x": randomTensor(shape, seed: 15)], atol: 1e-5, rtol: 1e-5)
            }
        }
    }

    @Test func binaryBroadcastPatterns() throws {
        let pairs: [([Int], [Int], String)] = [
            ([2, 3, 4, 5], [2, 3, 4, 5], "binary.same-shape"),
            ([2, 3, 4, 5], [1, 3, 1, 1], "binary.per-channel"),
            ([2, 3, 4, 5], [3, 1, 1], "binary.per-channel"),
            ([2, 3, 4, 5], [2, 3, 1, 1], "binary.per-channel"),
            ([2, 3, 4, 5], [5], "binary.per-row"),
            ([2, 3, 4, 5], [], "binary.scalar"),
            ([1, 3, 1, 1], [2, 3, 4, 5], "binary.per-channel"),
            ([2, 1, 4], [3, 1], "reference"),
        ]
        for op in [Op.add, .sub, .mul, .div] {
            for (sa, sb, kernel) in pairs {
                let g = try singleNodeGraph(op, inputs: [("x", sa), ("y", sb)])
                let y = randomTensor(sb, seed: 17, range: 0.5...2)
                let plan = try expectPlanMatchesReference(g, ["x": randomTensor(sa, seed: 16), "y": y], atol: 1e-6, rtol: 1e-6)
                #expect(plan.kernels[0].kernel == kernel, "\(op.name) \(sa) \(sb)")
            }
        }
    }

    @Test func softmaxAxes() throws {
        for axis in [-1, 1, 0] {
            let g = try singleNodeGraph(.softmax(axis: axis), inputs: [("x", [3, 4, 5])])
            try expectPlanMatchesReference(g, ["x": randomTensor([3, 4, 5], seed: 18, range: -5...5)], atol: 1e-6, rtol: 1e-5)
        }
    }

    @Test func activations() throws {
        let ops: [Op] = [.relu, .sigmoid, .tanh, .leakyRelu(alpha: 0.2), .clip(min: -0.5, max: 0.5), .clip(min: nil, max: 0.1),
                         .hardSigmoid(alpha: 0.2, beta: 0.5), .hardSwish, .elu(alpha: 1.5), .gelu(approximate: true),
                         .gelu(approximate: false)]
        // Swish has no standalone op: it is tested as a Conv epilogue.
        for op in ops {
            let g = try singleNodeGraph(op, inputs: [("x", [2, 3, 50])])
            let plan = try expectPlanMatchesReference(g, ["x": randomTensor([2, 3, 50], seed: 19, range: -6...6)], atol: 1e-6, rtol: 1e-5)
            #expect(plan.kernels[0].kernel == "activation")
        }
    }

    @Test func batchNormalizationConcatTranspose() throws {
        let c = 4
        let bn = try singleNodeGraph(.batchNormalization(epsilon: 1e-3), inputs: [("x", [2, c, 3, 5])],
                                     weights: [("s", randomTensor([c], seed: 20)), ("b", randomTensor([c], seed: 21)),
                                               ("m", randomTensor([c], seed: 22)), ("v", randomTensor([c], seed: 23, range: 0.1...2))])
        #expect(try expectPlanMatchesReference(bn, ["x": randomTensor([2, c, 3, 5], seed: 24)]).kernels[0].kernel == "batchnorm.per-channel")
        for axis in [0, 1, 3, -2] {
            let g = try singleNodeGraph(.concat(axis: axis), inputs: [("x", [2, 3, 4, 5]), ("y", [2, 3, 4, 5])],
                                        weights: [("z", randomTensor([2, 3, 4, 5], seed: 25))])
            try expectPlanMatchesReference(g, ["x": randomTensor([2, 3, 4, 5], seed: 26), "y": randomTensor([2, 3, 4, 5], seed: 27)])
        }
        for perm in [[0, 3, 1, 2], [0, 2, 3, 1], [3, 2, 1, 0], [1, 0, 2, 3]] {
            let g = try singleNodeGraph(.transpose(perm: perm), inputs: [("x", [2, 3, 4, 5])])
            let plan = try expectPlanMatchesReference(g, ["x": randomTensor([2, 3, 4, 5], seed: 28)], atol: 0, rtol: 0)
            #expect(plan.kernels[0].kernel == "transpose.copy")
        }
    }
}

@Suite struct PlanRuntimeTests {
    @Test func classifierAtSeveralBatchSizes() throws {
        let graph = try smallClassifier()
        let runtime = try PlanRuntime(graph: graph, threads: 2)
        for n in [1, 3, 2, 3] {
            let image = randomTensor([n, 8, 8, 3], seed: UInt64(30 + n))
            let got = try runtime.run(["image": image])
            expectClose(got["probs"]!, naiveClassifier(image, graph), atol: 1e-5)
        }
        let plan = try runtime.plan(forShapes: ["image": [3, 8, 8, 3]])
        #expect(plan.kernels.first { $0.node == "flatten" }?.kernel == "alias")
        #expect(ArenaPlanner.conflicts(plan.blocks).isEmpty)
    }

    /// A chain of convolutions with a skip connection: the arena reuses memory (smaller than the
    /// sum of the blocks) and no two live blocks overlap.
    @Test func arenaReusesMemoryWithoutOverlap() throws {
        var b = GraphBuilder(name: "chain")
        var x = b.addInput("x", TensorType(.float32, Shape([.symbolic("N"), .fixed(4), .fixed(9), .fixed(9)])))
        let skip = x
        for i in 0..<8 {
            let w = b.addInitializer("w\(i)", randomTensor([4, 4, 3, 3], seed: UInt64(40 + i), range: -0.3...0.3))
            x = b.add(.conv(ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1], activation: .relu)), inputs: [x, w],
                      output: "c\(i)", origin: nil)
            if i % 3 == 2 { x = b.add(.add, inputs: [x, skip], output: "a\(i)", origin: nil) }
            if i == 4 { x = b.add(.reshape(shape: [0, 4, 81, 1]), inputs: [x], output: "r", origin: nil) }
            if i == 4 { x = b.add(.reshape(shape: [0, 4, 9, 9]), inputs: [x], output: "r2", origin: nil) }
        }
        b.addOutput(x)
        let graph = try b.finish()
        for n in [1, 2] {
            let plan = try expectPlanMatchesReference(graph, ["x": randomTensor([n, 4, 9, 9], seed: 50)])
            let total = (plan.blocks + plan.scratchBlocks).reduce(0) { $0 + $1.bytes }
            #expect(plan.arenaBytes < total)
            #expect(plan.arenaBytes >= plan.peakLiveBytes)
            // Each convolution's scratch lives during its step only, beside that step's values.
            #expect(plan.scratchBlocks.count == 8)
            #expect(plan.scratchBlocks.allSatisfy { $0.firstStep == $0.lastStep })
            #expect(ArenaPlanner.conflicts(plan.blocks + plan.scratchBlocks).isEmpty)
            // The input, eight convolutions and two adds; the reshapes alias their inputs.
            #expect(plan.blocks.count == 11)
        }
    }

    @Test func placementNeverOverlapsLiveBlocks() {
        var rng = SplitMix64(seed: 77)
        for _ in 0..<50 {
            var blocks: [ArenaBlock] = (0..<40).map { _ in
                let first = Int.random(in: -1...30, using: &rng)
                return ArenaBlock(offset: 0, size: ArenaPlanner.aligned(Int.random(in: 0...500, using: &rng)), firstStep: first,
                                  lastStep: first + Int.random(in: 0...8, using: &rng))
            }
            let total = ArenaPlanner.place(&blocks)
            #expect(ArenaPlanner.conflicts(blocks).isEmpty)
            #expect(blocks.allSatisfy { $0.offset % ArenaPlanner.alignment == 0 && $0.offset + $0.size <= total })
        }
    }

    /// Ops without a fast kernel (Pad) and integer values (Gather's indices) run through the
    /// reference kernels inside the plan.
    @Test func fallbackAndIntegerValues() throws {
        var b = GraphBuilder(name: "mixed")
        let x = b.addInput("x", TensorType(.float32, Shape([2, 6, 5, 5])))
        let ids = b.addInput("ids", TensorType(.int64, Shape([3])))
        let lrn = b.add(.lrn(size: 3, alpha: 1e-3, beta: 0.75, bias: 1), inputs: [x], output: "lrn", origin: nil)
        let padded = b.add(.pad(PadAttributes(pads: [0, 0, 1, 1, 0, 0, 1, 1])), inputs: [lrn], output: "pad", origin: nil)
        let relu = b.add(.relu, inputs: [padded], output: "relu", origin: nil)
        let gathered = b.add(.gather(axis: 1), inputs: [relu, ids], output: "gathered", origin: nil)
        let shape = b.add(.cast(to: .int32), inputs: [ids], output: "ids32", origin: nil)
        b.addOutput(gathered)
        b.addOutput(shape)
        b.addOutput(lrn)
        let graph = try b.finish()
        let plan = try expectPlanMatchesReference(graph, ["x": randomTensor([2, 6, 5, 5], seed: 60),
                                                          "ids": Tensor(shape: [3], int64s: [5, 0, -1])])
        #expect(plan.kernels.map(\.kernel) == ["lrn.channels", "reference", "activation", "reference", "reference"])
    }

    /// The same inputs and thread count give bit-identical outputs run after run.
    @Test func repeatedRunsAreBitIdentical() throws {
        let graph = try smallClassifier()
        let runtime = try PlanRuntime(graph: graph, threads: 2)
        let image = randomTensor([4, 8, 8, 3], seed: 70)
        let first = try runtime.run(["image": image])
        for _ in 0..<5 { #expect(try runtime.run(["image": image]) == first) }
    }

    @Test func badInputsAreRefused() throws {
        let runtime = try PlanRuntime(graph: try smallClassifier())
        #expect(throws: FerryError.self) { try runtime.run(["image": randomTensor([1, 8, 7, 3], seed: 1)]) }
        #expect(throws: FerryError.self) { try runtime.run([:]) }
        #expect(throws: FerryError.self) { try PlanRuntime(graph: try smallClassifier(), threads: 0) }
    }
}
