import Foundation
import Hub
import Testing
@testable import Uplink

/// The power-cut campaign (Tests/Campaigns/power_cut.py, seed 1234) found
/// images stored twice on the hub: a creation-with-upload `POST` carried a
/// whole small file, the hub completed it, and the station was killed before
/// it recorded the `Location`; after the restart it created the upload again.
/// The client now lets a `POST` complete an upload only where a repeated
/// creation cannot store a second copy: to a hub that keeps one copy per item
/// (one that gives receipts), for an upload that names its item.
@Suite(.timeLimit(.minutes(2))) struct CreationSafetyTests {
    @Test func theCreatingPostHoldsBackTheLastByteAndCarriesAtMostMinChunk() {
        #expect(TusSession.creationBody(size: 10_000, chunk: 65_536, minChunk: 16_384) == 9_999)
        #expect(TusSession.creationBody(size: 200_000, chunk: 65_536, minChunk: 16_384) == 16_384)
        #expect(TusSession.creationBody(size: 200_000, chunk: 8_192, minChunk: 16_384) == 8_192)
        #expect(TusSession.creationBody(size: 1, chunk: 65_536, minChunk: 16_384) == 0)
        #expect(TusSession.creationBody(size: 16_385, chunk: 65_536, minChunk: 16_384) == 16_384)
        #expect(TusSession.creationBody(size: 16_384, chunk: 65_536, minChunk: 16_384) == 16_383)
    }

    @Test func toAHubThatKeepsOneCopyPerItemASmallFileGoesWhole() {
        #expect(TusSession.creationBody(size: 10_000, chunk: 65_536, minChunk: 16_384, mayComplete: true) == 10_000)
        #expect(TusSession.creationBody(size: 1, chunk: 65_536, minChunk: 16_384, mayComplete: true) == 1)
        #expect(TusSession.creationBody(size: 16_384, chunk: 65_536, minChunk: 16_384, mayComplete: true) == 16_384)
        // Larger than min_chunk, or than the chunk: a piece, as before.
        #expect(TusSession.creationBody(size: 16_385, chunk: 65_536, minChunk: 16_384, mayComplete: true) == 16_384)
        #expect(TusSession.creationBody(size: 10_000, chunk: 8_192, minChunk: 16_384, mayComplete: true) == 8_192)
        #expect(TusSession.creationBody(size: 200_000, chunk: 65_536, minChunk: 16_384, mayComplete: true) == 16_384)
    }

    /// The case the campaign found, with the item's name: the POST completes
    /// the small file; the station is cut off as it learns the URL and,
    /// restarted, creates the upload again; the hub answers that it holds
    /// the item, and keeps one copy.
    @Test func aSmallNamedItemCompletedByItsPostIsStoredOnceAfterAPowerCut() async throws {
        let dir = try TempDir()
        let store = dir.file("store")
        let hub = try await HubServer(store: HubStore(directory: store)).start()
        defer { Task { await hub.stop() } }
        func completedOnHub() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: store)) ?? []).filter { !$0.hasPrefix(".") && !$0.hasSuffix(".json") }
        }
        let bytes = randomBytes(9_000, seed: 41)
        var meta = metadata(for: bytes, filename: "lesion-preview.jpg", kind: .preview)
        meta.extra = [("item", "0042-preview.jpg")]
        var storedWhenCreated: Int?
        let first = try TusClient(hubURL: hub.url, uplink: testUplink())
        let outcome = await first.upload(UploadJob(source: MemoryUploadSource(bytes), metadata: meta)) { event in
            if case .created = event, storedWhenCreated == nil { storedWhenCreated = completedOnHub().count }
        }
        guard case .completed = outcome else { Issue.record("first upload: \(outcome)"); return }
        #expect(storedWhenCreated == 1, "the POST carried the whole file and the hub stored it")

        // Restarted without the URL: created again.
        let again = try TusClient(hubURL: hub.url, uplink: testUplink())
        let second = await again.upload(UploadJob(source: MemoryUploadSource(bytes), metadata: meta)) { _ in }
        guard case .completed = second else { Issue.record("second upload: \(second)"); return }
        #expect(completedOnHub().count == 1, "stored twice: \(completedOnHub())")
    }

    @Test func noUploadIsCompleteWhenItsURLIsHandedOverForPersisting() async throws {
        let dir = try TempDir()
        let store = dir.file("store")
        let hub = try await HubServer(store: HubStore(directory: store)).start()
        defer { Task { await hub.stop() } }
        let client = try TusClient(hubURL: hub.url, uplink: testUplink())
        func completedOnHub() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: store)) ?? []).filter { !$0.hasPrefix(".") && !$0.hasSuffix(".json") }
        }
        // Sizes below, at and just above the first chunk, and a one-byte file.
        for (i, size) in [1, 9_000, 65_536, 65_537].enumerated() {
            let bytes = randomBytes(size, seed: UInt64(30 + i))
            let before = completedOnHub().count
            var completeAtCreation: [Int] = []
            let outcome = await client.upload(UploadJob(source: MemoryUploadSource(bytes), metadata: metadata(for: bytes))) { event in
                // A power cut here, before the URL is durable, must leave nothing complete on the hub.
                if case .created = event, completedOnHub().count != before { completeAtCreation.append(size) }
            }
            guard case .completed = outcome else { Issue.record("\(size) bytes: \(outcome)"); continue }
            #expect(completeAtCreation.isEmpty, "the POST completed an upload of \(size) bytes")
            #expect(completedOnHub().count == before + 1)
        }
    }
}
