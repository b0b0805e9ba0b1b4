/// bfloat16 (the upper half of an IEEE binary32: sign, 8 exponent bits, 7 significand bits)
/// <-> binary32. bfloat16 tensors keep these raw bits as UInt16.
public enum BFloat16 {
    /// The bfloat16 bits nearest to `value`, ties to even, as onnx's reference (ml_dtypes),
    /// onnxruntime and PyTorch convert; overflow past the largest finite bfloat16 gives
    /// infinity. NaN stays a quiet NaN with its sign, even when its payload lies only in the
    /// low 16 bits (rounding those away would make it infinity).
    public static func bits(_ value: Float) -> UInt16 {
        let f = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: f >> 16) | 0x0040 }
        // Add just under half an ulp, plus one when the kept part is odd: a tie rounds to even.
        let rounded = f &+ 0x7FFF &+ ((f >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// The float32 value of bfloat16 bits (exact).
    public static func value(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }
}
