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
        var total = 0
        for node in nodes {
            guard let out = node.outputs.first(where: { !$0.isEmpty }).flatMap({ types[$0] })?.shape.elementCount else { return nil }
            switch node.op {
            case .conv:
                guard let w = types[node.inputs[1]]?.shape.fixedSizes else { return nil }
                total += 2 * out * w.dropFirst().reduce(1, *)
            case .convTranspose:
                // Every input cell meets every weight of its group once.
                guard let x = types[node.inputs[0]]?.shape.elementCount,
                      let w = types[node.inputs[1]]?.shape.fixedSizes else { return nil }
                total += 2 * x * w.dropFirst().reduce(1, *)
            case .gemm(let a):
                guard let s = types[node.inputs[0]]?.shape.fixedSizes else { return nil }
                total += 2 * out * (a.transA ? s[0] : s[1])
            case .matMul:
                guard let s = types[node.inputs[0]]?.shape.fixedSizes, let k = s.last else { return nil }
                total += 2 * out * k
            case .maxPool(let p), .averagePool(let p):
                total += out * p.kernelShape.reduce(1, *)
            case .globalAveragePool, .globalMaxPool:
                total += types[node.inputs[0]]?.shape.elementCount ?? 0
            case .max, .min, .sum, .mean:
                // One operation per output element for each input after the first (Mean divides too).
                total += out * Swift.max(node.inputs.count - 1, 1)
            case .batchNormalization:
                // Folded to a per-channel scale and shift: a multiply-add per element.
                total += 2 * out
            case .instanceNormalization, .layerNormalization, .groupNormalization:
                // Mean, variance (subtract, square, add), normalize, scale and shift.
                total += 6 * out
            case .lrn(let size, _, _, _):
                // A multiply-add per window element, then the power and the division.
                total += out * (2 * size + 2)
            case .lpNormalization:
                total += 3 * out
            case .reduce, .argMax, .argMin:
                // One operation per input element.
                total += types[node.inputs[0]]?.shape.elementCount ?? 0
            case .reshape, .flatten, .transpose, .identity:
                break
            case .concat, .split, .slice, .pad, .squeeze, .unsqueeze, .tile, .expand, .gather,
                 .depthToSpace, .spaceToDepth:
                break
            case .resize(let a):
                // Taps per output element: 1 nearest, 2 per resized axis linear, 4 cubic.
                let taps = a.mode == .nearest ? 0 : (a.mode == .linear ? 2 : 4)
                total += out * 2 * taps
            case .lstm, .gru, .rnn:
                // Per step, batch row and direction: X·W and H·R (2 flops per multiply-add),
                // plus a few elementwise operations per gate unit.
                guard let x = types[node.inputs[0]]?.shape.fixedSizes,
                      let w = types[node.inputs[1]]?.shape.fixedSizes else { return nil }
                let steps = x[0] * x[1], (dirs, gates, inputSize) = (w[0], w[1], w[2])
                let hidden = gates / node.op.recurrentGateCount
                total += steps * dirs * (2 * gates * (inputSize + hidden) + 4 * gates)
            default:
                total += out
            }
        }
        return total
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
