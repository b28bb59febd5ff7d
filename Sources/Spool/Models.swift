import Basics
import Foundation

public enum Priority: String, Sendable, Equatable, Hashable, CaseIterable, Codable {
    case urgent, routine
}

/// An item is a full image or the small preview made from it; a preview
/// points at its image (`parentID`) and travels first so a specialist can
/// triage before the full image arrives. A `health` item is the station's
/// own health report (a small JSON document): it travels the same durable
/// path, after the images, and is never shown as one.
public enum ItemKind: String, Sendable, Equatable, Hashable, CaseIterable, Codable {
    case image, preview, health
}

/// What staff entered about a capture.
public struct ItemMetadata: Sendable, Equatable, Codable {
    public var caseID: String
    public var site: String
    public var note: String
    public var priority: Priority
    public var capturedAt: Date
    /// The original name of the file, or the name given to a capture.
    public var filename: String
    /// What else the station knew when the image was made.
    public var context: CaptureContext?

    public init(caseID: String, site: String = "", note: String = "", priority: Priority = .routine,
                capturedAt: Date = Date(), filename: String, context: CaptureContext? = nil) {
        self.caseID = caseID
        self.site = site
        self.note = note
        self.priority = priority
        self.capturedAt = capturedAt
        self.filename = filename
        self.context = context
    }
}

/// What the station knew when an image was made, beyond what staff typed
/// for the capture: the device, its dermoscopy settings, whether the clock
/// was synchronised, and the patient when entered. Kept with the item (as
/// JSON) because the DICOM object is made from it at upload time, possibly
/// days later and after the camera was unplugged.
public struct CaptureContext: Sendable, Equatable, Codable {
    /// `dermoscopic` or `clinical`; nil: the station's configured default.
    public var imageType: String?
    public var manufacturer: String?
    public var model: String?
    public var serial: String?
    public var polarized: Bool?
    public var contact: Bool?
    /// nil: unknown (no clock service to ask).
    public var clockSynchronized: Bool?
    /// DICOM person name form, `APELLIDOS^Nombres`.
    public var patientName: String?
    /// `F`, `M` or `O`.
    public var patientSex: String?
    /// `YYYYMMDD`.
    public var patientBirthDate: String?
    /// DICOM Age String, `054Y`.
    public var patientAge: String?
    /// The case this image was sent in from the kiosk: one id for all its
    /// images (one study), its place in the case (1-based, the number a
    /// reply's "retake image N" names) and how many the case holds.
    public var caseUID: String?
    public var imageIndex: Int?
    public var imagesInCase: Int?
    /// Overview, close-up or dermoscopic (`ImageRole` raw value).
    public var role: String?
    /// Front or back of the body map (`BodyAspect` raw value).
    public var aspect: String?
    public var history: CaseHistory?
    /// The consent text the patient agreed to, as shown on the kiosk; nil: none recorded.
    public var consent: String?

    public init(imageType: String? = nil, manufacturer: String? = nil, model: String? = nil, serial: String? = nil,
                polarized: Bool? = nil, contact: Bool? = nil, clockSynchronized: Bool? = nil,
                patientName: String? = nil, patientSex: String? = nil, patientBirthDate: String? = nil,
                patientAge: String? = nil) {
        self.imageType = imageType
        self.manufacturer = manufacturer
        self.model = model
        self.serial = serial
        self.polarized = polarized
        self.contact = contact
        self.clockSynchronized = clockSynchronized
        self.patientName = patientName
        self.patientSex = patientSex
        self.patientBirthDate = patientBirthDate
        self.patientAge = patientAge
    }

    enum CodingKeys: String, CodingKey {
        case imageType = "image_type", manufacturer, model, serial, polarized, contact
        case clockSynchronized = "clock_synchronized", patientName = "patient_name", patientSex = "patient_sex"
        case patientBirthDate = "patient_birth_date", patientAge = "patient_age"
        case caseUID = "case_uid", imageIndex = "image_index", imagesInCase = "images_in_case", role, aspect, history, consent
    }

    /// The stored form; nil for an empty context.
    public var json: String? {
        guard self != CaptureContext() else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).flatMap { String(data: $0, encoding: .utf8) }
    }

    /// Reads the stored form; nil when it is not one (a damaged row keeps its image).
    public init?(json: String) {
        guard let value = try? JSONDecoder().decode(CaptureContext.self, from: Data(json.utf8)) else { return nil }
        self = value
    }
}

/// One row of the queue.
public struct SpoolItem: Sendable, Equatable {
    public var id: Int64
    public var kind: ItemKind
    /// For a preview, the id of its full image.
    public var parentID: Int64?
    public var metadata: ItemMetadata
    /// Lower-case hex SHA-256 of the file.
    public var sha256: String
    public var size: Int64
    /// Absolute path of the file in the spool directory.
    public var filePath: String
    public var lifecycle: ItemLifecycle
    public var createdAt: Date
    public var updatedAt: Date
    public var uploadedAt: Date?
    /// When the hub's receipt said the image is filed.
    public var receivedAt: Date? = nil
    /// Set once retention deleted the file of an uploaded item.
    public var fileDeletedAt: Date?

    public var state: ItemState { lifecycle.state }
    /// The station's name for the item, unique on this station and stable
    /// for its life: its spool file's name. The hub keeps one copy of an
    /// item by this name, whether it came over the link or on a stick.
    public var itemName: String { (filePath as NSString).lastPathComponent }
    /// Uploaded, and the hub will say when it is filed.
    public var awaitingReceipt: Bool { lifecycle.awaitingReceipt }
    public var uploadURL: String? { lifecycle.uploadURL }
    public var ackedOffset: Int64 { lifecycle.ackedOffset }
    public var attempts: Int { lifecycle.attempts }
    public var lastError: String? { lifecycle.lastError }
    public var retryAt: Date? { lifecycle.retryAt }
    public var leaseOwner: String? { lifecycle.leaseOwner }

    /// Fraction of the bytes the hub has acknowledged, 0...1.
    public var progress: Double {
        let total = lifecycle.uploadSize
        return total == 0 ? 1 : min(1, Double(ackedOffset) / Double(total))
    }
}

/// What `enqueue` stored.
public struct EnqueueResult: Sendable, Equatable {
    public var imageID: Int64
    public var previewID: Int64?
    public var sha256: String
    public var size: Int64
    /// True when the same bytes were already queued for the same case; nothing new was stored.
    public var alreadyQueued: Bool
}

/// One line of an item's history.
public struct ItemHistoryEvent: Sendable, Equatable {
    public var at: Date
    public var from: ItemState?
    public var to: ItemState
    public var detail: String
}

/// The queue at a glance, for `telestation status` and the kiosk.
public struct SpoolStatus: Sendable, Equatable {
    public var counts: [ItemState: Int]
    /// Bytes the hub still has to receive, over all pending items.
    public var bytesPending: Int64
    /// Age of the oldest item not yet uploaded, in seconds; nil when none is pending.
    public var oldestPendingAge: Double?
    /// Every item not yet uploaded, in upload order.
    public var pending: [SpoolItem]
    /// Uploaded items waiting for the hub's receipt (part of `counts[.uploaded]`).
    public var awaitingReceipt: Int = 0
    /// Health reports not yet on the hub. Everything above counts images and
    /// previews only: a report is not an image, and staff never see one.
    public var healthPending: Int = 0

    public init(counts: [ItemState: Int], bytesPending: Int64, oldestPendingAge: Double?, pending: [SpoolItem],
                awaitingReceipt: Int = 0, healthPending: Int = 0) {
        self.counts = counts
        self.bytesPending = bytesPending
        self.oldestPendingAge = oldestPendingAge
        self.pending = pending
        self.awaitingReceipt = awaitingReceipt
        self.healthPending = healthPending
    }
}

/// What the recovery pass at open found and fixed.
public struct RecoveryReport: Sendable, Equatable {
    /// Temporary files of interrupted writes, deleted.
    public var removedTempFiles: [String] = []
    /// Rows of pending items whose file is gone, now failed.
    public var missingFiles: [Int64] = []
    /// Uploaded items whose file was gone (retention interrupted), now marked deleted.
    public var uploadedWithoutFile: [Int64] = []
    /// Files without a row, adopted as held items (ids).
    public var adoptedFiles: [Int64] = []
    /// Files without a row that duplicated a queued item's bytes, deleted.
    public var removedDuplicates: [String] = []
    /// Health report files without a row (dropped by coalescing, or never committed), deleted.
    public var removedHealthReports: [String] = []
    /// Files whose row says retention deleted them, still there (the unlink
    /// was lost to a power cut): deleted now.
    public var finishedDeletions: [String] = []

    public var isClean: Bool {
        removedTempFiles.isEmpty && missingFiles.isEmpty && uploadedWithoutFile.isEmpty && adoptedFiles.isEmpty
            && removedDuplicates.isEmpty && removedHealthReports.isEmpty && finishedDeletions.isEmpty
    }
}

/// What one retention run deleted.
public struct RetentionReport: Sendable, Equatable {
    public var deletedIDs: [Int64] = []
    public var bytesFreed: Int64 = 0
}

/// Result of `integrityCheck`: SQLite's own check and files against rows.
public struct IntegrityReport: Sendable, Equatable {
    /// The lines of `PRAGMA integrity_check`; `["ok"]` when healthy.
    public var sqlite: [String]
    /// Items whose file should exist but does not.
    public var missingFiles: [Int64]
    /// Files whose size or (when verified) hash differs from the row.
    public var mismatchedFiles: [Int64]
    /// Files in the spool directory no row accounts for (temporary files included).
    public var unknownFiles: [String]
    /// Items whose file is stored unencrypted (from before encryption, or with it switched off).
    public var plaintextFiles: [Int64] = []
    /// Encrypted files whose contents were not hashed because this process has no key.
    public var unverifiedFiles: [Int64] = []

    public var isHealthy: Bool {
        sqlite == ["ok"] && missingFiles.isEmpty && mismatchedFiles.isEmpty && unknownFiles.isEmpty
    }
}
