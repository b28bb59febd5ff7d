import Foundation
import Testing
@testable import Uplink

/// The hub's receipt answers, read as `Receipt` values.
@Suite struct ReceiptTests {
    func response(_ status: Int, _ json: String) -> TusResponse {
        TusResponse(status: status, headers: ["Content-Type": "application/json"], body: Array(json.utf8))
    }

    @Test func everyAnswerOfTheContract() {
        let filed = Receipt.parse(response(200, #"{"state":"filed","where":"pacs","filed_at":"2026-11-30T10:00:00Z","sop_instance_uid":"2.25.1"}"#))
        guard case let .filed(place, detail) = filed else { Issue.record("\(filed)"); return }
        #expect(place == "pacs" && detail.contains("PACS") && detail.contains("2.25.1") && detail.contains("2026-11-30"))
        #expect(Receipt.parse(response(200, #"{"state":"filed","where":"hub"}"#)) == .filed(where: "hub", detail: "filed in the hub's store"))
        #expect(Receipt.parse(response(202, #"{"state":"pending","detail":"PACS refused: 503; next try in 8 s"}"#))
                == .pending(detail: "PACS refused: 503; next try in 8 s"))
        #expect(Receipt.parse(response(202, "")) == .pending(detail: "the hub has not filed it yet"))
        #expect(Receipt.parse(response(409, #"{"state":"rejected","detail":"not a DICOM file"}"#)) == .rejected(detail: "not a DICOM file"))
        #expect(Receipt.parse(response(404, "")) == .unknownUpload)
        #expect(Receipt.parse(response(410, "")) == .unknownUpload)
    }

    /// Anything else is "ask again later", never "received": a 200 that does
    /// not say filed, a server error, a refused token, a body that is not JSON.
    @Test func nothingElseCountsAsFiled() {
        for (status, body) in [(200, #"{"state":"pending"}"#), (200, "<html>ok</html>"), (200, ""), (500, ""),
                               (401, ""), (403, #"{"state":"filed"}"#), (302, "")] {
            let r = Receipt.parse(response(status, body))
            guard case .unavailable = r else { Issue.record("\(status) \(body) read as \(r)"); continue }
        }
        // A very long detail is cut, so a hub cannot flood the queue's history.
        let long = String(repeating: "x", count: 5000)
        #expect(Receipt.parse(response(202, #"{"state":"pending","detail":"\#(long)"}"#)) == .pending(detail: String(long.prefix(300))))
    }

    @Test func theCapabilityComesFromOptions() throws {
        let base = ["Tus-Resumable": "1.0.0", "Tus-Version": "1.0.0", "Tus-Extension": "creation"]
        let plain = try TusCapabilities.parse(TusResponse(status: 204, headers: base)).get()
        #expect(!plain.receipts)
        let hub = try TusCapabilities.parse(TusResponse(status: 204, headers: base.merging(["Telestation-Receipts": "1"]) { $1 })).get()
        #expect(hub.receipts)
        let other = try TusCapabilities.parse(TusResponse(status: 204, headers: base.merging(["Telestation-Receipts": "0"]) { $1 })).get()
        #expect(!other.receipts)
    }
}
