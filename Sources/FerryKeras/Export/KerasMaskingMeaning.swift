import FerryIR
import Foundation

/// Where a Keras file's reader gives a layer another meaning than its source had, and no config
/// can keep the source's: the file is written (it is right for most inputs) and the conversion
/// says how it differs, naming the layer.
///
/// MultiHeadAttention with an `attention_mask`: a `.h5` (the Keras 2 layout) is read by tf_keras,
/// and by Ferry, with tf_keras's masking; a `.keras` by Keras 3 with its own. They differ
/// - where a query sees no key, when the layer returns its scores or has dropout: Keras 3.15
///   (its masked Softmax) gives zero weights, tf_keras uniform ones (it adds (1 - mask) * -1e9 to
///   the scores); without either, Keras 3 (`ops.dot_product_attention`) is uniform too;
/// - on a non-boolean mask's values other than 0 and 1, without use_causal_mask (which makes
///   tf_keras's mask boolean too): tf_keras adds (1 - mask) * -1e9, so 0.3 all but hides a key
///   and 2 boosts it, where Keras 3 attends wherever the mask is nonzero.
/// tf_keras's MultiHeadAttention has no option giving Keras 3's zeros, nor Keras 3's one giving
/// tf_keras's value-weighted masks; the source's own Keras version is read from the graph's
/// `keras_version` (kept through ONNX), as the importer reads it.
extension KerasExportContext {
    /// The Keras major version reading the file as its own.
    var readerKerasMajor: Int { target == .keras2H5 ? 2 : 3 }

    /// The Keras major version of a recorded layer's source, as the importer took it (Keras 2
    /// always records its version; Keras 3's to_json() and .weights.h5 do not).
    var sourceKerasMajor: Int {
        let version = graph.metadata["keras_version"] ?? ""
        return version.hasPrefix("2") || version.hasPrefix("1") ? 2 : 3
    }

    /// What the written call of a recorded layer means otherwise in the file's reader, or nil.
    func maskingMeaningChange(_ call: RecordedKerasCall) -> String? {
        let source = sourceKerasMajor
        guard call.className == "MultiHeadAttention", source != readerKerasMajor,
              let mask = call.keywordInputs.first(where: { $0.key == "attention_mask" })?.ports.compactMap({ $0 }).first else { return nil }
        let sourceName = source == 2 ? "tf_keras" : "Keras 3"
        let readerName = readerKerasMajor == 2 ? "tf_keras" : "Keras 3"
        var differences: [String] = []
        let dropout = (call.config["dropout"] as? NSNumber)?.doubleValue ?? 0
        if call.keywords["return_attention_scores"] == true || dropout > 0 {
            let weights = { (major: Int) in major == 2 ? "uniform weights" : "zero weights" }
            differences.append("where a query sees no key (its mask all 0), \(sourceName) (the source) gives it \(weights(source)) "
                               + "and \(readerName) \(weights(readerKerasMajor)), as the layer "
                               + (dropout > 0 ? "has dropout" : "returns its attention scores"))
        }
        if call.keywords["use_causal_mask"] != true, types[mask.value]?.dtype != .bool {
            differences.append("a mask value other than 0 and 1 counts otherwise: tf_keras adds (1 - mask) * -1e9 to the scores, "
                               + "Keras 3 attends wherever the mask is nonzero")
        }
        if differences.isEmpty { return nil }
        let file = readerKerasMajor == 2 ? "a Keras 2 layout .h5, which tf_keras and Ferry read" : "a .keras, which Keras 3 reads"
        let keep = source == 2 ? "write a .h5 to keep tf_keras's" : "write a .keras to keep Keras 3's"
        return "\(call.layer) (MultiHeadAttention) with an attention_mask means otherwise in \(file) with \(readerName)'s "
            + "masking: " + differences.joined(separator: "; ") + " (\(keep))"
    }
}
