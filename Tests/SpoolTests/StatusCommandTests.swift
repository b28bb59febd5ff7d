import Foundation
import Testing
@testable import Spool

@Suite struct StatusReportTests {
    func sample() throws -> (Scratch, Spool, EnqueueResult) {
        let s = Scratch()
        let spool = try s.open()
        let r = try spool.enqueue(imageData: bytes(2000), preview: bytes(100), metadata: meta("C-7", priority: .urgent))
        let item = try #require(try spool.claimNext(owner: "d", leaseSeconds: 60))
        try spool.recordUploadURL(id: item.id, url: "https://hub/files/p", owner: "d")
        try spool.markUploaded(id: item.id, owner: "d")
        let image = try #require(try spool.claimNext(owner: "d", leaseSeconds: 60))
        try spool.recordUploadURL(id: image.id, url: "https://hub/files/i", owner: "d")
        try spool.recordOffset(id: image.id, offset: 500, owner: "d")
        return (s, spool, r)
    }

    @Test func jsonHasTheDocumentedShape() throws {
        let (s, spool, r) = try sample()
        defer { s.cleanUp() }
        let data = try StatusReport.jsonData(try spool.status())
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys) == ["counts", "bytes_pending", "oldest_pending_age_s", "awaiting_receipt", "health_pending", "items"])
        let counts = try #require(object["counts"] as? [String: Int])
        #expect(counts == ["queued": 0, "uploading": 1, "uploaded": 1, "received": 0, "failed": 0, "held": 0])
        #expect(object["awaiting_receipt"] as? Int == 0)
        #expect(object["bytes_pending"] as? Int == 1500)
        #expect(object["oldest_pending_age_s"] as? Double != nil)
        let items = try #require(object["items"] as? [[String: Any]])
        #expect(items.count == 1)
        #expect(items[0]["id"] as? Int == Int(r.imageID))
        #expect(items[0]["state"] as? String == "uploading" && items[0]["acked_offset"] as? Int == 500)
        #expect(items[0]["progress"] as? Double == 0.25 && items[0]["case_id"] as? String == "C-7")
    }

    @Test func textShowsCountsAndOneLinePerPendingItem() throws {
        let (s, spool, r) = try sample()
        defer { s.cleanUp() }
        let text = StatusReport.text(try spool.status())
        let lines = text.split(separator: "\n")
        #expect(lines[0] == "queued 0 · uploading 1 · failed 0 · held 0 · uploaded 1 · received 0")
        #expect(lines[1] == "1 sent, no receipt (the hub gives none)")
        #expect(lines[2].hasPrefix("pending 1.5 KB, oldest waiting"))
        #expect(lines.count == 5)
        #expect(lines[4].hasPrefix("\(r.imageID)") && lines[4].contains("500 B/2.0 KB 25%") && lines[4].contains("C-7"))
        let history = StatusReport.history(try #require(try spool.item(id: r.imageID)), try spool.history(id: r.imageID))
        #expect(history.contains("queued → uploading  claimed by d"))
        #expect(history.contains("upload https://hub/files/i"))
    }

    /// Sent but not yet confirmed filed, then received: both counted and said.
    @Test func sentAndReceivedAreToldApart() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        for i in 0..<2 {
            _ = try spool.enqueue(imageData: bytes(1000, seed: UInt8(i)), preview: nil, metadata: meta("C-\(i)"))
            let item = try #require(try spool.claimNext(owner: "d", leaseSeconds: 60))
            try spool.markUploaded(id: item.id, owner: "d", awaitingReceipt: true)
        }
        var text = StatusReport.text(try spool.status())
        #expect(text.contains("2 sent, waiting for the hub's receipt"))
        #expect(text.contains("nothing to send: every image has reached the hub; 2 not yet confirmed filed"))
        try spool.markReceived(id: 1, detail: "filed in the PACS")
        let json = try JSONSerialization.jsonObject(with: StatusReport.jsonData(try spool.status())) as? [String: Any]
        #expect((json?["counts"] as? [String: Int])?["received"] == 1)
        #expect(json?["awaiting_receipt"] as? Int == 1)
        try spool.markReceived(id: 2, detail: "filed in the PACS")
        text = StatusReport.text(try spool.status())
        #expect(text.hasPrefix("queued 0 · uploading 0 · failed 0 · held 0 · uploaded 0 · received 2\nnothing pending"))
    }
}

/// `telestation status` as a user runs it, against a real spool.
@Suite struct StatusCommandTests {
    @Test func statusCommandPrintsTextJSONAndHistory() throws {
        let exe = builtExecutable("telestation")
        try #require(FileManager.default.isExecutableFile(atPath: exe), "telestation is not built")
        let s = Scratch()
        defer { s.cleanUp() }
        let config = s.root + "/station.toml"
        try """
            [station]
            id = "ps-test-01"
            state_dir = "\(s.root)"
            [spool]
            key_file = "\(s.keyPath)"
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let spool = try Spool(directory: s.root + "/spool", databasePath: s.root + "/queue.sqlite", protection: s.protection)
        let r = try spool.enqueue(imageData: bytes(3000), preview: nil, metadata: meta("C-9"))

        let text = try run(exe, ["status", "--config", config])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("queued 1 ·") && text.stdout.contains("C-9"))

        let json = try run(exe, ["status", "--json", "--config", config])
        #expect(json.status == 0, "\(json.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((object["items"] as? [[String: Any]])?.first?["id"] as? Int == Int(r.imageID))
        #expect(object["bytes_pending"] as? Int == 3000)

        let history = try run(exe, ["status", "--item", "\(r.imageID)", "--config", config])
        #expect(history.status == 0 && history.stdout.contains("history:") && history.stdout.contains("queued"))

        let missing = try run(exe, ["status", "--item", "424242", "--config", config])
        #expect(missing.status == 1 && missing.stderr.contains("no item 424242"))
    }
}
