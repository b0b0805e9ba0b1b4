/// IEEE 754 binary16 <-> binary32 by bit manipulation (Swift's Float16 is not available on
/// every platform, so float16 tensors keep raw bits). Ported from numpy's halffloat.c.
public enum HalfFloat {
    /// The half-precision bits nearest to `value`, ties to even; overflow gives infinity,
    /// NaN stays NaN (quiet) with its sign.
    public static func bits(_ value: Float) -> UInt16 {
        let f = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (f & 0x8000_0000) >> 16)
        let exponent = f & 0x7F80_0000
        if exponent >= 0x4780_0000 {
            // Infinity, NaN, or a finite value too large for half precision.
            let significand = f & 0x007F_FFFF
            if exponent == 0x7F80_0000 && significand != 0 {
                // Keep NaN a NaN even when the kept significand bits are all zero.
                return sign | 0x7E00 | UInt16(truncatingIfNeeded: significand >> 13)
            }
            return sign | 0x7C00
        }
        if exponent <= 0x3800_0000 {
            // A half subnormal, or zero after rounding.
            if exponent < 0x3300_0000 { return sign }
            let e = exponent >> 23
            var significand = 0x0080_0000 + (f & 0x007F_FFFF)
            significand >>= (113 - e)
            // Round half to even: add half an ulp unless exactly halfway with an even result
            // (bits shifted out above are checked in the original float).
            if (significand & 0x3FFF) != 0x1000 || (f & 0x7FF) != 0 { significand += 0x1000 }
            return sign | UInt16(truncatingIfNeeded: significand >> 13)
        }
        let halfExponent = UInt16(truncatingIfNeeded: (exponent - 0x3800_0000) >> 13)
        var significand = f & 0x007F_FFFF
        if (significand & 0x3FFF) != 0x1000 { significand += 0x1000 }
        // A carry out of the significand rounds up into the exponent (and on to infinity).
        return sign | (UInt16(truncatingIfNeeded: significand >> 13) &+ halfExponent)
    }

    /// The float32 value of half-precision bits (exact).
    public static func value(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = h & 0x7C00
        let significand = UInt32(h & 0x03FF)
        switch exponent {
        case 0:
            if significand == 0 { return Float(bitPattern: sign) }
            // Subnormal: normalise the significand.
            var s = significand << 1
            var shift: UInt32 = 0
            while s & 0x400 == 0 {
                s <<= 1
                shift += 1
            }
            return Float(bitPattern: sign | ((127 - 15 - shift) << 23) | ((s & 0x3FF) << 13))
        case 0x7C00:
            return Float(bitPattern: sign | 0x7F80_0000 | (significand << 13))
        default:
            return Float(bitPattern: sign | ((UInt32(h & 0x7FFF) + 0x1_C000) << 13))
        }
    }
}
