import Foundation
import Testing
import FerryIR
@testable import FerryKeras

/// Ferry's own JSON reader (the Keras importer's model_config) against JSONSerialization.
@Suite struct JSONValueTests {
    /// Texts both readers accept; each must give the same tree.
    static let valid = [
        #"{"a": 1, "b": [true, false, null], "c": {"d": -2.5e-3, "e": "x"}}"#,
        #"[0, -0, 1.0, 3.0e2, 1E+2, 12345678901234, -9007199254740993, 0.1, 1e-320]"#,
        #"{"class_name": "Conv2D", "config": {"kernel_size": [3, 3], "strides": [1, 1], "padding": "same", "activation": null}}"#,
        #"["\u00e9\u4e2d\ud83d\ude00", "tab\there", "q\"uote\\back\/slash", "\b\f\n\r", "plain ünïcode"]"#,
        "  \n\t{\"k\" :[ ] , \"l\":{ }}\r\n",
        #"{"dup": 1, "dup": 2}"#,
        "[[[[[[[[[[1]]]]]]]]]]",
        #""just a string""#,
    ]

    @Test(arguments: valid)
    func agreesWithJSONSerialization(text: String) throws {
        let ours = try JSONValue.parse(text).foundationObject
        let theirs = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        #expect(canonical(ours) == canonical(theirs), "\(text)")
    }

    /// Numbers keep their kind: integers, other numbers and booleans stay apart. An integer too
    /// large for Int becomes the nearest double (JSONSerialization keeps its decimal digits; no
    /// Keras size or index is near 2^63).
    @Test func numberKinds() throws {
        let v = try JSONValue.parse(#"[3, 3.0, true, 1e2, -7, 99999999999999999999]"#).array!
        guard case .integer(3) = v[0], case .number(3.0) = v[1], case .bool(true) = v[2], case .number(100) = v[3],
              case .integer(-7) = v[4], case .number(let big) = v[5] else {
            Issue.record("kinds: \(v)")
            return
        }
        #expect(big == 1e20)
        #expect(try JSONValue.int(v[1], orThrow: FerryError("x")) == 3)
        #expect(throws: FerryError.self) { try JSONValue.int(v[2], orThrow: FerryError("bool")) }
        #expect(v[2].number == nil)
        #expect((v[2].foundationObject as! NSNumber).isJSONBool)
        #expect(!(v[0].foundationObject as! NSNumber).isJSONBool)
    }

    /// Python's json module writes non-finite floats as NaN / Infinity; they parse (the typed
    /// readers then refuse them where a finite number is needed).
    @Test func pythonNonFinite() throws {
        let v = try JSONValue.parse("[NaN, Infinity, -Infinity]").array!
        #expect(v[0].number!.isNaN)
        #expect(v[1].number == .infinity)
        #expect(v[2].number == -.infinity)
        let config = try ConfigReader.parse(json: #"{"max_value": Infinity}"#)
        #expect(throws: FerryError.self) { try config.optionalFloat("max_value") }
    }

    /// Strict JSON: Python's json module (what writes Keras configs) never writes trailing commas,
    /// though Foundation's reader on Linux takes them.
    static let invalid: [(String, String)] = [
        ("{\"a\": 1,}", "expected a quoted key"),
        ("[1, 2,]", "unexpected character ']'"),
        ("[1 2]", "expected ',' or ']'"),
        ("{\"a\" 1}", "expected ':'"),
        ("[01]", "may not start with 0"),
        ("[1.]", "digits after '.'"),
        ("[1e]", "digits in its exponent"),
        ("[-]", "a number needs digits"),
        ("[tru]", "expected 'true'"),
        ("\"abc", "ends inside a string"),
        ("\"a\u{01}b\"", "control character"),
        (#""\x""#, "unknown escape"),
        (#""\ud800""#, "unpaired UTF-16 surrogate"),
        (#""\udc00x""#, "unpaired UTF-16 surrogate"),
        (#""\u12g4""#, "four hex digits"),
        ("{} {}", "unexpected text after"),
        ("", "ends where a value should be"),
        ("[", "ends where a value should be"),
        (String(repeating: "[", count: 600) + String(repeating: "]", count: 600), "nested more than 512"),
    ]

    @Test(arguments: invalid)
    func refusesWithAReason(text: String, reason: String) {
        do {
            _ = try JSONValue.parse(text)
            Issue.record("accepted \(text.prefix(40))")
        } catch {
            #expect("\(error)".contains(reason), "\(text.prefix(40)): \(error)")
        }
    }

    /// A model_config error names the problem and where it is.
    @Test func modelConfigErrors() {
        #expect(throws: FerryError.self) { try ConfigReader.parse(json: "[1]") }
        do {
            _ = try ConfigReader.parse(json: #"{"a": [1, }"#)
        } catch {
            #expect("\(error)".contains("model_config is not valid JSON (unexpected character '}' at byte 10)"), "\(error)")
        }
    }

    /// JSONSerialization's text of a tree with sorted keys: equal trees give equal text.
    private func canonical(_ value: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]) else {
            return "unserializable"
        }
        return String(decoding: data, as: UTF8.self)
    }
}
