extension Graph {
    /// Infers the type of every value, in node order. Throws at the first node whose inputs
    /// are unknown or inconsistent, naming its source layer.
    /// `assuming` gives the types of values held outside the graph (a runtime's weights kept
    /// only in a packed form).
    public func inferTypes(assuming held: [String: TensorType] = [:]) throws -> [String: TensorType] {
        var types = held
        for v in inputs { types[v.name] = v.type }
        for (name, t) in initializers { types[name] = t.type }
        for node in nodes {
            let (layer, type) = node.sourceLayer
            var inputTypes: [TensorType?] = []
            for name in node.inputs {
                if name.isEmpty { inputTypes.append(nil); continue }
                guard let t = types[name] else {
                    throw FerryError("input '\(name)' of node '\(node.name)' is not defined before it",
                                     layer: layer, layerType: type)
                }
                inputTypes.append(t)
            }
            let outs: [TensorType]
            do {
                outs = try node.op.inferOutputTypes(inputTypes)
            } catch let e as FerryError {
                throw e.atLayer(layer, type: type)
            }
            let listed = node.op.hasOptionalOutputs ? (1...outs.count).contains(node.outputs.count) : outs.count == node.outputs.count
            guard listed else {
                throw FerryError("node '\(node.name)' has \(node.outputs.count) outputs, \(node.op.name) makes \(outs.count)",
                                 layer: layer, layerType: type)
            }
            for (name, t) in zip(node.outputs, outs) where !name.isEmpty { types[name] = t }
        }
        return types
    }

    /// Checks the graph's invariants: single assignment, inputs defined before use (topological
    /// order), op arity, inferred types consistent with the declared outputs.
    public func verify() throws {
        var defined = Set<String>()
        func define(_ name: String, _ what: String) throws {
            guard !name.isEmpty else { throw FerryError("graph '\(self.name)': \(what) has an empty name") }
            guard defined.insert(name).inserted else {
                throw FerryError("graph '\(self.name)': value '\(name)' is defined more than once (\(what))")
            }
        }
        for v in inputs { try define(v.name, "graph input") }
        for name in initializers.keys.sorted() { try define(name, "initializer") }
        for node in nodes {
            let (layer, type) = node.sourceLayer
            let arity = node.op.arity
            guard node.inputs.count >= arity.required, node.inputs.count <= arity.maximum else {
                throw FerryError("node '\(node.name)': \(node.op.name) takes \(arity.required)...\(arity.maximum) inputs, has \(node.inputs.count)",
                                 layer: layer, layerType: type)
            }
            for (i, name) in node.inputs.enumerated() where name.isEmpty && i < arity.required {
                throw FerryError("node '\(node.name)': required input \(i) is empty", layer: layer, layerType: type)
            }
            guard node.outputs.contains(where: { !$0.isEmpty }) else {
                throw FerryError("node '\(node.name)' has no named output", layer: layer, layerType: type)
            }
            // An unused optional output is "" (ONNX's convention).
            for o in node.outputs where !(o.isEmpty && node.op.hasOptionalOutputs) {
                do { try define(o, "output of node '\(node.name)'") } catch let e as FerryError {
                    throw e.atLayer(layer, type: type)
                }
            }
        }
        let types = try inferTypes()
        var outputNames = Set<String>()
        for out in outputs {
            guard outputNames.insert(out.name).inserted else {
                throw FerryError("graph '\(name)': output '\(out.name)' is listed twice")
            }
            guard let t = types[out.name] else {
                throw FerryError("graph '\(name)': output '\(out.name)' is never computed")
            }
            guard t.dtype == out.type.dtype, t.shape.rank == out.type.shape.rank,
                  zip(t.shape.dims, out.type.shape.dims).allSatisfy({ a, b in a.value == nil || b.value == nil || a == b })
            else {
                throw FerryError("graph '\(name)': output '\(out.name)' is declared \(out.type) but computes \(t)")
            }
        }
    }

    /// The graph with its output types refreshed from inference (importers call this last).
    public func withInferredOutputTypes() throws -> Graph {
        let types = try inferTypes()
        var g = self
        g.outputs = try outputs.map { out in
            guard let t = types[out.name] else {
                throw FerryError("graph '\(name)': output '\(out.name)' is never computed")
            }
            return Value(name: out.name, type: t)
        }
        return g
    }
}
