import FerryIR
import Foundation
import ZIPFoundation

/// A layer as the weight files know it: the user's layer name, and the name Keras 3's
/// `.keras` / `.weights.h5` layout gives it (snake_case class name plus a per-class counter).
struct LayerKey: Hashable {
    var name: String
    var autoName: String
}

/// Where a model's weights live. Layers are addressed by their path from the outermost model
/// (the enclosing nested models, then the layer itself).
protocol KerasWeightStore: AnyObject {
    var h5: H5File { get }
    /// The layer's weights in Keras's order: a name for messages and the dataset's HDF5 path.
    /// An empty list when the file holds nothing for the layer.
    /// `groups` are Keras 3's sub-groups of the layer that hold its weights (the legacy layout
    /// lists them all under the layer).
    func weights(layerPath: [LayerKey], groups: [[String]]) throws -> [(name: String, path: String)]
}

/// The legacy HDF5 layout (`model.save("x.h5")` under `model_weights`, or Keras 2's
/// `save_weights("x.h5")` at the root): one group per top-level layer with a `weight_names`
/// attribute. A nested model is one group holding all its sub-layers' weights, named
/// `<sub-layer>/<weight>` (Keras 2) or `<model>/<sub-layer>/<weight>` (Keras 3).
final class LegacyWeightStore: KerasWeightStore {
    let h5: H5File
    private let root: String
    private let layerNames: Set<String>

    init(h5: H5File, root: String) throws {
        self.h5 = h5
        self.root = root
        layerNames = Set(try Self.chunkedStrings(h5, "layer_names", of: root))
    }

    func weights(layerPath: [LayerKey], groups: [[String]]) throws -> [(name: String, path: String)] {
        guard let top = layerPath.first?.name else { return [] }
        let group = root.isEmpty ? top : root + "/" + top
        guard layerNames.contains(top), h5.exists(group) else {
            throw FerryError("the file holds no weights for this layer (no group '\(group)')")
        }
        let names = try Self.chunkedStrings(h5, "weight_names", of: group)
        var selected = names
        if layerPath.count > 1 {
            // A layer inside a nested model: its weights are those whose name, less the last
            // component, ends with the layer's own name, or passes through it (a recurrent
            // layer's cell: `lstm/lstm_cell/kernel`).
            let own = layerPath.last!.name
            selected = names.filter { name in
                guard let slash = name.lastIndex(of: "/") else { return false }
                let owner = name[..<slash]
                return owner == own || owner.hasSuffix("/" + own) || owner.hasPrefix(own + "/")
                    || owner.contains("/" + own + "/")
            }
        }
        return selected.map { ($0, group + "/" + $0) }
    }

    /// A string-list attribute that Keras may split into `name0`, `name1`, ... when it exceeds
    /// HDF5's 64 KB attribute limit.
    static func chunkedStrings(_ h5: H5File, _ name: String, of path: String) throws -> [String] {
        if try h5.hasAttribute(name, of: path) { return try h5.stringsAttribute(name, of: path) }
        var all: [String] = []
        var i = 0
        while try h5.hasAttribute("\(name)\(i)", of: path) {
            all += try h5.stringsAttribute("\(name)\(i)", of: path)
            i += 1
        }
        guard i > 0 else { throw FerryError("'\(path.isEmpty ? "/" : path)' has no attribute '\(name)'") }
        return all
    }
}

/// Keras 3's layout (`model.weights.h5` inside `.keras`, and `save_weights("x.weights.h5")`):
/// `layers/<auto name>/vars/<i>`, nested models recursing under `layers/<auto name>/layers/`.
/// The user's layer name is the `name` attribute of the `vars` group when Keras wrote it.
final class LayersWeightStore: KerasWeightStore {
    let h5: H5File

    init(h5: H5File) {
        self.h5 = h5
    }

    func weights(layerPath: [LayerKey], groups: [[String]]) throws -> [(name: String, path: String)] {
        var group = ""
        for key in layerPath {
            group = try child(of: group, for: key)
        }
        var all: [(name: String, path: String)] = []
        for sub in groups {
            let relative = (sub + ["vars"]).joined(separator: "/")
            let vars = group + "/" + relative
            guard h5.exists(vars) else { continue }
            // Variables are numbered; "10" sorts after "9".
            let indices = try h5.children(of: vars).map { name -> Int in
                guard let i = Int(name), i >= 0 else {
                    throw FerryError("'\(vars)' holds '\(name)', expected numbered variables")
                }
                return i
            }.sorted()
            all += indices.map { ("\(relative)/\($0)", "\(vars)/\($0)") }
        }
        return all
    }

    /// The group of one layer inside `parent`'s `layers`: the one whose `vars` carries the
    /// layer's name, else the one with its automatic name.
    private func child(of parent: String, for key: LayerKey) throws -> String {
        let layers = parent.isEmpty ? "layers" : parent + "/layers"
        guard h5.exists(layers) else {
            throw FerryError("the weights file has no group '\(layers)'")
        }
        for member in try h5.children(of: layers) {
            let vars = "\(layers)/\(member)/vars"
            if h5.exists(vars), try h5.hasAttribute("name", of: vars),
               try h5.stringAttribute("name", of: vars) == key.name {
                return "\(layers)/\(member)"
            }
        }
        let auto = "\(layers)/\(key.autoName)"
        guard h5.exists(auto) else {
            throw FerryError("the weights file has no group for this layer (looked for its name and '\(auto)')")
        }
        return auto
    }
}

/// A Keras model as stored on disk, whatever the container: the architecture JSON, the Keras
/// version that wrote it, and its weights.
final class KerasModelSource {
    let configJSON: String
    let kerasVersion: String
    let backend: String
    let format: String
    let store: KerasWeightStore
    /// A file this source extracted and removes when done.
    private let temporaryFile: URL?

    private init(configJSON: String, kerasVersion: String, backend: String, format: String,
                 store: KerasWeightStore, temporaryFile: URL? = nil) {
        self.configJSON = configJSON
        self.kerasVersion = kerasVersion
        self.backend = backend
        self.format = format
        self.store = store
        self.temporaryFile = temporaryFile
    }

    deinit {
        if let t = temporaryFile { try? FileManager.default.removeItem(at: t) }
    }

    /// A legacy `.h5` written by `model.save`: root attributes and `model_weights`.
    static func legacyH5(path: String) throws -> KerasModelSource {
        let h5 = try H5File(path: path)
        guard try h5.hasAttribute("model_config") else {
            throw FerryError("the file has no model_config attribute (a weights-only file from save_weights?); "
                             + "give the architecture as model.json with --weights FILE, or use a file "
                             + "written by model.save")
        }
        let config = try h5.stringAttribute("model_config")
        let version = try h5.hasAttribute("keras_version") ? h5.stringAttribute("keras_version") : ""
        let backend = try h5.hasAttribute("backend") ? h5.stringAttribute("backend") : ""
        guard h5.exists("model_weights") else {
            throw FerryError("the file holds no weights (no model_weights group; saved with include_optimizer only?)")
        }
        return KerasModelSource(configJSON: config, kerasVersion: version, backend: backend, format: "keras-h5",
                                store: try LegacyWeightStore(h5: h5, root: "model_weights"))
    }

    /// The pair `model.to_json()` + `save_weights(...)`: Keras 2's legacy weights `.h5` or
    /// Keras 3's `.weights.h5`.
    static func jsonAndWeights(jsonPath: String, weightsPath: String) throws -> KerasModelSource {
        guard let data = FileManager.default.contents(atPath: jsonPath) else {
            throw FerryError("cannot read the file", file: jsonPath)
        }
        // Foundation's own message for these ("the file isn't in the correct format") does not
        // say which: an HDF5, zip or protobuf file given as the JSON is not UTF-8 text.
        guard let json = String(data: data, encoding: .utf8) else {
            throw FerryError("not an architecture JSON: the file is not UTF-8 text (model.to_json() writes JSON)", file: jsonPath)
        }
        guard json.first(where: { !$0.isWhitespace }) == "{" else {
            throw FerryError("not an architecture JSON: model.to_json() writes a JSON object, this file does not start with '{'", file: jsonPath)
        }
        let version = kerasVersionInJSON(json) ?? ""
        let store: KerasWeightStore
        do {
            store = try weightsOnly(path: weightsPath)
        } catch let e as FerryError {
            throw e.inFile(weightsPath)
        }
        let h5Version = try? store.h5.stringAttribute("keras_version")
        return KerasModelSource(configJSON: json, kerasVersion: version.isEmpty ? (h5Version ?? "") : version,
                                backend: (try? store.h5.stringAttribute("backend")) ?? "",
                                format: "keras-json", store: store)
    }

    /// A weights-only HDF5 file in either layout.
    static func weightsOnly(path: String) throws -> KerasWeightStore {
        let h5 = try H5File(path: path)
        if try h5.hasAttribute("layer_names") || h5.hasAttribute("layer_names0") {
            return try LegacyWeightStore(h5: h5, root: "")
        }
        if h5.exists("model_weights") { return try LegacyWeightStore(h5: h5, root: "model_weights") }
        if h5.exists("layers") || h5.exists("vars") { return LayersWeightStore(h5: h5) }
        throw FerryError("not a Keras weights file (no layer_names attribute and no 'layers' group)")
    }

    /// A Keras 3 `.keras` zip: `config.json`, `metadata.json` and `model.weights.h5`. Only those
    /// members are read; the weights are copied to a private temporary file for libhdf5.
    static func kerasZip(path: String) throws -> KerasModelSource {
        let archive: Archive
        do {
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            throw FerryError("not a Keras .keras file (not a zip archive)")
        }
        for entry in archive {
            let p = entry.path
            if p.hasPrefix("/") || p.hasPrefix("\\") || p.split(whereSeparator: { $0 == "/" || $0 == "\\" }).contains("..") {
                throw FerryError("the archive member '\(p)' has a path that leaves the archive; refusing the file")
            }
            // Keras never writes links; extracting one would give its target's path as the member.
            if entry.type == .symlink {
                throw FerryError("the archive member '\(p)' is a symbolic link; refusing the file")
            }
        }
        func member(_ name: String, limit: Int) throws -> Data {
            guard let entry = archive[name] else {
                throw FerryError("not a Keras .keras file (the archive has no \(name))")
            }
            try checkDeclaredSize(entry, name, limit: limit, archivePath: path)
            var data = Data()
            do {
                _ = try archive.extract(entry, consumer: { chunk in
                    // The header's size may lie: stop at what it declared, not at what the stream holds.
                    guard data.count + chunk.count <= Int(entry.uncompressedSize) else { throw SizeLie() }
                    data.append(chunk)
                })
            } catch is SizeLie {
                throw FerryError("the archive member \(name) holds more than the \(entry.uncompressedSize) bytes its header declares")
            } catch {
                throw FerryError("cannot extract \(name) from the archive (\(error))")
            }
            return data
        }
        // Every member's header first (a size deflate cannot give is a lie), then their sum.
        let readMembers = [("config.json", 1 << 28), ("metadata.json", 1 << 20), ("model.weights.h5", 1 << 40)]
        for (name, limit) in readMembers {
            if let entry = archive[name] { try checkDeclaredSize(entry, name, limit: limit, archivePath: path) }
        }
        try checkExpansion(of: archive, members: readMembers.map(\.0))
        let config = String(decoding: try member("config.json", limit: 1 << 28), as: UTF8.self)
        var version = ""
        if archive["metadata.json"] != nil {
            version = kerasVersionInJSON(String(decoding: try member("metadata.json", limit: 1 << 20), as: UTF8.self)) ?? ""
        }
        guard let weightsEntry = archive["model.weights.h5"] else {
            throw FerryError("not a Keras .keras file (the archive has no model.weights.h5)")
        }
        // Extracted to a private temporary file of our naming (member paths never name files on
        // disk), no larger than its header declares, and that declaration must be one deflate
        // could keep its promise to (at most about 1032:1).
        try checkDeclaredSize(weightsEntry, "model.weights.h5", limit: 1 << 40, archivePath: path)
        let temp = FileManager.default.temporaryDirectory
            .appendingPathComponent("ferry-\(UUID().uuidString).weights.h5")
        try checkFreeSpace(for: weightsEntry.uncompressedSize, in: temp.deletingLastPathComponent().path)
        do {
            guard FileManager.default.createFile(atPath: temp.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw FerryError("cannot create a temporary file for model.weights.h5 in \(temp.deletingLastPathComponent().path)")
            }
            let sink = try FileHandle(forWritingTo: temp)
            defer { try? sink.close() }
            var written = 0
            var head = Data()
            _ = try archive.extract(weightsEntry, consumer: { chunk in
                written += chunk.count
                guard written <= Int(weightsEntry.uncompressedSize) else { throw SizeLie() }
                // h5py (and so Keras) puts the HDF5 signature at the start: a member that does not
                // begin with it (a zip bomb of zeros, another file) is refused at its first bytes,
                // not after gigabytes were written to the temporary file.
                if head.count < hdf5Signature.count {
                    head.append(chunk.prefix(hdf5Signature.count - head.count))
                    guard hdf5Signature.starts(with: head) else { throw NotHDF5() }
                }
                try sink.write(contentsOf: chunk)
            })
            guard head.count == hdf5Signature.count else { throw NotHDF5() }
        } catch {
            try? FileManager.default.removeItem(at: temp)
            if error is NotHDF5 {
                throw FerryError("the archive member model.weights.h5 is not an HDF5 file (it does not start with HDF5's signature)")
            }
            if error is SizeLie {
                throw FerryError("the archive member model.weights.h5 holds more than the \(weightsEntry.uncompressedSize) bytes its header declares")
            }
            if let e = error as? FerryError { throw e }
            throw FerryError("cannot extract model.weights.h5 from the archive (\(error))")
        }
        do {
            let store = LayersWeightStore(h5: try H5File(path: temp.path))
            return KerasModelSource(configJSON: config, kerasVersion: version, backend: "", format: "keras",
                                    store: store, temporaryFile: temp)
        } catch let e as FerryError {
            try? FileManager.default.removeItem(at: temp)
            var wrapped = e
            wrapped.message = "model.weights.h5 in the archive: " + e.message
            throw wrapped
        }
    }

    private static func checkDeclaredSize(_ entry: Entry, _ name: String, limit: Int, archivePath: String) throws {
        try ZipLimits.checkDeclaredSize(entry, name, limit: limit, archivePath: archivePath)
    }

    static func checkExpansion(of archive: Archive, members: [String]) throws {
        try ZipLimits.checkExpansion(members.compactMap { archive[$0] })
    }

    /// Refuses to extract `bytes` into `folder` when its file system has fewer free: the
    /// extraction would fill the disk before failing.
    static func checkFreeSpace(for bytes: UInt64, in folder: String) throws {
        var info = statvfs()
        guard statvfs(folder, &info) == 0 else { return }
        let free = UInt64(info.f_bavail) &* UInt64(info.f_frsize)
        guard bytes > free else { return }
        throw FerryError("model.weights.h5 declares \(bytes) bytes, more than the \(free) bytes free in the temporary folder "
                         + "\(folder) where it is extracted (TMPDIR chooses the folder)")
    }

    private struct SizeLie: Error {}
    private struct NotHDF5: Error {}
    /// The first bytes of an HDF5 file whose superblock is at offset 0 (no user block).
    private static let hdf5Signature = Data([0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A])

    /// The top-level `keras_version` of a JSON object (to_json output, metadata.json), if any.
    private static func kerasVersionInJSON(_ json: String) -> String? {
        (try? JSONValue.parse(json))?.object?["keras_version"]?.string
    }
}
