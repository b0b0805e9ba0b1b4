import FerryIR

/// Typed, checked access to one JSON object of a Keras `model_config`: layer parsers read their
/// fields through it and keep typed structs. Every failure is a `FerryError` naming the layer.
struct ConfigReader {
    private let object: [String: JSONValue]
    /// What the object belongs to, for error messages ("model_config", a layer's config).
    let layer: String?
    let layerType: String?

    /// The object as JSONSerialization would give it (a layer's config, recorded for the Keras
    /// exporter).
    var foundationObject: [String: Any] { object.mapValues(\.foundationObject) }

    init(_ object: [String: JSONValue], layer: String? = nil, layerType: String? = nil) {
        self.object = object
        self.layer = layer
        self.layerType = layerType
    }

    /// Parses a JSON text whose top level must be an object.
    static func parse(json: String) throws -> ConfigReader {
        let value: JSONValue
        do {
            value = try JSONValue.parse(json)
        } catch {
            throw FerryError("model_config is not valid JSON (\(error))")
        }
        guard let object = value.object else {
            throw FerryError("model_config should be a JSON object, is \(value.kind)")
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
        return !v.isNull
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
        guard let s = object[key]!.string else {
            throw error("config field '\(key)' should be a string, is \(object[key]!.kind)")
        }
        return s
    }

    func int(_ key: String) throws -> Int {
        guard has(key) else { throw error("config has no '\(key)'") }
        return try JSONValue.int(object[key]!, orThrow: error("config field '\(key)' should be an integer, is \(object[key]!.kind)"))
    }

    func int(_ key: String, default value: Int) throws -> Int {
        has(key) ? try int(key) : value
    }

    /// A number as float32, nil when absent or null.
    func optionalFloat(_ key: String) throws -> Float? {
        guard has(key) else { return nil }
        guard let n = object[key]!.number, n.isFinite else {
            throw error("config field '\(key)' should be a number, is \(object[key]!.summary)")
        }
        return Float(n)
    }

    func float(_ key: String, default value: Float) throws -> Float {
        try optionalFloat(key) ?? value
    }

    /// A number or a list of numbers.
    func floats(_ key: String) throws -> [Float]? {
        guard has(key) else { return nil }
        if let list = object[key]!.array {
            return try list.map { v in
                guard let n = v.number, n.isFinite else {
                    throw error("config field '\(key)' should hold numbers")
                }
                return Float(n)
            }
        }
        return [try optionalFloat(key)!]
    }

    func bool(_ key: String, default value: Bool) throws -> Bool {
        guard has(key) else { return value }
        guard let b = object[key]!.bool else {
            throw error("config field '\(key)' should be true or false, is \(object[key]!.kind)")
        }
        return b
    }

    /// An integer or a list of `count` integers (Keras accepts `3` for `(3, 3)`).
    func ints(_ key: String, count: Int) throws -> [Int] {
        guard has(key) else { throw error("config has no '\(key)'") }
        return try ints(value: object[key]!, key: key, count: count)
    }

    func ints(_ key: String, count: Int, default value: [Int]) throws -> [Int] {
        has(key) ? try ints(key, count: count) : value
    }

    private func ints(value: JSONValue, key: String, count: Int) throws -> [Int] {
        let bad = error("config field '\(key)' should be an integer or \(count) integers, is \(value.summary)")
        if let list = value.array {
            guard list.count == count else { throw bad }
            return try list.map { try JSONValue.int($0, orThrow: bad) }
        }
        let n = try JSONValue.int(value, orThrow: bad)
        return Array(repeating: n, count: count)
    }

    /// A shape with unknown sizes as nil (`[null, 28, 28, 3]`).
    func optionalDims(_ key: String) throws -> [Int?]? {
        guard has(key) else { return nil }
        let bad = error("config field '\(key)' should be a list of sizes or nulls, is \(object[key]!.summary)")
        guard let list = object[key]!.array else { throw bad }
        return try list.map { v in
            if v.isNull { return nil }
            let n = try JSONValue.int(v, orThrow: bad)
            guard n >= 0 else { throw bad }
            return n
        }
    }

    // MARK: Nested values

    func object(_ key: String) throws -> ConfigReader {
        guard has(key) else { throw error("config has no '\(key)'") }
        guard let o = object[key]!.object else {
            throw error("config field '\(key)' should be an object, is \(object[key]!.kind)")
        }
        return ConfigReader(o, layer: layer, layerType: layerType)
    }

    func objects(_ key: String) throws -> [ConfigReader] {
        guard has(key) else { throw error("config has no '\(key)'") }
        guard let list = object[key]!.array else {
            throw error("config field '\(key)' should be a list, is \(object[key]!.kind)")
        }
        return try list.enumerated().map { i, v in
            guard let o = v.object else {
                throw error("element \(i) of '\(key)' should be an object, is \(v.kind)")
            }
            return ConfigReader(o, layer: layer, layerType: layerType)
        }
    }

    /// The raw value of a field, for the few parsers that accept several JSON shapes
    /// (inbound_nodes, input_layers, activation). Stays inside the config parser.
    func raw(_ key: String) -> JSONValue? {
        guard has(key) else { return nil }
        return object[key]
    }
}

