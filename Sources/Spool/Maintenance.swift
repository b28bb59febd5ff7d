import Foundation
import GRDB
import Logging

extension Spool {
    /// Reconciles files and rows after a crash or power cut: removes the
    /// temporary files of interrupted writes, marks pending items whose file
    /// is gone as failed (loudly; never dropped), and adopts image files no
    /// row accounts for as held items. Runs at open; safe to run any time,
    /// also while another process enqueues.
    @discardableResult
    public func recover() throws(SpoolError) -> RecoveryReport {
        try Self.recover(directory: directory, db: db, protection: protection, logger: logger)
    }

    static func recover(directory: String, db: DatabasePool, protection: SpoolProtection,
                        logger: Logger) throws(SpoolError) -> RecoveryReport {
        let lock = try SpoolLock(directory: directory, exclusive: true)
        defer { lock.unlock() }
        var report = RecoveryReport()
        let names = try FileOps.list(directory)
        for name in names where name.hasPrefix(FileOps.tempPrefix) {
            try FileOps.removeDestroyingKey(directory + "/" + name)
            report.removedTempFiles.append(name)
            logger.warning("removed the partial file of an interrupted write", metadata: ["file": "\(directory)/\(name)"])
        }
        let present = Set(names.filter { !$0.hasPrefix(".") })
        let now = Date()
        let t = now.timeIntervalSince1970
        do {
            try db.write { db in
                let rows = try Row.fetchAll(db, sql: "SELECT id, file, state, file_deleted_at, sha256 FROM item")
                let known = Set(rows.map { $0["file"] as String })
                // Retention marked these deleted but the file is still there: a
                // power cut lost the unlink. Finish it; the hub has the image.
                for row in rows where row["file_deleted_at"] as Double? != nil && present.contains(row["file"]) {
                    let name: String = row["file"]
                    try FileOps.removeDestroyingKey(directory + "/" + name)
                    report.finishedDeletions.append(name)
                    logger.warning("deleted a file that retention had already recorded as deleted", metadata: ["file": "\(directory)/\(name)"])
                }
                for row in rows where row["file_deleted_at"] as Double? == nil && !present.contains(row["file"]) {
                    let id: Int64 = row["id"]
                    if let done = ItemState(rawValue: row["state"]), done == .uploaded || done == .received {
                        try db.execute(sql: "UPDATE item SET file_deleted_at = ?, updated_at = ? WHERE id = ?",
                                       arguments: [t, t, id])
                        try ItemLifecycle.recordEvent(db, id: id, at: t, from: done, to: done,
                                                      detail: "file of the \(done.rawValue) item found already deleted")
                        report.uploadedWithoutFile.append(id)
                        continue
                    }
                    // Going through the state machine keeps this the one place states change.
                    guard let full = try Row.fetchOne(db, sql: "SELECT * FROM item WHERE id = ?", arguments: [id]) else { continue }
                    var lifecycle = ItemLifecycle(row: full)
                    guard lifecycle.lastError != "the image file is missing from the spool" || lifecycle.state != .failed else {
                        continue  // already reported by an earlier pass
                    }
                    let outcome = try lifecycle.apply(.fileMissing)
                    try lifecycle.store(db, id: id, outcome: outcome, now: t, uploadedAt: full["uploaded_at"],
                                        receivedAt: full["received_at"])
                    report.missingFiles.append(id)
                    logger.error("the file of a queued image is MISSING; item marked failed, not retried",
                                 metadata: ["item": "\(id)", "file": "\(directory)/\(row["file"] as String)"])
                }
                for name in present.subtracting(known).sorted() {
                    let path = directory + "/" + name
                    if name.hasSuffix(Spool.healthSuffix) {
                        // A health report whose row was dropped (coalescing) or
                        // never committed: there is nothing in it worth keeping.
                        try FileOps.removeDestroyingKey(path)
                        report.removedHealthReports.append(name)
                        continue
                    }
                    guard var size = try FileOps.fileSize(path) else { continue }
                    let kind: ItemKind = name.hasSuffix(".preview.jpg") ? .preview : .image
                    var sha: String
                    var unreadable: String?
                    do throws(SpoolError) {
                        let file = try SpoolFileReader(path: path, kind: kind, expectedSize: nil, protection: protection)
                        sha = try file.sha256()
                        size = file.size
                    } catch where error.code == .encryptionKey {
                        // Without the key its hash is unknown; a process with the key adopts it.
                        continue
                    } catch {
                        sha = try FileOps.sha256(ofFile: path)
                        unreadable = error.message
                    }
                    if unreadable == nil, try Bool.fetchOne(db, sql: "SELECT 1 FROM item WHERE sha256 = ? AND file_deleted_at IS NULL",
                                                            arguments: [sha]) != nil {
                        try FileOps.removeDestroyingKey(path)
                        report.removedDuplicates.append(name)
                        logger.warning("removed a second copy of an already queued file", metadata: ["file": "\(path)"])
                        continue
                    }
                    let mtime = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? now
                    let reason = "found in the spool without a queue record (its enqueue was interrupted); "
                        + "the case id is unknown: check the image, then release or delete it"
                        + (unreadable.map { "; it cannot be read: \($0)" } ?? "")
                    try db.execute(sql: """
                        INSERT INTO item (kind, case_id, site, note, priority, captured_at, filename, file, sha256, size,
                                          state, last_error, created_at, updated_at)
                        VALUES (?, '', '', 'adopted by recovery', 'routine', ?, ?, ?, ?, ?, 'held', ?, ?, ?)
                        """, arguments: [kind.rawValue, mtime.timeIntervalSince1970, name, name, sha, size, reason, t, t])
                    let id = db.lastInsertedRowID
                    try ItemLifecycle.recordEvent(db, id: id, at: t, from: nil, to: .held, detail: "adopted: \(reason)")
                    report.adoptedFiles.append(id)
                    logger.error("adopted an image file that had no queue record; held for a technician",
                                 metadata: ["item": "\(id)", "file": "\(path)"])
                }
            }
        } catch {
            throw SpoolError.database(error, doing: "reconciling the spool directory with the queue")
        }
        if !report.removedTempFiles.isEmpty || !report.removedDuplicates.isEmpty || !report.removedHealthReports.isEmpty
            || !report.finishedDeletions.isEmpty {
            try FileOps.syncDirectory(directory)
        }
        if !report.isClean {
            logger.warning("recovery finished", metadata: [
                "temp_removed": "\(report.removedTempFiles.count)", "missing": "\(report.missingFiles.count)",
                "adopted": "\(report.adoptedFiles.count)", "duplicates_removed": "\(report.removedDuplicates.count)"])
        }
        return report
    }

    /// Deletes the files of delivered items older than `keep_uploaded`, and
    /// while `bytesToFree` is not covered, the oldest other delivered files.
    /// Delivered means received (the hub's receipt said the image is filed;
    /// the age counts from the receipt), or uploaded to a hub that gives no
    /// receipts. Items not yet delivered, including uploaded ones waiting for
    /// their receipt, are never touched. Rows stay, with their history.
    @discardableResult
    public func runRetention(now: Date = Date(), bytesToFree: Int64 = 0) throws(SpoolError) -> RetentionReport {
        let candidates = try read("listing delivered files") { db in
            try Row.fetchAll(db, sql: """
                SELECT id, size, uploaded_at, received_at, updated_at, file, kind FROM item
                WHERE \(Self.deliveredStates) AND file_deleted_at IS NULL
                """).map { row -> (RetentionPlanner.Candidate, String) in
                let at: Double = row["received_at"] ?? row["uploaded_at"] ?? row["updated_at"]
                return (RetentionPlanner.Candidate(id: row["id"], size: row["size"],
                                                   uploadedAt: Date(timeIntervalSince1970: at)), row["file"])
            }
        }
        let health = Set(try read("listing delivered health reports") { db in
            try Int64.fetchAll(db, sql: "SELECT id FROM item WHERE kind = 'health' AND \(Self.deliveredStates)")
        })
        let chosen = retention.plan(candidates.map(\.0), now: now, bytesToFree: bytesToFree)
        guard !chosen.isEmpty else { return RetentionReport() }
        let byID = Dictionary(uniqueKeysWithValues: candidates.map { ($0.0.id, $0) })
        var report = RetentionReport()
        for id in chosen {
            guard let (c, file) = byID[id] else { continue }
            // File first, row second: a crash in between leaves an uploaded row
            // without a file, which recovery simply marks as deleted.
            try FileOps.removeDestroyingKey(directory + "/" + file)
            report.deletedIDs.append(id)
            report.bytesFreed += c.size
        }
        // The unlinks must be on the medium before the rows say so. A WAL
        // commit that rewrites frames already allocated need not commit the
        // file system's journal, so without this a power cut could keep the
        // rows' "deleted" and lose the unlinks: files no row owns (found by
        // the 200-cut VM campaign, seed 1256549356).
        if !report.deletedIDs.isEmpty { try FileOps.syncDirectory(directory) }
        let t = now.timeIntervalSince1970
        let early = bytesToFree > 0
        try write("recording deleted files") { db in
            // A delivered health report leaves no row behind: one every 15
            // minutes would otherwise grow the table by 35,000 rows a year.
            // (Also those whose file an interrupted run already deleted.)
            try db.execute(sql: """
                DELETE FROM event WHERE item_id IN (SELECT id FROM item WHERE kind = 'health' AND file_deleted_at IS NOT NULL);
                DELETE FROM item WHERE kind = 'health' AND file_deleted_at IS NOT NULL;
                """)
            for id in report.deletedIDs {
                if health.contains(id) {
                    try db.execute(sql: "DELETE FROM event WHERE item_id = ? AND EXISTS (SELECT 1 FROM item WHERE id = ? AND \(Self.deliveredStates))",
                                   arguments: [id, id])
                    try db.execute(sql: "DELETE FROM item WHERE id = ? AND \(Self.deliveredStates)", arguments: [id])
                    continue
                }
                // Guarded by state so a row changed meanwhile is never marked.
                try db.execute(sql: """
                    UPDATE item SET file_deleted_at = ?, updated_at = ? WHERE id = ? AND \(Self.deliveredStates)
                    """, arguments: [t, t, id])
                let state = try String.fetchOne(db, sql: "SELECT state FROM item WHERE id = ?", arguments: [id])
                    .flatMap(ItemState.init(rawValue:)) ?? .uploaded
                try ItemLifecycle.recordEvent(db, id: id, at: t, from: state, to: state,
                                              detail: early ? "file deleted early to make room" : "file deleted after keep_uploaded")
            }
        }
        logger.info("retention deleted uploaded files", metadata: [
            "files": "\(report.deletedIDs.count)", "bytes": "\(report.bytesFreed)"])
        return report
    }

    /// Items whose file retention may delete.
    static let deliveredStates = "(state = 'received' OR (state = 'uploaded' AND awaiting_receipt = 0))"

    /// SQLite's `PRAGMA integrity_check` plus files against rows: every file
    /// a row expects exists with the recorded size (and hash, when
    /// `verifyHashes`), and every file in the directory belongs to a row.
    public func integrityCheck(verifyHashes: Bool = false) throws(SpoolError) -> IntegrityReport {
        let (lines, rows) = try read("checking the database") { db in
            (try String.fetchAll(db, sql: "PRAGMA integrity_check"),
             try Row.fetchAll(db, sql: "SELECT id, kind, file, size, sha256 FROM item WHERE file_deleted_at IS NULL"))
        }
        let present = Set(try FileOps.list(directory).filter { $0 != SpoolLock.name })
        var report = IntegrityReport(sqlite: lines, missingFiles: [], mismatchedFiles: [], unknownFiles: [])
        var known = Set<String>()
        for row in rows {
            let id: Int64 = row["id"]
            let file: String = row["file"]
            known.insert(file)
            let path = directory + "/" + file
            guard try FileOps.fileSize(path) != nil else {
                report.missingFiles.append(id)
                continue
            }
            let kind = ItemKind(rawValue: row["kind"]) ?? .image
            do throws(SpoolError) {
                // Opening checks the size, and for an encrypted file its header and key.
                let file = try SpoolFileReader(path: path, kind: kind, expectedSize: row["size"], protection: protection)
                if !file.isEncrypted { report.plaintextFiles.append(id) }
                if verifyHashes, try file.sha256() != row["sha256"] as String {
                    report.mismatchedFiles.append(id)
                }
            } catch where error.code == .encryptionKey {
                // The header passed its checks; the contents need the key.
                if verifyHashes { report.unverifiedFiles.append(id) }
            } catch where error.code == .integrity {
                report.mismatchedFiles.append(id)
            }
        }
        report.unknownFiles = present.subtracting(known).sorted()
        return report
    }
}

extension Spool {
    /// Moves the write-ahead log into the main database file
    /// (`PRAGMA wal_checkpoint(TRUNCATE)`), so the file's size is the queue's size.
    package func checkpointWAL() throws(SpoolError) {
        do {
            try db.writeWithoutTransaction { db in _ = try Row.fetchAll(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        } catch {
            throw SpoolError.database(error, doing: "checkpointing the write-ahead log")
        }
    }
}
