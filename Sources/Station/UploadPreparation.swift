import Basics
import Foundation
import Logging
import Recompression
import Spool
import Synchronization

/// What is sent for each queued item: its file, or the object the
/// transform makes of it (DICOM), and, when the hub rebuilds recompressed
/// files, that file with its JPEG recompressed to JPEG XL
/// (`RecompressedFile`). The next item in upload order is prepared while
/// the current one is on the wire, so the encoder's seconds are spent
/// while the link is busy anyway. At most two items are held (the one
/// being sent and the next), so memory is bounded by two images.
final class UploadPreparation: Sendable {
    /// Whether an item is worth recompressing: a plain value, tested alone.
    struct Policy: Sendable, Equatable {
        /// `uplink.recompress`.
        var enabled: Bool
        /// The body must be at least this fraction smaller than the file.
        var minSaving: Double = 0.03
        /// libjxl's encoder needs about 27 MB per megapixel (148 MB at 5 MP,
        /// 323 MB at 12 MP, `cjxl -e 7` single-threaded): larger images go as
        /// they are, so a Pi with 1 GB never swaps for a smaller upload.
        var limits = JPEGXL.Limits(maxPixels: 12_000_000, maxBytes: 32 << 20)
        /// Smaller files (previews, thumbnails) are not worth the encoder's time.
        var minSize: Int64 = 32 * 1024

        /// Recompress this item? `resumingLength`: the length of the upload
        /// the hub already holds for it (an upload is resumed as it began);
        /// `plainLength`: the length of the file itself.
        func recompresses(kind: ItemKind, size: Int64, hubRebuilds: Bool, failedBefore: Bool,
                          resumingLength: Int64?, plainLength: Int64) -> Bool {
            guard kind == .image, !failedBefore else { return false }
            // An upload resumes in the form it began, whatever this process
            // knows of the hub yet (after a restart nothing, until an upload
            // asks) or the setting says now: another form has another length,
            // which the hub takes for another upload, so a finished one would
            // be sent again.
            if let resumingLength { return resumingLength != plainLength }
            return enabled && hubRebuilds && size >= minSize && size <= Int64(limits.maxBytes)
        }
    }

    let policy: Policy
    let transform: UploadWorker.Transform?
    let logger: Logger
    private let state = Mutex(State())

    private struct State {
        /// Preparations in flight or done, by item id (at most two).
        var held: [Int64: Entry] = [:]
        /// Items whose recompressed upload the hub discarded: sent as they are from now on.
        var plainOnly: Set<Int64> = []
    }

    private struct Entry {
        var sha256: String
        var hubRebuilds: Bool
        var task: Task<UploadWorker.Prepared?, any Error>
    }

    init(policy: Policy, transform: UploadWorker.Transform?, logger: Logger) {
        self.policy = policy
        self.transform = transform
        self.logger = logger
    }

    /// What to send for `item`: a held preparation when there is one made
    /// for the same file and hub, else made now. nil: the item's own file.
    func prepared(for item: SpoolItem, spool: Spool, hubRebuilds: Bool) async throws -> UploadWorker.Prepared? {
        let task = start(item, spool: spool, hubRebuilds: hubRebuilds)
        return try await task.value
    }

    /// Starts preparing `item` (the next in upload order) in the background.
    func prefetch(_ item: SpoolItem, spool: Spool, hubRebuilds: Bool) {
        guard policy.enabled, hubRebuilds, item.kind == .image else { return }
        _ = start(item, spool: spool, hubRebuilds: hubRebuilds)
    }

    /// The upload of `item` is over (delivered, held, or to be tried later
    /// from the queue): its preparation is let go. `discarded`: the hub threw
    /// the upload away, so a recompressed item goes as it is next time.
    func finished(_ item: SpoolItem, discarded: Bool, wasRecompressed: Bool) {
        state.withLock { s in
            s.held[item.id] = nil
            if discarded && wasRecompressed { s.plainOnly.insert(item.id) }
        }
    }

    private func start(_ item: SpoolItem, spool: Spool, hubRebuilds: Bool) -> Task<UploadWorker.Prepared?, any Error> {
        state.withLock { s in
            if let held = s.held[item.id], held.sha256 == item.sha256, held.hubRebuilds == hubRebuilds { return held.task }
            let failedBefore = s.plainOnly.contains(item.id)
            let task = Task { [self] in try await self.make(item, spool: spool, hubRebuilds: hubRebuilds, failedBefore: failedBefore) }
            // Two at most: this one and the one being sent.
            if s.held.count >= 2, let oldest = s.held.keys.min() { s.held[oldest] = nil }
            s.held[item.id] = Entry(sha256: item.sha256, hubRebuilds: hubRebuilds, task: task)
            return task
        }
    }

    private func make(_ item: SpoolItem, spool: Spool, hubRebuilds: Bool, failedBefore: Bool) async throws -> UploadWorker.Prepared? {
        let base: UploadWorker.Prepared? = if let transform { try await spool.perform { try transform(item, $0) } } else { nil }
        let plainLength = Int64(base?.bytes.count ?? Int(item.size))
        guard policy.recompresses(kind: item.kind, size: plainLength, hubRebuilds: hubRebuilds, failedBefore: failedBefore,
                                  resumingLength: item.uploadURL != nil ? item.lifecycle.uploadSize : nil, plainLength: plainLength)
        else { return base }
        let policy = self.policy
        let made: UploadWorker.Prepared? = try await spool.perform { (spool) throws -> UploadWorker.Prepared? in
            let file: [UInt8], range: Range<Int>, original: UploadWorker.Prepared
            if let base {
                guard let r = base.jpegRange else { return nil }
                file = base.bytes; range = r; original = base
            } else {
                file = try DicomItem.jpeg(of: item, spool: spool)
                range = 0..<file.count
                original = UploadWorker.Prepared(bytes: file, filename: item.metadata.filename, filetype: "image/jpeg")
            }
            let started = ContinuousClock.now
            do {
                guard let body = try RecompressedFile.make(file: file, jpegRange: range, minSaving: policy.minSaving, limits: policy.limits)
                else { return nil }
                let bytes = body.encoded()
                var out = original
                out.bytes = bytes
                out.sha256 = Digest.sha256Hex(file)
                out.jpegRange = nil
                out.recompressed = true
                out.extra += [(RecompressedFile.transportKey, RecompressedFile.capability),
                              (RecompressedFile.originalLengthKey, "\(file.count)"),
                              (RecompressedFile.transportSHA256Key, Digest.sha256Hex(bytes))]
                let elapsed = ContinuousClock.now - started
                self.logger.info("item \(item.id) recompressed for the link: \(file.count) → \(bytes.count) bytes in \(elapsed)",
                                 metadata: ["item": "\(item.id)", "original": "\(file.count)", "sent": "\(bytes.count)"])
                return out
            } catch {
                self.logger.notice("item \(item.id) is sent as it is: \(error)")
                return nil
            }
        }
        return made ?? base
    }
}
