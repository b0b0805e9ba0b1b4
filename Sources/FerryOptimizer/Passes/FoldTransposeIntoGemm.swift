import FerryIR

/// Transpose -> Flatten -> Gemm, with a weight matrix, becomes Flatten -> Gemm with the weight's
/// rows permuted: Keras flattens NHWC, so the importer transposes back from NCHW before every
/// Flatten+Dense; permuting the Dense weights once removes that transpose from every run. The
/// Flatten may already be fused into the Gemm (fuse-flatten-gemm).
public struct FoldTransposeIntoGemm: Pass {
    public let name = "fold-transpose-into-gemm"
    public let unit = "transposes folded into weights"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var folded = 0
        let types = try graph.inferTypes()
        for g in graph.nodes.indices {
            guard case .gemm(let attributes) = graph.nodes[g].op, !attributes.transA else { continue }
            let producers = graph.producers()
            // The node flattening the transposed value: the Gemm itself, or a Flatten only it reads.
            var f = g
            if !attributes.flattensA {
                guard let p = producers[graph.nodes[g].inputs[0]], case .flatten(1) = graph.nodes[p].op,
                      graph.isPrivate(graph.nodes[p].outputs[0]) else { continue }
                f = p
            }
            guard let t = producers[graph.nodes[f].inputs[0]], case .transpose(let perm) = graph.nodes[t].op,
                  perm.first == 0, graph.isPrivate(graph.nodes[t].outputs[0]),
                  let x = types[graph.nodes[t].inputs[0]]?.shape, let sizes = Array(x.dims.dropFirst()).fixedSizes(),
                  let weightShape = graph.constant(graph.nodes[g].inputs[1])?.shape,
                  graph.constant(graph.nodes[g].inputs[1])?.dtype == .float32 else { continue }
            // Row j of the weight meets element j of the transposed value's flattening; that
            // element is element rowSource[j] of the untransposed value's flattening.
            let rowSource = flattenedPermutation(sizes: sizes, perm: perm.dropFirst().map { $0 - 1 })
            let k = rowSource.count
            guard weightShape == (attributes.transB ? [weightShape[0], k] : [k, weightShape[1]]) else { continue }
            // The weight is permuted in place when this Gemm is its only reader (a Dense matrix
            // can be most of a model's weights: a copy would hold it twice), else in a copy.
            let original = graph.nodes[g].inputs[1]
            let onlyReader = graph.isPrivate(original)
            var w = graph.constant(original)!.floats
            if onlyReader { graph.initializers[original] = nil }
            if attributes.transB {
                // Each row's k elements: element j goes to rowSource[j].
                var row = [Float](repeating: 0, count: k)
                for r in 0..<weightShape[0] {
                    for j in 0..<k { row[rowSource[j]] = w[r * k + j] }
                    w.replaceSubrange((r * k)..<((r + 1) * k), with: row)
                }
            } else {
                permuteRows(&w, rowLength: weightShape[1], destination: rowSource)
            }
            let name = graph.addInitializer(original + "/nchw", Tensor(shape: weightShape, floats: w))
            graph.nodes[g].inputs[1] = name
            graph.absorb(producer: t, into: f)
            folded += 1
        }
        return folded
    }
}

/// For a value of shape `sizes` transposed by `perm`, the flat index in the original of each
/// flat index in the transposed value.
func flattenedPermutation(sizes: [Int], perm: [Int]) -> [Int] {
    let outSizes = perm.map { sizes[$0] }
    var strides = Array(repeating: 1, count: sizes.count)
    for i in stride(from: sizes.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * sizes[i + 1] }
    let count = sizes.reduce(1, *)
    var result = [Int](repeating: 0, count: count)
    var index = Array(repeating: 0, count: perm.count)
    for j in 0..<count {
        var source = 0
        for (axis, p) in perm.enumerated() { source += index[axis] * strides[p] }
        result[j] = source
        var axis = perm.count - 1
        while axis >= 0 {
            index[axis] += 1
            if index[axis] < outSizes[axis] { break }
            index[axis] = 0
            axis -= 1
        }
    }
    return result
}

extension Array where Element == Dim {
    func fixedSizes() -> [Int]? { Shape(self).fixedSizes }
}

/// Moves row j of a row-major matrix (rows of `rowLength`) to row `destination[j]`, in place:
/// each cycle of the permutation is followed with one row held aside.
func permuteRows(_ matrix: inout [Float], rowLength n: Int, destination: [Int]) {
    var placed = [Bool](repeating: false, count: destination.count)
    var carried = [Float](repeating: 0, count: n)
    var evicted = [Float](repeating: 0, count: n)
    matrix.withUnsafeMutableBufferPointer { m in
        for start in destination.indices where !placed[start] {
            // Row `start` is carried to its destination; the row found there is carried on to
            // its own, until the cycle comes back to `start`.
            for c in 0..<n { carried[c] = m[start * n + c] }
            var target = destination[start]
            while true {
                for c in 0..<n { evicted[c] = m[target * n + c]; m[target * n + c] = carried[c] }
                placed[target] = true
                if target == start { break }
                swap(&carried, &evicted)
                target = destination[target]
            }
        }
    }
}
