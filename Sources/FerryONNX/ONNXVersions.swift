/// ONNX opsets the exporter writes and the IR version each needs.
extension ONNXExporter {
    /// Opsets the exporter can write. Below 7, binary ops need the old `broadcast` attribute;
    /// 24 is the newest checked end to end (onnx 1.23 checker and onnxruntime 1.31, every op).
    public static let supportedOpsets: ClosedRange<Int> = 7...24

    /// The lowest ONNX IR version (ModelProto.ir_version) that may import `opset` of the
    /// default domain, from the ONNX versioning table (onnx/docs/Versioning.md): newer readers
    /// accept older IR versions, older readers refuse newer ones, so the lowest is the safest.
    public static func irVersion(forOpset opset: Int) -> Int {
        switch opset {
        case ...8: return 3
        case 9: return 4
        case 10: return 5
        case 11: return 6
        case 12...14: return 7
        case 15...18: return 8
        case 19...20: return 9
        case 21...22: return 10
        case 23: return 11
        case 24: return 12
        case 25...27: return 13
        default: return 14
        }
    }
}
