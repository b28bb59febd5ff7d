import Basics
import Config
import Dispatch
import Foundation
import GRDB
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The durable upload queue: image files in a spool directory and one row
/// per item in SQLite. An item whose `enqueue` returned is on disk and in the
/// database for good; power cuts, full disks and a second process (the
/// daemon and `telestation sync`) cannot lose it or upload it twice.
///
/// All methods block (file syncs, SQLite); from async code use `perform`,
/// which runs them on the spool's own queue rather than Swift's
/// cooperative pool.
public final class Spool: Sendable {
    public let directory: String
    public let databasePath: String
    public let diskGuard: DiskGuard
    public let retention: RetentionPlanner
    /// What the recovery pass fixed when this spool was opened.
    public let recoveryAtOpen: RecoveryReport
    /// Whether image files are encrypted at rest (see `SpoolProtection`).
    public let protection: SpoolProtection
    /// Plaintext files of existing items encrypted when this spool was opened.
    public let migratedAtOpen: MigrationReport

    let db: DatabasePool
    let logger: Logger
    /// Called at each step of the write path with the step's name. Only the
    /// crash tests set it, to stop the process at an exact point.
    let checkpoint: @Sendable (String) -> Void

    /// Opens the spool in `state_dir` with the station's settings and key.
    /// For `.store` a missing or unusable key is an error (code
    /// `.encryptionKey`) unless `spool.insecure_allow_plaintext` allows
    /// plaintext; `.inspect` opens without a key for reading the queue.
    public convenience init(config: StationConfig, purpose: SpoolPurpose = .store,
                            environment: [String: String] = ProcessInfo.processInfo.environment,
                            logger: Logger = Logger(label: "spool")) throws(SpoolError) {
        let protection = try SpoolProtection.resolve(config, purpose: purpose, environment: environment)
        if case .plaintext = protection {
            logger.warning("spool encryption is OFF (spool.insecure_allow_plaintext and no key at \(config.spool.keyFile)): patient images are stored unencrypted")
        }
        try self.init(config: config, protection: protection, encryptPlaintext: purpose == .store, logger: logger)
    }

    /// Opens the spool in `state_dir` with an already decided protection.
    /// `encryptPlaintext` false leaves plaintext files as they are (an inspection changes nothing).
    public convenience init(config: StationConfig, protection: SpoolProtection, encryptPlaintext: Bool = false,
                            logger: Logger = Logger(label: "spool")) throws(SpoolError) {
        try self.init(directory: config.spoolDirectory, databasePath: config.databasePath,
                      minFree: config.spool.minFree, keepUploaded: config.spool.keepUploaded,
                      protection: protection, encryptPlaintext: encryptPlaintext, logger: logger, checkpoint: { _ in })
    }

    /// Opens (creating when needed) the spool, migrates its schema, runs the
    /// recovery pass and, with a key, encrypts any plaintext image files.
    public convenience init(directory: String, databasePath: String, minFree: Int64 = 200 << 20,
                            keepUploaded: Double = 7 * 86400, protection: SpoolProtection,
                            logger: Logger = Logger(label: "spool")) throws(SpoolError) {
        try self.init(directory: directory, databasePath: databasePath, minFree: minFree, keepUploaded: keepUploaded,
                      protection: protection, encryptPlaintext: true, logger: logger, checkpoint: { _ in })
    }

    package init(directory: String, databasePath: String, minFree: Int64, keepUploaded: Double,
                 protection: SpoolProtection, encryptPlaintext: Bool = true, logger: Logger,
                 checkpoint: @escaping @Sendable (String) -> Void) throws(SpoolError) {
        self.directory = directory
        self.protection = protection
        self.databasePath = databasePath
        self.diskGuard = DiskGuard(minFree: minFree)
        self.retention = RetentionPlanner(keepUploaded: keepUploaded)
        self.logger = logger
        self.checkpoint = checkpoint
        try FileOps.makeDirectory(directory)
        try FileOps.makeDirectory((databasePath as NSString).deletingLastPathComponent)

        var config = Configuration()
        // The daemon and the CLI share the file; wait for the other's write
        // transaction instead of failing.
        config.busyMode = .timeout(30)
        config.label = "spool"
        // Opening is serialised across processes: two first opens of a new
        // database (the daemon starting while `enqueue` runs) would otherwise
        // both switch it to WAL ("database is locked") and both run the
        // migrations ("table item already exists"). The spool directory's
        // lock, held exclusively only for this, is what recovery uses too.
        let openLock = try SpoolLock(directory: directory, exclusive: true)
        do {
            defer { openLock.unlock() }  // before recovery, which takes the lock itself
            db = try DatabasePool(path: databasePath, configuration: config)
            // GRDB opens WAL databases with synchronous=NORMAL, which can lose
            // the last commits on power loss. An enqueue that returned must
            // survive one, so the writer connection commits with FULL.
            try db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            try Schema.migrator.migrate(db)
        } catch {
            throw SpoolError(.database, "cannot open the queue database \(databasePath): \(error)",
                             nextStep: "check that \((databasePath as NSString).deletingLastPathComponent) exists and is writable by the telestation user")
        }
        recoveryAtOpen = try Self.recover(directory: directory, db: db, protection: protection, logger: logger)
        migratedAtOpen = encryptPlaintext
            ? try Self.encryptPlaintextFiles(directory: directory, db: db, protection: protection, logger: logger,
                                             checkpoint: checkpoint)
            : MigrationReport()
    }

    /// Runs `body` on the shared blocking pool (`Blocking`), so that the
    /// spool's file syncs, SQLite commits and waits, decryption and hashing
    /// stay off Swift's cooperative pool. Every async caller goes through here.
    public func perform<T: Sendable, E: Error>(_ body: @escaping @Sendable (Spool) throws(E) -> T) async throws(E) -> T {
        try await Blocking.run { () throws(E) -> T in try body(self) }
    }

    // MARK: - Enqueue

    /// Queues an encoded capture and its optional preview.
    public func enqueue(imageData: Data, preview: Data?, metadata: ItemMetadata) throws(SpoolError) -> EnqueueResult {
        try enqueue(.data(imageData), size: Int64(imageData.count), preview: preview, metadata: metadata)
    }

    /// Queues a copy of an existing file (streamed, so 50 MB files cost no
    /// more memory than small ones) and its optional preview.
    public func enqueue(imageFile: URL, preview: Data?, metadata: ItemMetadata) throws(SpoolError) -> EnqueueResult {
        let path = imageFile.path
        guard let size = try FileOps.fileSize(path) else {
            throw SpoolError(.invalidInput, "\(path): no such file", nextStep: "check the path and try again")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw SpoolError(.invalidInput, "\(path) is a directory, not an image file",
                             nextStep: "name the image files themselves, e.g. \(path)/*.jpg")
        }
        return try enqueue(.file(path), size: size, preview: preview, metadata: metadata)
    }

    private func enqueue(_ source: FileOps.Source, size: Int64, preview: Data?,
                         metadata: ItemMetadata) throws(SpoolError) -> EnqueueResult {
        guard !metadata.caseID.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw SpoolError(.invalidInput, "an image needs a case id", nextStep: "give the case id the specialist will know it by")
        }
        guard size > 0 else {
            throw SpoolError(.invalidInput, "\(metadata.filename) is empty", nextStep: "capture or choose the image again")
        }
        if case let .locked(reason) = protection { throw reason }
        // Row and page overhead of the database, generously rounded up.
        let needed = size + Int64(preview?.count ?? 0) + 64 * 1024
        try ensureSpace(needed)
        checkpoint("space-checked")

        let lock = try SpoolLock(directory: directory, exclusive: false)
        defer { lock.unlock() }
        let uid = UUID()
        let base = uid.uuidString.lowercased()
        let imageName = base + ".jpg"
        let previewName = base + ".preview.jpg"
        var written: [String] = []
        do throws(SpoolError) {
            let image = try FileOps.writeFile(source, directory: directory, name: imageName,
                                              sealer: sealer(uid, .image, size), checkpoint: checkpoint)
            written.append(imageName)
            guard image.size == size else {
                throw SpoolError(.invalidInput, "\(metadata.filename) changed size while it was being copied",
                                 nextStep: "wait until whatever writes it has finished, then enqueue it again")
            }
            var previewHash: (sha256: String, size: Int64)?
            if let preview {
                previewHash = try FileOps.writeFile(.data(preview), directory: directory, name: previewName,
                                                    sealer: sealer(uid, .preview, Int64(preview.count)),
                                                    checkpoint: checkpoint)
                written.append(previewName)
            }
            try FileOps.syncDirectory(directory)
            checkpoint("directory-synced")

            let now = Date().timeIntervalSince1970
            let result = try write("queueing \(metadata.filename)") { db -> EnqueueResult in
                if let existing = try Int64.fetchOne(db, sql: """
                    SELECT id FROM item WHERE kind = 'image' AND sha256 = ? AND case_id = ? ORDER BY id LIMIT 1
                    """, arguments: [image.sha256, metadata.caseID]) {
                    let previewID = try Int64.fetchOne(db, sql: "SELECT id FROM item WHERE parent_id = ? LIMIT 1",
                                                       arguments: [existing])
                    return EnqueueResult(imageID: existing, previewID: previewID, sha256: image.sha256, size: size,
                                         alreadyQueued: true)
                }
                let imageID = try insert(db, kind: .image, parent: nil, metadata: metadata, file: imageName,
                                         sha256: image.sha256, size: image.size, now: now)
                var previewID: Int64?
                if let previewHash {
                    var m = metadata
                    // `NAME-preview.jpg`, not `NAME.preview.jpg`: some tus servers
                    // (aiohttp-tus) refuse a file whose stem begins another's.
                    m.filename = (metadata.filename as NSString).deletingPathExtension + "-preview.jpg"
                    previewID = try insert(db, kind: .preview, parent: imageID, metadata: m, file: previewName,
                                           sha256: previewHash.sha256, size: previewHash.size, now: now)
                }
                return EnqueueResult(imageID: imageID, previewID: previewID, sha256: image.sha256, size: size,
                                     alreadyQueued: false)
            }
            checkpoint("committed")
            if result.alreadyQueued {
                // The bytes are already queued for this case; keeping a second
                // copy would upload the same image twice.
                for name in written { try? FileOps.removeDestroyingKey(directory + "/" + name) }
                logger.notice("already queued; nothing new stored", metadata: [
                    "item": "\(result.imageID)", "case": "\(metadata.caseID)", "sha256": "\(result.sha256)"])
            } else {
                logger.info("queued", metadata: [
                    "item": "\(result.imageID)", "case": "\(metadata.caseID)", "bytes": "\(size)",
                    "priority": "\(metadata.priority.rawValue)"])
            }
            return result
        } catch {
            for name in written { try? FileOps.removeDestroyingKey(directory + "/" + name) }
            throw error
        }
    }

    // MARK: - Health reports

    /// Pending health reports kept at most: 96 is a day at the default
    /// 15-minute interval. A station offline for longer reports its last day
    /// late, and older reports give way instead of filling the disk.
    public static let healthReportsKept = 96

    /// Queues a health report (a small JSON document) like an image: written
    /// encrypted and synced before its row commits. In the same transaction
    /// the oldest pending reports beyond `keep` are dropped, except one being
    /// uploaded right now (its uploader still holds it); their files go after
    /// the commit (a crash in between leaves files without rows, which the
    /// recovery pass deletes). Returns the new item's id.
    @discardableResult
    public func enqueueHealth(_ json: Data, generatedAt: Date, filename: String,
                              keep: Int = Spool.healthReportsKept) throws(SpoolError) -> Int64 {
        guard !json.isEmpty else { throw SpoolError(.invalidInput, "an empty health report") }
        if case let .locked(reason) = protection { throw reason }
        try ensureSpace(Int64(json.count) + 16 * 1024)
        let lock = try SpoolLock(directory: directory, exclusive: false)
        defer { lock.unlock() }
        let uid = UUID()
        let name = uid.uuidString.lowercased() + Self.healthSuffix
        let written = try FileOps.writeFile(.data(json), directory: directory, name: name,
                                            sealer: sealer(uid, .health, Int64(json.count)), checkpoint: checkpoint)
        let id: Int64
        let dropped: [String]
        do throws(SpoolError) {
            try FileOps.syncDirectory(directory)
            let now = Date().timeIntervalSince1970
            (id, dropped) = try write("queueing a health report") { db -> (Int64, [String]) in
                let id = try insert(db, kind: .health, parent: nil,
                                    metadata: ItemMetadata(caseID: "", capturedAt: generatedAt, filename: filename),
                                    file: name, sha256: written.sha256, size: written.size, now: now)
                let old = try Row.fetchAll(db, sql: """
                    SELECT id, file FROM item WHERE kind = 'health' AND \(Self.pendingStates) AND state <> 'uploading'
                    ORDER BY captured_at DESC, id DESC LIMIT -1 OFFSET ?
                    """, arguments: [max(1, keep)])
                for row in old {
                    let oldID: Int64 = row["id"]
                    try db.execute(sql: "DELETE FROM event WHERE item_id = ?", arguments: [oldID])
                    try db.execute(sql: "DELETE FROM item WHERE id = ?", arguments: [oldID])
                }
                return (id, old.map { $0["file"] })
            }
        } catch {
            try? FileOps.removeDestroyingKey(directory + "/" + name)
            throw error
        }
        for file in dropped { try? FileOps.removeDestroyingKey(directory + "/" + file) }
        if !dropped.isEmpty {
            logger.notice("dropped the oldest unsent health report(s): at most \(keep) wait", metadata: ["dropped": "\(dropped.count)"])
        }
        return id
    }

    /// Spool file names of health reports end so; recovery knows them by it.
    static let healthSuffix = ".health.json"

    /// When an image or preview last reached the hub (health reports not counted).
    public func lastUploadAt() throws(SpoolError) -> Date? {
        try read("reading the last upload") { db in
            try Double.fetchOne(db, sql: "SELECT MAX(uploaded_at) FROM item WHERE kind <> 'health'")
                .map { Date(timeIntervalSince1970: $0) }
        }
    }

    /// The encrypter of a new file, or nil when files are stored in plaintext.
    private func sealer(_ uid: UUID, _ kind: ItemKind, _ length: Int64) throws(SpoolError) -> SegmentSealer? {
        guard case let .encrypted(key) = protection else { return nil }
        return try SegmentSealer(masterKey: key.key, uid: uid, kind: kind, plaintextLength: length)
    }

    /// The plaintext of an item's file, checked against its row (size, kind,
    /// and for an encrypted file its uid and authentication). Errors with
    /// code `.integrity` mean the file was modified, truncated or swapped.
    public func openFile(_ item: SpoolItem) throws(SpoolError) -> SpoolFileReader {
        guard item.fileDeletedAt == nil else {
            throw SpoolError(.notFound, "the file of item \(item.id) was deleted after its upload")
        }
        return try SpoolFileReader(path: item.filePath, kind: item.kind, expectedSize: item.size, protection: protection)
    }

    private func insert(_ db: Database, kind: ItemKind, parent: Int64?, metadata: ItemMetadata, file: String,
                        sha256: String, size: Int64, now: Double) throws -> Int64 {
        try db.execute(sql: """
            INSERT INTO item (kind, parent_id, case_id, site, note, priority, captured_at, filename, file, sha256, size,
                              state, created_at, updated_at, context)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)
            """, arguments: [kind.rawValue, parent, metadata.caseID, metadata.site, metadata.note,
                             metadata.priority.rawValue, metadata.capturedAt.timeIntervalSince1970, metadata.filename,
                             file, sha256, size, now, now, metadata.context?.json])
        let id = db.lastInsertedRowID
        try ItemLifecycle.recordEvent(db, id: id, at: now, from: nil, to: .queued,
                     detail: "queued \(kind.rawValue) \(metadata.filename) (\(size) bytes, sha256 \(sha256.prefix(12))…)")
        return id
    }

    /// Refuses before any byte is written when the write would leave less
    /// than `min_free`; first tries to make room by deleting uploaded files early.
    private func ensureSpace(_ needed: Int64) throws(SpoolError) {
        var available = try FileOps.availableBytes(directory)
        if case let .refuse(shortBy) = diskGuard.check(available: available, needed: needed) {
            let freed = try runRetention(now: Date(), bytesToFree: shortBy)
            if !freed.deletedIDs.isEmpty {
                available = try FileOps.availableBytes(directory)
            }
            if case .refuse = diskGuard.check(available: available, needed: needed) {
                let error = diskGuard.refusal(available: available, needed: needed, directory: directory)
                logger.error("\(error.message)")
                throw error
            }
        }
    }

    // MARK: - Uploader

    /// Takes the next item due for upload and leases it to `owner` for
    /// `leaseSeconds`: urgent before routine, previews before full images,
    /// then oldest first. Items retried later are skipped; an item whose
    /// claimant died is taken over once its lease has expired. Returns nil
    /// when nothing is due.
    public func claimNext(owner: String, leaseSeconds: Double, now: Date = Date()) throws(SpoolError) -> SpoolItem? {
        let t = now.timeIntervalSince1970
        return try write("claiming the next item") { db -> SpoolItem? in
            guard let row = try Row.fetchOne(db, sql: Self.claimQuery, arguments: ["now": t]) else { return nil }
            return try self.apply(db, to: self.item(row),
                                  .claim(owner: owner, until: now.addingTimeInterval(leaseSeconds), now: now), now: t)
        }
    }

    /// The item `claimNext` would take now, left unclaimed: the upload
    /// worker prepares it while the current one is sent.
    public func nextDue(now: Date = Date()) throws(SpoolError) -> SpoolItem? {
        let t = now.timeIntervalSince1970
        return try read("reading the next item due") { db -> SpoolItem? in
            try Row.fetchOne(db, sql: Self.claimQuery, arguments: ["now": t]).map { try self.item($0) }
        }
    }

    /// Upload order, shared by `claimNext`, `status` and the `item_claim` index.
    /// The index is only used while these expressions match it exactly
    /// (a change needs a migration that recreates it, as v4 did).
    /// Health reports go after the images and previews of their priority:
    /// after an outage the doctor's images come first, the station's news after.
    static let uploadOrder = """
        CASE priority WHEN 'urgent' THEN 0 ELSE 1 END, CASE kind WHEN 'preview' THEN 0 WHEN 'image' THEN 1 ELSE 2 END, captured_at, id
        """

    /// Walks the pending items in upload order through the partial
    /// `item_claim` index (its `pendingStates` term makes the index
    /// usable) and stops at the first one due. Left to itself SQLite prefers
    /// collecting the candidates by state and sorting them, which costs a sort
    /// of the whole backlog on every claim after a long outage.
    static let claimQuery = """
        SELECT * FROM item INDEXED BY item_claim
        WHERE \(pendingStates)
          AND (state = 'queued'
               OR (state = 'failed' AND retry_at IS NOT NULL AND retry_at <= :now)
               OR (state = 'uploading' AND lease_expires <= :now))
        ORDER BY \(uploadOrder) LIMIT 1
        """

    /// Items still owed to the hub; the same text as the `item_claim` index's condition.
    static let pendingStates = "state NOT IN ('uploaded', 'received')"

    /// The pending images and previews, in upload order (health reports are not listed).
    static let pendingQuery = "SELECT * FROM item WHERE \(pendingStates) AND kind <> 'health' ORDER BY \(uploadOrder)"

    /// Extends `owner`'s lease on an item it is still uploading.
    public func renewLease(id: Int64, owner: String, leaseSeconds: Double, now: Date = Date()) throws(SpoolError) {
        try update(id, .renew(owner: owner, until: now.addingTimeInterval(leaseSeconds)), now: now)
    }

    /// Persists the upload URL the hub created, before any byte is sent, so
    /// an upload interrupted by a power cut resumes instead of starting over.
    /// `length`: what the upload sends, when it is not the file itself.
    public func recordUploadURL(id: Int64, url: String?, owner: String? = nil, length: Int64? = nil) throws(SpoolError) {
        try update(id, .uploadURL(url, owner: owner, length: length))
    }

    public func recordOffset(id: Int64, offset: Int64, owner: String? = nil) throws(SpoolError) {
        try update(id, .progress(offset: offset, owner: owner))
    }

    /// The hub has every byte. `awaitingReceipt`: the hub will confirm
    /// filing, and retention waits for `markReceived`.
    public func markUploaded(id: Int64, owner: String? = nil, awaitingReceipt: Bool = false) throws(SpoolError) {
        try update(id, .uploaded(owner: owner, awaitingReceipt: awaitingReceipt))
    }

    /// The hub's receipt: the image is filed. Retention counts from now.
    public func markReceived(id: Int64, detail: String, now: Date = Date()) throws(SpoolError) {
        try update(id, .received(detail: detail), now: now)
    }

    /// The hub holds the item, which reached it by stick: received, whatever
    /// state it was in. Retention counts from now.
    public func markReceivedElsewhere(id: Int64, detail: String, now: Date = Date()) throws(SpoolError) {
        try update(id, .receivedElsewhere(detail: detail), now: now)
    }

    /// The hub lost an uploaded image: it goes back to the queue as a new upload.
    public func resend(id: Int64, reason: String) throws(SpoolError) {
        try update(id, .resend(reason: reason))
    }

    /// Uploaded items waiting for the hub's receipt, oldest upload first.
    public func awaitingReceipts(limit: Int = 100) throws(SpoolError) -> [SpoolItem] {
        try read("listing items waiting for a receipt") { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM item WHERE state = 'uploaded' AND awaiting_receipt = 1 ORDER BY uploaded_at, id LIMIT ?
                """, arguments: [limit]).map(self.item)
        }
    }

    /// Records a failed attempt. With a `retryAt` the item is claimed again
    /// from then on; without one it waits for `release`.
    public func markFailed(id: Int64, error: String, retryAt: Date?, owner: String? = nil) throws(SpoolError) {
        try update(id, .fail(error: error, retryAt: retryAt, owner: owner))
    }

    /// Sets an item aside for a technician; it is never uploaded or deleted until released.
    public func hold(id: Int64, reason: String) throws(SpoolError) {
        try update(id, .hold(reason: reason))
    }

    /// Puts an item back in the queue: a held or failed one now, or one its
    /// claimant stops uploading without a failure (e.g. at shutdown).
    public func release(id: Int64, owner: String? = nil) throws(SpoolError) {
        try update(id, .release(owner: owner))
    }

    /// Gives back the items leased to claimants that are gone (a process
    /// killed by a power cut or a crash), so their uploads resume at once
    /// instead of when the lease runs out. Returns the released ids.
    @discardableResult
    public func releaseAbandonedLeases(now: Date = Date(), _ isAbandoned: (String) -> Bool) throws(SpoolError) -> [Int64] {
        try write("releasing the uploads of a stopped process") { db -> [Int64] in
            var released: [Int64] = []
            for row in try Row.fetchAll(db, sql: "SELECT * FROM item WHERE state = 'uploading'") {
                let item = self.item(row)
                guard let owner = item.lifecycle.leaseOwner, isAbandoned(owner) else { continue }
                _ = try self.apply(db, to: item, .release(owner: owner), now: now.timeIntervalSince1970)
                released.append(item.id)
            }
            return released
        }
    }

    @discardableResult
    private func update(_ id: Int64, _ command: ItemLifecycle.Command, now: Date = Date()) throws(SpoolError) -> SpoolItem {
        try write("updating item \(id)") { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM item WHERE id = ?", arguments: [id]) else {
                throw SpoolError(.notFound, "no item \(id) in the queue", nextStep: "see `telestation status` for the ids")
            }
            return try self.apply(db, to: self.item(row), command, now: now.timeIntervalSince1970)
        }
    }

    /// Applies one state-machine command to a row inside the caller's transaction.
    private func apply(_ db: Database, to item: SpoolItem, _ command: ItemLifecycle.Command,
                       now: Double) throws -> SpoolItem {
        var item = item
        let outcome = try item.lifecycle.apply(command)
        let uploadedAt: Double? = outcome.to == .uploaded && outcome.from != .uploaded
            ? now : (outcome.to == .queued || outcome.to == .held) && outcome.from == .uploaded
            ? nil : item.uploadedAt?.timeIntervalSince1970
        let receivedAt: Double? = outcome.to == .received && outcome.from != .received
            ? now : item.receivedAt?.timeIntervalSince1970
        try item.lifecycle.store(db, id: item.id, outcome: outcome, now: now, uploadedAt: uploadedAt, receivedAt: receivedAt)
        item.updatedAt = Date(timeIntervalSince1970: now)
        item.uploadedAt = uploadedAt.map { Date(timeIntervalSince1970: $0) }
        item.receivedAt = receivedAt.map { Date(timeIntervalSince1970: $0) }
        return item
    }

    // MARK: - Reading

    public func item(id: Int64) throws(SpoolError) -> SpoolItem? {
        try read("reading item \(id)") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM item WHERE id = ?", arguments: [id]).map(self.item)
        }
    }

    /// Every item in id order (for diagnostics and tests; the queue stays small).
    public func allItems() throws(SpoolError) -> [SpoolItem] {
        try read("listing items") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM item ORDER BY id").map(self.item)
        }
    }

    /// Counts per state, bytes and age of what is pending, and every pending item in upload order.
    public func status(now: Date = Date()) throws(SpoolError) -> SpoolStatus {
        try read("reading the queue status") { db in
            var counts = Dictionary(uniqueKeysWithValues: ItemState.allCases.map { ($0, 0) })
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM item WHERE kind <> 'health' GROUP BY state") {
                if let state = ItemState(rawValue: row["state"]) { counts[state] = row["n"] }
            }
            let pending = try Row.fetchAll(db, sql: Self.pendingQuery).map(self.item)
            let bytes = pending.reduce(Int64(0)) { $0 + max(0, $1.lifecycle.uploadSize - $1.ackedOffset) }
            let oldest = pending.map(\.createdAt).min().map { max(0, now.timeIntervalSince($0)) }
            let awaiting = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM item WHERE state = 'uploaded' AND awaiting_receipt = 1") ?? 0
            let health = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM item WHERE \(Self.pendingStates) AND kind = 'health'") ?? 0
            return SpoolStatus(counts: counts, bytesPending: bytes, oldestPendingAge: oldest, pending: pending,
                               awaitingReceipt: awaiting, healthPending: health)
        }
    }

    /// The item's events, oldest first.
    public func history(id: Int64) throws(SpoolError) -> [ItemHistoryEvent] {
        try read("reading the history of item \(id)") { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM item WHERE id = ?", arguments: [id]) != nil else {
                throw SpoolError(.notFound, "no item \(id) in the queue", nextStep: "see `telestation status` for the ids")
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM event WHERE item_id = ? ORDER BY id", arguments: [id]).map { row in
                ItemHistoryEvent(at: Date(timeIntervalSince1970: row["at"]),
                                 from: (row["from_state"] as String?).flatMap(ItemState.init(rawValue:)),
                                 to: ItemState(rawValue: row["to_state"]) ?? .queued,
                                 detail: row["detail"])
            }
        }
    }

    func item(_ row: Row) -> SpoolItem {
        let date: (String) -> Date? = { key in (row[key] as Double?).map { Date(timeIntervalSince1970: $0) } }
        let file: String = row["file"]
        return SpoolItem(
            id: row["id"],
            kind: ItemKind(rawValue: row["kind"]) ?? .image,
            parentID: row["parent_id"],
            metadata: ItemMetadata(caseID: row["case_id"], site: row["site"], note: row["note"],
                                   priority: Priority(rawValue: row["priority"]) ?? .routine,
                                   capturedAt: date("captured_at") ?? Date(timeIntervalSince1970: 0),
                                   filename: row["filename"],
                                   context: (row["context"] as String?).flatMap(CaptureContext.init(json:))),
            sha256: row["sha256"],
            size: row["size"],
            filePath: directory + "/" + file,
            lifecycle: ItemLifecycle(row: row),
            createdAt: date("created_at") ?? Date(timeIntervalSince1970: 0),
            updatedAt: date("updated_at") ?? Date(timeIntervalSince1970: 0),
            uploadedAt: date("uploaded_at"),
            receivedAt: date("received_at"),
            fileDeletedAt: date("file_deleted_at"))
    }

    // MARK: - Plumbing

    func write<T>(_ what: String, _ body: (Database) throws -> T) throws(SpoolError) -> T {
        do {
            return try db.write(body)
        } catch {
            throw SpoolError.database(error, doing: what)
        }
    }

    func read<T>(_ what: String, _ body: (Database) throws -> T) throws(SpoolError) -> T {
        do {
            return try db.read(body)
        } catch {
            throw SpoolError.database(error, doing: what)
        }
    }
}

/// An advisory `flock(2)` on the spool directory's lock file. Enqueues hold
/// it shared from their first byte to their commit; recovery holds it
/// exclusively, so it never mistakes another process's write in flight
/// for debris of a crash.
struct SpoolLock {
    private let fd: Int32

    static let name = ".lock"

    init(directory: String, exclusive: Bool) throws(SpoolError) {
        let path = directory + "/" + Self.name
        let fd = try FileOps.call("open", path) { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640) }
        do throws(SpoolError) {
            try FileOps.call("flock", path) { flock(fd, exclusive ? LOCK_EX : LOCK_SH) }
        } catch {
            close(fd)
            throw error
        }
        self.fd = fd
    }

    /// Closing the descriptor drops the lock; so does the process dying.
    func unlock() { close(fd) }
}
