import Foundation

/// Numbers as text and back, for string tensors (ONNX Cast to and from STRING).
///
/// ONNX says only "plain floating-point representation"; the node tests' expected strings
/// come from numpy (`astype(str)` of float32 in onnx 1.12's generator), so Ferry writes floats
/// as numpy's `str` of a scalar of the same type (and `astype(str)`) does in numpy 2: the
/// shortest digits that read back to the same value; positional when 1e-4 <= |x| < a bound
/// of the type (1e3 for float16, 1e6 for float32, 1e16 for float64) or zero, with at least one
/// digit after the point ("1.0"); otherwise scientific with at least two exponent digits
/// ("1e-05", "1.5e+16"); "nan", "inf", "-inf". numpy has no bfloat16: it is written as numpy
/// writes the float32 it widens to exactly. Integers as decimal, bools as "True" / "False".
public enum NumericText {
    public static func string(_ value: Float) -> String {
        special(Double(value)) ?? numpyStyle(shortestDigits(value.description), negative: value.sign == .minus,
                                             magnitude: Double(value.magnitude), positionalBelow: 1e6)
    }

    public static func string(_ value: Double) -> String {
        special(value) ?? numpyStyle(shortestDigits(value.description), negative: value.sign == .minus,
                                     magnitude: value.magnitude, positionalBelow: 1e16)
    }

    /// A float16 (given as its bits): the fewest significant digits that round back to the
    /// same half, as numpy prints float16.
    public static func string(float16 bits: UInt16) -> String {
        let value = HalfFloat.value(bits)
        if let s = special(Double(value)) { return s }
        for precision in 1...9 {
            let text = String(format: "%.\(precision - 1)e", Double(value))
            if let parsed = Float(text), HalfFloat.bits(parsed) == bits || (value == 0 && parsed == 0) {
                return numpyStyle(shortestDigits(text), negative: value.sign == .minus,
                                  magnitude: Double(value.magnitude), positionalBelow: 1e3)
            }
        }
        return string(value)
    }

    public static func string<T: FixedWidthInteger>(_ value: T) -> String { String(value) }
    public static func string(_ value: Bool) -> String { value ? "True" : "False" }

    private static func special(_ v: Double) -> String? {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v < 0 ? "-inf" : "inf" }
        return nil
    }

    /// The significant digits (no leading or trailing zeros; "0" for zero) and the decimal
    /// point's position (value = 0.digits x 10^point) of a decimal text such as Swift's
    /// shortest "1.2345679e+08", "0.039187793", "16777216.0" or printf's "3.140e+00".
    private static func shortestDigits(_ text: String) -> (digits: [Character], point: Int) {
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...]) ?? 0
        }
        if mantissa.first == "-" || mantissa.first == "+" { mantissa = mantissa.dropFirst() }
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        let whole = Array(parts[0]), fraction = parts.count > 1 ? Array(parts[1]) : []
        var digits = whole + fraction
        var point = whole.count + exponent
        while digits.first == "0" {
            digits.removeFirst()
            point -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        if digits.isEmpty { return (["0"], 1) }
        return (digits, point)
    }

    private static func numpyStyle(_ d: (digits: [Character], point: Int), negative: Bool, magnitude: Double,
                                   positionalBelow: Double) -> String {
        let sign = negative ? "-" : ""
        let digits = String(d.digits)
        if magnitude == 0 { return sign + "0.0" }
        if magnitude >= 1e-4 && magnitude < positionalBelow {
            if d.point <= 0 { return sign + "0." + String(repeating: "0", count: -d.point) + digits }
            if d.point >= digits.count { return sign + digits + String(repeating: "0", count: d.point - digits.count) + ".0" }
            let i = digits.index(digits.startIndex, offsetBy: d.point)
            return sign + digits[..<i] + "." + digits[i...]
        }
        let exponent = d.point - 1
        let exponentText = String(abs(exponent))
        let paddedExponent = (exponentText.count < 2 ? "0" : "") + exponentText
        let fraction = digits.count > 1 ? "." + digits.dropFirst() : ""
        return sign + String(digits.prefix(1)) + fraction + "e" + (exponent < 0 ? "-" : "+") + paddedExponent
    }

    /// The number a string tensor element stands for (ONNX Cast from STRING): "INF", "+INF",
    /// "-INF" and "NaN" in any case, or a plain or scientific decimal ("3.14", "1e-5", "1E8"),
    /// read as the nearest double (a cast to float32 then rounds that double, as numpy's
    /// `astype` does). Anything else is an error: ONNX leaves it undefined.
    public static func double(_ text: String) throws -> Double {
        let t = text.trimmingCharacters(in: .whitespaces)
        switch t.uppercased() {
        case "INF", "+INF": return .infinity
        case "-INF": return -.infinity
        case "NAN": return .nan
        default: break
        }
        // Plain or scientific decimal only: no hexadecimal floats, "infinity" or "nan(...)".
        let allowed = Set("0123456789+-.eE")
        guard !t.isEmpty, t.allSatisfy({ allowed.contains($0) }), t.contains(where: \.isNumber), let v = Double(t) else {
            throw FerryError("string '\(text.prefix(40))' is not a number (Cast reads plain or scientific decimals, INF, -INF and NaN)")
        }
        return v
    }

    /// An integer element (Cast from STRING to an integer type): a whole decimal as its exact
    /// 64-bit two's complement bits (the cast then keeps the low bits, as for wider integers);
    /// a decimal with a fraction or exponent truncated toward zero, as a float would be.
    public static func integerBits(_ text: String) throws -> UInt64 {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let i = Int64(t) { return UInt64(bitPattern: i) }
        if let u = UInt64(t) { return u }
        let v = try double(t).rounded(.towardZero)
        if let u = UInt64(exactly: v) { return u }
        return UInt64(bitPattern: Int64(exactly: v) ?? .min)
    }

    /// A bool element (Cast from STRING to BOOL): "True" / "False" in any case (what Ferry
    /// writes for bools), else a number, true when nonzero (NaN too, as for float to bool).
    public static func bool(_ text: String) throws -> Bool {
        switch text.trimmingCharacters(in: .whitespaces).lowercased() {
        case "true": return true
        case "false": return false
        default: return try double(text) != 0
        }
    }
}
