import Foundation

/// Every failure the Station module reports: a stable code for programs, a
/// message for people and, where someone can act, the next step.
public struct StationError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Codable, CaseIterable {
        /// A system call failed; the message names it and carries errno's text.
        case system
        /// `$NOTIFY_SOCKET` is set but unusable.
        case notifySocket = "notify_socket"
        /// A control API request was malformed or out of range.
        case badRequest = "bad_request"
        case invalidCaseId = "invalid_case_id"
        case notFound = "not_found"
        /// The request is valid but the station cannot act on it right now
        /// (for example a capture while the camera is missing).
        case unavailable
        case cameraMissing = "camera_missing"
        case conflict
        case payloadTooLarge = "payload_too_large"
        case forbidden
        case internalFailure = "internal_failure"
    }

    public var code: Code
    public var message: String
    public var fix: String?
    /// For `.system`: the C function and errno that failed.
    public var function: String?
    public var errno: Int32?

    public init(_ code: Code, _ message: String, fix: String? = nil) {
        self.code = code
        self.message = message
        self.fix = fix
    }

    /// A failed C call, with the function name and `strerror` text in the message.
    public static func system(_ function: String, errno: Int32, _ context: String? = nil, fix: String? = nil) -> StationError {
        let text = String(cString: strerror(errno))
        let what = context.map { "\($0): " } ?? ""
        var e = StationError(.system, "\(what)\(function) failed: \(text) (errno \(errno))", fix: fix)
        e.function = function
        e.errno = errno
        return e
    }

    public var description: String {
        if let fix { return "\(message) — \(fix)" }
        return message
    }
}
