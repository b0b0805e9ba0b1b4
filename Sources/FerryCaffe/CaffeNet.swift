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
    static func readCaffemodelWithLayerOrder(_ path: String) throws -> (net: Caffe_NetParameter, order: [Bool]) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw FerryError("cannot read the file: \(error.localizedDescription)", file: path)
        }
        let decoded: (net: Caffe_NetParameter, order: [Bool])
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 64
            var net = try Caffe_NetParameter(serializedBytes: data, options: options)
            net.layer = try net.layer.map(recoveringDeepLabInterp)
            decoded = (net, layerListOrder(binary: data))
        } catch {
            throw FerryError("not a binary Caffe NetParameter (.caffemodel): \(error)", file: path)
        }
        // Protobuf decodes an empty file (and some other bytes) as a message with no fields: said
        // here, naming this file, rather than as weights missing for the prototxt's first layer.
        // (Ferry's exporter names every net, so a net of no layers it wrote still reads.)
        let net = decoded.net
        guard !net.layer.isEmpty || !net.layers.isEmpty || !net.name.isEmpty || !net.input.isEmpty else {
            throw FerryError("the caffemodel holds no layers (\(data.isEmpty ? "the file is empty" : "not a Caffe model?"))", file: path)
        }
        return decoded
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

    /// The same for a binary NetParameter: fields 2 (`layers`) and 100 (`layer`) in the order the
    /// top-level message holds them; empty when the bytes do not walk cleanly.
    static func layerListOrder(binary data: Data) -> [Bool] {
        var order: [Bool] = []
        var i = data.startIndex
        func varint() -> UInt64? {
            var value: UInt64 = 0, shift: UInt64 = 0
            while i < data.endIndex, shift < 64 {
                let b = data[i]
                i += 1
                value |= UInt64(b & 0x7f) << shift
                if b & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
        while i < data.endIndex {
            guard let key = varint() else { return [] }
            switch key & 7 {
            case 0: guard varint() != nil else { return [] }
            case 1: i += 8
            case 5: i += 4
            case 2:
                guard let n = varint(), n <= UInt64(data.endIndex - i) else { return [] }
                i += Int(n)
                if key >> 3 == 2 { order.append(true) } else if key >> 3 == 100 { order.append(false) }
            default: return []
            }
            guard i <= data.endIndex else { return [] }
        }
        return order
    }
}
