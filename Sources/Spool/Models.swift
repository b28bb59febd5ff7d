import Foundation

public enum Priority: String, Sendable, Equatable, Hashable, CaseIterable, Codable {
    case urgent, routine
}

/// An item is a full image or the small preview made from it; a preview
/// points at its image (`parentID`) and travels first so a specialist can
/// triage before the full image arrives.
public enum ItemKind: String, Sendable, Equatable, Hashable, CaseIterable, Codable {
    case image, preview
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

    public init(caseID: String, site: String = "", note: String = "", priority: Priority = .routine,
                capturedAt: Date = Date(), filename: String) {
        self.caseID = caseID
        self.site = site
        self.note = note
        self.priority = priority
        self.capturedAt = capturedAt
        self.filename = filename
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
    /// Set once retention deleted the file of an uploaded item.
    public var fileDeletedAt: Date?

    public var state: ItemState { lifecycle.state }
    public var uploadURL: String? { lifecycle.uploadURL }
    public var ackedOffset: Int64 { lifecycle.ackedOffset }
    public var attempts: Int { lifecycle.attempts }
    public var lastError: String? { lifecycle.lastError }
    public var retryAt: Date? { lifecycle.retryAt }
    public var leaseOwner: String? { lifecycle.leaseOwner }

    /// Fraction of the bytes the hub has acknowledged, 0...1.
    public var progress: Double { size == 0 ? 1 : Double(ackedOffset) / Double(size) }
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

    public var isClean: Bool {
        removedTempFiles.isEmpty && missingFiles.isEmpty && uploadedWithoutFile.isEmpty && adoptedFiles.isEmpty
            && removedDuplicates.isEmpty
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
