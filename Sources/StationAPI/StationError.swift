import Basics
import Foundation

public enum StationErrorCode: String, FailureCode, CaseIterable {
    /// A system call failed; the message names it and carries errno's text.
    case system
    /// `$NOTIFY_SOCKET` is set but unusable.
    case notifySocket = "notify_socket"
    /// A control API request was malformed or out of range.
    case badRequest = "bad_request"
    case invalidCaseId = "invalid_case_id"
    /// A DNI whose check character does not match its 8 digits: a typo.
    case dniCheckMismatch = "dni_check_mismatch"
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

/// Every failure the Station module reports: a stable code for programs, a
/// message for people and, where someone can act, the next step.
public typealias StationError = Failure<StationErrorCode>

extension Failure where Code == StationErrorCode {
    /// A failed C call, with the function name and `strerror` text in the message.
    public static func system(_ function: String, errno: Int32, _ context: String? = nil, nextStep: String? = nil) -> StationError {
        let cause = SystemCallError(function, errno: errno)
        let what = context.map { "\($0): " } ?? ""
        return StationError(.system, "\(what)\(function) failed: \(cause.errno.text) (errno \(errno))", nextStep: nextStep, cause: cause)
    }
}
