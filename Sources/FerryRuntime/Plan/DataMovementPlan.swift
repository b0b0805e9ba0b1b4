import FerryIR

/// Concat and Transpose in a plan as copies with offsets computed at compile time.
/// (Reshape, Flatten, Squeeze, Unsqueeze and Identity copy nothing: their outputs are aliases.)
extension PlanBuilder {
    func planConcat(_ node: Node, axis: Int) -> PlannedKernel? {
        let yShape = shape(node.outputs[0])
        guard let a = normalizeAxis(axis, rank: yShape.count), !yShape.isEmpty else { return nil }
        let outer = elementCount(yShape[..<a]), yInner = elementCount(yShape[a...])
        let inners = node.inputs.map { elementCount(shape($0)[a...]) }
        return PlannedKernel(name: "concat.copy") { b in
            let sources = node.inputs.map { b.pointer($0) }, y = b.pointer(node.outputs[0])
            return {
                var start = 0
                for (src, inner) in zip(sources, inners) {
                    for o in 0..<outer { (y + o * yInner + start).update(from: src + o * inner, count: inner) }
                    start += inner
                }
            }
        }
    }

    func planTranspose(_ node: Node, perm: [Int]) -> PlannedKernel? {
        let xShape = shape(node.inputs[0]), yShape = shape(node.outputs[0])
        let r = yShape.count
        guard r >= 1, perm.count == r else { return nil }
        let xStrides = contiguousStrides(xShape)
        // The input stride each output axis walks.
        let walk = perm.map { xStrides[$0] }
        let innerCount = yShape[r - 1], innerStride = walk[r - 1]
        let outerCount = elementCount(yShape) / max(innerCount, 1)
        return PlannedKernel(name: "transpose.copy") { b in
            let x = b.pointer(node.inputs[0]), y = b.pointer(node.outputs[0])
            return {
                var index = [Int](repeating: 0, count: r)
                var offset = 0
                var dst = y
                for _ in 0..<outerCount {
                    let src = x + offset
                    for i in 0..<innerCount { dst[i] = src[i * innerStride] }
                    dst += innerCount
                    var axis = r - 2
                    while axis >= 0 {
                        index[axis] += 1
                        offset += walk[axis]
                        if index[axis] < yShape[axis] { break }
                        offset -= walk[axis] * yShape[axis]
                        index[axis] = 0
                        axis -= 1
                    }
                }
            }
        }
    }
}
