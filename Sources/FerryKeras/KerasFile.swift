import FerryIR

/// The parts of a Keras legacy-HDF5 model file the importer reads: root attributes and, on
/// demand, each layer's weights in `weight_names` order.
final class KerasFile {
    let h5: H5File
    let kerasVersion: String
    let backend: String
    let modelConfigJSON: String
    /// Names listed in `model_weights`' `layer_names`; nil when the file holds no weights group.
    let weightLayerNames: Set<String>?

    init(path: String) throws {
        h5 = try H5File(path: path)
        guard try h5.hasAttribute("model_config") else {
            throw FerryError("the file has no model_config attribute (a weights-only file from save_weights?); "
                             + "Ferry needs a file written by model.save")
        }
        modelConfigJSON = try h5.stringAttribute("model_config")
        kerasVersion = try h5.hasAttribute("keras_version") ? h5.stringAttribute("keras_version") : ""
        backend = try h5.hasAttribute("backend") ? h5.stringAttribute("backend") : ""
        if h5.exists("model_weights") {
            weightLayerNames = Set(try Self.chunkedStrings(h5, "layer_names", of: "model_weights"))
        } else {
            weightLayerNames = nil
        }
    }

    /// The weights a layer holds, in `weight_names` order: HDF5 paths relative to the root.
    func weightPaths(layer: String) throws -> (names: [String], paths: [String]) {
        guard let names = weightLayerNames else {
            throw FerryError("the file holds no weights (no model_weights group)")
        }
        let group = "model_weights/" + layer
        guard names.contains(layer), h5.exists(group) else {
            throw FerryError("the file holds no weights for this layer (no group '\(group)')")
        }
        let weightNames = try Self.chunkedStrings(h5, "weight_names", of: group)
        return (weightNames, weightNames.map { group + "/" + $0 })
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
        guard i > 0 else { throw FerryError("'\(path)' has no attribute '\(name)'") }
        return all
    }
}
