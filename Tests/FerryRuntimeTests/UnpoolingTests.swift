import FerryIR
@testable import FerryRuntime
import Testing

struct UnpoolingTests {
    @Test func maskHoldsTheFirstMaximumOfEachWindowAndUnpoolingPutsValuesBack() throws {
        // One 3x4 plane with a tie in the first window: the first maximum (row-major) wins.
        let x = Tensor(shape: [1, 1, 3, 4], floats: [5, 1, 2, 9,
                                                     5, 0, 3, 3,
                                                     7, 8, 1, 1])
        let attributes = PoolAttributes(kernelShape: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], ceilMode: true,
                                        countIncludePad: true)
        let mask = try ReferenceKernels.maxPoolIndices(x, attributes)
        #expect(mask.shape == [1, 1, 2, 2])
        #expect(mask.floats == [0, 3, 9, 10])
        #expect(try Op.maxPoolIndices(attributes).inferOutputTypes([x.type]) == [mask.type])
        let values = Tensor(shape: [1, 1, 2, 2], floats: [-1, -2, -3, -4])
        let unpooled = try ReferenceKernels.maxUnpool(values, mask, outputHeight: 3, outputWidth: 4)
        #expect(unpooled.floats == [-1, 0, 0, -2,
                                    0, 0, 0, 0,
                                    0, -3, -4, 0])
        // Two values for one cell: the later one stays.
        let same = Tensor(shape: [1, 1, 1, 2], floats: [5, 5])
        #expect(try ReferenceKernels.maxUnpool(Tensor(shape: [1, 1, 1, 2], floats: [1, 2]), same, outputHeight: 2,
                                               outputWidth: 3).floats == [0, 0, 0, 0, 0, 2])
    }

    @Test func indicesOutsideThePlaneAreErrors() throws {
        let values = Tensor(shape: [1, 1, 1, 2], floats: [1, 2])
        for bad: Float in [6, -1, .nan, .infinity] {
            let mask = Tensor(shape: [1, 1, 1, 2], floats: [0, bad])
            #expect(throws: FerryError.self) { try ReferenceKernels.maxUnpool(values, mask, outputHeight: 2, outputWidth: 3) }
        }
        let wrongShape = Tensor(shape: [1, 1, 2, 1], floats: [0, 1])
        #expect(throws: FerryError.self) { try Op.maxUnpool(outputHeight: 2, outputWidth: 3).inferOutputTypes([values.type, wrongShape.type]) }
    }
}
