import Foundation

/// Where an item is in its life. Stored as the raw string in the database.
public enum ItemState: String, Sendable, Equatable, Hashable, CaseIterable, Codable {
    /// Waiting for its turn to upload.
    case queued
    /// Claimed by an uploader that holds a lease on it.
    case uploading
    /// The hub has every byte. When the hub gives receipts
    /// (`awaitingReceipt`), the item waits here for the hub to confirm it
    /// filed the image (then `received`), to refuse it (`held`) or to have lost
    /// it (back to `queued`). From a hub without receipts this is terminal, and
    /// retention may delete the file after `keep_uploaded`.
    case uploaded
    /// The hub confirmed the image is filed where the doctor will find it (the
    /// PACS, or the hub's own verified store). Terminal; retention counts from here.
    case received
    /// The last attempt failed. Retried when `retryAt` comes, or never
    /// automatically when `retryAt` is nil (needs `release`).
    case failed
    /// Set aside for a technician (e.g. the hub rejected it permanently). Never deleted.
    case held

    /// Still owed to the hub: bytes to send, or a person to act.
    public var isPending: Bool { self != .uploaded && self != .received }
}

/// The part of an item that changes as it moves through the queue, with
/// every allowed transition. The spool loads this from a row, applies one
/// command, and writes back what the command returned, in one transaction;
/// nothing else in the module changes an item's state.
public struct ItemLifecycle: Sendable, Equatable {
    public var state: ItemState
    public var size: Int64
    public var uploadURL: String?
    public var ackedOffset: Int64
    public var attempts: Int
    public var lastError: String?
    public var retryAt: Date?
    public var leaseOwner: String?
    public var leaseExpires: Date?
    /// Uploaded to a hub that gives receipts: retention waits for `received`.
    public var awaitingReceipt: Bool
    /// Length of what the current upload sends when it is not the file
    /// itself (a DICOM object around the JPEG); offsets count in it.
    public var uploadLength: Int64?

    /// The length the acknowledged offset counts against.
    public var uploadSize: Int64 { uploadLength ?? size }

    public init(state: ItemState = .queued, size: Int64, uploadURL: String? = nil, ackedOffset: Int64 = 0,
                attempts: Int = 0, lastError: String? = nil, retryAt: Date? = nil,
                leaseOwner: String? = nil, leaseExpires: Date? = nil, awaitingReceipt: Bool = false,
                uploadLength: Int64? = nil) {
        self.state = state
        self.size = size
        self.uploadURL = uploadURL
        self.ackedOffset = ackedOffset
        self.attempts = attempts
        self.lastError = lastError
        self.retryAt = retryAt
        self.leaseOwner = leaseOwner
        self.leaseExpires = leaseExpires
        self.awaitingReceipt = awaitingReceipt
        self.uploadLength = uploadLength
    }

    public enum Command: Sendable, Equatable {
        /// An uploader takes the item until `until`.
        case claim(owner: String, until: Date, now: Date)
        /// The claimant extends its lease.
        case renew(owner: String, until: Date)
        /// The hub created the upload at this URL (nil forgets a URL the hub
        /// no longer knows), of `length` bytes when that is not the file's size.
        case uploadURL(String?, owner: String?, length: Int64? = nil)
        /// The hub acknowledged this many bytes.
        case progress(offset: Int64, owner: String?)
        /// The hub has every byte; `awaitingReceipt` when it will confirm filing.
        case uploaded(owner: String?, awaitingReceipt: Bool)
        /// The hub confirmed it filed the image.
        case received(detail: String)
        /// The hub holds the item, which reached it another way (a USB stick,
        /// `import-receipts`): whatever the item was doing, it is done. An
        /// upload in progress loses its lease, so its uploader stops.
        case receivedElsewhere(detail: String)
        /// The hub lost an uploaded image (its receipt says it does not know
        /// the upload): forget the URL and send it again.
        case resend(reason: String)
        /// An attempt failed; retried at `retryAt`, or only after `release` when nil.
        case fail(error: String, retryAt: Date?, owner: String?)
        case hold(reason: String)
        /// Back to the queue now: a held or failed item released by a person,
        /// or an uploading item its claimant gives back unfinished.
        case release(owner: String?)
        /// Recovery found the item's file gone.
        case fileMissing
    }

    /// What a command did, for the item's history.
    public struct Outcome: Sendable, Equatable {
        public var from: ItemState
        public var to: ItemState
        public var detail: String
        /// Whether the change is worth an event in the history (offsets are not).
        public var recordsEvent: Bool
    }

    /// Applies `command`, or throws `invalidTransition` / `leaseLost` and leaves `self` unchanged.
    @discardableResult
    public mutating func apply(_ command: Command) throws(SpoolError) -> Outcome {
        let from = state
        var next = self
        let detail: String
        var recordsEvent = true
        switch command {
        case let .claim(owner, until, now):
            switch state {
            case .queued:
                detail = "claimed by \(owner)"
            case .failed:
                guard let retryAt else {
                    throw invalid("claim", "it failed and waits for a person to release it")
                }
                guard retryAt <= now else {
                    throw invalid("claim", "its next retry is not due until \(retryAt)")
                }
                detail = "retry claimed by \(owner)"
            case .uploading:
                guard let expires = leaseExpires, expires <= now else {
                    throw SpoolError(.leaseLost, "item is being uploaded by \(leaseOwner ?? "another process") until its lease expires")
                }
                detail = "expired lease of \(leaseOwner ?? "unknown") reclaimed by \(owner)"
            case .uploaded, .received, .held:
                throw invalid("claim", nil)
            }
            next.state = .uploading
            next.attempts += 1
            next.leaseOwner = owner
            next.leaseExpires = until
            next.retryAt = nil
        case let .renew(owner, until):
            try requireLease(owner, "renew")
            next.leaseExpires = until
            detail = "lease renewed by \(owner)"
            recordsEvent = false
        case let .uploadURL(url, owner, length):
            try requireLease(owner, "record an upload URL for")
            if let length, length < 0 {
                throw SpoolError(.invalidInput, "an upload of \(length) bytes")
            }
            next.uploadURL = url
            next.uploadLength = url == nil || length == size ? nil : length
            next.ackedOffset = 0
            detail = url.map { "upload created at \($0)" } ?? "upload URL forgotten; the next attempt starts over"
        case let .progress(offset, owner):
            try requireLease(owner, "record progress for")
            guard offset >= 0, offset <= uploadSize else {
                throw SpoolError(.invalidInput, "acknowledged offset \(offset) is outside the upload's 0...\(uploadSize) bytes")
            }
            next.ackedOffset = offset
            detail = "hub acknowledged \(offset) of \(uploadSize) bytes"
            recordsEvent = false
        case let .uploaded(owner, awaiting):
            try requireLease(owner, "mark uploaded")
            next.state = .uploaded
            next.ackedOffset = uploadSize
            next.lastError = nil
            next.awaitingReceipt = awaiting
            next.clearLease()
            detail = awaiting ? "uploaded; waiting for the hub's receipt" : "uploaded (the hub gives no receipts)"
        case let .received(receipt):
            guard state == .uploaded, awaitingReceipt else {
                throw invalid("mark received", "only an uploaded item waiting for a receipt can be received")
            }
            next.state = .received
            next.awaitingReceipt = false
            detail = "received: \(receipt)"
        case let .receivedElsewhere(receipt):
            guard state != .received else {
                throw invalid("mark received", "it is already received")
            }
            next.state = .received
            next.awaitingReceipt = false
            next.retryAt = nil
            next.clearLease()
            detail = "received: \(receipt)"
        case let .resend(reason):
            guard state == .uploaded, awaitingReceipt else {
                throw invalid("send again", "only an uploaded item waiting for a receipt is sent again")
            }
            next.state = .queued
            next.uploadURL = nil
            next.uploadLength = nil
            next.ackedOffset = 0
            next.awaitingReceipt = false
            next.lastError = reason
            detail = "sent again: \(reason)"
        case let .fail(error, retryAt, owner):
            switch state {
            case .uploading: try requireLease(owner, "mark failed")
            case .queued: break
            case .failed, .uploaded, .received, .held: throw invalid("mark failed", nil)
            }
            next.state = .failed
            next.lastError = error
            next.retryAt = retryAt
            next.clearLease()
            detail = "failed: \(error)" + (retryAt.map { "; retry at \($0)" } ?? "; not retried until released")
        case let .hold(reason):
            switch state {
            case .queued, .failed, .uploading: break
            case .uploaded where awaitingReceipt:
                // The hub refused the image after its last byte: the upload
                // it holds is spent, so a release starts a new one.
                next.uploadURL = nil
                next.uploadLength = nil
                next.ackedOffset = 0
                next.awaitingReceipt = false
            case .uploaded, .received, .held: throw invalid("hold", nil)
            }
            next.state = .held
            next.lastError = reason
            next.retryAt = nil
            next.clearLease()
            detail = "held: \(reason)"
        case let .release(owner):
            switch state {
            case .held, .failed: detail = "released to the queue"
            case .uploading:
                try requireLease(owner, "release")
                detail = "given back unfinished by \(leaseOwner ?? "unknown")"
            case .queued, .uploaded, .received: throw invalid("release", nil)
            }
            next.state = .queued
            next.retryAt = nil
            next.clearLease()
        case .fileMissing:
            switch state {
            case .queued, .uploading, .failed, .held: break
            case .uploaded, .received: throw invalid("mark missing", "an uploaded item's file may be deleted by retention")
            }
            next.state = .failed
            next.lastError = "the image file is missing from the spool"
            next.retryAt = nil
            next.clearLease()
            detail = "FILE MISSING: marked failed; not retried until a technician restores the file and releases it"
        }
        self = next
        return Outcome(from: from, to: next.state, detail: detail, recordsEvent: recordsEvent)
    }

    private mutating func clearLease() {
        leaseOwner = nil
        leaseExpires = nil
    }

    /// Updates during an upload need the item to be uploading and, when the
    /// caller names itself, leased to it: a claimant whose lease was taken
    /// over after it stalled must not overwrite the new claimant's progress.
    private func requireLease(_ owner: String?, _ action: String) throws(SpoolError) {
        guard state == .uploading else { throw invalid(action, nil) }
        if let owner, owner != leaseOwner {
            throw SpoolError(.leaseLost, "cannot \(action) the item: it is now leased to \(leaseOwner ?? "nobody"), not \(owner)",
                             nextStep: "stop this upload; the other claimant carries on")
        }
    }

    private func invalid(_ action: String, _ why: String?) -> SpoolError {
        SpoolError(.invalidTransition, "cannot \(action) an item that is \(state.rawValue)" + (why.map { ": \($0)" } ?? ""))
    }
}
