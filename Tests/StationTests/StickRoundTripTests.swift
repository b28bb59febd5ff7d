import Config
import Crypto
import Foundation
import Hub
import Sneakernet
import Spool
import Logging
import Synchronization
import Testing
import TestSupport
import Uplink
@testable import Station

/// The hub's log lines, to tell how it completed an upload.
final class HubLog: Sendable {
    let lines = Mutex<[String]>([])
    struct Handler: LogHandler {
        let log: HubLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { log.lines.withLock { $0.append(event.message.description) } }
    }
    var logger: Logger { Logger(label: "hub") { _ in Handler(log: self) } }
    func count(_ prefix: String) -> Int { lines.withLock { $0.filter { $0.hasPrefix(prefix) }.count } }
}

/// The station's half of the USB-stick trip, with a real spool, a real hub
/// over HTTP and the upload worker: the station learns the hub's keys from
/// an upload, exports what it owes, the hub imports it, the receipts mark it
/// received, and nothing is created twice when the link is used again.
@Suite struct StickRoundTripTests {
    static func metadata(_ i: Int) -> ItemMetadata {
        ItemMetadata(caseID: "4012345\(i)", site: "back", note: "", priority: .routine,
                     capturedAt: Date(timeIntervalSince1970: 1_800_000_000 + Double(i)), filename: "img\(i).jpg")
    }

    @Test func exportImportReceiptsAndNothingSentTwice() async throws {
        let root = NSTemporaryDirectory() + "stick-trip-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/stick", withIntermediateDirectories: true)
        let spool = try Spool(directory: root + "/spool", databasePath: root + "/queue.sqlite", minFree: 0,
                              protection: .encrypted(SpoolKey(key: SymmetricKey(size: .bits256), source: "test")))
        let store = try HubStore(directory: root + "/hub")
        let token = try StationRegistry(directory: store.directory).enroll("ps-trip")
        let hub = try await HubServer(store: store).start()
        defer { Task { await hub.stop() } }
        try token.write(toFile: root + "/token", atomically: true, encoding: .utf8)
        let keys = StickKeys(directory: root)
        let client = try TusClient(hubURL: hub.url, token: token, uplink: StationConfig().uplink)
        let worker = UploadWorker(spool: spool, client: client, station: "ps-trip", stickKeys: keys, replies: ReplyStore(directory: root))

        // Online once: the upload teaches the station the hub's keys and the hub the station's.
        _ = try spool.enqueue(imageData: Data(repeating: 7, count: 5000), preview: nil, metadata: Self.metadata(0))
        guard case .uploaded = await worker.step() else { Issue.record("the first upload did not complete"); return }
        // Its receipt: received, so not owed any more.
        _ = await worker.checkReceipts()
        #expect(try keys.hubKeys() != nil)
        #expect(StationRegistry(directory: store.directory).stations()["ps-trip"]?.signingKey == (try keys.signingKey().publicKeyBase64))

        // Offline: three images, each with its preview.
        var images: [Data] = []
        for i in 1...3 {
            let bytes = Data((0..<(20_000 + i)).map { UInt8(truncatingIfNeeded: $0 &* (i + 3)) })
            images.append(bytes)
            _ = try spool.enqueue(imageData: bytes, preview: Data(repeating: UInt8(i), count: 900), metadata: Self.metadata(i))
        }
        let owed = StickExport.owed(try spool.allItems())
        #expect(owed.count == 6)
        let written = try await StickExport(spool: spool, station: "ps-trip", keys: keys, transform: nil).export(to: root + "/stick")
        #expect(written.items == 6)

        // At the hub.
        let report = await StickImport(store: store, keys: try #require(HubServer(store: store).keys)).run(root: root + "/stick")
        #expect(report.bundles.map(\.filed) == [6])
        let stored = try await store.records()
        for bytes in images {
            let sha = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            #expect(stored.filter { $0.sha256 == sha }.count == 1)
        }

        // Receipts back at the station: all six received; a second read changes nothing.
        let receipts = try await StickReceiptImport(spool: spool, station: "ps-trip", keys: keys).run(root: root + "/stick")
        #expect(receipts.marked == 6 && receipts.errors.isEmpty)
        #expect(try spool.allItems().filter { $0.kind != .health }.allSatisfy { $0.state == .received || $0.state == .uploaded })
        let again = try await StickReceiptImport(spool: spool, station: "ps-trip", keys: keys).run(root: root + "/stick")
        #expect(again.marked == 0 && again.alreadyReceived == 6)
        // Nothing left for the worker, and the hub holds what it held.
        #expect(await worker.step() == UploadWorker.Step.idle(nextRetry: nil))
        #expect(try await store.records().count == stored.count)
    }

    @Test func beforeItsReceiptsAnExportedItemCostsOneRequestAndNoBytes() async throws {
        let root = NSTemporaryDirectory() + "stick-held-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/stick", withIntermediateDirectories: true)
        let spool = try Spool(directory: root + "/spool", databasePath: root + "/queue.sqlite", minFree: 0,
                              protection: .encrypted(SpoolKey(key: SymmetricKey(size: .bits256), source: "test")))
        let store = try HubStore(directory: root + "/hub")
        let log = HubLog()
        let hub = try await HubServer(store: store, logger: log.logger).start()
        defer { Task { await hub.stop() } }
        let keys = StickKeys(directory: root)
        let client = try TusClient(hubURL: hub.url, uplink: StationConfig().uplink)
        let worker = UploadWorker(spool: spool, client: client, station: "ps-held", stickKeys: keys)
        _ = try spool.enqueue(imageData: Data(repeating: 1, count: 3000), preview: nil, metadata: Self.metadata(0))
        guard case .uploaded = await worker.step() else { Issue.record("the first upload did not complete"); return }
        let image = Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let queued = try spool.enqueue(imageData: image, preview: nil, metadata: Self.metadata(1))
        _ = try await StickExport(spool: spool, station: "ps-held", keys: keys, transform: nil).export(to: root + "/stick")
        _ = await StickImport(store: store, keys: try #require(HubServer(store: store).keys)).run(root: root + "/stick")
        // The link returns before the stick: the worker sends the item, the hub answers "held"
        // to its creation (which carries none of the file) and no PATCH completes it.
        let completedBefore = log.count("upload complete")
        guard case .uploaded = await worker.step() else { Issue.record("the exported item was not completed"); return }
        #expect(log.count("creation of an item already held; 0 bytes of it came with the request") == 1)
        #expect(log.count("upload complete") == completedBefore, "the item's bytes were sent again")
        #expect(try spool.item(id: queued.imageID)?.state == .uploaded)
        let sha = SHA256.hash(data: image).map { String(format: "%02x", $0) }.joined()
        #expect(try await store.records().filter { $0.sha256 == sha }.count == 1)
    }
}
