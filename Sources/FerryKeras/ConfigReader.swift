import FerryIR
import Foundation

/// Typed, checked access to one JSON object of a Keras `model_config`. The only place the
/// importer touches JSONSerialization's untyped values: layer parsers read their fields through
/// it and keep typed structs. Every failure is a `FerryError` naming the layer.
struct ConfigReader {
    private let object: [String: Any]
    /// What the object belongs to, for error messages ("model_config", a layer's config).
    let layer: String?
    let layerType: String?

    /// The object as parsed (a layer's config, recorded for the Keras exporter).
    var rawObject: [String: Any] { object }

    init(_ object: [String: Any], layer: String? = nil, layerType: String? = nil) {
        self.object = object
        self.layer = layer
        self.layerType = layerType
    }

    /// Parses a JSON text whose top level must be an object.
    static func parse(json: String) throws -> ConfigReader {
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed])
        } catch {
            throw FerryError("model_config is not valid JSON (\(error.localizedDescription))")
        }
        guard let object = value as? [String: Any] else {
            throw FerryError("model_config should be a JSON object, is \(JSONKind.of(value))")
        }
        return ConfigReader(object)
    }

    func error(_ message: String) -> FerryError {
        FerryError(message, layer: layer, layerType: layerType)
    }

    /// The same object, attributed to a layer in errors.
    func forLayer(_ name: String, type: String) -> ConfigReader {
        ConfigReader(object, layer: name, layerType: type)
    }

    /// Whether `key` is present with a non-null value.
    func has(_ key: String) -> Bool {
        guard let v = object[key] else { return false }
        return !(v is NSNull)
    }

    var keys: [String] { object.keys.sorted() }

    // MARK: Scalars

    func string(_ key: String) throws -> String {
        guard let s = try optionalString(key) else { throw error("config has no '\(key)'") }
        return s
    }

    func string(_ key: String, default value: String) throws -> String {
        try optionalString(key) ?? value
    }

    func optionalString(_ key: String) throws -> String? {
        guard has(key) else { return nil }
        guard let s = object[key] as? String else {
            throw error("config field '\(key)' should be a string, is \(JSONKind.of(object[key]!))")
        }
        return s
    }

    func int(_ key: String) throws -> Int {
        guard has(key) else { throw error("config has no '\(key)'") }
        return try JSONValue.int(object[key]!, orThrow: error("config field '\(key)' should be an integer, is \(JSONKind.of(object[key]!))"))
    }

    func int(_ key: String, default value: Int) throws -> Int {
        has(key) ? try int(key) : value
    }

    /// A number as float32, nil when absent or null.
    func optionalFloat(_ key: String) throws -> Float? {
        guard has(key) else { return nil }
        guard let n = object[key] as? NSNumber, !JSONValue.isBool(n), n.doubleValue.isFinite else {
            throw error("config field '\(key)' should be a number, is \(JSONKind.describe(object[key]!))")
        }
        return n.floatValue
    }

    func float(_ key: String, default value: Float) throws -> Float {
        try optionalFloat(key) ?? value
    }

    /// A number or a list of numbers.
    func floats(_ key: String) throws -> [Float]? {
        guard has(key) else { return nil }
        if let list = object[key] as? [Any] {
            return try list.map { v in
                guard let n = v as? NSNumber, !JSONValue.isBool(n), n.doubleValue.isFinite else {
                    throw error("config field '\(key)' should hold numbers")
                }
                return n.floatValue
            }
        }
        return [try optionalFloat(key)!]
    }

    func bool(_ key: String, default value: Bool) throws -> Bool {
        guard has(key) else { return value }
        guard let n = object[key] as? NSNumber, JSONValue.isBool(n) else {
            throw error("config field '\(key)' should be true or false, is \(JSONKind.of(object[key]!))")
        }
        return n.boolValue
    }

    /// An integer or a list of `count` integers (Keras accepts `3` for `(3, 3)`).
    func ints(_ key: String, count: Int) throws -> [Int] {
        guard has(key) else { throw error("config has no '\(key)'") }
        return try ints(value: object[key]!, key: key, count: count)
    }

    func ints(_ key: String, count: Int, default value: [Int]) throws -> [Int] {
        has(key) ? try ints(key, count: count) : value
    }

    private func ints(value: Any, key: String, count: Int) throws -> [Int] {
        let bad = error("config field '\(key)' should be an integer or \(count) integers, is \(JSONKind.describe(value))")
        if let list = value as? [Any] {
            guard list.count == count else { throw bad }
            return try list.map { try JSONValue.int($0, orThrow: bad) }
        }
        let n = try JSONValue.int(value, orThrow: bad)
        return Array(repeating: n, count: count)
    }

    /// A shape with unknown sizes as nil (`[null, 28, 28, 3]`).
    func optionalDims(_ key: String) throws -> [Int?]? {
        guard has(key) else { return nil }
        let bad = error("config field '\(key)' should be a list of sizes or nulls, is \(JSONKind.describe(object[key]!))")
        guard let list = object[key] as? [Any] else { throw bad }
        return try list.map { v in
            if v is NSNull { return nil }
            let n = try JSONValue.int(v, orThrow: bad)
            guard n >= 0 else { throw bad }
            return n
        }
    }

    // MARK: Nested values

    func object(_ key: String) throws -> ConfigReader {
        guard has(key) else { throw error("config has no '\(key)'") }
        guard let o = object[key] as? [String: Any] else {
            throw error("config field '\(key)' should be an object, is \(JSONKind.of(object[key]!))")
        }
        return ConfigReader(o, layer: layer, layerType: layerType)
    }

    func objects(_ key: String) throws -> [ConfigReader] {
        guard has(key) else { throw error("config has no '\(key)'") }
        guard let list = object[key] as? [Any] else {
            throw error("config field '\(key)' should be a list, is \(JSONKind.of(object[key]!))")
        }
        return try list.enumerated().map { i, v in
            guard let o = v as? [String: Any] else {
                throw error("element \(i) of '\(key)' should be an object, is \(JSONKind.of(v))")
            }
            return ConfigReader(o, layer: layer, layerType: layerType)
        }
    }

    /// The raw value of a field, for the few parsers that accept several JSON shapes
    /// (inbound_nodes, input_layers, activation). Stays inside the config parser.
    func raw(_ key: String) -> Any? {
        guard has(key) else { return nil }
        return object[key]
    }
}

/// Conversions of single JSONSerialization values.
enum JSONValue {
    static func isBool(_ n: NSNumber) -> Bool {
        // JSONSerialization gives booleans their own NSNumber subclass (objCType "c").
        String(cString: n.objCType) == "c"
    }

    static func int(_ value: Any, orThrow error: @autoclosure () -> FerryError) throws -> Int {
        guard let n = value as? NSNumber, !isBool(n) else { throw error() }
        if let i = Int(exactly: n.doubleValue) { return i }
        throw error()
    }
}

/// Names of JSON value kinds for messages.
enum JSONKind {
    static func of(_ value: Any) -> String {
        switch value {
        case is NSNull: return "null"
        case let n as NSNumber: return JSONValue.isBool(n) ? "a boolean" : "a number"
        case is String: return "a string"
        case is [Any]: return "a list"
        case is [String: Any]: return "an object"
        default: return "a \(type(of: value))"
        }
    }

    /// The kind plus a short rendering of simple values.
    static func describe(_ value: Any) -> String {
        switch value {
        case let n as NSNumber: return "\(of(n)) (\(n))"
        case let s as String: return "\"\(s.prefix(40))\""
        default: return of(value)
        }
    }
}
