import FerryIR
import FerryKernels
import Foundation

/// Convolution weights packed for PackedGemm, or made tap-major for Winograd's per-run weight
/// transform (and depthwise and recurrent weights in their kernels' layouts), shared by every
/// plan of one runtime: packing depends on the weights and on the kernel, not on the input
/// shapes, so a plan for another batch size packs nothing again. A packed copy holds every
/// weight of the original (rearranged, plus zero rows up to a whole panel), so a runtime may
/// release the original and unpack it when a new plan needs it (`restore`).
final class PackedWeightStore {
    /// One initializer packed for one kernel layout: per group, the weights of its `rows` output
    /// channels x `depth` (input channels x kernel cells), `step` floats apart.
    struct Entry {
        let values: [Float]
        let shape: [Int]
        let group: Int
        let rows: Int
        let depth: Int
        let layout: Layout
        var narrow: Bool { layout == .gemm(narrow: true) }
        var step: Int {
            layout == .winogradTaps ? rows * depth : PackedGemm.packedCount(rows: rows, depth: depth, narrow: narrow)
        }
        var panelRows: Int { narrow ? PackedGemm.narrowRowsPerPanel : PackedGemm.rowsPerPanel }
    }

    /// How a copy is laid out: PackedGemm's panels (wide or narrow kernel), or a 3x3
    /// convolution's weights tap-major ([9][rows x depth / 9], `Winograd3x3.tapMajor`; group 1).
    enum Layout: Hashable {
        case gemm(narrow: Bool)
        case winogradTaps
    }

    private struct Key: Hashable {
        var name: String
        var layout: Layout
    }

    private var entries: [Key: Entry] = [:]

    /// Depthwise weights interleaved for `conv.depthwise-interleaved` (8 channels to a vector):
    /// like a packed copy, they hold every weight of the original, which a runtime may release.
    struct InterleavedEntry {
        let values: [Float]
        let shape: [Int]
        let channels: Int
        let taps: Int
    }

    private var interleaved: [String: InterleavedEntry] = [:]

    /// Recurrent R packed by blocks of units (`RecurrentPacking`), holding every weight too.
    struct RecurrentEntry {
        let values: [Float]
        let shape: [Int]
        let packing: RecurrentPacking
    }

    private var recurrent: [String: RecurrentEntry] = [:]

    /// Names of the initializers packed (or interleaved) so far.
    var names: Set<String> { Set(entries.keys.map(\.name)).union(interleaved.keys).union(recurrent.keys) }

    /// Recurrent `weights` (initializer `name`) packed as `packing` says; made on first use, then shared.
    func packedRecurrent(_ name: String, weights: Tensor, _ packing: RecurrentPacking) -> [Float] {
        if let values = existingRecurrent(name, packing) { return values }
        var source = weights.floats
        return packRecurrent(name, &source, shape: weights.shape, packing, releasingSource: false)
    }

    /// `packedRecurrent` for weights nobody else will read, which the store takes: each gate's
    /// rows give their pages back as they are packed (otherwise R is held twice for a moment: 2
    /// MB more for the LSTM bench model's bidirectional layer). Shared ones are copied first.
    func packedRecurrentTakingWeights(_ name: String, _ values: consuming [Float], shape: [Int],
                                      _ packing: RecurrentPacking) -> [Float] {
        if let values = existingRecurrent(name, packing) { return values }
        var owned = consume values
        return packRecurrent(name, &owned, shape: shape, packing, releasingSource: true)
    }

    private func packRecurrent(_ name: String, _ weights: inout [Float], shape: [Int], _ packing: RecurrentPacking,
                               releasingSource: Bool) -> [Float] {
        let h = packing.hidden, gateRows = h * h, directionRows = packing.gates * gateRows
        let values = [Float](unsafeUninitializedCapacity: packing.count) { buffer, initialized in
            if releasingSource {
                weights.withUnsafeMutableBufferPointer { wp in
                    let base = wp.baseAddress!
                    // Where each gate's next page to give back starts (floats from R's start).
                    var released = (0..<packing.directions * packing.gates).map { $0 * gateRows }
                    packing.pack(UnsafePointer(base), into: buffer.baseAddress!) { d, rowsDone in
                        for g in 0..<packing.gates {
                            let k = d * packing.gates + g, start = d * directionRows + g * gateRows
                            released[k] = returnPages(of: base, from: released[k], to: start + rowsDone * h)
                        }
                    }
                }
            } else {
                weights.withUnsafeBufferPointer { packing.pack($0.baseAddress!, into: buffer.baseAddress!) }
            }
            initialized = packing.count
        }
        recurrent[name] = RecurrentEntry(values: values, shape: shape, packing: packing)
        return values
    }

    /// The packed copy of recurrent weights `name` for this packing, if one was made.
    func existingRecurrent(_ name: String, _ packing: RecurrentPacking) -> [Float]? {
        guard let entry = recurrent[name], entry.packing == packing else { return nil }
        return entry.values
    }

    /// Depthwise `weights` (initializer `name`, [channels, 1, kh, kw]) interleaved for
    /// `Kernels.depthwiseConv2DInterleaved`; made on first use, then shared.
    func interleavedDepthwise(_ name: String, weights: Tensor, channels: Int, taps: Int) -> [Float] {
        if let entry = existingInterleaved(name, channels: channels, taps: taps) { return entry }
        let values = weights.floats.withUnsafeBufferPointer {
            Kernels.depthwiseInterleavedWeights($0.baseAddress!, channels: channels, taps: taps)
        }
        interleaved[name] = InterleavedEntry(values: values, shape: weights.shape, channels: channels, taps: taps)
        return values
    }

    /// The interleaved copy of `name` for this layout, if one was made.
    func existingInterleaved(_ name: String, channels: Int, taps: Int) -> [Float]? {
        guard let entry = interleaved[name], entry.channels == channels, entry.taps == taps else { return nil }
        return entry.values
    }

    /// `weights` (initializer `name`, float32, [group x rows, depth...]) packed for the wide or
    /// the narrow kernel; packed on first use, then shared.
    func packed(_ name: String, weights: Tensor, narrow: Bool, group: Int, rows: Int, depth: Int) -> Entry {
        packed(name, weights: weights, layout: .gemm(narrow: narrow), group: group, rows: rows, depth: depth)
    }

    func packed(_ name: String, weights: Tensor, layout: Layout, group: Int, rows: Int, depth: Int) -> Entry {
        if let entry = existing(name, layout: layout, group: group, rows: rows, depth: depth) { return entry }
        var values = weights.floats
        return pack(name, &values, shape: weights.shape, layout: layout, group: group, rows: rows, depth: depth,
                    releasingSource: false)
    }

    /// `packed` for weights nobody else will read, which the store takes: their pages are given
    /// back to the system panel by panel as they are packed, so that the original and its packed
    /// copy are never both whole in memory (otherwise the largest weight is held twice for a
    /// moment: 9.4 MB more for a 3x3 convolution of 512 channels). Weights that
    /// another holder still shares are copied first (Array's copy on write), and that copy is
    /// the one given back; the other holder's are never touched.
    func packedTakingWeights(_ name: String, _ values: consuming [Float], shape: [Int], narrow: Bool, group: Int,
                             rows: Int, depth: Int) -> Entry {
        packedTakingWeights(name, values, shape: shape, layout: .gemm(narrow: narrow), group: group, rows: rows, depth: depth)
    }

    func packedTakingWeights(_ name: String, _ values: consuming [Float], shape: [Int], layout: Layout, group: Int,
                             rows: Int, depth: Int) -> Entry {
        if let entry = existing(name, layout: layout, group: group, rows: rows, depth: depth) { return entry }
        var owned = consume values
        return pack(name, &owned, shape: shape, layout: layout, group: group, rows: rows, depth: depth, releasingSource: true)
    }

    /// The entry of `name` packed for this layout, if one was made.
    func existing(_ name: String, layout: Layout, group: Int, rows: Int, depth: Int) -> Entry? {
        guard let entry = entries[Key(name: name, layout: layout)], entry.group == group, entry.rows == rows,
              entry.depth == depth else { return nil }
        return entry
    }

    private func pack(_ name: String, _ weights: inout [Float], shape: [Int], layout: Layout, group: Int, rows: Int,
                      depth: Int, releasingSource: Bool) -> Entry {
        guard case .gemm(let narrow) = layout else {
            return packTaps(name, &weights, shape: shape, rows: rows, depth: depth, releasingSource: releasingSource)
        }
        let step = PackedGemm.packedCount(rows: rows, depth: depth, narrow: narrow)
        let panelRows = narrow ? PackedGemm.narrowRowsPerPanel : PackedGemm.rowsPerPanel
        // Panel p of a group holds rows p·panelRows... of it, so each panel is packed on its own
        // (the last padded with zero rows), and the pages of the new array are touched in order.
        let packed = [Float](unsafeUninitializedCapacity: step * group) { pp, initialized in
            func panels(_ wp: UnsafePointer<Float>, release: (Int) -> Void) {
                for gi in 0..<group {
                    for p in 0..<(rows + panelRows - 1) / panelRows {
                        let first = p * panelRows, count = Swift.min(panelRows, rows - first)
                        let source = wp + (gi * rows + first) * depth, target = pp.baseAddress! + gi * step + p * panelRows * depth
                        if narrow {
                            PackedGemm.packNarrowA(source, rows: count, depth: depth, lda: depth, into: target)
                        } else {
                            PackedGemm.packA(source, rows: count, depth: depth, lda: depth, into: target)
                        }
                        release((gi * rows + first + count) * depth)
                    }
                }
            }
            if releasingSource {
                // Unique (copied here if shared), so its pages are this store's to give back.
                weights.withUnsafeMutableBufferPointer { wp in
                    var released = 0
                    panels(UnsafePointer(wp.baseAddress!)) { done in
                        released = returnPages(of: wp.baseAddress!, from: released, to: done)
                    }
                }
            } else {
                weights.withUnsafeBufferPointer { wp in panels(wp.baseAddress!) { _ in } }
            }
            initialized = step * group
        }
        let entry = Entry(values: packed, shape: shape, group: group, rows: rows, depth: depth, layout: layout)
        entries[Key(name: name, layout: layout)] = entry
        return entry
    }

    /// `pack` for `.winogradTaps`: [rows, depth] weights (depth = input channels x 9) made
    /// tap-major some thousands of channel pairs at a time, giving back the source's pages as it goes.
    private func packTaps(_ name: String, _ weights: inout [Float], shape: [Int], rows: Int, depth: Int,
                          releasingSource: Bool) -> Entry {
        let pairCount = rows * depth / 9, step = 4096
        let taps = [Float](unsafeUninitializedCapacity: rows * depth) { tp, initialized in
            func chunks(_ wp: UnsafePointer<Float>, release: (Int) -> Void) {
                for first in stride(from: 0, to: pairCount, by: step) {
                    let end = Swift.min(first + step, pairCount)
                    Winograd3x3.tapMajor(wp, pairs: first..<end, of: pairCount, into: tp.baseAddress!)
                    release(end * 9)
                }
            }
            if releasingSource {
                weights.withUnsafeMutableBufferPointer { wp in
                    var released = 0
                    chunks(UnsafePointer(wp.baseAddress!)) { done in released = returnPages(of: wp.baseAddress!, from: released, to: done) }
                }
            } else {
                weights.withUnsafeBufferPointer { wp in chunks(wp.baseAddress!) { _ in } }
            }
            initialized = rows * depth
        }
        let entry = Entry(values: taps, shape: shape, group: 1, rows: rows, depth: depth, layout: .winogradTaps)
        entries[Key(name: name, layout: .winogradTaps)] = entry
        return entry
    }

    /// The types of the originals of `names` (for type inference while they are released).
    func originalTypes(_ names: Set<String>) -> [String: TensorType] {
        var types: [String: TensorType] = [:]
        for (key, entry) in entries where names.contains(key.name) { types[key.name] = TensorType(.float32, Shape(entry.shape)) }
        for (name, entry) in interleaved where names.contains(name) { types[name] = TensorType(.float32, Shape(entry.shape)) }
        for (name, entry) in recurrent where names.contains(name) { types[name] = TensorType(.float32, Shape(entry.shape)) }
        return types
    }

    /// The original initializer `name`, unpacked from any of its packed copies.
    func restore(_ name: String) -> Tensor? {
        guard let entry = [Layout.gemm(narrow: false), .gemm(narrow: true), .winogradTaps].lazy
            .compactMap({ self.entries[Key(name: name, layout: $0)] }).first else {
            if let entry = recurrent[name] {
                var weights = [Float](repeating: 0, count: entry.packing.originalCount)
                entry.values.withUnsafeBufferPointer { pp in
                    weights.withUnsafeMutableBufferPointer { entry.packing.unpack(pp.baseAddress!, into: $0.baseAddress!) }
                }
                return Tensor(shape: entry.shape, floats: weights)
            }
            guard let entry = interleaved[name] else { return nil }
            return Tensor(shape: entry.shape, floats: entry.values.withUnsafeBufferPointer {
                Kernels.depthwiseDeinterleavedWeights($0.baseAddress!, channels: entry.channels, taps: entry.taps)
            })
        }
        var weights = [Float](repeating: 0, count: entry.group * entry.rows * entry.depth)
        entry.values.withUnsafeBufferPointer { pp in
            weights.withUnsafeMutableBufferPointer { wp in
                if entry.layout == .winogradTaps {
                    let pairCount = entry.rows * entry.depth / 9
                    Winograd3x3.fromTapMajor(pp.baseAddress!, pairs: 0..<pairCount, of: pairCount, into: wp.baseAddress!)
                    return
                }
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

/// Gives back to the system the whole pages of `base[from..<to]` (floats), whose contents are
/// no longer needed (they read as zeros afterwards); returns where the next call should start
/// (the first float not in a page given back).
private func returnPages(of base: UnsafeMutablePointer<Float>, from: Int, to: Int) -> Int {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let start = (Int(bitPattern: base + from) + page - 1) / page * page
    let end = Int(bitPattern: base + to) / page * page
    guard end - start >= 16 * page else { return from }
    _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, Int32(MADV_DONTNEED))
    return (end - Int(bitPattern: base)) / MemoryLayout<Float>.stride
}
