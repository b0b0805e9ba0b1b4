import FerryIR
import FerryKernels

/// MaxPool and AveragePool (1-D and 2-D) and the global poolings in a plan, over each (image,
/// channel) plane in parallel, with the window bounds and divisors computed at compile time
/// (`Kernels.poolPlane`: the window's rows combined with vectors, then its columns).
/// The rules are the reference kernel's: padding never wins a max; the average divides by the
/// cells inside the input, or (count_include_pad) inside the padded input.
extension PlanBuilder {
    func planPool(_ node: Node, _ a: PoolAttributes, average: Bool) -> PlannedKernel? {
        let xShape = shape(node.inputs[0]), yShape = shape(node.outputs[0])
        let s = a.kernelShape.count
        // Dense windows and Y only; dilated windows and Indices run on the reference kernel.
        guard s == 1 || s == 2, xShape.count == s + 2, a.isDense, node.outputs.count == 1 else { return nil }
        let inH = s == 2 ? xShape[2] : 1, inW = xShape[s + 1]
        let outH = s == 2 ? yShape[2] : 1, outW = yShape[s + 1]
        // Per axis: kernel, stride, pad begin, pad end.
        let ky = s == 2 ? (a.kernelShape[0], a.strides[0], a.pads[0], a.pads[2]) : (1, 1, 0, 0)
        let kx = s == 2 ? (a.kernelShape[1], a.strides[1], a.pads[1], a.pads[3]) : (a.kernelShape[0], a.strides[0], a.pads[0], a.pads[1])
        func ranges(_ outN: Int, _ inN: Int, _ k: (Int, Int, Int, Int)) -> (lo: [Int], hi: [Int], padded: [Int]) {
            var lo: [Int] = [], hi: [Int] = [], padded: [Int] = []
            for o in 0..<outN {
                let start = o * k.1 - k.2, end = start + k.0
                lo.append(max(start, 0))
                hi.append(max(min(end, inN), max(start, 0)))
                padded.append(min(end, inN + k.3) - start)
            }
            return (lo, hi, padded)
        }
        let rowsY = ranges(outH, inH, ky), rowsX = ranges(outW, inW, kx)
        var divisors = [Float](repeating: 1, count: outH * outW)
        for oy in 0..<outH {
            for ox in 0..<outW {
                let inside = (rowsY.hi[oy] - rowsY.lo[oy]) * (rowsX.hi[ox] - rowsX.lo[ox])
                divisors[oy * outW + ox] = Float(a.countIncludePad ? rowsY.padded[oy] * rowsX.padded[ox] : inside)
            }
        }
        let planes = xShape[0] * xShape[1], threads = self.threads
        return PlannedKernel(name: average ? "pool.average" : "pool.max") { b in
            let x = b.pointer(node.inputs[0]), y = b.pointer(node.outputs[0])
            return {
                guard outH > 0, outW > 0 else { return }
                rowsY.lo.withUnsafeBufferPointer { ylo in rowsY.hi.withUnsafeBufferPointer { yhi in
                rowsX.lo.withUnsafeBufferPointer { xlo in rowsX.hi.withUnsafeBufferPointer { xhi in
                divisors.withUnsafeBufferPointer { div in
                    parallelChunks(planes, threads: threads) { ps in
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: inW) { rows in
                            for p in ps {
                                Kernels.poolPlane(x + p * inH * inW, inWidth: inW, y + p * outH * outW, outHeight: outH,
                                                  outWidth: outW, rowLow: ylo.baseAddress!, rowHigh: yhi.baseAddress!,
                                                  columnLow: xlo.baseAddress!, columnHigh: xhi.baseAddress!,
                                                  divisors: average ? div.baseAddress! : nil, scratch: rows.baseAddress!)
                            }
                        }
                    }
                } } } } }
            }
        }
    }

    func planGlobalPool(_ node: Node, average: Bool) -> PlannedKernel? {
        let xShape = shape(node.inputs[0])
        guard xShape.count >= 3 else { return nil }
        let planes = xShape[0] * xShape[1], size = elementCount(xShape[2...]), threads = self.threads
        return PlannedKernel(name: average ? "pool.global-average" : "pool.global-max") { b in
            let x = b.pointer(node.inputs[0]), y = b.pointer(node.outputs[0])
            return {
                parallelChunks(planes, threads: threads, grain: max(1, 4096 / max(size, 1))) { ps in
                    for p in ps {
                        let xp = x + p * size
                        if average {
                            y[p] = size > 0 ? InnerKernels.sum(xp, count: size) / Float(size) : 0
                        } else {
                            var acc = -Float.infinity
                            for i in 0..<size { acc = Swift.max(acc, xp[i]) }
                            y[p] = acc
                        }
                    }
                }
            }
        }
    }
}
