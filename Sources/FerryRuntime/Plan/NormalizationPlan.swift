import FerryIR
import FerryKernels

/// LRN in a plan: each thread takes blocks of 64 positions of an image's planes and runs the
/// vector kernel over every channel of them. Without the SIMD kernels the reference runs.
extension PlanBuilder {
    func planLRN(_ node: Node, size: Int, alpha: Float, beta: Float, bias: Float) -> PlannedKernel? {
        let xShape = shape(node.inputs[0])
        guard InnerKernels.simd, xShape.count >= 3, size >= 1 else { return nil }
        let images = xShape[0], channels = xShape[1], plane = elementCount(xShape[2...])
        guard images > 0, channels > 0, plane > 0 else { return nil }
        let block = 64, blocks = (plane + block - 1) / block, threads = self.threads
        // About 16 Ki multiply-adds per thread at least.
        let grain = Swift.max(1, 16_384 / (channels * Swift.min(size, channels) * block))
        return PlannedKernel(name: "lrn.channels") { b in
            let x = b.pointer(node.inputs[0]), y = b.pointer(node.outputs[0])
            return {
                parallelChunks(images * blocks, threads: threads, grain: grain) { range in
                    for q in range {
                        let at = (q / blocks) * channels * plane, first = (q % blocks) * block
                        Kernels.localResponseNormalization(x + at, y + at, channels: channels, plane: plane,
                                                           positions: first..<Swift.min(first + block, plane), size: size,
                                                           alpha: alpha, beta: beta, bias: bias)
                    }
                }
            }
        }
    }
}
