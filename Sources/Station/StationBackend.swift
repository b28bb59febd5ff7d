import Capture
import Foundation
import StationAPI

/// Everything the daemon's HTTP side needs from capture, the queue and the
/// uplink. The daemon's composition conforms the real modules to it; tests
/// and development use `DemoBackend` from `StationDemo`.
///
/// Methods throw `StationError`; its code picks the HTTP status.
/// Implementations must not wait for the network in `capture` or `accept`:
/// staff go back to the patient while the image queues.
public protocol StationBackend: Sendable {
    /// Recovers the durable queue (interrupted uploads, half-written files).
    /// The daemon reports READY only after this returns.
    func recover() async throws

    /// Takes a still and holds it for review.
    func capture(_ request: CaptureRequest) async throws -> ReviewItem
    /// JPEG bytes of an item under review or in the queue.
    func image(id: String, kind: ImageKind) async throws -> Data
    /// Sends a reviewed still to the upload queue.
    func accept(id: String) async throws -> QueueItem
    /// Discards a reviewed still.
    func retake(id: String) async throws
    /// Sends the stills under review that make one case, in order, as one
    /// case: one case id for all of them at the hub, the case's patient,
    /// history and consent with each.
    func sendCase(_ submission: CaseSubmission) async throws -> SentCase

    func queue() async throws -> QueueSnapshot
    func link() async -> LinkState
    func setUploads(_ control: UploadControl) async throws
    func health() async -> StationHealth

    func cameraControls() async throws -> [CameraControl]
    func setCameraControl(name: String, value: Int) async throws -> CameraControl

    /// Live preview as JPEG frames. The stream ends when the consumer stops
    /// iterating; each consumer gets its own stream.
    func previewFrames() -> AsyncStream<Data>

    /// The case open on the kiosk, which button captures go to; nil closes it.
    func setOpenCase(_ request: CaptureRequest?) async
    /// Capture buttons: their devices, whether a case is open, the last press.
    func triggerStatus() async -> TriggerStatus

    /// The USB stick, if one is mounted, and what an export would carry.
    func stickStatus() async -> StickStatus
    /// Reads the stick's receipts, then writes every owed item onto it.
    func exportToStick() async throws -> StickOperation

    /// The hub's replies about cases, newest first; `refresh` asks the hub
    /// first (the kiosk's Respuestas tab when it opens).
    func replies(refresh: Bool) async -> RepliesSnapshot
    /// Marks a reply read (the kiosk's unread badge).
    func markReplyRead(_ id: Int) async throws
}

extension StationBackend {
    /// Backends that keep no case record: each still is accepted on its own.
    public func sendCase(_ submission: CaseSubmission) async throws -> SentCase {
        var items: [QueueItem] = []
        for id in submission.ids { items.append(try await accept(id: id)) }
        return SentCase(caseUID: UUID().uuidString.lowercased(), items: items)
    }

    /// Backends without capture buttons.
    public func setOpenCase(_ request: CaptureRequest?) async {}
    public func triggerStatus() async -> TriggerStatus { TriggerStatus() }
    /// Backends without a queue to carry on a stick.
    public func stickStatus() async -> StickStatus { StickStatus(reason: "this station does not export to USB sticks") }
    public func exportToStick() async throws -> StickOperation {
        throw StationError(.unavailable, "this station does not export to USB sticks")
    }
    /// Backends without a hub to answer.
    public func replies(refresh: Bool) async -> RepliesSnapshot { RepliesSnapshot(replies: []) }
    public func markReplyRead(_ id: Int) async throws { throw StationError(.notFound, "no reply \(id)") }
}

extension StationBackend {
    /// The one-line status for `STATUS=` and the kiosk header.
    public func statusLine() async -> StatusLine {
        // A queue that cannot be read is a problem to show, never "queue empty".
        let snapshot: QueueSnapshot?
        do { snapshot = try await queue() } catch { snapshot = nil }
        let link = await link()
        let health = await health()
        let linkPart: StatusLine.Link
        if link.hub == .notConfigured {
            linkPart = .disabled
        } else if link.paused {
            linkPart = .paused
        } else if !link.online {
            linkPart = .offline
        } else if link.uploading {
            linkPart = .uploading(bytesPerSecond: link.rateBytesPerSecond)
        } else {
            linkPart = .idle
        }
        return StatusLine(pendingCount: snapshot?.pendingCount ?? 0, pendingBytes: snapshot?.pendingBytes ?? 0,
                          link: linkPart, camera: health.camera,
                          hubRejectedToken: link.hub == .rejectedToken, diskNearlyFull: health.diskNearlyFull,
                          queueFault: snapshot == nil || health.queueError != nil)
    }
}
