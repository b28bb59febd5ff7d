import Foundation

/// Every failure the uplink reports: a stable code, a message for a person,
/// and where someone can act, the next step. Never contains the bearer token.
public struct UplinkError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// A libcurl call failed (DNS, connect, TLS, reset, stall...).
        case transport
        /// The hub answered something tus 1.0 does not allow.
        case protocolViolation
        /// The hub refused the station's credentials.
        case unauthorized
        /// The hub or the station is configured in a way that cannot work.
        case configuration
        /// Reading the file to upload failed.
        case source
        /// The hub does not accept this upload (too large, wrong type).
        case rejected
    }

    public var code: Code
    public var message: String
    public var fix: String?

    public init(_ code: Code, _ message: String, fix: String? = nil) {
        self.code = code
        self.message = message
        self.fix = fix
    }

    public var description: String {
        var s = "\(code.rawValue): \(message)"
        if let fix { s += " — \(fix)" }
        return s
    }

    /// A failed C call on the source side, with the function name and errno text.
    static func posix(_ function: String, _ path: String, errno err: Int32) -> UplinkError {
        UplinkError(.source, "\(function)(\(path)) failed: \(String(cString: strerror(err)))",
                    fix: "check that the file still exists and is readable")
    }
}
