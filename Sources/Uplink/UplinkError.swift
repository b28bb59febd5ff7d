import Basics
import Foundation

public enum UplinkErrorCode: String, FailureCode {
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

/// Every failure the uplink reports: a stable code, a message for a person,
/// and where someone can act, the next step. Never contains the bearer token.
public typealias UplinkError = Failure<UplinkErrorCode>

extension Failure where Code == UplinkErrorCode {
    /// A failed C call on the source side, with the function name and errno text.
    static func posix(_ cause: SystemCallError) -> UplinkError {
        UplinkError(.source, cause.description, nextStep: "check that the file still exists and is readable", cause: cause)
    }
}
