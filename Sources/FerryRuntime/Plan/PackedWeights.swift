import FerryIR
import FerryKernels

/// Convolution weights packed for PackedGemm, shared by every plan of one runtime: packing
/// depends on the weights and on the kernel's panel height, not on the input shapes, so a plan
/// for another batch size packs nothing again. A packed copy holds every weight of the original
/// (rearranged, plus zero rows up to a whole panel), so a runtime may release the original and
/// unpack it when a new plan needs it (`restore`).
final class PackedWeightStore {
    /// One initializer packed for one kernel layout: per group, the weights of its `rows` output
    /// channels x `depth` (input channels x kernel cells), `step` floats apart.
    struct Entry {
        let values: [Float]
        let shape: [Int]
        let group: Int
        let rows: Int
        let depth: Int
        let narrow: Bool
        var step: Int { PackedGemm.packedCount(rows: rows, depth: depth, narrow: narrow) }
        var panelRows: Int { narrow ? PackedGemm.narrowRowsPerPanel : PackedGemm.rowsPerPanel }
    }

    private struct Key: Hashable {
        var name: String
        var narrow: Bool
    }

    private var entries: [Key: Entry] = [:]

    /// Names of the initializers packed so far.
    var names: Set<String> { Set(entries.keys.map(\.name)) }

    /// `weights` (initializer `name`, float32, [group x rows, depth...]) packed for the wide or
    /// the narrow kernel; packed on first use, then shared.
    func packed(_ name: String, weights: Tensor, narrow: Bool, group: Int, rows: Int, depth: Int) -> Entry {
        let key = Key(name: name, narrow: narrow)
        if let entry = entries[key], entry.group == group, entry.rows == rows, entry.depth == depth { return entry }
        let step = PackedGemm.packedCount(rows: rows, depth: depth, narrow: narrow)
        var packed = [Float](repeating: 0, count: step * group)
        weights.floats.withUnsafeBufferPointer { wp in
            packed.withUnsafeMutableBufferPointer { pp in
                for gi in 0..<group {
                    let source = wp.baseAddress! + gi * rows * depth, target = pp.baseAddress! + gi * step
                    if narrow {
                        PackedGemm.packNarrowA(source, rows: rows, depth: depth, lda: depth, into: target)
                    } else {
                        PackedGemm.packA(source, rows: rows, depth: depth, lda: depth, into: target)
                    }
                }
            }
        }
        let entry = Entry(values: packed, shape: weights.shape, group: group, rows: rows, depth: depth, narrow: narrow)
        entries[key] = entry
        return entry
    }

    /// The types of the originals of `names` (for type inference while they are released).
    func originalTypes(_ names: Set<String>) -> [String: TensorType] {
        var types: [String: TensorType] = [:]
        for (key, entry) in entries where names.contains(key.name) { types[key.name] = TensorType(.float32, Shape(entry.shape)) }
        return types
    }

    /// The original initializer `name`, unpacked from any of its packed copies.
    func restore(_ name: String) -> Tensor? {
        guard let entry = entries[Key(name: name, narrow: false)] ?? entries[Key(name: name, narrow: true)] else { return nil }
        var weights = [Float](repeating: 0, count: entry.group * entry.rows * entry.depth)
        entry.values.withUnsafeBufferPointer { pp in
            weights.withUnsafeMutableBufferPointer { wp in
                for gi in 0..<entry.group {
                    PackedGemm.unpackPanels(pp.baseAddress! + gi * entry.step, rows: entry.rows, depth: entry.depth,
                                            panelRows: entry.panelRows, into: wp.baseAddress! + gi * entry.rows * entry.depth,
                                            lda: entry.depth)
                }
            }
        }
        return Tensor(shape: entry.shape, floats: weights)
    }
}
