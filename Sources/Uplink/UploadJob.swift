import Basics
import Foundation

/// What the hub learns about an image through tus `Upload-Metadata`.
public struct UploadMetadata: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable { case image, preview, health }

    public var filename: String
    public var filetype: String = "image/jpeg"
    public var station: String
    public var caseID: String
    public var site: String
    public var priority: String
    public var kind: Kind
    public var capturedAt: Date
    /// Lower-case hex SHA-256 of the whole file.
    public var sha256: String
    /// More pairs for the hub, after the standard ones (e.g. a DICOM
    /// object's `study_uid` and `sop_instance_uid`).
    public var extra: [(String, String)] = []

    public init(filename: String, filetype: String = "image/jpeg", station: String, caseID: String, site: String,
                priority: String, kind: Kind, capturedAt: Date, sha256: String) {
        self.filename = filename
        self.filetype = filetype
        self.station = station
        self.caseID = caseID
        self.site = site
        self.priority = priority
        self.kind = kind
        self.capturedAt = capturedAt
        self.sha256 = sha256
    }

    /// Key/value pairs in a stable order. `filename` and `filetype` are always
    /// present because some servers refuse uploads without them.
    public var pairs: [(String, String)] {
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime]
        return [
            ("filename", filename), ("filetype", filetype), ("station", station), ("case", caseID),
            ("site", site), ("priority", priority), ("kind", kind.rawValue),
            ("captured_at", iso.string(from: capturedAt)), ("sha256", sha256),
        ] + extra
    }

    public static func == (a: UploadMetadata, b: UploadMetadata) -> Bool {
        a.pairs.elementsEqual(b.pairs) { $0 == $1 }
    }

    /// The `Upload-Metadata` header value: `key base64(value)` pairs, comma-separated.
    public var headerValue: String { TusWire.encodeMetadata(pairs) }
}

/// One file to deliver, with what is known of earlier attempts. The caller
/// persists `resumeURL` as soon as `.created` is reported and passes it back
/// after a restart; the offset then comes from the hub, not from here.
public struct UploadJob: Sendable {
    public var source: any UploadSource
    public var metadata: UploadMetadata
    public var resumeURL: String?
    /// The last offset the hub acknowledged (0 when unknown). Used to check
    /// the hub's answers: an offset below it means the hub lost data.
    public var acknowledgedOffset: Int64
    /// The hub may already hold the file (it went on a USB stick): the
    /// creation request carries none of it, so a hub that answers "held"
    /// (`Telestation-Held`) costs one request and no bytes.
    public var mayBeHeld: Bool

    /// The metadata names the station and the item (`station`, `item`), by
    /// which a hub that keeps one copy per item knows it again.
    public var namesItem: Bool {
        !metadata.station.isEmpty && metadata.extra.contains { $0.0 == "item" && !$0.1.isEmpty }
    }

    public init(source: any UploadSource, metadata: UploadMetadata, resumeURL: String? = nil,
                acknowledgedOffset: Int64 = 0, mayBeHeld: Bool = false) {
        self.mayBeHeld = mayBeHeld
        self.source = source
        self.metadata = metadata
        self.resumeURL = resumeURL
        self.acknowledgedOffset = acknowledgedOffset
    }
}

/// Reported while an upload runs.
public enum UploadEvent: Sendable, Equatable {
    /// The hub created the upload at this absolute URL; persist it now.
    case created(url: String)
    /// The hub acknowledged every byte before this offset.
    case progress(offset: Int64)
}

/// How one call to `upload` ended. The caller owns the retry loop.
public enum UploadOutcome: Sendable, Equatable {
    /// The hub has every byte (final offset equals the size).
    case completed(url: String)
    /// Try again after this many seconds (already jittered and capped).
    case retry(after: Double, reason: String)
    /// Will not succeed without a person changing something (configuration,
    /// hub limits); keep the item and report the reason.
    case hold(reason: String)
    /// 401/403: credentials refused. Back off long and report.
    case authFailed(status: Int, reason: String)
    /// The resume URL is gone (404/410): clear it and create a new upload.
    case urlGone
    /// The calling task was cancelled; nothing is lost, the URL stays valid.
    case cancelled
    /// The caller's `events` handler failed (the queue could not record the
    /// upload URL or the progress): the upload stopped before sending more.
    case recordFailed(reason: String)
}
