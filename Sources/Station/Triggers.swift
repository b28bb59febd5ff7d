import Capture
import Config
import Foundation
import Synchronization

/// What happened on the last button press, for the kiosk and `/api/v1/status`.
public struct TriggerEvent: Sendable, Codable, Equatable {
    public enum Outcome: String, Sendable, Codable {
        /// The still waits on the review screen.
        case captured
        /// The still went straight to the upload queue (`trigger.auto_send`).
        case queued
        /// No case was open on the kiosk: nothing was taken.
        case needsCase = "needs_case"
        case failed
    }

    /// Increases with every event, so the kiosk can tell a new one from the last it showed.
    public var sequence: Int
    public var trigger: TriggerKind
    public var device: String
    public var at: Date
    public var outcome: Outcome
    public var review: ReviewItem?
    public var queueId: String?
    public var message: String?

    public init(sequence: Int, trigger: TriggerKind, device: String, at: Date, outcome: Outcome,
                review: ReviewItem? = nil, queueId: String? = nil, message: String? = nil) {
        self.sequence = sequence
        self.trigger = trigger
        self.device = device
        self.at = at
        self.outcome = outcome
        self.review = review
        self.queueId = queueId
        self.message = message
    }

    enum CodingKeys: String, CodingKey {
        case sequence, trigger, device, at, outcome, review, queueId = "queue_id", message
    }
}

/// The buttons' devices, the open case and the last press.
public struct TriggerStatus: Sendable, Codable, Equatable {
    public var devices: [TriggerDeviceState]
    public var caseOpen: Bool
    public var last: TriggerEvent?

    public init(devices: [TriggerDeviceState] = [], caseOpen: Bool = false, last: TriggerEvent? = nil) {
        self.devices = devices
        self.caseOpen = caseOpen
        self.last = last
    }

    enum CodingKeys: String, CodingKey {
        case devices, caseOpen = "case_open", last
    }
}

/// What a button press does, decided without I/O.
public enum TriggerAction: Sendable, Equatable {
    /// Take a still for this case; `send` skips the review screen.
    case capture(CaptureRequest, send: Bool)
    /// No case is open on the kiosk: ask for one, take nothing. A photo
    /// without a case id could be filed under the wrong patient.
    case askForCase
    /// A capture is already running; the press is dropped.
    case ignore
}

/// The case open on the kiosk, which button captures go to. The kiosk
/// renews it while the case stays on screen; one left behind by a closed
/// kiosk expires, so a press much later cannot file a photo under it.
public struct OpenCase: Sendable, Equatable {
    public static let lifetime: Double = 5 * 60

    public private(set) var request: CaptureRequest?
    public private(set) var setAt: Date = .distantPast

    public init() {}

    public mutating func set(_ request: CaptureRequest?, at now: Date) {
        self.request = request
        setAt = now
    }

    public func current(at now: Date) -> CaptureRequest? {
        guard let request, now.timeIntervalSince(setAt) < Self.lifetime else { return nil }
        return request
    }

    public func decide(at now: Date, busy: Bool, autoSend: Bool) -> TriggerAction {
        if busy { return .ignore }
        guard let request = current(at: now) else { return .askForCase }
        return .capture(request, send: autoSend)
    }
}

/// Shared trigger state of a backend: open case, busy flag, last event.
final class TriggerState: Sendable {
    private struct Inner {
        var openCase = OpenCase()
        var busy = false
        var last: TriggerEvent?
        var sequence = 0
    }
    private let inner = Mutex(Inner())

    func setCase(_ request: CaptureRequest?) {
        inner.withLock { $0.openCase.set(request, at: Date()) }
    }

    /// Decides and, for a capture, marks the backend busy until `finish`.
    func begin(autoSend: Bool) -> TriggerAction {
        inner.withLock { s in
            let action = s.openCase.decide(at: Date(), busy: s.busy, autoSend: autoSend)
            if case .capture = action { s.busy = true }
            return action
        }
    }

    func finish(_ press: TriggerPress, _ outcome: TriggerEvent.Outcome, review: ReviewItem? = nil,
                queueId: String? = nil, message: String? = nil, captured: Bool) {
        inner.withLock { s in
            if captured { s.busy = false }
            s.sequence += 1
            s.last = TriggerEvent(sequence: s.sequence, trigger: press.kind, device: press.device, at: press.at,
                                  outcome: outcome, review: review, queueId: queueId, message: message)
        }
    }

    func status(devices: [TriggerDeviceState]) -> TriggerStatus {
        inner.withLock { TriggerStatus(devices: devices, caseOpen: $0.openCase.current(at: Date()) != nil, last: $0.last) }
    }
}
