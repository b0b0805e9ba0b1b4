import Foundation
import FerryIR
import SwiftProtobuf

/// Reading `.prototxt` and `.caffemodel` files into NetParameter messages, and the one layer
/// form the importer works on: V1 `layers` entries are converted to V2 `layer` messages (their
/// parameter messages are the same types), so every builder sees a V2 layer.
enum CaffeFiles {
    /// Decodes a protobuf text-format NetParameter. On a syntax error, the message names the
    /// line and column of the top-level entry that does not parse (swift-protobuf does not
    /// report positions), and the layer's name when one can be read.
    static func readPrototxt(_ path: String) throws -> Caffe_NetParameter {
        try readPrototxtWithLayerOrder(path).net
    }

    /// The net and the list (V1 or V2) of each of its layer entries in file order.
    static func readPrototxtWithLayerOrder(_ path: String) throws -> (net: Caffe_NetParameter, order: [Bool]) {
        let text = try readText(path)
        do {
            return (try Caffe_NetParameter(textFormatString: text), layerListOrder(text: text))
        } catch {
            throw FerryError(describeTextError(error, in: text), file: path)
        }
    }

    /// Decodes a binary NetParameter (a `.caffemodel`).
    static func readCaffemodel(_ path: String) throws -> Caffe_NetParameter {
        try readCaffemodelWithLayerOrder(path).net
    }

    /// The net and the list (V1 or V2) of each of its layer entries in file order.
    ///
    /// The file is mapped and decoded a layer at a time, each layer's pages given back once it
    /// is decoded: decoding the whole file at once held the weights twice, in the file's pages
    /// and in the decoded blobs (VGG16's 553 MB caffemodel peaked 1.1 GB above a small model's run).
    static func readCaffemodelWithLayerOrder(_ path: String) throws -> (net: Caffe_NetParameter, order: [Bool]) {
        let file = try MappedFile(path: path)
        var options = BinaryDecodingOptions()
        options.messageDepthLimit = 64
        var reader = WireReader(bytes: file.bytes, range: 0..<file.count)
        // Every field but the layer lists, decoded together at the end (names, inputs, state).
        var others: [UInt8] = []
        var layers: [Caffe_LayerParameter] = [], v1Layers: [Caffe_V1LayerParameter] = [], order: [Bool] = []
        var net: Caffe_NetParameter
        do {
            while let field = reader.next() {
                guard let field else { throw FerryError("truncated or malformed field at byte \(reader.position)") }
                if field.wireType == 2 && field.number == 100 {
                    layers.append(try recoveringDeepLabInterp(try decodeLayer(Caffe_LayerParameter.self, file, field.payload,
                                                                              blobsField: 7, options: options)))
                    order.append(false)
                } else if field.wireType == 2 && field.number == 2 {
                    v1Layers.append(try decodeLayer(Caffe_V1LayerParameter.self, file, field.payload, blobsField: 6, options: options))
                    order.append(true)
                } else {
                    others += file.bytes(field.whole)
                }
                file.release(field.whole)
            }
            net = try Caffe_NetParameter(serializedBytes: others, options: options)
        } catch {
            throw FerryError("not a binary Caffe NetParameter (.caffemodel): \(error)", file: path)
        }
        net.layer = layers
        net.layers = v1Layers
        // Protobuf decodes an empty file (and some other bytes) as a message with no fields: said
        // here, naming this file, rather than as weights missing for the prototxt's first layer.
        // (Ferry's exporter names every net, so a net of no layers it wrote still reads.)
        guard !net.layer.isEmpty || !net.layers.isEmpty || !net.name.isEmpty || !net.input.isEmpty else {
            throw FerryError("the caffemodel holds no layers (\(file.count == 0 ? "the file is empty" : "not a Caffe model?"))", file: path)
        }
        return (net, order)
    }

    /// One layer (V2, or V1) decoded from the mapped file's bytes `range`, its blobs' float data
    /// (BlobProto field 5, packed) copied straight from the file a megabyte at a time, each
    /// megabyte's pages given back once copied: decoded whole, a layer's weights were held twice
    /// for a moment (VGG16's 411 MB fc6: the run peaked 330 MB above its weights). A blob with
    /// unpacked or odd-sized data is left to the decoder whole. (Floats are read in the file's
    /// little-endian order, the byte order of the machines Ferry builds for.)
    static func decodeLayer<Layer: CaffeLayerWithBlobs>(_ type: Layer.Type, _ file: MappedFile, _ range: Range<Int>,
                                                        blobsField: Int, options: BinaryDecodingOptions) throws -> Layer {
        var reader = WireReader(bytes: file.bytes, range: range)
        var rest: [UInt8] = []
        var blobData: [[Float]?] = []
        while let field = reader.next() {
            guard let field else { throw FerryError("truncated or malformed field at byte \(reader.position)") }
            guard field.number == blobsField, field.wireType == 2 else {
                rest += file.bytes(field.whole)
                continue
            }
            var blobReader = WireReader(bytes: file.bytes, range: field.payload)
            var blobRest: [UInt8] = [], dataRanges: [Range<Int>] = [], extractable = true
            while let blobField = blobReader.next() {
                guard let blobField else { extractable = false; break }
                if blobField.number == 5 {
                    guard blobField.wireType == 2, blobField.payload.count % 4 == 0 else { extractable = false; break }
                    dataRanges.append(blobField.payload)
                } else {
                    blobRest += file.bytes(blobField.whole)
                }
            }
            guard extractable, !dataRanges.isEmpty else {
                rest += file.bytes(field.whole)
                blobData.append(nil)
                continue
            }
            let count = dataRanges.reduce(0) { $0 + $1.count } / 4
            let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                var out = UnsafeMutableRawBufferPointer(buffer)
                for whole in dataRanges {
                    var start = whole.lowerBound
                    while start < whole.upperBound {
                        let end = Swift.min(start + (1 << 20), whole.upperBound)
                        out.copyMemory(from: file.bytes(start..<end))
                        out = UnsafeMutableRawBufferPointer(rebasing: out[(end - start)...])
                        file.release(start..<end)
                        start = end
                    }
                }
                initialized = count
            }
            rest += ProtobufWire.key(blobsField) + ProtobufWire.varint(blobRest.count) + blobRest
            blobData.append(data)
        }
        var layer = try Layer(serializedBytes: rest, options: options)
        for (i, data) in blobData.enumerated() where i < layer.blobs.count {
            if let data { layer.blobs[i].data = data }
        }
        return layer
    }

    /// DeepLab's caffe.proto numbers interp_param 143, which BVLC's (and Ferry's, which moves
    /// it to 2143) gives to input_param: an Interp layer in a DeepLab caffemodel arrives with
    /// its parameters in input_param, as fields unknown there. They are read again as
    /// interp_param (an Interp layer has no use for input_param).
    static func recoveringDeepLabInterp(_ layer: Caffe_LayerParameter) throws -> Caffe_LayerParameter {
        guard layer.type == "Interp", !layer.hasInterpParam, layer.hasInputParam else { return layer }
        var recovered = layer
        recovered.interpParam = try Caffe_InterpParameter(serializedBytes: try layer.inputParam.serializedBytes() as [UInt8])
        recovered.clearInputParam()
        return recovered
    }

    private static func readText(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FerryError("cannot read the file", file: path)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw FerryError("the prototxt is not UTF-8 text", file: path)
        }
        return text
    }

    /// Finds the first top-level entry (`name: value` or `name { ... }`) that does not decode on
    /// its own and describes the error at its position.
    static func describeTextError(_ error: Error, in text: String) -> String {
        let what = "the prototxt does not parse (\(error))"
        for entry in topLevelEntries(text) {
            if (try? Caffe_NetParameter(textFormatString: String(text[entry.range]))) != nil { continue }
            var message = "\(what) at line \(entry.line), column \(entry.column)"
            if let name = layerName(in: String(text[entry.range])) { message += " (in layer '\(name)')" }
            return message
        }
        return what
    }

    fileprivate struct Entry {
        var range: Range<String.Index>
        var line: Int
        var column: Int
    }

    /// Splits text format into top-level entries by tracking braces outside strings and comments.
    fileprivate static func topLevelEntries(_ text: String) -> [Entry] {
        var entries: [Entry] = []
        var depth = 0
        var start: String.Index?
        var startLine = 1, startColumn = 1
        var line = 1, column = 1
        var quote: Character?
        var comment = false
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            if comment {
                if c == "\n" { comment = false }
            } else if let q = quote {
                if c == "\\" {
                    i = text.index(after: i)
                    column += 1
                    if i == text.endIndex { break }
                } else if c == q {
                    quote = nil
                }
            } else if c == "#" {
                comment = true
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "{" || c == "<" {
                depth += 1
            } else if c == "}" || c == ">" {
                depth -= 1
                if depth == 0, let s = start {
                    entries.append(Entry(range: s..<text.index(after: i), line: startLine, column: startColumn))
                    start = nil
                }
            } else if depth == 0 && start == nil && !c.isWhitespace {
                start = i
                startLine = line
                startColumn = column
            } else if depth == 0 && c == "\n", let s = start {
                // A scalar entry ends at the end of its line unless a message value follows.
                let entry = text[s..<i]
                if entry.contains(":") && !entry.trimmingCharacters(in: .whitespaces).hasSuffix(":") {
                    entries.append(Entry(range: s..<i, line: startLine, column: startColumn))
                    start = nil
                }
            }
            if c == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
            i = text.index(after: i)
        }
        if let s = start { entries.append(Entry(range: s..<text.endIndex, line: startLine, column: startColumn)) }
        return entries
    }

    private static func layerName(in entry: String) -> String? {
        guard let r = entry.range(of: #"name\s*:\s*"([^"]*)""#, options: .regularExpression) else { return nil }
        let match = entry[r]
        guard let q = match.firstIndex(of: "\"") else { return nil }
        return String(match[match.index(after: q)...].dropLast())
    }
}

/// Caffe's V1 layer type enum names mapped to the V2 type strings.
let v1LayerTypeNames: [Caffe_V1LayerParameter.LayerType: String] = [
    .absval: "AbsVal", .accuracy: "Accuracy", .argmax: "ArgMax", .bnll: "BNLL", .concat: "Concat",
    .contrastiveLoss: "ContrastiveLoss", .convolution: "Convolution", .data: "Data",
    .deconvolution: "Deconvolution", .dropout: "Dropout", .dummyData: "DummyData",
    .euclideanLoss: "EuclideanLoss", .eltwise: "Eltwise", .exp: "Exp", .flatten: "Flatten",
    .hdf5Data: "HDF5Data", .hdf5Output: "HDF5Output", .hingeLoss: "HingeLoss", .im2Col: "Im2col",
    .imageData: "ImageData", .infogainLoss: "InfogainLoss", .innerProduct: "InnerProduct", .lrn: "LRN",
    .memoryData: "MemoryData", .multinomialLogisticLoss: "MultinomialLogisticLoss", .mvn: "MVN",
    .pooling: "Pooling", .power: "Power", .relu: "ReLU", .sigmoid: "Sigmoid",
    .sigmoidCrossEntropyLoss: "SigmoidCrossEntropyLoss", .silence: "Silence", .softmax: "Softmax",
    .softmaxLoss: "SoftmaxWithLoss", .split: "Split", .slice: "Slice", .tanh: "TanH",
    .windowData: "WindowData", .threshold: "Threshold",
]

extension Caffe_LayerParameter {
    /// The V2 form of a V1 layer: same name, bottoms, tops, blobs, rules and parameters.
    init(v1 old: Caffe_V1LayerParameter) throws {
        self.init()
        name = old.name
        guard !old.hasLayer else {
            throw FerryError("V0 layer definitions (a `layer` inside `layers`) are not supported; "
                             + "upgrade the net with Caffe's upgrade_net_proto_text", layer: old.name)
        }
        guard let typeName = v1LayerTypeNames[old.type] else {
            throw FerryError("V1 layer type \(old.type) is not supported", layer: old.name, layerType: "\(old.type)")
        }
        type = typeName
        bottom = old.bottom
        top = old.top
        blobs = old.blobs
        include = old.include
        exclude = old.exclude
        lossWeight = old.lossWeight
        if old.hasAccuracyParam { accuracyParam = old.accuracyParam }
        if old.hasArgmaxParam { argmaxParam = old.argmaxParam }
        if old.hasConcatParam { concatParam = old.concatParam }
        if old.hasConvolutionParam { convolutionParam = old.convolutionParam }
        if old.hasDataParam { dataParam = old.dataParam }
        if old.hasDropoutParam { dropoutParam = old.dropoutParam }
        if old.hasDummyDataParam { dummyDataParam = old.dummyDataParam }
        if old.hasEltwiseParam { eltwiseParam = old.eltwiseParam }
        if old.hasExpParam { expParam = old.expParam }
        if old.hasImageDataParam { imageDataParam = old.imageDataParam }
        if old.hasInnerProductParam { innerProductParam = old.innerProductParam }
        if old.hasLrnParam { lrnParam = old.lrnParam }
        if old.hasMemoryDataParam { memoryDataParam = old.memoryDataParam }
        if old.hasMvnParam { mvnParam = old.mvnParam }
        if old.hasPoolingParam { poolingParam = old.poolingParam }
        if old.hasPowerParam { powerParam = old.powerParam }
        if old.hasReluParam { reluParam = old.reluParam }
        if old.hasSigmoidParam { sigmoidParam = old.sigmoidParam }
        if old.hasSoftmaxParam { softmaxParam = old.softmaxParam }
        if old.hasSliceParam { sliceParam = old.sliceParam }
        if old.hasTanhParam { tanhParam = old.tanhParam }
        if old.hasThresholdParam { thresholdParam = old.thresholdParam }
        if old.hasTransformParam { transformParam = old.transformParam }
        if old.hasLossParam { lossParam = old.lossParam }
    }
}

extension Caffe_NetParameter {
    /// Every layer in V2 form. `order` gives the list (true: V1 `layers`) of each entry in file
    /// order, so that a file mixing the two keeps its sequence (Caffe itself refuses the mix);
    /// entries it does not cover follow, V1 first.
    func allLayers(order: [Bool] = []) throws -> [Caffe_LayerParameter] {
        var result: [Caffe_LayerParameter] = []
        var nextV1 = 0, nextV2 = 0
        for isV1 in order {
            if isV1, nextV1 < layers.count {
                result.append(try Caffe_LayerParameter(v1: layers[nextV1]))
                nextV1 += 1
            } else if !isV1, nextV2 < layer.count {
                result.append(layer[nextV2])
                nextV2 += 1
            }
        }
        return try result + layers[nextV1...].map { try Caffe_LayerParameter(v1: $0) } + layer[nextV2...]
    }
}

/// Caffe's `StateMeetsRule` for the TEST phase at level 0 with no stages.
func includedInTestPhase(_ layer: Caffe_LayerParameter) -> Bool {
    func meets(_ rule: Caffe_NetStateRule) -> Bool {
        if rule.hasPhase && rule.phase != .test { return false }
        if rule.hasMinLevel && 0 < rule.minLevel { return false }
        if rule.hasMaxLevel && 0 > rule.maxLevel { return false }
        if !rule.stage.isEmpty { return false }
        return true
    }
    if !layer.include.isEmpty { return layer.include.contains(where: meets) }
    return !layer.exclude.contains(where: meets)
}

extension Caffe_BlobProto {
    /// The blob's dimensions: `shape` when present, else the legacy 4-D num/channels/height/width.
    var dims: [Int] {
        if hasShape { return shape.dim.map { Int($0) } }
        return [Int(num), Int(channels), Int(height), Int(width)]
    }

    var isLegacyShaped: Bool { !hasShape }

    /// The blob's values as float32 (double_data rounded when that is what the file holds).
    var values: [Float] {
        if !data.isEmpty { return data }
        return doubleData.map { Float($0) }
    }
}

extension CaffeFiles {
    /// The list each top-level layer entry of a text file belongs to, in file order (true: V1
    /// `layers`, false: V2 `layer`): protobuf keeps the two lists apart, the file interleaves them.
    static func layerListOrder(text: String) -> [Bool] {
        topLevelEntries(text).compactMap { entry -> Bool? in
            let t = text[entry.range]
            guard t.hasPrefix("layer") else { return nil }
            let rest = t.dropFirst(5)
            func separates(_ c: Character?) -> Bool { c.map { $0.isWhitespace || $0 == "{" || $0 == ":" || $0 == "<" } ?? false }
            if rest.first == "s" && separates(rest.dropFirst().first) { return true }
            return separates(rest.first) ? false : nil
        }
    }
}

/// The two layer messages a caffemodel lists (V2 `layer`, V1 `layers`), both holding blobs.
protocol CaffeLayerWithBlobs: SwiftProtobuf.Message {
    var blobs: [Caffe_BlobProto] { get set }
}

extension Caffe_LayerParameter: CaffeLayerWithBlobs {}
extension Caffe_V1LayerParameter: CaffeLayerWithBlobs {}
