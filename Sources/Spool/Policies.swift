import Foundation

/// Decides whether a write of `needed` bytes may start. A refusal happens
/// before any byte is written, so a full disk never costs a queued image.
public struct DiskGuard: Sendable, Equatable {
    public var minFree: Int64

    public init(minFree: Int64) { self.minFree = minFree }

    public enum Decision: Sendable, Equatable {
        case accept
        /// Would leave too little; `shortBy` bytes must be freed first.
        case refuse(shortBy: Int64)
    }

    public func check(available: Int64, needed: Int64) -> Decision {
        let left = available - needed
        return left >= minFree ? .accept : .refuse(shortBy: minFree - left)
    }

    func refusal(available: Int64, needed: Int64, directory: String) -> SpoolError {
        SpoolError(
            .insufficientSpace,
            "not queued: storing \(Self.format(needed)) would leave \(Self.format(max(0, available - needed))) free in \(directory), "
                + "below the \(Self.format(minFree)) the station keeps free (spool.min_free)",
            nextStep: "nothing was written and the queue is intact; wait for pending images to upload, "
                + "free space on the disk, or lower spool.min_free")
    }

    static func format(_ bytes: Int64) -> String {
        let mib = Double(bytes) / 1_048_576
        return mib >= 1 ? String(format: "%.1f MiB", mib) : "\(bytes) bytes"
    }
}

/// Picks which uploaded files to delete. Only uploaded items are ever
/// candidates; the caller must not pass anything else.
public struct RetentionPlanner: Sendable, Equatable {
    public struct Candidate: Sendable, Equatable {
        public var id: Int64
        public var size: Int64
        public var uploadedAt: Date
        public init(id: Int64, size: Int64, uploadedAt: Date) {
            self.id = id
            self.size = size
            self.uploadedAt = uploadedAt
        }
    }

    /// Seconds an uploaded file is kept.
    public var keepUploaded: Double

    public init(keepUploaded: Double) { self.keepUploaded = keepUploaded }

    /// Files past their keep time, then, while `bytesToFree` is not yet
    /// covered, the oldest remaining uploads.
    public func plan(_ candidates: [Candidate], now: Date, bytesToFree: Int64 = 0) -> [Int64] {
        let sorted = candidates.sorted { ($0.uploadedAt, $0.id) < ($1.uploadedAt, $1.id) }
        var chosen: [Int64] = []
        var freed: Int64 = 0
        for c in sorted {
            if now.timeIntervalSince(c.uploadedAt) >= keepUploaded || freed < bytesToFree {
                chosen.append(c.id)
                freed += c.size
            }
        }
        return chosen
    }
}
