import Testing
@testable import FerryIR

@Suite struct DataMovementShapeTests {
    let n = Dim.symbolic("N")

    func infer(_ op: Op, _ shapes: [Shape], dtype: DType = .float32) throws -> [Shape] {
        try op.inferOutputTypes(shapes.map { TensorType(dtype, $0) }).map(\.shape)
    }

    @Test func concatAddsTheAxisAndMergesTheRest() throws {
        #expect(try infer(.concat(axis: 1), [Shape([n, .fixed(2), .fixed(5)]), Shape([.fixed(3), .fixed(4), .fixed(5)])])
                == [Shape([.fixed(3), .fixed(6), .fixed(5)])])
        #expect(try infer(.concat(axis: 0), [Shape([n, .fixed(2)]), Shape([2, 2])]) == [Shape([unknownDim, .fixed(2)])])
        #expect(throws: FerryError.self) { try infer(.concat(axis: 1), [Shape([2, 2, 5]), Shape([2, 2, 4])]) }
        #expect(throws: FerryError.self) { try infer(.concat(axis: 2), [Shape([2, 2]), Shape([2, 2])]) }
        let mixed = [TensorType(.float32, Shape([2])), TensorType(.int64, Shape([2]))]
        #expect(throws: FerryError.self) { try Op.concat(axis: 0).inferOutputTypes(mixed) }
    }

    @Test func splitMakesOneTypePerSize() throws {
        let outs = try Op.split(axis: -1, sizes: [1, 2, 3]).inferOutputTypes([TensorType(.int64, Shape([n, .fixed(6)]))])
        #expect(outs == [1, 2, 3].map { TensorType(.int64, Shape([n, .fixed($0)])) })
        #expect(throws: FerryError.self) { try infer(.split(axis: 1, sizes: [1, 2]), [Shape([2, 4])]) }
        #expect(throws: FerryError.self) { try infer(.split(axis: 1, sizes: []), [Shape([2, 4])]) }
    }

    @Test func padSqueezeUnsqueezeTileExpandGather() throws {
        #expect(try infer(.pad(PadAttributes(pads: [0, 1, 0, 2])), [Shape([n, .fixed(3)])]) == [Shape([n, .fixed(6)])])
        #expect(try infer(.pad(PadAttributes(pads: [1, 0, 0, 0])), [Shape([n, .fixed(3)])]) == [Shape([unknownDim, .fixed(3)])])
        #expect(throws: FerryError.self) { try infer(.pad(PadAttributes(pads: [1, 1])), [Shape([2, 2])]) }
        #expect(try infer(.squeeze(axes: [1]), [Shape([n, .fixed(1), .fixed(4)])]) == [Shape([n, .fixed(4)])])
        #expect(throws: FerryError.self) { try infer(.squeeze(axes: []), [Shape([n, .fixed(1)])]) }
        #expect(try infer(.unsqueeze(axes: [-1, 0]), [Shape([n, .fixed(4)])]) == [Shape([.fixed(1), n, .fixed(4), .fixed(1)])])
        #expect(try infer(.tile(repeats: [2, 1]), [Shape([n, .fixed(4)])]) == [Shape([.symbolic("N*2"), .fixed(4)])])
        #expect(try infer(.expand(shape: [3, 1, 4]), [Shape([n, .fixed(1)])]) == [Shape([.fixed(3), n, .fixed(4)])])
        let g = try Op.gather(axis: 1).inferOutputTypes([TensorType(.bool, Shape([n, .fixed(5), .fixed(2)])),
                                                         TensorType(.int32, Shape([3, 4]))])
        #expect(g == [TensorType(.bool, Shape([n, .fixed(3), .fixed(4), .fixed(2)]))])
        #expect(throws: FerryError.self) {
            try Op.gather(axis: 0).inferOutputTypes([TensorType(.float32, Shape([2])), TensorType(.float32, Shape([1]))])
        }
    }

    @Test func blockRearrangements() throws {
        #expect(try infer(.depthToSpace(blockSize: 2, mode: .dcr), [Shape([n, .fixed(8), .fixed(3), .fixed(5)])])
                == [Shape([n, .fixed(2), .fixed(6), .fixed(10)])])
        #expect(throws: FerryError.self) { try infer(.depthToSpace(blockSize: 2, mode: .crd), [Shape([1, 6, 3, 5])]) }
        #expect(try infer(.spaceToDepth(blockSize: 3), [Shape([n, .fixed(2), .fixed(6), .fixed(9)])])
                == [Shape([n, .fixed(18), .fixed(2), .fixed(3)])])
        #expect(throws: FerryError.self) { try infer(.spaceToDepth(blockSize: 2), [Shape([1, 2, 5, 4])]) }
    }

    @Test func convTransposeShapeAndFLOPs() throws {
        var b = GraphBuilder(name: "up")
        let x = b.addInput("x", TensorType(.float32, Shape([n, .fixed(4), .fixed(3), .fixed(3)])))
        let w = b.addInitializer("w", Tensor(shape: [4, 3, 2, 2], floats: Array(repeating: 0.5, count: 48)))
        let y = b.add(.convTranspose(ConvTransposeAttributes(kernelShape: [2, 2], strides: [2, 2], group: 2)),
                      inputs: [x, w], output: "y", origin: nil)
        b.addOutput(y)
        let g = try b.finish()
        #expect(g.outputs[0].type.shape == Shape([n, .fixed(6), .fixed(6), .fixed(6)]))
        // Each of the 36 input cells meets the 3 * 2 * 2 weights of its group once.
        #expect(g.estimatedFLOPs(batch: 2) == 2 * (2 * 36) * 12)
        let bad = Op.convTranspose(ConvTransposeAttributes(kernelShape: [2, 2], group: 3))
        #expect(throws: FerryError.self) {
            try bad.inferOutputTypes([TensorType(.float32, Shape([1, 4, 3, 3])), TensorType(.float32, Shape([4, 3, 2, 2]))])
        }
    }
}
