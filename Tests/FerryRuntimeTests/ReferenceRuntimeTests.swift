import FerryIR
@testable import FerryRuntime
import Testing

/// NHWC image -> Transpose -> Conv -> Relu -> MaxPool -> Transpose -> Flatten -> Gemm -> Softmax,
/// with a symbolic batch "N" (the shape of a small Keras classifier after import).
func smallClassifier() throws -> Graph {
    var b = GraphBuilder(name: "classifier")
    let image = b.addInput("image", TensorType(.float32, Shape([.symbolic("N"), .fixed(8), .fixed(8), .fixed(3)])))
    let w = b.addInitializer("conv1/kernel", randomTensor([4, 3, 3, 3], seed: 60))
    let bias = b.addInitializer("conv1/bias", randomTensor([4], seed: 61))
    let dw = b.addInitializer("dense/kernel", randomTensor([64, 10], seed: 62))
    let db = b.addInitializer("dense/bias", randomTensor([10], seed: 63))
    let nchw = b.add(.transpose(perm: [0, 3, 1, 2]), inputs: [image], output: "nchw", origin: nil)
    let conv = b.add(.conv(ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1])), inputs: [nchw, w, bias],
                     output: "conv1", origin: Origin(layer: "conv1", type: "Conv2D"))
    let relu = b.add(.relu, inputs: [conv], output: "relu1", origin: Origin(layer: "conv1", type: "Conv2D"))
    let pool = b.add(.maxPool(PoolAttributes(kernelShape: [2, 2], strides: [2, 2])), inputs: [relu],
                     output: "pool1", origin: Origin(layer: "pool1", type: "MaxPooling2D"))
    let nhwc = b.add(.transpose(perm: [0, 2, 3, 1]), inputs: [pool], output: "nhwc", origin: nil)
    let flat = b.add(.flatten(axis: 1), inputs: [nhwc], output: "flatten", origin: Origin(layer: "flatten", type: "Flatten"))
    let dense = b.add(.gemm(GemmAttributes()), inputs: [flat, dw, db], output: "dense",
                      origin: Origin(layer: "dense", type: "Dense"))
    let probs = b.add(.softmax(axis: -1), inputs: [dense], output: "probs", origin: Origin(layer: "dense", type: "Dense"))
    b.addOutput(probs)
    return try b.finish()
}

/// The same network composed from the naive test references.
func naiveClassifier(_ image: Tensor, _ g: Graph) -> Tensor {
    let i = g.initializers
    let x = naiveTranspose(image, [0, 3, 1, 2])
    var y = naiveConv2D(x, i["conv1/kernel"]!, i["conv1/bias"]!, ConvAttributes(kernelShape: [3, 3], pads: [1, 1, 1, 1]))
    y = Tensor(shape: y.shape, floats: y.floats.map { max($0, 0) })
    y = naivePool2D(y, PoolAttributes(kernelShape: [2, 2], strides: [2, 2]), average: false)
    y = naiveTranspose(y, [0, 2, 3, 1])
    y = y.reshaped([y.shape[0], y.count / y.shape[0]])
    y = naiveGemm(y, i["dense/kernel"]!, i["dense/bias"]!, GemmAttributes())
    return naiveSoftmax(y, axis: 1)
}

@Suite struct ReferenceRuntimeTests {
    @Test func endToEndBatchOneAndThree() throws {
        let graph = try smallClassifier()
        let runtime = try ReferenceRuntime(graph: graph)
        let batch = randomTensor([3, 8, 8, 3], seed: 64)
        let out = try runtime.run(["image": batch])
        #expect(Set(out.keys) == ["probs"])
        let probs = try #require(out["probs"])
        #expect(probs.shape == [3, 10])
        expectClose(probs, naiveClassifier(batch, graph), atol: 1e-5)

        for n in 0..<3 {
            let one = Tensor(shape: [1, 8, 8, 3], floats: Array(batch.floats[(n * 192)..<((n + 1) * 192)]))
            let single = try #require(try runtime.run(["image": one])["probs"])
            #expect(single.shape == [1, 10])
            let row = Tensor(shape: [1, 10], floats: Array(probs.floats[(n * 10)..<((n + 1) * 10)]))
            expectClose(single, row, atol: 1e-6, rtol: 1e-5)
            #expect(abs(single.floats.reduce(0, +) - 1) < 1e-5)
        }
    }

    @Test func threadsAndIntermediateOutputs() throws {
        var graph = try smallClassifier()
        // An intermediate value that later nodes still read is also a graph output.
        graph.outputs.insert(Value(name: "pool1", type: TensorType(.float32, Shape([.symbolic("N"), .fixed(4), .fixed(4), .fixed(4)]))), at: 0)
        let runtime = try ReferenceRuntime(graph: graph, threads: 1)
        let out = try runtime.run(["image": randomTensor([2, 8, 8, 3], seed: 65)])
        #expect(Set(out.keys) == ["pool1", "probs"])
        #expect(out["pool1"]?.shape == [2, 4, 4, 4])
        #expect(out["probs"]?.shape == [2, 10])
    }

    @Test func wrongInputShapeNamesTheInput() throws {
        let runtime = try ReferenceRuntime(graph: try smallClassifier())
        let error = #expect(throws: FerryError.self) { try runtime.run(["image": randomTensor([2, 5, 5], seed: 1)]) }
        #expect(error?.message == "input 'image' has shape [2,5,5] but the model expects [N,8,8,3]")
        let error2 = #expect(throws: FerryError.self) { try runtime.run(["image": randomTensor([2, 8, 7, 3], seed: 1)]) }
        #expect(error2?.message.contains("'image'") == true)
        #expect(error2?.message.contains("[2,8,7,3]") == true)
    }

    @Test func wrongDtypeMissingAndUnknownInputs() throws {
        let runtime = try ReferenceRuntime(graph: try smallClassifier())
        let wrongType = Tensor.zeros(.int64, shape: [1, 8, 8, 3])
        let e1 = #expect(throws: FerryError.self) { try runtime.run(["image": wrongType]) }
        #expect(e1?.message.contains("'image'") == true)
        #expect(e1?.message.contains("int64") == true)
        let e2 = #expect(throws: FerryError.self) { try runtime.run([:]) }
        #expect(e2?.message.contains("missing input 'image'") == true)
        let e3 = #expect(throws: FerryError.self) {
            try runtime.run(["image": randomTensor([1, 8, 8, 3], seed: 1), "label": randomTensor([1], seed: 2)])
        }
        #expect(e3?.message.contains("unknown input 'label'") == true)
    }

    /// Two inputs share the symbolic N; a kernel error (broadcast failure only visible at run
    /// time) carries the node's source layer.
    @Test func symbolicBindingAndKernelErrorsCarryLayer() throws {
        var b = GraphBuilder(name: "pair")
        let x = b.addInput("x", TensorType(.float32, Shape([.symbolic("N"), .fixed(3)])))
        let y = b.addInput("y", TensorType(.float32, Shape([.symbolic("N"), .fixed(3)])))
        let z = b.addInput("z", TensorType(.float32, Shape([.symbolic("M"), .fixed(3)])))
        let s = b.add(.add, inputs: [x, y], output: "sum", origin: Origin(layer: "add_xy", type: "Add"))
        let t = b.add(.mul, inputs: [s, z], output: "prod", origin: Origin(layer: "mul_z", type: "Multiply"))
        b.addOutput(t)
        let runtime = try ReferenceRuntime(graph: try b.finish())

        let ok = try runtime.run(["x": randomTensor([2, 3], seed: 1), "y": randomTensor([2, 3], seed: 2),
                                  "z": randomTensor([1, 3], seed: 3)])
        #expect(ok["prod"]?.shape == [2, 3])

        let e1 = #expect(throws: FerryError.self) {
            try runtime.run(["x": randomTensor([2, 3], seed: 1), "y": randomTensor([3, 3], seed: 2),
                             "z": randomTensor([2, 3], seed: 3)])
        }
        #expect(e1?.message.contains("'y'") == true)
        #expect(e1?.message.contains("N = 2") == true)

        let e2 = #expect(throws: FerryError.self) {
            try runtime.run(["x": randomTensor([2, 3], seed: 1), "y": randomTensor([2, 3], seed: 2),
                             "z": randomTensor([3, 3], seed: 3)])
        }
        #expect(e2?.layer == "mul_z")
        #expect(e2?.layerType == "Multiply")
    }

    @Test func rejectsUnsupportedDtypeAtInit() throws {
        var b = GraphBuilder(name: "ints")
        let x = b.addInput("ids", TensorType(.int64, Shape([2, 3])))
        let r = b.add(.relu, inputs: [x], output: "r", origin: Origin(layer: "act", type: "ReLU"))
        b.addOutput(r)
        let graph = try b.finish()
        let error = #expect(throws: FerryError.self) { try ReferenceRuntime(graph: graph) }
        #expect(error?.layer == "act")
        #expect(error?.message.contains("float32") == true)
    }

    @Test func dataMovementRunsOnAnyDtype() throws {
        var b = GraphBuilder(name: "ids")
        let x = b.addInput("ids", TensorType(.int64, Shape([.symbolic("N"), .fixed(2), .fixed(3)])))
        let t = b.add(.transpose(perm: [0, 2, 1]), inputs: [x], output: "t", origin: nil)
        let r = b.add(.reshape(shape: [0, -1]), inputs: [t], output: "r", origin: nil)
        let i = b.add(.identity, inputs: [r], output: "i", origin: nil)
        b.addOutput(i)
        let runtime = try ReferenceRuntime(graph: try b.finish())
        let out = try runtime.run(["ids": Tensor(shape: [1, 2, 3], int64s: [1, 2, 3, 4, 5, 6])])
        #expect(out["i"] == Tensor(shape: [1, 6], int64s: [1, 4, 2, 5, 3, 6]))
    }

    @Test func evaluateMatchesKernels() throws {
        let x = randomTensor([2, 3], seed: 70)
        #expect(try ReferenceKernels.evaluate(.relu, [x]) == [try ReferenceKernels.relu(x)])
        #expect(throws: FerryError.self) { try ReferenceKernels.evaluate(.add, [x]) }
    }
}
