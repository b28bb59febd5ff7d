import Foundation
import Hub
import Testing
@testable import Uplink

/// End to end against real tus servers on loopback: this project's hub
/// in-process, and aiohttp-tus (an independent implementation from PyPI).
@Suite(.timeLimit(.minutes(3))) struct InteropTests {
    func startHub(_ dir: TempDir, token: String? = "hub-token-123") async throws -> (HubStore, RunningHub) {
        let store = try HubStore(directory: dir.file("store"))
        let running = try await HubServer(store: store, token: token).start()
        return (store, running)
    }

    func storedJSON(_ store: String, id: String) throws -> [String: Any] {
        let names = try FileManager.default.contentsOfDirectory(atPath: store)
        let name = try #require(names.first { $0.hasPrefix(id) && $0.hasSuffix(".json") })
        let data = try Data(contentsOf: URL(fileURLWithPath: (store as NSString).appendingPathComponent(name)))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func telestationHubReceivesByteIdenticalFilesWithMetadata() async throws {
        let dir = try TempDir()
        let (_, hub) = try await startHub(dir)
        defer { Task { await hub.stop() } }
        let bytes = randomBytes(1_000_000, seed: 11)
        let path = dir.file("lesion.jpg")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let client = try TusClient(hubURL: hub.url, token: "hub-token-123", uplink: testUplink())
        let meta = metadata(for: bytes)
        let state = JobState()
        let (outcome, _) = await deliver(client, try FileUploadSource(path: path), meta, state: state)
        guard case let .completed(url) = outcome else { Issue.record("got \(outcome)"); return }
        let id = String(url.split(separator: "/").last!)
        let stored = dir.file("store/\(id)-lesion.jpg")
        #expect(FileManager.default.contents(atPath: stored) == Data(bytes))
        let json = try storedJSON(dir.file("store"), id: id)
        #expect(json["sha256_verified"] as? Bool == true)
        #expect(json["sha256"] as? String == sha256Hex(bytes))
        let m = try #require(json["metadata"] as? [String: String])
        #expect(m["filename"] == "lesion.jpg")
        #expect(m["filetype"] == "image/jpeg")
        #expect(m["station"] == "puesto-07")
        #expect(m["case"] == "C-2026-0042")
        #expect(m["site"] == "antebrazo izquierdo")
        #expect(m["priority"] == "urgent")
        #expect(m["kind"] == "image")
        #expect(m["captured_at"] == "2026-09-21T14:13:20Z")
        #expect(m["sha256"] == sha256Hex(bytes))
        // The chunk size grew on a fast loopback link.
        #expect(client.status.chunkSize > 64 << 10)
        #expect(client.status.link.throughput != nil)
    }

    /// The project's hub offers receipts; the client asks for them with the
    /// station's rate cap in force (a receipt request once inherited no cap
    /// and was aborted as "rate lowered" on every capped station).
    @Test(arguments: [Int64(0), 8192])
    func receiptsFromTheHubUnderAnyRateCap(maxRate: Int64) async throws {
        let dir = try TempDir()
        let (_, hub) = try await startHub(dir)
        defer { Task { await hub.stop() } }
        var uplink = testUplink()
        uplink.maxRate = maxRate
        let client = try TusClient(hubURL: hub.url, token: "hub-token-123", uplink: uplink)
        #expect(await client.hubGivesReceipts() == true)
        let bytes = randomBytes(20_000, seed: 31)
        let (outcome, _) = await deliver(client, MemoryUploadSource(bytes), metadata(for: bytes), state: JobState())
        guard case let .completed(url) = outcome else { Issue.record("got \(outcome)"); return }
        guard case let .filed(place, detail) = await client.receipt(for: url) else {
            Issue.record("no filed receipt for a stored upload"); return
        }
        #expect(place == "hub" && detail.contains("hub's store"))
        let unknown = String(url.dropLast(32)) + String(repeating: "0", count: 32)
        #expect(await client.receipt(for: unknown) == .unknownUpload)
        let wrongToken = try TusClient(hubURL: hub.url, token: "not-the-token", uplink: uplink)
        guard case .unavailable = await wrongToken.receipt(for: url) else {
            Issue.record("a refused token must not read as a receipt"); return
        }
    }

    @Test func interruptedUploadResumesFromTheHubsOffset() async throws {
        let dir = try TempDir()
        let (_, hub) = try await startHub(dir)
        defer { Task { await hub.stop() } }
        let bytes = randomBytes(600_000, seed: 12)
        let meta = metadata(for: bytes)
        let state = JobState()
        // First "process": capped at 100 KB/s and killed after the first acknowledged chunk.
        var slow = testUplink()
        slow.maxRate = 100_000
        let first = try TusClient(hubURL: hub.url, token: "hub-token-123", uplink: slow)
        let task = Task {
            await first.upload(UploadJob(source: MemoryUploadSource(bytes), metadata: meta)) { e in
                state.record(e)
                if case let .progress(o) = e, o > 0 { withUnsafeCurrentTask { $0?.cancel() } }
            }
        }
        #expect(await task.value == .cancelled)
        let url = try #require(state.url)
        #expect(state.offset > 0 && state.offset < 600_000)
        let resumedFrom = state.offset
        // Second "process": a new client with the persisted URL and offset.
        let second = try TusClient(hubURL: hub.url, token: "hub-token-123", uplink: testUplink())
        let (outcome, _) = await deliver(second, MemoryUploadSource(bytes), meta, state: state)
        #expect(outcome == .completed(url: url), "the same upload URL, not a new one")
        let afterRestart = state.events.drop { $0 != .progress(offset: resumedFrom) }
        #expect(afterRestart.count > 1)
        #expect(!state.events.dropFirst().contains { if case .created = $0 { true } else { false } }, "never created twice")
        let id = String(url.split(separator: "/").last!)
        #expect(FileManager.default.contents(atPath: dir.file("store/\(id)-lesion.jpg")) == Data(bytes))
    }

    @Test func wrongTokenIsAnAuthFailureWithoutTheToken() async throws {
        let dir = try TempDir()
        let (_, hub) = try await startHub(dir)
        defer { Task { await hub.stop() } }
        let client = try TusClient(hubURL: hub.url, token: "not-the-token", uplink: testUplink())
        let bytes = randomBytes(1000)
        let outcome = await client.upload(UploadJob(source: MemoryUploadSource(bytes), metadata: metadata(for: bytes))) { _ in }
        guard case let .authFailed(status, reason) = outcome else { Issue.record("got \(outcome)"); return }
        #expect(status == 401)
        #expect(!reason.contains("not-the-token"))
    }

    @Test func corruptedFileIsDiscardedByTheHubAndStartedOver() async throws {
        let dir = try TempDir()
        let (_, hub) = try await startHub(dir)
        defer { Task { await hub.stop() } }
        let bytes = randomBytes(100_000, seed: 3)
        var meta = metadata(for: bytes)
        meta.sha256 = sha256Hex(randomBytes(10))  // what the station thinks it sent differs
        let client = try TusClient(hubURL: hub.url, token: "hub-token-123", uplink: testUplink())
        let state = JobState()
        var outcome = UploadOutcome.cancelled
        for _ in 0..<5 {
            outcome = await client.upload(UploadJob(source: MemoryUploadSource(bytes), metadata: meta, resumeURL: state.url,
                                                    acknowledgedOffset: state.offset)) { state.record($0) }
            if outcome == .urlGone { break }
        }
        #expect(outcome == .urlGone)
        let stored = try FileManager.default.contentsOfDirectory(atPath: dir.file("store")).filter { !$0.hasPrefix(".") }
        #expect(stored.isEmpty, "a file failing its sha256 is not stored: \(stored)")
    }

    @Test func pauseStopsSendingAndResumeFinishes() async throws {
        let dir = try TempDir()
        let (store, hub) = try await startHub(dir)
        defer { Task { await hub.stop() } }
        let bytes = randomBytes(400_000, seed: 5)
        var capped = testUplink()
        capped.maxRate = 80_000
        let client = try TusClient(hubURL: hub.url, token: "hub-token-123", uplink: capped)
        let state = LockedBox<String?>(nil)
        let progressed = AsyncStream<Void>.makeStream()
        let task = Task {
            await client.upload(UploadJob(source: MemoryUploadSource(bytes), metadata: metadata(for: bytes))) { e in
                if case let .created(u) = e { state.value = u }
                if case let .progress(o) = e, o > 0 { progressed.continuation.yield() }
            }
        }
        var it = progressed.stream.makeAsyncIterator()
        _ = await it.next()
        client.pause()
        #expect(client.status.paused)
        let id = String(try #require(state.value).split(separator: "/").last!)
        // Wait until the in-flight chunk has been abandoned (the offset stops moving), then check it stays put.
        var previous: Int64 = -1
        var stable = false
        for _ in 0..<40 where !stable {
            try await Task.sleep(for: .milliseconds(500))
            let now = try #require(try await store.lookup(id)).1
            stable = now == previous
            previous = now
        }
        #expect(stable)
        try await Task.sleep(for: .seconds(1))
        #expect(try await store.lookup(id)?.1 == previous, "nothing is sent while paused")
        #expect(previous < 400_000)
        client.resume()
        client.setMaxRate(0)
        guard case .completed = await task.value else { Issue.record("did not complete after resume"); return }
        #expect(FileManager.default.contents(atPath: dir.file("store/\(id)-lesion.jpg")) == Data(bytes))
    }

    @Test(.enabled(if: pythonWith(["aiohttp", "aiohttp_tus"]) != nil, "needs aiohttp and aiohttp-tus: `make deps-test` (python3-aiohttp, aiohttp-tus in .build/venv)"))
    func aiohttpTusReceivesByteIdenticalFilesWithMetadata() async throws {
        let dir = try TempDir()
        let server = try ChildProcess("/usr/bin/env", ["python3", supportDirectory + "/aiohttp_tus_server.py", dir.file("tus")])
        defer { server.terminate() }
        let url = "http://127.0.0.1:\(server.port)/uploads"
        let client = try TusClient(hubURL: url, uplink: testUplink())
        for (i, size) in [1_000_000, 1, 70_000].enumerated() {
            let bytes = randomBytes(size, seed: UInt64(20 + i))
            let meta = metadata(for: bytes, filename: "img-\(i).jpg", kind: i == 1 ? .preview : .image)
            let (outcome, _) = await deliver(client, MemoryUploadSource(bytes), meta, state: JobState())
            guard case .completed = outcome else { Issue.record("upload \(i): \(outcome)"); continue }
            #expect(FileManager.default.contents(atPath: dir.file("tus/img-\(i).jpg")) == Data(bytes))
            let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("tus/img-\(i).jpg.metadata.json")))) as? [String: String]
            #expect(m?["sha256"] == sha256Hex(bytes))
            #expect(m?["filetype"] == "image/jpeg")
            #expect(m?["case"] == "C-2026-0042")
            #expect(m?["kind"] == (i == 1 ? "preview" : "image"))
            #expect(m?["captured_at"] == "2026-09-21T14:13:20Z")
        }
        // aiohttp-tus offers neither checksum nor creation-with-upload: the client must not use them.
        #expect(client.status.capabilities?.checksumAlgorithm == nil)
        #expect(client.status.capabilities?.supportsCreationWithUpload == false)
        // Nor receipts: the station says "sent, no receipt" and asks for none.
        #expect(client.status.capabilities?.receipts == false)
        #expect(await client.hubGivesReceipts() == false)
    }
}
