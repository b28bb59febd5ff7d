import Config
import ConfigFile
import Crypto
import Foundation
import Spool
import Testing
import TestSupport
import Uplink
@testable import Station

/// After a failed exchange the worker leaves the hub alone until the retry
/// time the backoff gave, instead of trying every other queued item at once.
/// Real spool, real libcurl against a closed loopback port.
@Suite struct UploadWorkerGateTests {
    @Test func aFailingHubIsNotAskedAgainForEachQueuedItem() async throws {
        let root = NSTemporaryDirectory() + "worker-gate-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let spool = try Spool(directory: root + "/spool", databasePath: root + "/queue.sqlite", minFree: 0,
                              protection: .encrypted(SpoolKey(key: SymmetricKey(size: .bits256), source: "test")))
        for i in 0..<3 {
            _ = try spool.enqueue(imageData: Data(repeating: UInt8(i), count: 1000 + i), preview: nil,
                                  metadata: ItemMetadata(caseID: "4000000\(i)", site: "other", note: "", priority: .routine,
                                                         capturedAt: Date(timeIntervalSince1970: 1_800_000_000 + Double(i)),
                                                         filename: "x\(i).jpg"))
        }
        // A port nobody listens on: every exchange fails at connect.
        let port = try Loopback.closedPort()

        var uplink = StationConfig().uplink
        uplink.backoffMax = 60
        let client = try TusClient(hubURL: "http://127.0.0.1:\(port)/files/", uplink: uplink, backoffBase: 20)
        let worker = UploadWorker(spool: spool, client: client, station: "ps-test")
        let now = Date()
        guard case let .willRetry(first, at, _) = await worker.step(now: now) else {
            Issue.record("the first step did not fail as expected")
            return
        }
        // Straight after: nothing is claimed, the worker waits for the hub's retry time.
        #expect(await worker.step(now: now) == .idle(nextRetry: at))
        #expect(try spool.status().pending.filter { $0.state == .queued }.count == 2)
        #expect(try spool.item(id: first)?.attempts == 1)
        // Once it has passed, the hub is tried again (the first item is due again, and first in order).
        guard case .willRetry(first, _, _) = await worker.step(now: at.addingTimeInterval(0.01)) else {
            Issue.record("the worker did not try again after the retry time")
            return
        }
        #expect(try spool.item(id: first)?.attempts == 2)
    }
}
