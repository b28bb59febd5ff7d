import Basics
import Foundation
import Sneakernet

/// What went wrong in the hub, for its operator.
public enum HubErrorCode: String, FailureCode { case storage, configuration, startup }

/// A failure of the hub: a code, a message for the operator and, where they
/// can act, the next step.
public typealias HubError = Failure<HubErrorCode>

extension Failure where Code == HubErrorCode {
    static func posix(_ e: SystemCallError) -> HubError {
        HubError(.storage, e.description, nextStep: storageStep, cause: e)
    }

    /// A durable write (`DurableFile`) into the store that failed.
    static func durable(_ e: SneakernetError) -> HubError {
        HubError(.storage, e.message, nextStep: storageStep, cause: e.cause)
    }

    static let storageStep = "check that the store directory exists, is writable and has free space"
}
