import Foundation
import GRDB
import Testing
@testable import Spool

/// The spool against real SQLite and real files in a scratch directory.
@Suite struct SpoolTests {
    @Test func opensInWALWithFullSyncAndMigrates() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        let (mode, sync) = try spool.db.write { db in
            (try String.fetchOne(db, sql: "PRAGMA journal_mode"), try Int.fetchOne(db, sql: "PRAGMA synchronous"))
        }
        #expect(mode == "wal")
        #expect(sync == 2, "synchronous must be FULL (2)")
        let applied = try spool.db.read { try Schema.migrator.appliedIdentifiers($0) }
        #expect(applied == ["v1: items and events", "v2: claim order index", "v3: receipts and capture context",
                           "v4: health reports after images in upload order"])
        // Reopening runs the migrator again without harm.
        _ = try s.open()
    }

    /// Uploaded rows are kept forever; claims and status must not sort or scan them.
    @Test func claimAndStatusReadThePendingIndexInOrder() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        for (name, sql) in [("claim", Spool.claimQuery), ("status", Spool.pendingQuery)] {
            let plan = try spool.db.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: ["now": 0]).map { $0["detail"] as String }
            }
            #expect(plan.contains { $0.contains("USING INDEX item_claim") }, "\(name): \(plan)")
            #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "\(name) sorts: \(plan)")
        }
    }

    @Test func enqueueDataStoresFileAndRowWithHash() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        let image = bytes(300_000)
        let preview = bytes(5_000, seed: 9)
        let r = try spool.enqueue(imageData: image, preview: preview, metadata: meta(priority: .urgent))
        #expect(!r.alreadyQueued && r.size == 300_000 && r.sha256 == sha256Hex(image))
        let item = try #require(try spool.item(id: r.imageID))
        #expect(item.kind == .image && item.state == .queued && item.metadata == meta(priority: .urgent))
        #expect(plainSHA(spool, item) == sha256Hex(image))
        let previewID = try #require(r.previewID)
        let p = try #require(try spool.item(id: previewID))
        #expect(p.kind == .preview && p.parentID == r.imageID && p.metadata.caseID == "C-1")
        #expect(p.metadata.filename == "lesion-preview.jpg")
        #expect(plainSHA(spool, p) == sha256Hex(preview) && p.size == 5000)
        #expect(s.files().count == 2, "no temporary files left: \(s.files())")
        #expect(try spool.history(id: r.imageID).map(\.to) == [.queued])
    }

    @Test func enqueueFileStreamsACopyLargerThanTheCopyBuffer() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        let source = s.root + "/in.jpg"
        let data = bytes(FileOps.chunkSize * 3 + 12_345)
        try data.write(to: URL(fileURLWithPath: source))
        let r = try spool.enqueue(imageFile: URL(fileURLWithPath: source), preview: nil, metadata: meta())
        let item = try #require(try spool.item(id: r.imageID))
        #expect(item.size == Int64(data.count) && item.sha256 == sha256Hex(data))
        #expect(plainSHA(spool, item) == sha256Hex(data))
        #expect(FileManager.default.fileExists(atPath: source), "the original stays where it was")
    }

    @Test func sameBytesForTheSameCaseAreNotQueuedTwice() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        let first = try spool.enqueue(imageData: bytes(1000), preview: bytes(10), metadata: meta())
        let again = try spool.enqueue(imageData: bytes(1000), preview: bytes(10), metadata: meta())
        #expect(again.alreadyQueued && again.imageID == first.imageID && again.previewID == first.previewID)
        let otherCase = try spool.enqueue(imageData: bytes(1000), preview: nil, metadata: meta("C-2"))
        #expect(!otherCase.alreadyQueued && otherCase.imageID != first.imageID)
        #expect(try spool.allItems().count == 3)
        #expect(s.files().count == 3)
    }

    @Test func badInputIsRefusedWithoutWritingAnything() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        #expect { try spool.enqueue(imageData: bytes(10), preview: nil, metadata: meta("  ")) } throws: { e in
            (e as? SpoolError)?.code == .invalidInput && "\(e)".contains("case id")
        }
        #expect { try spool.enqueue(imageData: Data(), preview: nil, metadata: meta()) } throws: { e in
            (e as? SpoolError)?.code == .invalidInput && "\(e)".contains("empty")
        }
        #expect { try spool.enqueue(imageFile: URL(fileURLWithPath: s.root + "/nope.jpg"), preview: nil, metadata: meta()) }
            throws: { e in (e as? SpoolError)?.code == .invalidInput && "\(e)".contains("nope.jpg") }
        #expect { try spool.enqueue(imageFile: URL(fileURLWithPath: s.root), preview: nil, metadata: meta()) }
            throws: { e in (e as? SpoolError)?.code == .invalidInput && "\(e)".contains("is a directory") }
        #expect(try s.files().isEmpty && spool.allItems().isEmpty)
    }

    @Test func diskGuardRefusesBeforeWriting() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open(minFree: Int64.max / 4)
        #expect { try spool.enqueue(imageData: bytes(1000), preview: nil, metadata: meta()) } throws: { e in
            (e as? SpoolError)?.code == .insufficientSpace && "\(e)".contains("spool.min_free")
        }
        #expect(try s.files().isEmpty && spool.allItems().isEmpty)
    }

    @Test func claimOrderUrgentThenPreviewsThenOldest() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        let oldRoutine = try spool.enqueue(imageData: bytes(100, seed: 1), preview: bytes(10, seed: 1),
                                           metadata: meta("A", at: 100))
        let newUrgent = try spool.enqueue(imageData: bytes(100, seed: 2), preview: bytes(10, seed: 2),
                                          metadata: meta("B", priority: .urgent, at: 300))
        let oldUrgent = try spool.enqueue(imageData: bytes(100, seed: 3), preview: nil,
                                          metadata: meta("C", priority: .urgent, at: 200))
        let newRoutine = try spool.enqueue(imageData: bytes(100, seed: 4), preview: nil, metadata: meta("D", at: 50))
        var order: [Int64] = []
        while let item = try spool.claimNext(owner: "t", leaseSeconds: 60) {
            order.append(item.id)
            try spool.markUploaded(id: item.id, owner: "t")
        }
        let expected: [Int64?] = [
            newUrgent.previewID, oldUrgent.imageID, newUrgent.imageID,
            oldRoutine.previewID, newRoutine.imageID, oldRoutine.imageID,
        ]
        #expect(order == expected.compactMap { $0 })
        #expect(try spool.status().pending.isEmpty)
    }

    @Test func claimSkipsFutureRetriesAndReclaimsExpiredLeases() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        let now = Date()
        let a = try spool.enqueue(imageData: bytes(100, seed: 1), preview: nil, metadata: meta("A", at: 1)).imageID
        let b = try spool.enqueue(imageData: bytes(100, seed: 2), preview: nil, metadata: meta("B", at: 2)).imageID

        let first = try #require(try spool.claimNext(owner: "daemon", leaseSeconds: 30, now: now))
        #expect(first.id == a && first.state == .uploading && first.attempts == 1 && first.leaseOwner == "daemon")
        try spool.markFailed(id: a, error: "connection reset", retryAt: now.addingTimeInterval(300), owner: "daemon")

        let second = try #require(try spool.claimNext(owner: "daemon", leaseSeconds: 30, now: now))
        #expect(second.id == b, "a is not due for another five minutes")
        #expect(try spool.claimNext(owner: "sync", leaseSeconds: 30, now: now) == nil, "b's lease is live")

        // The daemon dies; after its lease runs out another claimant takes over.
        let later = now.addingTimeInterval(31)
        let taken = try #require(try spool.claimNext(owner: "sync", leaseSeconds: 30, now: later))
        #expect(taken.id == b && taken.leaseOwner == "sync" && taken.attempts == 2)
        // The late daemon's updates are refused rather than overwriting sync's.
        #expect { try spool.recordOffset(id: b, offset: 50, owner: "daemon") } throws: { e in
            (e as? SpoolError)?.code == .leaseLost
        }
        let retry = try #require(try spool.claimNext(owner: "sync", leaseSeconds: 30, now: now.addingTimeInterval(301)))
        #expect(retry.id == a && retry.attempts == 2)
    }

    @Test func uploadProgressIsPersistedAndVisibleInStatusAndHistory() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        let r = try spool.enqueue(imageData: bytes(1000), preview: nil, metadata: meta())
        let item = try #require(try spool.claimNext(owner: "d", leaseSeconds: 60))
        try spool.recordUploadURL(id: item.id, url: "https://hub/files/abc", owner: "d")
        try spool.recordOffset(id: item.id, offset: 400, owner: "d")

        // A fresh open, as after a power cut, sees the URL and offset.
        let reopened = try s.open()
        let stored = try #require(try reopened.item(id: r.imageID))
        #expect(stored.uploadURL == "https://hub/files/abc" && stored.ackedOffset == 400 && stored.state == .uploading)

        let status = try reopened.status(now: stored.createdAt.addingTimeInterval(90))
        #expect(status.counts[.uploading] == 1 && status.counts[.queued] == 0)
        #expect(status.bytesPending == 600)
        #expect(status.oldestPendingAge.map { abs($0 - 90) < 0.01 } == true)
        #expect(status.pending.map(\.id) == [r.imageID] && status.pending[0].progress == 0.4)

        try reopened.markUploaded(id: item.id, owner: "d")
        let done = try reopened.status()
        #expect(done.counts[.uploaded] == 1 && done.bytesPending == 0 && done.oldestPendingAge == nil)
        let history = try reopened.history(id: r.imageID)
        #expect(history.map(\.to) == [.queued, .uploading, .uploading, .uploaded])
        #expect(history[2].detail.contains("https://hub/files/abc"))
        #expect(try reopened.item(id: r.imageID)?.uploadedAt != nil)
    }

    @Test func holdAndReleaseThroughTheSpool() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        let id = try spool.enqueue(imageData: bytes(100), preview: nil, metadata: meta()).imageID
        _ = try spool.claimNext(owner: "d", leaseSeconds: 60)
        try spool.hold(id: id, reason: "hub answered 413: too large")
        #expect(try spool.claimNext(owner: "d", leaseSeconds: 60) == nil)
        #expect(try spool.item(id: id)?.lastError == "hub answered 413: too large")
        #expect { try spool.markUploaded(id: id) } throws: { ($0 as? SpoolError)?.code == .invalidTransition }
        try spool.release(id: id)
        #expect(try spool.claimNext(owner: "d", leaseSeconds: 60)?.id == id)
        #expect { try spool.hold(id: 999, reason: "x") } throws: { ($0 as? SpoolError)?.code == .notFound }
        #expect { try spool.history(id: 999) } throws: { ($0 as? SpoolError)?.code == .notFound }
    }

    @Test func retentionDeletesOnlyUploadedFiles() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open(keepUploaded: 3600)
        var ids: [Int64] = []
        for i in 0..<4 {
            ids.append(try spool.enqueue(imageData: bytes(1000, seed: UInt8(i)), preview: nil,
                                         metadata: meta("C\(i)", at: Double(i))).imageID)
        }
        for _ in 0..<2 {
            let item = try #require(try spool.claimNext(owner: "d", leaseSeconds: 60))
            try spool.markUploaded(id: item.id)
        }
        _ = try spool.claimNext(owner: "d", leaseSeconds: 60)  // one uploading, one queued
        #expect(try spool.runRetention(now: Date()).deletedIDs.isEmpty, "nothing is past keep_uploaded yet")

        let report = try spool.runRetention(now: Date().addingTimeInterval(86400 * 365))
        #expect(Set(report.deletedIDs) == Set(ids[0..<2]) && report.bytesFreed == 2000)
        for id in ids {
            let item = try #require(try spool.item(id: id))
            let exists = FileManager.default.fileExists(atPath: item.filePath)
            #expect(exists == (item.state != .uploaded), "item \(id) is \(item.state)")
            #expect((item.fileDeletedAt != nil) == (item.state == .uploaded))
        }
        // Asking for more space than uploaded files hold still never touches pending ones.
        #expect(try spool.runRetention(now: Date(), bytesToFree: 1 << 40).deletedIDs.isEmpty)
        #expect(s.files().count == 2)
        #expect(try spool.integrityCheck(verifyHashes: true).isHealthy)
        #expect(try spool.recover().isClean, "deleted uploaded files are not reported as missing")
    }

    /// Retention counts from the receipt, never from the upload: an image
    /// the hub has every byte of but has not filed keeps its file however
    /// old it is and however short of space the station is.
    @Test func retentionWaitsForTheReceipt() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open(keepUploaded: 3600)
        var ids: [Int64] = []
        for i in 0..<3 {
            ids.append(try spool.enqueue(imageData: bytes(1000, seed: UInt8(i)), preview: nil,
                                         metadata: meta("C\(i)", at: Double(i))).imageID)
            let item = try #require(try spool.claimNext(owner: "d", leaseSeconds: 60))
            try spool.markUploaded(id: item.id, owner: "d", awaitingReceipt: true)
        }
        #expect(try spool.awaitingReceipts().map(\.id) == ids)
        let status = try spool.status()
        #expect(status.counts[.uploaded] == 3 && status.awaitingReceipt == 3 && status.pending.isEmpty)
        let yearLater = Date().addingTimeInterval(86400 * 365)
        #expect(try spool.runRetention(now: yearLater, bytesToFree: 1 << 40).deletedIDs.isEmpty,
                "no file is deleted before its receipt")

        // Received two days after upload: kept keep_uploaded from the receipt.
        let receivedAt = Date().addingTimeInterval(2 * 86400)
        try spool.markReceived(id: ids[0], detail: "filed in the PACS", now: receivedAt)
        #expect(try spool.item(id: ids[0])?.state == .received)
        let stored = try #require(try spool.item(id: ids[0])?.receivedAt)
        #expect(abs(stored.timeIntervalSince(receivedAt)) < 0.001)
        #expect(try spool.runRetention(now: receivedAt.addingTimeInterval(1800)).deletedIDs.isEmpty,
                "keep_uploaded counts from the receipt")
        #expect(try spool.runRetention(now: receivedAt.addingTimeInterval(3601)).deletedIDs == [ids[0]])
        #expect(try spool.history(id: ids[0]).contains { $0.to == .received && $0.detail.contains("PACS") })

        // Lost by the hub: back in the queue as a new upload; refused: held.
        try spool.resend(id: ids[1], reason: "the hub lost it")
        try spool.hold(id: ids[2], reason: "the hub refused to file it")
        let after = try spool.status()
        #expect(after.counts[.received] == 1 && after.counts[.queued] == 1 && after.counts[.held] == 1)
        #expect(after.awaitingReceipt == 0 && after.pending.map(\.id) == [ids[1], ids[2]])
        #expect(try spool.item(id: ids[1])?.uploadURL == nil)
        #expect(try spool.runRetention(now: yearLater, bytesToFree: 1 << 40).deletedIDs.isEmpty)
        #expect(try spool.integrityCheck(verifyHashes: true).isHealthy)
    }

    /// A queue written by the previous release (schema v2) opens, keeps
    /// every row and its history, and its uploaded items stay deletable.
    @Test func aVersion2QueueMigratesInPlace() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        // Build the v2 schema with the migrations as they were, then a row.
        do {
            let q = try DatabaseQueue(path: s.dbPath)
            let full = Schema.migrator
            #expect(full.migrations.count == 4)
            // Only the first two migrations: what a station in the field has.
            try full.migrate(q, upTo: full.migrations[1])
            try q.write { db in
                try db.execute(sql: """
                    INSERT INTO item (kind, case_id, site, note, priority, captured_at, filename, file, sha256, size,
                                      state, created_at, updated_at, uploaded_at)
                    VALUES ('image', 'C1', 'back', '', 'routine', 1, 'a.jpg', 'gone.jpg', 'ab', 10, 'uploaded', 1, 1, 1),
                           ('image', 'C2', 'back', '', 'urgent', 2, 'b.jpg', 'b.jpg', 'cd', 10, 'queued', 2, 2, NULL);
                    INSERT INTO event (item_id, at, from_state, to_state, detail) VALUES (1, 1, NULL, 'queued', 'queued');
                    """)
            }
        }
        let q = try DatabaseQueue(path: s.dbPath)
        try Schema.migrator.migrate(q)
        try q.read { db in
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM item") == 2)
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM event") == 1)
            #expect(try Int.fetchOne(db, sql: "SELECT awaiting_receipt FROM item WHERE id = 1") == 0)
            #expect(try String.fetchOne(db, sql: "PRAGMA integrity_check") == "ok")
            #expect(try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").isEmpty)
            let plan = try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN \(Spool.claimQuery)", arguments: ["now": 0.0])
                .map { $0["detail"] as String }
            #expect(plan.joined().contains("item_claim"), "the claim still walks the partial index: \(plan)")
        }
        try q.write { db in
            try db.execute(sql: "UPDATE item SET state = 'received' WHERE id = 1")
            #expect(throws: (any Error).self) { try db.execute(sql: "UPDATE item SET state = 'lost' WHERE id = 1") }
        }
    }

    @Test func retentionFreesSpaceEarlyWhenAskedFor() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open(keepUploaded: 86400 * 30)
        for i in 0..<3 {
            _ = try spool.enqueue(imageData: bytes(1000, seed: UInt8(i)), preview: nil, metadata: meta("C\(i)", at: Double(i)))
            let item = try #require(try spool.claimNext(owner: "d", leaseSeconds: 60))
            try spool.markUploaded(id: item.id)
        }
        let report = try spool.runRetention(now: Date(), bytesToFree: 1500)
        #expect(report.deletedIDs == [1, 2] && report.bytesFreed == 2000)
        #expect(try spool.history(id: 1).last?.detail.contains("early") == true)
    }

    /// A power cut after retention's rows were committed but before its
    /// unlinks reached the medium leaves files whose rows say "deleted".
    /// Recovery finishes the deletion; nothing is adopted or resent.
    @Test func recoveryFinishesADeletionAPowerCutLost() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let fm = FileManager.default
        var kept: [(path: String, data: Data)] = []
        do {
            let spool = try s.open(keepUploaded: 0)
            let id = try spool.enqueue(imageData: bytes(600, seed: 9), preview: bytes(300, seed: 10), metadata: meta("C9")).imageID
            while let item = try spool.claimNext(owner: "d", leaseSeconds: 60) {
                try spool.markUploaded(id: item.id, owner: "d")
                kept.append((item.filePath, try Data(contentsOf: URL(fileURLWithPath: item.filePath))))
            }
            #expect(try spool.runRetention(now: Date().addingTimeInterval(10)).deletedIDs.count == 2)
            #expect(try spool.item(id: id)?.fileDeletedAt != nil)
        }
        // The lost unlinks: the files are back, their rows say deleted.
        for (path, data) in kept { try data.write(to: URL(fileURLWithPath: path)) }
        let spool = try s.open(keepUploaded: 0)
        let r = spool.recoveryAtOpen
        #expect(r.finishedDeletions.sorted() == kept.map { ($0.path as NSString).lastPathComponent }.sorted())
        #expect(r.adoptedFiles.isEmpty && r.removedDuplicates.isEmpty)
        for (path, _) in kept { #expect(!fm.fileExists(atPath: path)) }
        #expect(try spool.integrityCheck(verifyHashes: true).unknownFiles.isEmpty)
        #expect(try spool.allItems().allSatisfy { $0.state == .uploaded })
    }

    @Test func recoveryRemovesTempFilesFailsMissingAndAdoptsOrphans() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        var ids: [Int64] = []
        do {
            let spool = try s.open()
            for i in 0..<3 {
                ids.append(try spool.enqueue(imageData: bytes(500, seed: UInt8(i)), preview: nil,
                                             metadata: meta("C\(i)")).imageID)
            }
            let first = try #require(try spool.claimNext(owner: "d", leaseSeconds: 60))
            try spool.markUploaded(id: first.id)
            #expect(first.id == ids[0])
        }
        // What a crash and a careless technician can leave behind.
        let fm = FileManager.default
        let items = try s.open().allItems()
        try fm.removeItem(atPath: items[0].filePath)  // uploaded: fine
        try fm.removeItem(atPath: items[1].filePath)  // queued: must be flagged
        try bytes(700).write(to: URL(fileURLWithPath: s.spoolDir + "/.tmp-interrupted"))
        let orphan = bytes(800, seed: 42)
        try orphan.write(to: URL(fileURLWithPath: s.spoolDir + "/0a0b.preview.jpg"))

        let spool = try s.open()
        let r = spool.recoveryAtOpen
        #expect(r.removedTempFiles == [".tmp-interrupted"])
        #expect(r.uploadedWithoutFile == [ids[0]])
        #expect(r.missingFiles == [ids[1]])
        #expect(r.adoptedFiles.count == 1)
        let missing = try #require(try spool.item(id: ids[1]))
        #expect(missing.state == .failed && missing.retryAt == nil && missing.lastError?.contains("missing") == true)
        let adopted = try #require(try spool.item(id: r.adoptedFiles[0]))
        #expect(adopted.state == .held && adopted.kind == .preview && adopted.sha256 == sha256Hex(orphan))
        #expect(adopted.lastError?.contains("without a queue record") == true)
        #expect(!fm.fileExists(atPath: s.spoolDir + "/.tmp-interrupted"))
        // Only the real damage (the lost file) remains in the integrity report.
        let check = try spool.integrityCheck(verifyHashes: true)
        #expect(check.sqlite == ["ok"] && check.missingFiles == [ids[1]] && check.unknownFiles.isEmpty)
        #expect(check.mismatchedFiles.isEmpty)
        // A second pass has nothing more to do: the loss is reported once.
        #expect(try spool.recover().isClean)
    }

    @Test func integrityCheckSpotsChangedFiles() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        let id = try spool.enqueue(imageData: bytes(500), preview: nil, metadata: meta()).imageID
        #expect(try spool.integrityCheck(verifyHashes: true).isHealthy)
        let item = try #require(try spool.item(id: id))
        var data = try Data(contentsOf: URL(fileURLWithPath: item.filePath))
        data[EncryptedHeader.size + 10] ^= 0xFF  // inside the first sealed segment
        try data.write(to: URL(fileURLWithPath: item.filePath))
        #expect(try spool.integrityCheck(verifyHashes: false).isHealthy, "same size, header intact: only reading the contents shows it")
        #expect(try spool.integrityCheck(verifyHashes: true).mismatchedFiles == [id])
    }

    @Test func performRunsOffThePoolAndReturns() async throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        let r = try await spool.perform { try $0.enqueue(imageData: bytes(64), preview: nil, metadata: meta()) }
        let status = try await spool.perform { try $0.status() }
        #expect(status.pending.map(\.id) == [r.imageID])
    }
}
