import CHDF5
import FerryIR
import Foundation

/// Writes the HDF5 subset Keras files use: groups, string attributes (fixed or variable
/// length, scalar or 1-D) and float32 datasets. The importer's tests build odd files with it;
/// the Keras exporter will write with it. Call inside `HDF5.withLibrary`.
final class H5Writer {
    let path: String
    private let file: H5Handle
    private let linkCreation: H5Handle

    /// The file errors name: a writer of a temporary file names the output it becomes.
    let namedInErrors: String

    /// Creates (or truncates) the file.
    init(path: String, namedInErrors: String? = nil) throws {
        self.path = path
        self.namedInErrors = namedInErrors ?? path
        file = try H5Handle(H5Fcreate(path, ferry_H5F_ACC_TRUNC(), ferry_H5P_DEFAULT(), ferry_H5P_DEFAULT()),
                            closer: H5Fclose, orThrow: FerryError("libhdf5 could not create the file", file: namedInErrors ?? path))
        linkCreation = try H5Handle(H5Pcreate(ferry_H5P_LINK_CREATE()), closer: H5Pclose,
                                    orThrow: FerryError("libhdf5 could not make a property list"))
        guard H5Pset_create_intermediate_group(linkCreation.id, 1) >= 0 else {
            throw FerryError("libhdf5 could not set intermediate group creation")
        }
    }

    /// Writes what libhdf5 still holds and closes the file: a writer's last step, whose failure
    /// (a full disk, a file size limit) must fail the export rather than be lost in a deinit.
    func close() throws {
        guard H5Fflush(file.id, H5F_SCOPE_GLOBAL) >= 0, file.close() >= 0 else {
            throw FerryError("libhdf5 could not finish writing the file (disk full?)", file: namedInErrors)
        }
    }

    /// Creates a group and any missing parents; an existing group is left as it is.
    func group(_ groupPath: String) throws {
        if groupPath.isEmpty || groupPath == "/" || exists(groupPath) { return }
        _ = try H5Handle(H5Gcreate2(file.id, groupPath, linkCreation.id, ferry_H5P_DEFAULT(), ferry_H5P_DEFAULT()),
                         closer: H5Gclose, orThrow: FerryError("libhdf5 could not create group '\(groupPath)'"))
    }

    /// Sets a string attribute: one string as a scalar (`scalar`), else a 1-D list.
    func setStrings(_ name: String, _ strings: [String], on objectPath: String = "/",
                    variableLength: Bool, scalar: Bool = false) throws {
        precondition(!scalar || strings.count == 1, "a scalar attribute holds one string")
        try group(objectPath)
        let obj = try H5Handle(H5Oopen(file.id, objectPath, ferry_H5P_DEFAULT()), closer: H5Oclose,
                               orThrow: FerryError("libhdf5 could not open '\(objectPath)'"))
        if H5Aexists(obj.id, name) > 0 { _ = H5Adelete(obj.id, name) }
        var dims = [hsize_t(strings.count)]
        let space = try H5Handle(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dims, nil), closer: H5Sclose,
                                 orThrow: FerryError("libhdf5 could not make a dataspace"))
        let type = try H5Handle(H5Tcopy(ferry_H5T_C_S1()), closer: H5Tclose,
                                orThrow: FerryError("libhdf5 could not make a string type"))
        _ = H5Tset_cset(type.id, H5T_CSET_UTF8)
        let status: herr_t
        if variableLength {
            _ = H5Tset_size(type.id, ferry_H5T_VARIABLE())
            let attr = try H5Handle(H5Acreate2(obj.id, name, type.id, space.id, ferry_H5P_DEFAULT(), ferry_H5P_DEFAULT()),
                                    closer: H5Aclose, orThrow: FerryError("libhdf5 could not create attribute '\(name)'"))
            var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
            defer { pointers.forEach { free($0) } }
            status = pointers.withUnsafeMutableBufferPointer { H5Awrite(attr.id, type.id, $0.baseAddress) }
        } else {
            // h5py's fixed-length strings: NUL padded to the longest element.
            let size = max(strings.map(\.utf8.count).max() ?? 1, 1)
            _ = H5Tset_size(type.id, size)
            _ = H5Tset_strpad(type.id, H5T_STR_NULLPAD)
            let attr = try H5Handle(H5Acreate2(obj.id, name, type.id, space.id, ferry_H5P_DEFAULT(), ferry_H5P_DEFAULT()),
                                    closer: H5Aclose, orThrow: FerryError("libhdf5 could not create attribute '\(name)'"))
            var bytes = [UInt8](repeating: 0, count: size * strings.count)
            for (i, s) in strings.enumerated() {
                for (j, b) in s.utf8.enumerated() { bytes[i * size + j] = b }
            }
            status = bytes.withUnsafeMutableBytes { H5Awrite(attr.id, type.id, $0.baseAddress) }
        }
        guard status >= 0 else { throw FerryError("libhdf5 could not write attribute '\(name)'") }
    }

    /// Writes a float32 dataset, creating missing parent groups; stored in chunks of `chunks`
    /// when given (as h5py stores compressed datasets), else contiguous.
    func writeFloats(_ datasetPath: String, shape: [Int], _ values: [Float], chunks: [Int]? = nil) throws {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) vs \(values.count) values")
        try write(datasetPath, shape: shape, type: ferry_H5T_NATIVE_FLOAT(), values, chunks: chunks)
    }

    /// Writes an int8 dataset (for tests of wrongly typed weights).
    func writeInt8(_ datasetPath: String, shape: [Int], _ values: [Int8]) throws {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) vs \(values.count) values")
        try write(datasetPath, shape: shape, type: ferry_H5T_NATIVE_INT8(), values)
    }

    private func write<T>(_ datasetPath: String, shape: [Int], type: hid_t, _ values: [T], chunks: [Int]? = nil) throws {
        var dims = shape.map { hsize_t($0) }
        let space = try H5Handle(H5Screate_simple(Int32(dims.count), &dims, nil), closer: H5Sclose,
                                 orThrow: FerryError("libhdf5 could not make a dataspace"))
        let creation = try H5Handle(H5Pcreate(ferry_H5P_DATASET_CREATE()), closer: H5Pclose,
                                    orThrow: FerryError("libhdf5 could not make a property list"))
        if let chunks {
            guard H5Pset_chunk(creation.id, Int32(chunks.count), chunks.map { hsize_t($0) }) >= 0 else {
                throw FerryError("libhdf5 could not set chunks \(chunks) for dataset '\(datasetPath)'")
            }
        }
        let ds = try H5Handle(H5Dcreate2(file.id, datasetPath, type, space.id, linkCreation.id, creation.id,
                                         ferry_H5P_DEFAULT()),
                              closer: H5Dclose, orThrow: FerryError("libhdf5 could not create dataset '\(datasetPath)'"))
        let status = values.withUnsafeBytes {
            H5Dwrite(ds.id, type, ferry_H5S_ALL(), ferry_H5S_ALL(), ferry_H5P_DEFAULT(), $0.baseAddress)
        }
        guard status >= 0 else { throw FerryError("libhdf5 could not write dataset '\(datasetPath)'") }
    }

    private func exists(_ objectPath: String) -> Bool {
        var prefix = ""
        for part in objectPath.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += prefix.isEmpty ? String(part) : "/" + part
            guard H5Lexists(file.id, prefix, ferry_H5P_DEFAULT()) > 0 else { return false }
        }
        return true
    }
}
