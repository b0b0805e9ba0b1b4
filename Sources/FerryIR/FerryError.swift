import Foundation

/// The one error type every stage throws. Its description is the CLI's single
/// `error: <file>: <layer> (<type>): <what>` line; empty parts are left out.
public struct FerryError: Error, Sendable, CustomStringConvertible {
    public var file: String?
    public var layer: String?
    public var layerType: String?
    public var message: String

    public init(_ message: String, file: String? = nil, layer: String? = nil, layerType: String? = nil) {
        self.message = message
        self.file = file
        self.layer = layer
        self.layerType = layerType
    }

    /// Why a file could not be written or read, in the system's words ("No space left on
    /// device", "File too large"): Foundation describes such an error only as "the operation
    /// could not be completed", and keeps the POSIX error underneath.
    public static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        if let posix = ns.userInfo[NSUnderlyingErrorKey] as? NSError, posix.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(posix.code)))
        }
        return ns.localizedDescription
    }

    /// The same error, attributed to a file when it has none yet.
    public func inFile(_ path: String) -> FerryError {
        var e = self
        if e.file == nil { e.file = path }
        return e
    }

    /// The same error, attributed to a layer when it has none yet.
    public func atLayer(_ name: String, type: String?) -> FerryError {
        var e = self
        if e.layer == nil {
            e.layer = name
            e.layerType = type
        }
        return e
    }

    public var description: String {
        var parts: [String] = []
        if let file { parts.append(file) }
        if let layer {
            parts.append(layerType.map { "\(layer) (\($0))" } ?? layer)
        }
        parts.append(message)
        return "error: " + parts.joined(separator: ": ")
    }
}
