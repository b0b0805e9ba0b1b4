import FerryIR
import Foundation
import ZIPFoundation

/// What a zip member's header may claim before Ferry reads it (`.keras` models, `.npz` inputs):
/// bounds on declared sizes and on how far the members it reads may expand.
public enum ZipLimits {
    /// How far the members Ferry reads may expand, together, once they pass `expansionFloor`
    /// bytes. Keras writes `.keras` members stored (1:1); recompressed with deflate, real models
    /// measured 1.1:1 (random or trained weights, beyond a few MB) to 16:1 (the committed fixtures,
    /// whose HDF5 metadata is most of their bytes), but a model whose weights are all zeros reaches
    /// deflate's limit, about 1000:1 (tools/keras_zip_ratios.py): no ratio tells it from a bomb,
    /// so below the floor any ratio is read, and above it FERRY_ZIP_MAX_RATIO may raise the limit.
    /// Keras 3.15 itself refuses to extract a member past 256 MiB that expands more than 100 times.
    public static let defaultMaxExpansion = 100.0
    public static let expansionFloor: UInt64 = 256 << 20

    /// Refuses a member whose declared size is over `limit`, whose compressed size is more than
    /// the archive, or whose declared size is more than deflate can expand its compressed bytes
    /// to (at most about 1032:1): a zip bomb's header.
    public static func checkDeclaredSize(_ entry: Entry, _ name: String, limit: Int, archivePath: String) throws {
        guard entry.uncompressedSize <= UInt64(limit) else {
            throw FerryError("the archive member \(name) is too large (\(entry.uncompressedSize) bytes)")
        }
        // The compressed bytes are in the archive, so they cannot be more than the whole file.
        let archiveSize = ((try? FileManager.default.attributesOfItem(atPath: archivePath)[.size]) as? Int) ?? Int.max
        guard entry.compressedSize <= UInt64(archiveSize) else {
            throw FerryError("the archive member \(name) declares \(entry.compressedSize) compressed bytes, more than the whole archive (\(archiveSize))")
        }
        guard entry.uncompressedSize <= entry.compressedSize &* 1100 &+ 65536 else {
            throw FerryError("the archive member \(name) declares \(entry.uncompressedSize) bytes from \(entry.compressedSize) compressed ones, more than deflate can produce")
        }
    }

    /// Refuses members that expand, summed, past both the floor and the ratio: a zip bomb whose
    /// member starts with what its reader checks first (HDF5's signature, a `.npy` header) and
    /// is zeros after. Summed over the members, not each one, so a member of zeros beside a small
    /// config is judged with its neighbours as a model is; only the members read are given, so a
    /// bomb cannot hide behind a large stored member Ferry never reads.
    public static func checkExpansion(_ entries: [Entry]) throws {
        let declared = entries.reduce(UInt64(0)) { $0 &+ $1.uncompressedSize }
        let stored = entries.reduce(UInt64(0)) { $0 &+ $1.compressedSize }
        let limit = ProcessInfo.processInfo.environment["FERRY_ZIP_MAX_RATIO"].flatMap(Double.init) ?? defaultMaxExpansion
        guard declared > expansionFloor, Double(declared) > limit * Double(stored) else { return }
        let ratio = Double(declared) / Double(max(stored, 1))
        throw FerryError(String(format: "the archive's members expand %.0f times (%llu bytes from %llu compressed), past the "
                                + "limit of %g for archives over 256 MiB; a zip bomb? (data of all zeros, such as a "
                                + "model of zero weights, expands this far: FERRY_ZIP_MAX_RATIO raises the limit)",
                                ratio, declared, stored, limit))
    }
}
