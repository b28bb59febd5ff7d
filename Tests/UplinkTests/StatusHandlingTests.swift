import Config
import Foundation
import Testing
@testable import Uplink

/// Each status class of the tus exchange against a real HTTP server on
/// loopback that misbehaves in one scripted way.
@Suite(.timeLimit(.minutes(2))) struct StatusHandlingTests {
    let bytes = randomBytes(200_000, seed: 7)

    func client(_ hub: ScriptedHub, token: String? = "s3cret-token", uplink: StationConfig.Uplink = testUplink()) throws -> TusClient {
        try TusClient(hubURL: hub.url, token: token, uplink: uplink)
    }

    func once(_ hub: ScriptedHub, state: JobState = JobState(), token: String? = "s3cret-token") async throws -> UploadOutcome {
        let c = try client(hub, token: token)
        let job = UploadJob(source: MemoryUploadSource(bytes), metadata: metadata(for: bytes), resumeURL: state.url, acknowledgedOffset: state.offset)
        return await c.upload(job) { state.record($0) }
    }

    static func isPatch(_ r: RecordedRequest) -> Bool { r.method == "PATCH" }

    @Test func happyPathSendsTusHeadersAndCompletes() async throws {
        let hub = try await ScriptedHub()
        defer { Task { await hub.stop() } }
        let state = JobState()
        let outcome = try await once(hub, state: state)
        #expect(outcome == .completed(url: hub.url + "u1"))
        #expect(hub.uploads.value["u1"] == bytes)
        let reqs = hub.requests
        #expect(reqs.map(\.method).first == "OPTIONS")
        #expect(reqs.allSatisfy { $0.headers["tus-resumable"] == "1.0.0" })
        #expect(reqs.allSatisfy { $0.headers["authorization"] == "Bearer s3cret-token" })
        let patches = reqs.filter(Self.isPatch)
        #expect(patches.allSatisfy { $0.headers["upload-checksum"]?.hasPrefix("sha256 ") == true }, "the hub offers sha256")
        #expect(patches.allSatisfy { $0.headers["content-type"] == "application/offset+octet-stream" })
        #expect(reqs.first { $0.method == "POST" }?.headers["upload-length"] == "200000")
        #expect(state.events.first == .created(url: hub.url + "u1"))
        #expect(state.events.last == .progress(offset: 200_000))
    }

    @Test func endlessConflictsEndInRetryNotALoop() async throws {
        let hub = try await ScriptedHub { r, _ in
            r.method == "PATCH" && r.headers["upload-offset"] == "0" ? Scripted(status: 409) : nil
        }
        defer { Task { await hub.stop() } }
        let outcome = try await once(hub)
        // Every PATCH at offset 0 gets 409 here, so the client must give up
        // after a few HEADs rather than loop.
        guard case let .retry(_, reason) = outcome else { Issue.record("got \(outcome)"); return }
        #expect(reason.contains("rejecting"))
        let methods = hub.requests.map(\.method)
        #expect(methods.filter { $0 == "HEAD" }.count >= 1)
        #expect(methods.filter { $0 == "POST" }.count == 1, "a conflict never creates a new upload")
    }

    @Test func singleConflictRecovers() async throws {
        let hub = try await ScriptedHub { r, i in
            r.method == "PATCH" && i == 2 ? Scripted(status: 409) : nil
        }
        defer { Task { await hub.stop() } }
        let outcome = try await once(hub)
        #expect(outcome == .completed(url: hub.url + "u1"))
        let methods = hub.requests.map(\.method)
        #expect(Array(methods.prefix(4)) == ["OPTIONS", "POST", "PATCH", "HEAD"])
        #expect(hub.uploads.value["u1"] == bytes)
    }

    @Test(arguments: [404, 410]) func goneURLIsReported(status: Int) async throws {
        let hub = try await ScriptedHub { r, _ in r.method == "PATCH" ? Scripted(status: status) : nil }
        defer { Task { await hub.stop() } }
        #expect(try await once(hub) == .urlGone)
    }

    @Test func goneOnHeadOfAStoredURLLetsTheCallerStartOver() async throws {
        let hub = try await ScriptedHub()
        defer { Task { await hub.stop() } }
        let state = JobState()
        state.url = hub.url + "vanished"
        state.offset = 50_000
        let c = try client(hub)
        let (outcome, attempts) = await deliver(c, MemoryUploadSource(bytes), metadata(for: bytes), state: state)
        #expect(attempts == 2)
        guard case .completed = outcome else { Issue.record("got \(outcome)"); return }
        #expect(hub.uploads.value.values.contains(bytes))
    }

    @Test(arguments: [412, 413, 415]) func configurationProblemsHold(status: Int) async throws {
        let hub = try await ScriptedHub { r, _ in r.method == "POST" ? Scripted(status: status, body: "nope") : nil }
        defer { Task { await hub.stop() } }
        guard case let .hold(reason) = try await once(hub) else { Issue.record("\(status) did not hold"); return }
        #expect(reason.contains("\(status)"))
    }

    @Test(arguments: [401, 403]) func authFailuresNeverLeakTheToken(status: Int) async throws {
        let hub = try await ScriptedHub { r, _ in
            // A hostile or careless hub echoing the credentials back.
            r.method == "POST" ? Scripted(status: status, body: "bad credentials: \(r.headers["authorization"] ?? "")") : nil
        }
        defer { Task { await hub.stop() } }
        let c = try client(hub)
        let job = UploadJob(source: MemoryUploadSource(bytes), metadata: metadata(for: bytes))
        let outcome = await c.upload(job) { _ in }
        guard case let .authFailed(got, reason) = outcome else { Issue.record("got \(outcome)"); return }
        #expect(got == status)
        #expect(!reason.contains("s3cret-token"))
        #expect(reason.contains("[token]"))
        #expect(!(c.status.lastError ?? "").contains("s3cret-token"))
        #expect(!"\(outcome)".contains("s3cret-token"))
    }

    @Test(arguments: [423, 429, 500, 503]) func transientStatusRetriesHonouringRetryAfter(status: Int) async throws {
        let hub = try await ScriptedHub { r, _ in r.method == "PATCH" ? Scripted(status: status, headers: ["Retry-After": "4"]) : nil }
        defer { Task { await hub.stop() } }
        guard case let .retry(after, reason) = try await once(hub) else { Issue.record("\(status) not retried"); return }
        #expect(after == 4, "Retry-After 4 s is above the first jitter window of 1 s, within backoff_max 5 s")
        #expect(reason.contains("\(status)"))
    }

    @Test func absurdRetryAfterIsCappedByBackoffMax() async throws {
        let hub = try await ScriptedHub { r, _ in r.method == "PATCH" ? Scripted(status: 503, headers: ["Retry-After": "31536000"]) : nil }
        defer { Task { await hub.stop() } }
        guard case let .retry(after, _) = try await once(hub) else { Issue.record("not retried"); return }
        #expect(after == 5)
    }

    @Test func checksumsContinueAfterADrop() async throws {
        let hub = try await ScriptedHub { r, i in
            r.method == "PATCH" && i == 2 ? Scripted(status: 503) : nil
        }
        defer { Task { await hub.stop() } }
        let (outcome, _) = await deliver(try client(hub), MemoryUploadSource(bytes), metadata(for: bytes), state: JobState())
        #expect(outcome == .completed(url: hub.url + "u1"))
        #expect(hub.requests.filter(Self.isPatch).allSatisfy { $0.headers["upload-checksum"]?.hasPrefix("sha256 ") == true })
        #expect(hub.uploads.value["u1"] == bytes)
    }

    @Test func checksumMismatchResendsTheChunk() async throws {
        let hub = try await ScriptedHub { r, i in r.method == "PATCH" && i == 2 ? Scripted(status: 460) : nil }
        defer { Task { await hub.stop() } }
        #expect(try await once(hub) == .completed(url: hub.url + "u1"))
        let patches = hub.requests.filter(Self.isPatch)
        #expect(patches[0].headers["upload-offset"] == "0")
        #expect(patches[1].headers["upload-offset"] == "0", "the damaged chunk is sent again")
        #expect(hub.uploads.value["u1"] == bytes)
    }

    @Test func locationOnAnotherHostIsRefusedAndTheTokenStaysHome() async throws {
        let hub = try await ScriptedHub { r, _ in
            r.method == "POST" ? Scripted(status: 201, headers: ["Location": "http://198.51.100.7/files/x"]) : nil
        }
        defer { Task { await hub.stop() } }
        guard case let .hold(reason) = try await once(hub) else { Issue.record("followed the Location"); return }
        #expect(reason.contains("198.51.100.7"))
        #expect(!hub.requests.contains { $0.method == "PATCH" })
    }

    @Test func redirectsAreNotFollowed() async throws {
        let hub = try await ScriptedHub { r, _ in
            r.method == "POST" ? Scripted(status: 307, headers: ["Location": "/files/"]) : nil
        }
        defer { Task { await hub.stop() } }
        guard case let .hold(reason) = try await once(hub) else { Issue.record("redirect loop not stopped"); return }
        #expect(reason.contains("307"))
        #expect(hub.requests.filter { $0.method == "POST" }.count == 1)
    }

    @Test func overclaimedOffsetIsAProtocolViolation() async throws {
        let hub = try await ScriptedHub { r, _ in
            r.method == "PATCH" ? Scripted(status: 204, headers: ["Upload-Offset": "999999999"]) : nil
        }
        defer { Task { await hub.stop() } }
        guard case let .retry(_, reason) = try await once(hub) else { Issue.record("accepted a bogus offset"); return }
        #expect(reason.contains("protocol violation"))
    }

    @Test func giantHeadersAreCutOff() async throws {
        let hub = try await ScriptedHub { r, _ in
            r.method == "PATCH" ? Scripted(status: 204, headers: ["X-Padding": String(repeating: "a", count: 70_000), "Upload-Offset": "0"]) : nil
        }
        defer { Task { await hub.stop() } }
        guard case let .retry(_, reason) = try await once(hub) else { Issue.record("accepted 70 KB of headers"); return }
        #expect(reason.contains("headers"))
    }

    @Test func giantBodiesAreCutOff() async throws {
        let hub = try await ScriptedHub { r, _ in
            r.method == "PATCH" ? Scripted(status: 500, body: String(repeating: "<html>captive portal</html>", count: 5000)) : nil
        }
        defer { Task { await hub.stop() } }
        guard case let .retry(_, reason) = try await once(hub) else { Issue.record("not retried"); return }
        #expect(reason.contains("larger than"))
    }

    @Test func tooLargeForTusMaxSizeHoldsWithoutCreating() async throws {
        let hub = try await ScriptedHub { r, _ in
            r.method == "OPTIONS" ? Scripted(status: 204, headers: ["Tus-Version": "1.0.0", "Tus-Extension": "creation", "Tus-Max-Size": "1000"]) : nil
        }
        defer { Task { await hub.stop() } }
        guard case let .hold(reason) = try await once(hub) else { Issue.record("not held"); return }
        #expect(reason.contains("Tus-Max-Size"))
        #expect(!hub.requests.contains { $0.method == "POST" })
    }

    @Test func creationWithUploadSendsTheFirstChunkInThePost() async throws {
        let hub = try await ScriptedHub(extensions: "creation,creation-with-upload")
        defer { Task { await hub.stop() } }
        #expect(try await once(hub) == .completed(url: hub.url + "u1"))
        let post = hub.requests.first { $0.method == "POST" }!
        #expect(post.bodyCount == 16 << 10, "a piece no larger than min_chunk: a cut POST loses it whole")
        #expect(post.headers["upload-checksum"] == nil, "no checksum extension offered here")
        #expect(hub.uploads.value["u1"] == bytes)
    }

    @Test func aSmallFileIsNeverCompletedByItsPost() async throws {
        let hub = try await ScriptedHub(extensions: "creation,creation-with-upload")
        defer { Task { await hub.stop() } }
        let small = Array(bytes.prefix(1000))
        let c = try TusClient(hubURL: hub.url, uplink: testUplink())
        let outcome = await c.upload(UploadJob(source: MemoryUploadSource(small), metadata: metadata(for: small))) { _ in }
        #expect(outcome == .completed(url: hub.url + "u1"))
        #expect(hub.requests.filter { $0.method == "POST" }.map(\.bodyCount) == [999])
        #expect(hub.requests.filter { $0.method == "PATCH" }.map(\.bodyCount) == [1], "the last byte goes to a URL the station already stored")
        #expect(hub.uploads.value["u1"] == small)
    }

    /// To a hub that keeps one copy per item (it gives receipts), a small
    /// file that names its item goes whole in its POST: a creation repeated
    /// after a power cut is answered "held" (CreationSafetyTests), so the
    /// last byte needs no PATCH and its round trip. Without the item's name
    /// the last byte still waits for a stored URL.
    @Test func aSmallNamedItemGoesWholeInItsPostToAHubThatKeepsOneCopy() async throws {
        let hub = try await ScriptedHub(extensions: "creation,creation-with-upload") { r, _ in
            r.method == "OPTIONS" ? Scripted(status: 204, headers: ["Tus-Version": "1.0.0", "Tus-Resumable": "1.0.0",
                                                                     "Tus-Extension": "creation,creation-with-upload",
                                                                     "Telestation-Receipts": "1"]) : nil
        }
        defer { Task { await hub.stop() } }
        let small = Array(bytes.prefix(1000))
        var named = metadata(for: small, filename: "lesion-preview.jpg", kind: .preview)
        named.extra = [("item", "0042-preview.jpg")]
        let c = try TusClient(hubURL: hub.url, uplink: testUplink())
        #expect(await c.upload(UploadJob(source: MemoryUploadSource(small), metadata: named)) { _ in } == .completed(url: hub.url + "u1"))
        #expect(hub.requests.filter { $0.method == "POST" }.map(\.bodyCount) == [1000])
        #expect(!hub.requests.contains { $0.method == "PATCH" }, "the POST completed it")
        #expect(hub.uploads.value["u1"] == small)

        let unnamed = metadata(for: small, filename: "lesion-preview.jpg", kind: .preview)
        #expect(await c.upload(UploadJob(source: MemoryUploadSource(small), metadata: unnamed)) { _ in } == .completed(url: hub.url + "u2"))
        #expect(hub.requests.filter { $0.method == "POST" }.map(\.bodyCount) == [1000, 999])
        #expect(hub.requests.filter { $0.method == "PATCH" }.map(\.bodyCount) == [1], "without the item's name the last byte waits for a stored URL")
    }

    @Test func stalledHubIsAbandonedAfterStallTimeout() async throws {
        let hub = try await ScriptedHub { r, _ in
            r.method == "PATCH" ? Scripted(status: 204, delay: 150) : nil
        }
        defer { Task { await hub.stop() } }
        let c = try TusClient(hubURL: hub.url, uplink: testUplink(stall: 2))
        let job = UploadJob(source: MemoryUploadSource(bytes), metadata: metadata(for: bytes))
        let started = Date()
        let outcome = await c.upload(job) { _ in }
        guard case let .retry(_, reason) = outcome else { Issue.record("got \(outcome)"); return }
        #expect(reason.contains("curl_easy_perform"))
        // Long before the 150 s the hub would hang; generous for a loaded machine.
        #expect(Date().timeIntervalSince(started) < 100)
    }
}
