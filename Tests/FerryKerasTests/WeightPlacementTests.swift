import Foundation
import Testing
import FerryIR
@testable import FerryKeras

/// The slab-wise placed read (`H5File.readFloats(_:into:placement:)`) against reading whole and
/// permuting (`permutedTensor`), on odd shapes and slab sizes that split every axis.
@Suite struct WeightPlacementTests {
    /// Shapes with the permutations the importer uses on them (a 2-D and a 3-D convolution
    /// kernel, a depthwise kernel, a transposed-convolution kernel, PReLU's alpha) and others.
    static let cases: [(shape: [Int], perm: [Int])] = [
        ([3, 5, 7, 11], [3, 2, 0, 1]), ([2, 3, 1, 4, 5], [4, 3, 0, 1, 2]), ([3, 3, 6, 2], [2, 3, 0, 1]),
        ([5, 2, 3], [2, 1, 0]), ([4, 9, 6], [2, 0, 1]), ([13], [0]), ([4, 9], [1, 0]), ([1, 1, 1, 7], [3, 2, 0, 1]),
    ]

    /// Writes each case's ramp (chunked as `chunks` gives, or contiguous) and runs `body` on the
    /// opened file.
    private func withFile(chunks: ([Int]) -> [Int]? = { _ in nil }, _ body: (H5File) throws -> Void) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-placement-\(UUID().uuidString).h5").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try HDF5.withLibrary {
            let w = try H5Writer(path: path)
            for (i, c) in Self.cases.enumerated() {
                try w.writeFloats("w\(i)", shape: c.shape, ramp(c.shape.reduce(1, *), scale: 0.5), chunks: chunks(c.shape))
            }
            try w.close()
            try body(try H5File(path: path))
        }
    }

    private func placedRead(_ h5: H5File, _ i: Int, slabBytes: Int) throws -> (floats: [Float], digest: String) {
        let c = Self.cases[i]
        var digest = WeightDigest()
        let floats = try [Float](unsafeUninitializedCapacity: c.shape.reduce(1, *)) { buffer, initialized in
            buffer.initialize(repeating: -1)
            initialized = buffer.count
            try h5.readFloats("w\(i)", into: buffer, placement: .permuted(c.shape, c.perm), slabBytes: slabBytes) {
                digest.add($0)
            }
        }
        return (floats, digest.value)
    }

    @Test func slabsMatchPermutingTheWholeTensor() throws {
        try withFile { h5 in
            for (i, c) in Self.cases.enumerated() {
                let whole = Tensor(shape: c.shape, floats: try h5.readFloats("w\(i)").values)
                let expected = permutedTensor(whole, c.perm).floats
                // One float a slab, blocks that leave a partial block at an axis's end, whole rows, all at once.
                for slabBytes in [4, 12, 28, 4 * 7 * 11 + 4, 1 << 20] {
                    let (floats, digest) = try placedRead(h5, i, slabBytes: slabBytes)
                    #expect(floats == expected, "shape \(c.shape) perm \(c.perm) slabs of \(slabBytes) bytes")
                    #expect(digest == weightDigest(whole.floats), "digest over the stored order, \(c.shape)")
                }
            }
        }
    }

    @Test func chunkedDatasetsArePlacedAfterAWholeRead() throws {
        try withFile(chunks: { shape in shape.map { max(1, $0 / 2) } }) { h5 in
            for (i, c) in Self.cases.enumerated() {
                let whole = Tensor(shape: c.shape, floats: try h5.readFloats("w\(i)").values)
                let (floats, digest) = try placedRead(h5, i, slabBytes: 8)
                #expect(floats == permutedTensor(whole, c.perm).floats, "shape \(c.shape) perm \(c.perm)")
                #expect(digest == weightDigest(whole.floats))
            }
        }
    }

    @Test func placementsThatDoNotFitTheDestinationAreRefused() throws {
        try withFile { h5 in
            var small = [Float](repeating: 0, count: 10)
            let error = small.withUnsafeMutableBufferPointer { buffer in
                #expect(throws: FerryError.self) {
                    try h5.readFloats("w0", into: buffer, placement: .permuted([3, 5, 7, 11], [3, 2, 0, 1]))
                }
            }
            #expect(error?.message.contains("does not fit") == true)
            #expect(throws: FerryError.self) {
                var all = [Float](repeating: 0, count: 3 * 5 * 7 * 11)
                try all.withUnsafeMutableBufferPointer { buffer in
                    try h5.readFloats("w0", into: buffer, placement: .permuted([3, 5, 11, 7], [3, 2, 0, 1]))
                }
            }
        }
    }

    @Test func contiguousPlacementsAreRecognized() {
        #expect(WeightPlacement.identity([3, 4, 5]).isContiguous)
        #expect(WeightPlacement.permuted([3, 1, 5], [1, 0, 2]).isContiguous)
        #expect(!WeightPlacement.permuted([3, 4, 5], [1, 0, 2]).isContiguous)
        #expect(WeightPlacement.permuted([3, 4, 5], [2, 1, 0]).lastOffset == 59)
    }
}
