import CHDF5
import FerryIR
import Foundation

/// A thin, read-only wrapper over libhdf5: every identifier is closed by its owner's deinit,
/// every failure becomes a `FerryError`, and libhdf5's own error printing is turned off.
enum HDF5 {
    /// Serialises all libhdf5 use in this module (the library may be built without thread safety).
    private static let lock = NSLock()

    /// Runs `body` holding the module's libhdf5 lock, with automatic error printing silenced
    /// for the calling thread.
    static func withLibrary<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        _ = noCleanupAtExit
        _ = ferry_H5E_silence()
        return try body()
    }

    /// libhdf5 closes every file still open at exit, and a file whose writing failed (a full
    /// disk) stays open after a failed `H5Fclose`: closing it again at exit crashed in
    /// `H5F__close_cb`. Ferry closes what it opens itself, so the library's exit handler is
    /// turned off (this must come before libhdf5's first call, which registers it).
    private static let noCleanupAtExit: Void = { _ = H5dont_atexit() }()
}

/// One libhdf5 identifier and the function that releases it.
final class H5Handle {
    typealias Closer = (hid_t) -> herr_t
    let id: hid_t
    private let closer: Closer

    /// Wraps `id`; a negative id (libhdf5's failure value) throws `error`.
    init(_ id: hid_t, closer: @escaping Closer, orThrow error: @autoclosure () -> FerryError) throws {
        guard id >= 0 else { throw error() }
        self.id = id
        self.closer = closer
    }

    private var closed = false

    /// Closes now, for the caller to see whether it worked (a file's last writes happen here).
    func close() -> herr_t {
        guard !closed else { return 0 }
        closed = true
        return closer(id)
    }

    deinit { if !closed { _ = closer(id) } }
}

/// A float dataset: its shape and its elements in row-major order.
struct H5FloatArray {
    var shape: [Int]
    var values: [Float]
}

/// An HDF5 file opened read-only. Object paths are relative to the root ("model_weights/dense1").
final class H5File {
    let path: String
    private var handle: H5Handle?
    private var file: H5Handle { handle! }
    /// The file's size: data a Keras file holds (weights, attributes) must fit in it, so a
    /// declared size beyond it is refused before anything is allocated for it.
    let fileSize: Int

    init(path: String) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else {
            throw FerryError("no such file", file: path)
        }
        fileSize = ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? Int) ?? 0
        guard H5Fis_hdf5(path) > 0 else {
            throw FerryError("not an HDF5 file", file: path)
        }
        let access = try H5Handle(H5Pcreate(ferry_H5P_FILE_ACCESS()), closer: H5Pclose,
                                  orThrow: FerryError("libhdf5 could not make a property list", file: path))
        guard ferry_limit_metadata_cache(access.id, Self.metadataCacheBytes) >= 0 else {
            throw FerryError("libhdf5 could not set its metadata cache size", file: path)
        }
        // Each object's metadata leaves the cache when the object is closed: Ferry reads every
        // dataset once, and what libhdf5 kept of them, between the blocks of the graph being
        // built, stayed as holes in the heap when the file closed (EfficientNetB0 at 96x96: 0.9 MB
        // fewer of libhdf5's blocks at the end of the import, its run's peak 0.4-0.9 MB lower).
        guard H5Pset_evict_on_close(access.id, true) >= 0 else {
            throw FerryError("libhdf5 could not set evict-on-close", file: path)
        }
        handle = try H5Handle(H5Fopen(path, ferry_H5F_ACC_RDONLY(), access.id), closer: H5Fclose,
                              orThrow: FerryError("libhdf5 could not open the file", file: path))
    }

    /// libhdf5's metadata cache for a file read (`ferry_limit_metadata_cache`).
    static let metadataCacheBytes = 256 * 1024

    /// The bytes of a slab a permuted weight is read by: large enough that malloc maps its
    /// buffer apart from the heap (128 KiB and more), small since it is resident until the file
    /// closes, beside all the weights (1 MiB slabs raised the import's peak by 0.6 to 0.8 MB).
    static let slabBytes = 256 * 1024

    /// The buffer slabs are read into, one for all of a file's reads and at least `slabBytes`,
    /// so that malloc maps it apart from its heap: a buffer per read, freed between the weights,
    /// left holes among them that the heap could not give back.
    private var slabStorage: UnsafeMutableBufferPointer<Float>?

    private func slabBuffer(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
        if let slab = slabStorage, slab.count >= count { return slab }
        slabStorage?.deallocate()
        let slab = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(count, Self.slabBytes / MemoryLayout<Float>.size))
        slabStorage = slab
        return slab
    }

    deinit {
        slabStorage?.deallocate()
        handle = nil
        // libhdf5 keeps freed blocks on its own free lists; hand them back once the file is closed.
        _ = H5garbage_collect()
    }

    /// Whether a group or dataset exists at `objectPath` (each component is checked, so missing
    /// intermediate groups give false rather than an error).
    func exists(_ objectPath: String) -> Bool {
        var prefix = ""
        for part in objectPath.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += prefix.isEmpty ? String(part) : "/" + part
            guard H5Lexists(file.id, prefix, ferry_H5P_DEFAULT()) > 0 else { return false }
        }
        return true
    }

    /// Opens a group or dataset.
    func object(_ objectPath: String) throws -> H5Handle {
        guard exists(objectPath) else {
            throw FerryError("the file has no object '\(objectPath)'")
        }
        return try H5Handle(H5Oopen(file.id, objectPath, ferry_H5P_DEFAULT()), closer: H5Oclose,
                            orThrow: FerryError("libhdf5 could not open '\(objectPath)'"))
    }

    /// Whether the object at `objectPath` ("" or "/" for the root) has an attribute `name`.
    func hasAttribute(_ name: String, of objectPath: String = "") throws -> Bool {
        let obj = try openObjectOrRoot(objectPath)
        return H5Aexists(obj.id, name) > 0
    }

    /// Reads a string attribute (scalar or 1-D; fixed or variable length) as a list of strings.
    func stringsAttribute(_ name: String, of objectPath: String = "") throws -> [String] {
        let owner = objectPath.isEmpty ? "the file root" : "'\(objectPath)'"
        let obj = try openObjectOrRoot(objectPath)
        guard H5Aexists(obj.id, name) > 0 else {
            throw FerryError("\(owner) has no attribute '\(name)'")
        }
        let attr = try H5Handle(H5Aopen(obj.id, name, ferry_H5P_DEFAULT()), closer: H5Aclose,
                                orThrow: FerryError("libhdf5 could not open attribute '\(name)' of \(owner)"))
        let fail = { (what: String) in FerryError("attribute '\(name)' of \(owner): \(what)") }
        let fileType = try H5Handle(H5Aget_type(attr.id), closer: H5Tclose, orThrow: fail("cannot read its type"))
        let space = try H5Handle(H5Aget_space(attr.id), closer: H5Sclose, orThrow: fail("cannot read its shape"))
        let points = H5Sget_simple_extent_npoints(space.id)
        guard points >= 0, points <= 1 << 24, Int(points) <= fileSize else { throw fail("has an invalid number of elements (\(points))") }
        let count = Int(points)
        // An empty list (a layer without weights) is written by h5py as an empty float array.
        if count == 0 { return [] }
        guard H5Tget_class(fileType.id) == H5T_STRING else {
            throw fail("expected a string, found HDF5 type class \(H5Tget_class(fileType.id).rawValue)")
        }

        let isVariable = H5Tis_variable_str(fileType.id)
        guard isVariable >= 0 else { throw fail("cannot tell fixed from variable length") }
        if isVariable > 0 {
            // Each string is as long as its descriptor in the file says, in characters of the
            // size its stored type says (one byte unless damaged), and libhdf5 allocates that
            // much before reading it: sizes the file cannot hold are refused first.
            var lengths = [UInt64](repeating: 0, count: count), collections = lengths
            var indices = [UInt32](repeating: 0, count: count)
            var lengthSize = 0
            var base: UInt64 = 0
            if ferry_vlen_attribute_descriptors(attr.id, count, &lengths, &collections, &indices, &lengthSize, &base) >= 0 {
                let character = H5Tget_super(fileType.id)
                let characterSize = max(character >= 0 ? Int(H5Tget_size(character)) : 1, 1)
                if character >= 0 { H5Tclose(character) }
                let (total, overflow) = Int(clamping: lengths.reduce(0) { $0 &+ $1 }).multipliedReportingOverflow(by: characterSize)
                guard !overflow, total <= fileSize else {
                    throw fail("its \(count) strings declare \(overflow ? "more than \(Int.max)" : "\(total)") bytes, more than the whole file (\(fileSize) bytes)")
                }
                // libhdf5 copies a string's whole global heap object into a buffer as long as the
                // descriptor says (H5HG_read), so an object longer than that is written past the
                // buffer's end: the objects' sizes are read from the file first.
                var heap = GlobalHeapReader(path: path, fileSize: fileSize, lengthSize: lengthSize, base: base)
                for i in 0..<count where lengths[i] > 0 && collections[i] != 0 {
                    if let stored = heap.objectSize(collection: collections[i], index: indices[i]),
                       stored > Int(lengths[i]) * characterSize {
                        throw fail("string \(i) declares \(Int(lengths[i]) * characterSize) bytes, its global heap object holds \(stored)")
                    }
                }
            }
            let memType = try H5Handle(H5Tcopy(ferry_H5T_C_S1()), closer: H5Tclose, orThrow: fail("cannot make a string type"))
            guard H5Tset_size(memType.id, ferry_H5T_VARIABLE()) >= 0,
                  H5Tset_cset(memType.id, H5Tget_cset(fileType.id)) >= 0 else {
                throw fail("cannot make a variable-length string type")
            }
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            let status = pointers.withUnsafeMutableBufferPointer { H5Aread(attr.id, memType.id, $0.baseAddress) }
            guard status >= 0 else { throw fail("libhdf5 could not read it") }
            let strings = pointers.map { $0.map { String(cString: $0) } ?? "" }
            _ = pointers.withUnsafeMutableBufferPointer { ferry_reclaim_vlen(memType.id, space.id, $0.baseAddress) }
            return strings
        }

        // Fixed length: read with the file's own type (same size and padding, no conversion),
        // then cut each element at its first NUL (and trailing blanks when space padded).
        let size = H5Tget_size(fileType.id)
        guard size > 0, size <= 1 << 28 else { throw fail("has an invalid string size \(size)") }
        let (total, overflow) = Int(size).multipliedReportingOverflow(by: count)
        guard !overflow, total <= 1 << 28, total <= fileSize else { throw fail("is too large (\(count) strings of \(size) bytes)") }
        let memType = try H5Handle(H5Tcopy(fileType.id), closer: H5Tclose, orThrow: fail("cannot copy its type"))
        var bytes = [UInt8](repeating: 0, count: total)
        let status = bytes.withUnsafeMutableBytes { H5Aread(attr.id, memType.id, $0.baseAddress) }
        guard status >= 0 else { throw fail("libhdf5 could not read it") }
        let spacePadded = H5Tget_strpad(fileType.id) == H5T_STR_SPACEPAD
        return (0..<count).map { i in
            var element = bytes[(i * Int(size))..<((i + 1) * Int(size))]
            if let nul = element.firstIndex(of: 0) { element = element[..<nul] }
            if spacePadded { while element.last == 0x20 { element = element.dropLast() } }
            return String(decoding: element, as: UTF8.self)
        }
    }

    /// Reads a string attribute that must hold exactly one string.
    func stringAttribute(_ name: String, of objectPath: String = "") throws -> String {
        let strings = try stringsAttribute(name, of: objectPath)
        guard strings.count == 1 else {
            throw FerryError("attribute '\(name)' should hold one string, holds \(strings.count)")
        }
        return strings[0]
    }

    /// The names of the links (groups and datasets) directly inside a group, in name order.
    func children(of groupPath: String) throws -> [String] {
        let group = try openObjectOrRoot(groupPath)
        let owner = groupPath.isEmpty ? "the file root" : "'\(groupPath)'"
        var info = H5G_info_t()
        guard H5Gget_info(group.id, &info) >= 0 else { throw FerryError("\(owner) is not a group") }
        guard info.nlinks <= 1 << 20 else { throw FerryError("\(owner) has too many members (\(info.nlinks))") }
        var names: [String] = []
        for i in 0..<info.nlinks {
            let length = H5Lget_name_by_idx(group.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, ferry_H5P_DEFAULT())
            guard length >= 0, length < 1 << 16 else { throw FerryError("cannot read the member names of \(owner)") }
            var buffer = [CChar](repeating: 0, count: Int(length) + 1)
            guard H5Lget_name_by_idx(group.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, buffer.count,
                                     ferry_H5P_DEFAULT()) >= 0 else {
                throw FerryError("cannot read the member names of \(owner)")
            }
            names.append(String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names
    }

    /// The shape of a dataset, without reading its elements.
    func datasetShape(_ datasetPath: String) throws -> [Int] {
        let ds = try openDataset(datasetPath)
        return try shape(of: ds, datasetPath)
    }

    /// Reads a floating-point dataset as float32 (libhdf5 converts float16/float64 on the way).
    func readFloats(_ datasetPath: String) throws -> H5FloatArray {
        let (ds, dims, count, _) = try floatDataset(datasetPath)
        var status: herr_t = 0
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            status = count == 0 ? 0 : H5Dread(ds.id, ferry_H5T_NATIVE_FLOAT(), ferry_H5S_ALL(), ferry_H5S_ALL(),
                                               ferry_H5P_DEFAULT(), buffer.baseAddress)
            initialized = status >= 0 ? count : 0
        }
        guard status >= 0 else { throw FerryError("dataset '\(datasetPath)': libhdf5 could not read its elements") }
        return H5FloatArray(shape: dims, values: values)
    }

    /// Reads a floating-point dataset as float32 (as `readFloats(_:)`) to the places in
    /// `destination` that `placement` gives its elements, a slab of at most `slabBytes` at a
    /// time: a permuted weight is never held whole in both layouts (ResNet50's 9.4 MB 3x3x512x512
    /// kernel was, for a moment). `eachSlab` sees the elements in the dataset's order. A chunked
    /// dataset (compressed: slabs across its chunks would decompress each chunk many times) is
    /// read whole first.
    func readFloats(_ datasetPath: String, into destination: UnsafeMutableBufferPointer<Float>, placement: WeightPlacement,
                    slabBytes: Int = H5File.slabBytes, eachSlab: (UnsafeBufferPointer<Float>) -> Void = { _ in }) throws {
        let (ds, dims, count, chunked) = try floatDataset(datasetPath)
        let fail = { (what: String) in FerryError("dataset '\(datasetPath)': \(what)") }
        guard placement.shape == dims, placement.lastOffset.map({ $0 < destination.count }) ?? true else {
            throw fail("shape \(dims) does not fit its place in a tensor of \(destination.count) elements")
        }
        guard count > 0 else { return }
        if placement.isContiguous {
            guard H5Dread(ds.id, ferry_H5T_NATIVE_FLOAT(), ferry_H5S_ALL(), ferry_H5S_ALL(), ferry_H5P_DEFAULT(),
                          destination.baseAddress! + placement.base) >= 0 else {
                throw fail("libhdf5 could not read its elements")
            }
            eachSlab(UnsafeBufferPointer(rebasing: destination[placement.base..<(placement.base + count)]))
            return
        }
        let rank = dims.count
        if rank == 0 || chunked {
            let whole = try readFloats(datasetPath).values
            whole.withUnsafeBufferPointer { values in
                eachSlab(values)
                placement.scatter(values, start: Array(repeating: 0, count: rank), count: dims, into: destination)
            }
            return
        }
        // The slab: single indices of the axes before `split`, a block of `block` indices along
        // it, and all of the axes after it.
        let slabFloats = max(slabBytes / MemoryLayout<Float>.size, 1)
        var inner = 1, split = rank - 1
        while split > 0, inner * dims[split] <= slabFloats {
            inner *= dims[split]
            split -= 1
        }
        let block = min(dims[split], max(slabFloats / inner, 1))
        let space = try H5Handle(H5Dget_space(ds.id), closer: H5Sclose, orThrow: fail("cannot read its shape"))
        let slab = slabBuffer(block * inner)
        var start = [Int](repeating: 0, count: rank)
        var size = [Int](repeating: 1, count: split) + [block] + dims[(split + 1)...]
        while true {
            size[split] = min(block, dims[split] - start[split])
            let elements = size[split] * inner
            let memory = try H5Handle(H5Screate_simple(1, [hsize_t(elements)], nil), closer: H5Sclose,
                                      orThrow: fail("cannot make a slab's dataspace"))
            guard H5Sselect_hyperslab(space.id, H5S_SELECT_SET, start.map { hsize_t($0) }, nil,
                                      size.map { hsize_t($0) }, nil) >= 0 else {
                throw fail("cannot select a slab at \(start)")
            }
            guard H5Dread(ds.id, ferry_H5T_NATIVE_FLOAT(), memory.id, space.id, ferry_H5P_DEFAULT(), slab.baseAddress) >= 0 else {
                throw fail("libhdf5 could not read its elements at \(start)")
            }
            let read = UnsafeBufferPointer(rebasing: slab[..<elements])
            eachSlab(read)
            placement.scatter(read, start: start, count: size, into: destination)
            // The next slab: along the split axis, then the axes before it like an odometer.
            start[split] += block
            var axis = split
            while axis >= 0, start[axis] >= dims[axis] {
                start[axis] = 0
                axis -= 1
                if axis >= 0 { start[axis] += 1 }
            }
            if axis < 0 { return }
        }
    }

    /// Throws what reading the dataset as floats would before allocating anything: not a
    /// floating-point dataset, or a shape the file cannot hold.
    func checkFloats(_ datasetPath: String) throws {
        _ = try floatDataset(datasetPath)
    }

    /// A floating-point dataset checked for reading: its shape, element count and whether it
    /// is stored in chunks. A shape that needs more bytes than the file can hold for it is a
    /// damaged (or hostile) header, refused before anything is allocated for it.
    private func floatDataset(_ datasetPath: String) throws -> (ds: H5Handle, dims: [Int], count: Int, chunked: Bool) {
        let ds = try openDataset(datasetPath)
        let dims = try shape(of: ds, datasetPath)
        let fail = { (what: String) in FerryError("dataset '\(datasetPath)': \(what)") }
        let type = try H5Handle(H5Dget_type(ds.id), closer: H5Tclose, orThrow: fail("cannot read its type"))
        guard H5Tget_class(type.id) == H5T_FLOAT else {
            throw fail("expected floating-point data, found HDF5 type class \(H5Tget_class(type.id).rawValue)")
        }
        guard let count = checkedElementCount(dims), count <= 1 << 31 else {
            throw fail("shape \(dims) is too large")
        }
        let itemSize = max(Int(H5Tget_size(type.id)), 1)
        let (bytes, overflow) = count.multipliedReportingOverflow(by: itemSize)
        let storage = try storageLimit(of: ds, datasetPath, itemSize: itemSize)
        guard !overflow, bytes <= storage.bytes else {
            throw fail("shape \(dims) needs \(count) elements of \(itemSize) bytes, more than \(storage.what)")
        }
        return (ds, dims, count, storage.chunked)
    }

    /// Deflate cannot expand its output more than about 1032 to 1 (zlib's documented limit).
    static let deflateRatioLimit = 1032
    /// A chunk may always be this large (its buffer is allocated whole while reading): small
    /// datasets in chunks larger than themselves are legitimate and harmless.
    static let chunkAllowance = 16 << 20

    /// The most bytes a dataset's elements can take when read, and how that is said in an error.
    /// Stored as written (contiguous, compact, or chunked without filters), they are in the file,
    /// so the file's size bounds them. Compressed (h5py's `compression="gzip"`, with the shuffle
    /// and fletcher32 filters or not), the bound is deflate's largest expansion of the bytes the
    /// file stores for the dataset (never more than the file), so that a small file cannot make
    /// Ferry allocate a huge tensor of fill values or of a zip bomb's zeros. Other filters
    /// (szip, n-bit, scale-offset, plugins such as lzf) are refused: their expansion has no such
    /// bound (scale-offset stores a constant chunk in a few bytes), and Keras never writes them.
    private func storageLimit(of ds: H5Handle, _ datasetPath: String, itemSize: Int) throws -> (bytes: Int, what: String, chunked: Bool) {
        let fail = { (what: String) in FerryError("dataset '\(datasetPath)': \(what)") }
        let plist = try H5Handle(H5Dget_create_plist(ds.id), closer: H5Pclose, orThrow: fail("cannot read its storage properties"))
        let wholeFile: (bytes: Int, what: String) = (fileSize, "the whole file (\(fileSize) bytes)")
        guard H5Pget_layout(plist.id) == H5D_CHUNKED else { return (wholeFile.bytes, wholeFile.what, false) }
        let filterCount = H5Pget_nfilters(plist.id)
        guard filterCount >= 0, filterCount <= 32 else { throw fail("cannot read its filters") }
        var deflates = 0
        for index in 0..<filterCount {
            var flags: UInt32 = 0
            var valueCount = 0
            var name = [CChar](repeating: 0, count: 64)
            var config: UInt32 = 0
            let filter = H5Pget_filter2(plist.id, UInt32(index), &flags, &valueCount, nil, name.count, &name, &config)
            switch filter {
            case H5Z_FILTER_DEFLATE: deflates += 1
            case H5Z_FILTER_SHUFFLE, H5Z_FILTER_FLETCHER32: break
            default:
                let label = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                throw fail("stored with HDF5 filter \(filter)\(label.isEmpty ? "" : " (\(label))"); Ferry reads "
                           + "uncompressed or gzip-compressed datasets only")
            }
        }
        guard deflates <= 1 else { throw fail("compressed \(deflates) times over; Ferry reads gzip applied once") }
        var limit = wholeFile
        if deflates == 1 {
            // The bytes the file stores for the dataset's chunks (chunks never written read as
            // the fill value and store nothing).
            let stored = min(Int(clamping: H5Dget_storage_size(ds.id)), fileSize)
            limit = (stored.multipliedReportingOverflow(by: Self.deflateRatioLimit).overflow ? Int.max : stored * Self.deflateRatioLimit,
                     "gzip can expand the \(stored) compressed bytes stored for it to (\(Self.deflateRatioLimit) to 1 at most)")
        }
        // libhdf5 allocates a whole chunk to read or fill it.
        var chunk = [hsize_t](repeating: 0, count: 32)
        let rank = H5Pget_chunk(plist.id, Int32(chunk.count), &chunk)
        guard rank > 0, rank <= 32 else { throw fail("cannot read its chunk shape") }
        var chunkBytes = itemSize
        for d in chunk.prefix(Int(rank)) {
            let (product, overflow) = chunkBytes.multipliedReportingOverflow(by: Int(clamping: d))
            guard !overflow else { throw fail("its chunk shape \(chunk.prefix(Int(rank))) is too large") }
            chunkBytes = product
        }
        guard chunkBytes <= max(limit.bytes, Self.chunkAllowance) else {
            throw fail("chunks of \(chunkBytes) bytes are more than \(limit.what)")
        }
        return (limit.bytes, limit.what, true)
    }

    // MARK: - Helpers

    private func openObjectOrRoot(_ objectPath: String) throws -> H5Handle {
        let p = objectPath.isEmpty ? "/" : objectPath
        if p == "/" {
            return try H5Handle(H5Oopen(file.id, "/", ferry_H5P_DEFAULT()), closer: H5Oclose,
                                orThrow: FerryError("libhdf5 could not open the file root"))
        }
        return try object(p)
    }

    private func openDataset(_ datasetPath: String) throws -> H5Handle {
        guard exists(datasetPath) else { throw FerryError("the file has no dataset '\(datasetPath)'") }
        return try H5Handle(H5Dopen2(file.id, datasetPath, ferry_H5P_DEFAULT()), closer: H5Dclose,
                            orThrow: FerryError("'\(datasetPath)' is not a dataset"))
    }

    private func shape(of ds: H5Handle, _ datasetPath: String) throws -> [Int] {
        let fail = FerryError("dataset '\(datasetPath)': cannot read its shape")
        let space = try H5Handle(H5Dget_space(ds.id), closer: H5Sclose, orThrow: fail)
        let rank = H5Sget_simple_extent_ndims(space.id)
        guard rank >= 0, rank <= 32 else { throw fail }
        if H5Sget_simple_extent_type(space.id) == H5S_NULL {
            throw FerryError("dataset '\(datasetPath)' holds no data (null dataspace)")
        }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        if rank > 0 {
            guard H5Sget_simple_extent_dims(space.id, &dims, nil) == rank else { throw fail }
        }
        return try dims.map { d in
            guard d <= hsize_t(Int.max) else { throw fail }
            return Int(d)
        }
    }
}

/// Object sizes in a file's global heap collections (HDF5 file format, "Global Heap"), read from
/// the file's bytes rather than through libhdf5: a collection is `GCOL`, version, 3 reserved
/// bytes and its size, then objects of index (2 bytes), reference count (2), reserved (4), size
/// and data padded to 8 bytes; index 0 is the free space at the end. nil when a collection or
/// object cannot be found (libhdf5 then reports the damage itself).
struct GlobalHeapReader {
    let path: String, fileSize: Int, lengthSize: Int, base: UInt64
    private var collections: [UInt64: [UInt8]] = [:]

    init(path: String, fileSize: Int, lengthSize: Int, base: UInt64) {
        self.path = path
        self.fileSize = fileSize
        self.lengthSize = lengthSize
        self.base = base
    }

    mutating func objectSize(collection address: UInt64, index: UInt32) -> Int? {
        guard lengthSize >= 1, lengthSize <= 8, let bytes = collection(at: address) else { return nil }
        var position = 8 + lengthSize
        while position + 8 + lengthSize <= bytes.count {
            let objectIndex = Int(bytes[position]) | Int(bytes[position + 1]) << 8
            let size = number(bytes, at: position + 8)
            if objectIndex == 0 { return nil }
            if objectIndex == Int(index) { return size }
            let (padded, overflow) = size.addingReportingOverflow(7)
            guard !overflow else { return nil }
            position += 8 + lengthSize + (padded & ~7)
        }
        return nil
    }

    private mutating func collection(at address: UInt64) -> [UInt8]? {
        if let known = collections[address] { return known }
        let (start, overflow) = address.addingReportingOverflow(base)
        guard !overflow, start < UInt64(fileSize), let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: start)) != nil,
              let header = try? handle.read(upToCount: 8 + lengthSize), header.count == 8 + lengthSize,
              Array(header.prefix(4)) == Array("GCOL".utf8) else { return nil }
        let size = number(Array(header), at: 8)
        guard size >= header.count, size <= fileSize - Int(start) else { return nil }
        guard let rest = try? handle.read(upToCount: size - header.count) else { return nil }
        let bytes = Array(header) + Array(rest)
        collections[address] = bytes
        return bytes
    }

    /// A little-endian length field; Int.max when it does not fit an Int.
    private func number(_ bytes: [UInt8], at offset: Int) -> Int {
        var value: UInt64 = 0
        for b in 0..<lengthSize { value |= UInt64(bytes[offset + b]) << (8 * UInt64(b)) }
        return value > UInt64(Int.max) ? Int.max : Int(value)
    }
}
