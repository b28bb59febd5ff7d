import Foundation

/// A failure of the hub: a code, a message for the operator and, where they
/// can act, the next step.
public struct HubError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable { case storage, configuration, startup }
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

    static func posix(_ function: String, _ path: String, errno err: Int32) -> HubError {
        HubError(.storage, "\(function)(\(path)) failed: \(String(cString: strerror(err)))",
                 fix: "check that the store directory exists, is writable and has free space")
    }
}
