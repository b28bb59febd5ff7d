import Foundation
import Testing
@testable import Spool

/// Health reports in the spool: stored like images (encrypted), sent after
/// the images of their priority, never shown as images, coalesced to the
/// newest `keep`, and gone (file and row) once delivered and past retention.
@Suite struct HealthItemTests {
    func report(_ n: Int) -> Data { Data(#"{"station":"ps-x","n":\#(n)}"#.utf8) }

    @Test func storedEncryptedAndReadBack() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        let id = try spool.enqueueHealth(report(1), generatedAt: Date(), filename: "ps-x-health.json")
        let item = try #require(try spool.item(id: id))
        #expect(item.kind == .health)
        #expect(item.filePath.hasSuffix(".health.json"))
        let onDisk = try #require(FileManager.default.contents(atPath: item.filePath))
        #expect(onDisk.prefix(5) == Data("TSENC".utf8))
        #expect(try spool.openFile(item).readAll() == report(1))
        #expect(try spool.integrityCheck(verifyHashes: true).isHealthy)
    }

    @Test func notShownAsImagesInStatus() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        _ = try spool.enqueue(imageData: bytes(5000), preview: bytes(500, seed: 2), metadata: ItemMetadata(caseID: "HC-1", filename: "a.jpg"))
        try spool.enqueueHealth(report(1), generatedAt: Date(), filename: "h1.json")
        try spool.enqueueHealth(report(2), generatedAt: Date(), filename: "h2.json")
        let status = try spool.status()
        #expect(status.pending.map(\.kind) == [.preview, .image])
        #expect(status.counts[.queued] == 2)
        #expect(status.bytesPending == 5500)
        #expect(status.healthPending == 2)
        let json = StatusReport.json(status)
        #expect(json.items.allSatisfy { $0.kind != "health" })
        #expect(json.health_pending == 2)
        #expect(StatusReport.text(status).contains("2 health report(s) for the hub waiting"))
    }

    @Test func sentAfterTheImagesOfTheirPriority() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        let early = Date(timeIntervalSince1970: 1_000)
        // The report is older than every image, and still goes last.
        try spool.enqueueHealth(report(1), generatedAt: early, filename: "h.json")
        let routine = try spool.enqueue(imageData: bytes(3000), preview: bytes(300, seed: 3),
                                        metadata: ItemMetadata(caseID: "HC-1", capturedAt: early.addingTimeInterval(10), filename: "r.jpg"))
        let urgent = try spool.enqueue(imageData: bytes(3000, seed: 4), preview: nil,
                                       metadata: ItemMetadata(caseID: "HC-2", priority: .urgent, capturedAt: early.addingTimeInterval(20), filename: "u.jpg"))
        var order: [ItemKind] = []
        var ids: [Int64] = []
        while let item = try spool.claimNext(owner: "t", leaseSeconds: 60) {
            order.append(item.kind)
            ids.append(item.id)
            try spool.markUploaded(id: item.id, owner: "t")
        }
        #expect(order == [.image, .preview, .image, .health])
        #expect(ids.prefix(3) == [urgent.imageID, routine.previewID!, routine.imageID])
    }

    @Test func keepsOnlyTheNewestPendingReports() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        let t0 = Date(timeIntervalSince1970: 1_000_000)
        for n in 0..<10 {
            try spool.enqueueHealth(report(n), generatedAt: t0.addingTimeInterval(Double(n) * 900), filename: "h\(n).json", keep: 4)
        }
        let health = try spool.allItems().filter { $0.kind == .health }
        #expect(health.count == 4)
        #expect(health.map(\.metadata.capturedAt) == (6..<10).map { t0.addingTimeInterval(Double($0) * 900) })
        // Their files are gone too (destroyed, not just unlinked from the queue).
        #expect(s.files().filter { $0.hasSuffix(".health.json") }.count == 4)
        #expect(try spool.integrityCheck().isHealthy)
    }

    @Test func aReportBeingUploadedIsNotDropped() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        let t0 = Date(timeIntervalSince1970: 1_000_000)
        try spool.enqueueHealth(report(0), generatedAt: t0, filename: "h0.json", keep: 2)
        let sending = try #require(try spool.claimNext(owner: "t", leaseSeconds: 60))
        for n in 1..<5 {
            try spool.enqueueHealth(report(n), generatedAt: t0.addingTimeInterval(Double(n)), filename: "h\(n).json", keep: 2)
        }
        let left = try spool.allItems().filter { $0.kind == .health }.map(\.id)
        #expect(left.contains(sending.id))
        #expect(left.count == 3)
        try spool.markUploaded(id: sending.id, owner: "t")
    }

    @Test func deliveredReportsLeaveNoRowAfterRetention() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open(keepUploaded: 0)
        let image = try spool.enqueue(imageData: bytes(2000), preview: nil, metadata: ItemMetadata(caseID: "HC-1", filename: "a.jpg"))
        let id = try spool.enqueueHealth(report(1), generatedAt: Date(), filename: "h.json")
        while let item = try spool.claimNext(owner: "t", leaseSeconds: 60) { try spool.markUploaded(id: item.id, owner: "t") }
        let done = try spool.runRetention(now: Date().addingTimeInterval(1))
        #expect(Set(done.deletedIDs) == [image.imageID, id])
        #expect(try spool.item(id: id) == nil)
        #expect(try spool.item(id: image.imageID)?.fileDeletedAt != nil)
        #expect(s.files().isEmpty)
        #expect(try spool.history(id: image.imageID).count >= 2)
    }

    @Test func recoveryDeletesAReportFileWithoutRow() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        do {
            let spool = try s.open()
            try spool.enqueueHealth(report(1), generatedAt: Date(), filename: "h.json")
        }
        // A file whose row a crash never committed (or coalescing dropped).
        try Data("orphan".utf8).write(to: URL(fileURLWithPath: s.spoolDir + "/" + UUID().uuidString.lowercased() + ".health.json"))
        let spool = try s.open()
        #expect(spool.recoveryAtOpen.removedHealthReports.count == 1)
        #expect(spool.recoveryAtOpen.adoptedFiles.isEmpty)
        #expect(try spool.allItems().count == 1)
        #expect(try spool.integrityCheck().isHealthy)
    }

    @Test func theLastUploadCountsImagesOnly() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        #expect(try spool.lastUploadAt() == nil)
        try spool.enqueueHealth(report(1), generatedAt: Date(), filename: "h.json")
        let h = try #require(try spool.claimNext(owner: "t", leaseSeconds: 60))
        try spool.markUploaded(id: h.id, owner: "t")
        #expect(try spool.lastUploadAt() == nil)
        _ = try spool.enqueue(imageData: bytes(2000), preview: nil, metadata: ItemMetadata(caseID: "HC-1", filename: "a.jpg"))
        let i = try #require(try spool.claimNext(owner: "t", leaseSeconds: 60))
        try spool.markUploaded(id: i.id, owner: "t")
        #expect(try spool.lastUploadAt() != nil)
    }
}
