import SystemPackage

/// What every error of the station tells a person: what happened, why (the
/// system call that failed, when one did) and what to do next. Each module
/// has one error type, `Failure<ItsCode>`, so the shape, the rendering and
/// the errno handling are written once.
public protocol StationFailure: Error, Sendable, CustomStringConvertible {
    /// What happened, in words a station operator can read.
    var message: String { get }
    /// Why: the system call that failed and its errno, when one did.
    var cause: SystemCallError? { get }
    /// What a person can do about it, when there is something to do.
    var nextStep: String? { get }
}

extension StationFailure {
    public var description: String {
        guard let nextStep else { return message }
        return "\(message) — \(nextStep)"
    }
}

/// A module's stable error codes (a `String` enum, so they travel in JSON).
public protocol FailureCode: RawRepresentable, Sendable, Hashable, Codable where RawValue == String {}

/// The error type of a module: `typealias SpoolError = Failure<SpoolErrorCode>`.
public struct Failure<C: FailureCode>: StationFailure, Equatable, Codable {
    public typealias Code = C

    public var code: Code
    public var message: String
    public var nextStep: String?
    public var cause: SystemCallError?

    public init(_ code: Code, _ message: String, nextStep: String? = nil, cause: SystemCallError? = nil) {
        self.code = code
        self.message = message
        self.nextStep = nextStep
        self.cause = cause
    }

    /// A failed C call named by function and raw errno (`errno` 0 or nil: no call failed).
    public init(_ code: Code, _ message: String, nextStep: String? = nil, function: String?, errno: Int32? = nil, path: String? = nil) {
        self.init(code, message, nextStep: nextStep,
                  cause: function.flatMap { f in errno.map { SystemCallError(f, path: path, errno: Errno(rawValue: $0)) } })
    }

    /// The C function that failed, for failures of system calls.
    public var function: String? { cause?.function }
    /// The errno of that call.
    public var errno: Int32? { cause?.errno.rawValue }
}

/// A failed system call: the function, what it acted on, and the errno.
public struct SystemCallError: Error, Sendable, Equatable, Codable, CustomStringConvertible {
    public var function: String
    public var path: String?
    public var errno: Errno

    public init(_ function: String, path: String? = nil, errno: Errno) {
        self.function = function
        self.path = path
        self.errno = errno
    }

    public init(_ function: String, path: String? = nil, errno raw: Int32) {
        self.init(function, path: path, errno: Errno(rawValue: raw))
    }

    /// `open(/var/lib/x) failed: No such file or directory`
    public var description: String {
        "\(function)(\(path ?? "")) failed: \(errno.text)"
    }

    enum CodingKeys: String, CodingKey { case function, path, errno }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        function = try c.decode(String.self, forKey: .function)
        path = try c.decodeIfPresent(String.self, forKey: .path)
        errno = Errno(rawValue: try c.decode(Int32.self, forKey: .errno))
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(function, forKey: .function)
        try c.encodeIfPresent(path, forKey: .path)
        try c.encode(errno.rawValue, forKey: .errno)
    }
}

extension Errno {
    /// The C library's text for this errno (`strerror(3)`).
    public var text: String { String(cString: strerror(rawValue)) }
}

#if canImport(Glibc)
import Glibc
#endif
