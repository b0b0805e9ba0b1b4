extension Graph {
    /// The graph with every symbolic input dimension fixed to `size` (the batch, for estimates).
    public func bindingSymbolicDims(to size: Int) -> Graph {
        var g = self
        g.inputs = inputs.map { v in
            Value(name: v.name, type: TensorType(v.type.dtype, Shape(v.type.shape.dims.map { $0.value.map(Dim.fixed) ?? .fixed(size) })))
        }
        return g
    }

    /// Estimated floating-point operations for one run at the given batch size: a multiply-add
    /// counts 2; elementwise ops count one per output element. Nil when shapes cannot be inferred.
    public func estimatedFLOPs(batch: Int = 1) -> Int? {
        let bound = bindingSymbolicDims(to: batch)
        guard let types = try? bound.inferTypes() else { return nil }
        // In Double: a damaged file's sizes must give a huge estimate, not an overflow trap.
        func product(_ sizes: some Sequence<Int>) -> Double { sizes.reduce(1.0) { $0 * Double($1) } }
        func count(_ name: String) -> Double? { types[name]?.shape.fixedSizes.map { product($0) } }
        var total = 0.0
        for node in nodes {
            guard let out = node.outputs.first(where: { !$0.isEmpty }).flatMap(count) else { return nil }
            switch node.op {
            case .conv:
                guard let w = types[node.inputs[1]]?.shape.fixedSizes else { return nil }
                total += 2 * out * product(w.dropFirst())
            case .convTranspose:
                // Every input cell meets every weight of its group once.
                guard let x = count(node.inputs[0]),
                      let w = types[node.inputs[1]]?.shape.fixedSizes else { return nil }
                total += 2 * x * product(w.dropFirst())
            case .gemm(let a):
                // The inner size from B: A may be N-D when a Flatten is fused in.
                guard let w = types[node.inputs[1]]?.shape.fixedSizes, w.count == 2 else { return nil }
                total += 2 * out * Double(a.transB ? w[1] : w[0])
            case .matMul:
                guard let s = types[node.inputs[0]]?.shape.fixedSizes, let k = s.last else { return nil }
                total += 2 * out * Double(k)
            case .maxPool(let p), .averagePool(let p), .maxPoolIndices(let p):
                total += out * product(p.kernelShape)
            case .globalAveragePool, .globalMaxPool:
                total += count(node.inputs[0]) ?? 0
            case .max, .min, .sum, .mean:
                // One operation per output element for each input after the first (Mean divides too).
                total += out * Double(Swift.max(node.inputs.count - 1, 1))
            case .batchNormalization:
                // Folded to a per-channel scale and shift: a multiply-add per element.
                total += 2 * out
            case .instanceNormalization, .layerNormalization, .groupNormalization:
                // Mean, variance (subtract, square, add), normalize, scale and shift.
                total += 6 * out
            case .lrn(let size, _, _, _):
                // A multiply-add per window element, then the power and the division.
                total += out * (2 * Double(size) + 2)
            case .lpNormalization:
                total += 3 * out
            case .reduce, .argMax, .argMin, .topK:
                // One operation per input element.
                total += count(node.inputs[0]) ?? 0
            case .reshape, .flatten, .transpose, .identity:
                break
            case .concat, .split, .slice, .pad, .squeeze, .unsqueeze, .tile, .expand, .gather,
                 .depthToSpace, .spaceToDepth:
                break
            case .resize(let a):
                // Taps per output element: 1 nearest, 2 per resized axis linear, 4 cubic.
                let taps = a.mode == .nearest ? 0 : (a.mode == .linear ? 2 : 4)
                total += out * 2 * Double(taps)
            case .lstm, .gru, .rnn:
                // Per step, batch row and direction: X·W and H·R (2 flops per multiply-add),
                // plus a few elementwise operations per gate unit.
                guard let x = types[node.inputs[0]]?.shape.fixedSizes,
                      let w = types[node.inputs[1]]?.shape.fixedSizes else { return nil }
                guard x.count >= 2, w.count >= 3 else { return nil }
                let steps = Double(x[0]) * Double(x[1]), (dirs, gates, inputSize) = (Double(w[0]), Double(w[1]), Double(w[2]))
                let hidden = Double(w[1] / Swift.max(node.op.recurrentGateCount, 1))
                total += steps * dirs * (2 * gates * (inputSize + hidden) + 4 * gates)
            default:
                total += out
            }
        }
        return total < 9e18 ? Int(total) : nil
    }
}

extension Graph {
    /// Estimated FLOPs of each node at the given batch size (nil where shapes are unknown),
    /// by the same rules as `estimatedFLOPs`, applied to the node alone.
    public func estimatedFLOPsPerNode(batch: Int = 1) -> [Int?] {
        let types = (try? bindingSymbolicDims(to: batch).inferTypes()) ?? [:]
        return nodes.map { node in
            var single = Graph(name: node.name, nodes: [node])
            for name in Set(node.inputs) where !name.isEmpty {
                guard let t = types[name] else { return nil }
                single.inputs.append(Value(name: name, type: t))
            }
            return single.estimatedFLOPs(batch: batch)
        }
    }
}
