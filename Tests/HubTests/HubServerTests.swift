import Crypto
import Foundation
import Testing
@testable import Hub

/// The hub over real HTTP on loopback, one test per tus rule.
@Suite(.timeLimit(.minutes(2))) struct HubServerTests {
    func start(_ dir: TempDir, token: String? = nil, options: HubServer.Options = HubServer.Options()) async throws -> RunningHub {
        try await HubServer(store: try HubStore(directory: dir.file("store")), token: token, options: options).start()
    }

    func create(_ hub: RunningHub, length: Int, metadata: String? = nil, extra: [String: String] = [:]) async throws -> String {
        var h = tus.merging(["Upload-Length": "\(length)"]) { $1 }
        if let metadata { h["Upload-Metadata"] = metadata }
        let r = try await raw(hub.port, "POST", "/files/", headers: h.merging(extra) { $1 })
        #expect(r.status == 201)
        return try #require(r["location"])
    }

    func patch(_ hub: RunningHub, _ path: String, offset: Int, _ body: [UInt8], extra: [String: String] = [:]) async throws -> RawResponse {
        try await raw(hub.port, "PATCH", path, headers: tus.merging(["Upload-Offset": "\(offset)", "Content-Type": "application/offset+octet-stream"]) { $1 }
            .merging(extra) { $1 }, body: body)
    }

    @Test func optionsAdvertisesTheExtensions() async throws {
        let dir = try TempDir()
        let hub = try await start(dir)
        defer { Task { await hub.stop() } }
        let r = try await raw(hub.port, "OPTIONS", "/files/")
        #expect(r.status == 204)
        #expect(r["tus-version"] == "1.0.0")
        #expect(Set((r["tus-extension"] ?? "").split(separator: ",").map(String.init)) ==
                ["creation", "creation-with-upload", "checksum", "termination", "expiration"])
        #expect(r["tus-checksum-algorithm"] == "sha1,sha256")
        #expect(r["tus-max-size"] == "\(1 << 30)")
    }

    @Test func createPatchHeadAndStoreWithMetadata() async throws {
        let dir = try TempDir()
        let hub = try await start(dir)
        defer { Task { await hub.stop() } }
        let data = Array("hello, hub".utf8)
        let sha = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        let location = try await create(hub, length: data.count, metadata: "filename \(b64("a/../b.jpg")),sha256 \(b64(sha)),case \(b64("C-1"))")
        #expect(location.hasPrefix("/files/"))
        let p1 = try await patch(hub, location, offset: 0, Array(data[0..<4]))
        #expect(p1.status == 204)
        #expect(p1["upload-offset"] == "4")
        #expect(p1["upload-expires"] != nil)
        let h = try await raw(hub.port, "HEAD", location, headers: tus)
        #expect(h.status == 200)
        #expect(h["upload-offset"] == "4")
        #expect(h["upload-length"] == "\(data.count)")
        #expect(h["cache-control"] == "no-store")
        let p2 = try await patch(hub, location, offset: 4, Array(data[4...]))
        #expect(p2["upload-offset"] == "\(data.count)")
        let id = String(location.dropFirst("/files/".count))
        // The file name from the station cannot climb out of the store.
        let stored = dir.file("store/\(id)-a_.._b.jpg")
        #expect(FileManager.default.contents(atPath: stored) == Data(data))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: stored + ".json"))) as? [String: Any]
        #expect(json?["sha256_verified"] as? Bool == true)
        #expect((json?["metadata"] as? [String: String])?["case"] == "C-1")
        let after = try await raw(hub.port, "HEAD", location, headers: tus)
        #expect(after["upload-offset"] == "\(data.count)", "a finished upload still answers HEAD")
    }

    @Test func wrongOffsetIs409() async throws {
        let dir = try TempDir()
        let hub = try await start(dir)
        defer { Task { await hub.stop() } }
        let location = try await create(hub, length: 10)
        let r = try await patch(hub, location, offset: 3, [1, 2, 3])
        #expect(r.status == 409)
    }

    @Test func missingTusResumableIs412AndWrongContentTypeIs415() async throws {
        let dir = try TempDir()
        let hub = try await start(dir)
        defer { Task { await hub.stop() } }
        let r = try await raw(hub.port, "POST", "/files/", headers: ["Upload-Length": "5"])
        #expect(r.status == 412)
        #expect(r["tus-version"] == "1.0.0")
        let location = try await create(hub, length: 5)
        let p = try await raw(hub.port, "PATCH", location, headers: tus.merging(["Upload-Offset": "0", "Content-Type": "text/plain"]) { $1 }, body: [1])
        #expect(p.status == 415)
    }

    @Test func tooLargeIs413AndBadInputIs400() async throws {
        let dir = try TempDir()
        var options = HubServer.Options()
        options.maxSize = 100
        let hub = try await start(dir, options: options)
        defer { Task { await hub.stop() } }
        #expect(try await raw(hub.port, "POST", "/files/", headers: tus.merging(["Upload-Length": "101"]) { $1 }).status == 413)
        let bad = try await raw(hub.port, "POST", "/files/", headers: tus.merging(["Upload-Length": "-1"]) { $1 })
        #expect(bad.status == 400)
        #expect(bad.body.contains("Upload-Length"))
        let meta = try await raw(hub.port, "POST", "/files/", headers: tus.merging(["Upload-Length": "1", "Upload-Metadata": "filename !!notbase64"]) { $1 })
        #expect(meta.status == 400)
        #expect(meta.body.contains("filename"))
        let location = try await create(hub, length: 3)
        let over = try await patch(hub, location, offset: 0, [1, 2, 3, 4])
        #expect(over.status == 413)
    }

    @Test func checksumExtension() async throws {
        let dir = try TempDir()
        let hub = try await start(dir)
        defer { Task { await hub.stop() } }
        let location = try await create(hub, length: 6)
        let chunk: [UInt8] = [1, 2, 3]
        let sha1 = Data(Insecure.SHA1.hash(data: chunk)).base64EncodedString()
        let wrong = Data(Insecure.SHA1.hash(data: [9])).base64EncodedString()
        let bad = try await patch(hub, location, offset: 0, chunk, extra: ["Upload-Checksum": "sha1 \(wrong)"])
        #expect(bad.status == 460)
        #expect(try await raw(hub.port, "HEAD", location, headers: tus)["upload-offset"] == "0", "a damaged chunk is not kept")
        #expect(try await patch(hub, location, offset: 0, chunk, extra: ["Upload-Checksum": "sha1 \(sha1)"]).status == 204)
        let sha256 = Data(SHA256.hash(data: [4, 5, 6])).base64EncodedString()
        #expect(try await patch(hub, location, offset: 3, [4, 5, 6], extra: ["Upload-Checksum": "sha256 \(sha256)"]).status == 204)
        let other = try await create(hub, length: 6)
        let md5 = try await patch(hub, other, offset: 0, [1], extra: ["Upload-Checksum": "md5 AAAA"])
        #expect(md5.status == 400)
    }

    @Test func creationWithUploadAndTermination() async throws {
        let dir = try TempDir()
        let hub = try await start(dir)
        defer { Task { await hub.stop() } }
        let r = try await raw(hub.port, "POST", "/files/", headers: tus.merging(["Upload-Length": "10", "Content-Type": "application/offset+octet-stream"]) { $1 },
                              body: [1, 2, 3, 4])
        #expect(r.status == 201)
        #expect(r["upload-offset"] == "4")
        let location = try #require(r["location"])
        #expect(try await raw(hub.port, "DELETE", location, headers: tus).status == 204)
        #expect(try await raw(hub.port, "HEAD", location, headers: tus).status == 404)
        #expect(try await patch(hub, location, offset: 4, [5]).status == 404)
    }

    @Test func expiredUploadsAreGone() async throws {
        let dir = try TempDir()
        var options = HubServer.Options()
        options.expiry = -1
        let hub = try await start(dir, options: options)
        defer { Task { await hub.stop() } }
        let location = try await create(hub, length: 10)
        #expect(try await raw(hub.port, "HEAD", location, headers: tus).status == 410)
        #expect(try await raw(hub.port, "HEAD", location, headers: tus).status == 404, "and then forgotten")
    }

    @Test func bearerTokenIsRequired() async throws {
        let dir = try TempDir()
        let hub = try await start(dir, token: "abc123")
        defer { Task { await hub.stop() } }
        #expect(try await raw(hub.port, "POST", "/files/", headers: tus.merging(["Upload-Length": "1"]) { $1 }).status == 401)
        #expect(try await raw(hub.port, "POST", "/files/", headers: tus.merging(["Upload-Length": "1", "Authorization": "Bearer abc12"]) { $1 }).status == 401)
        #expect(try await raw(hub.port, "POST", "/files/", headers: tus.merging(["Upload-Length": "1", "Authorization": "Bearer abc123"]) { $1 }).status == 201)
        #expect(try await raw(hub.port, "OPTIONS", "/files/").status == 204, "discovery needs no token")
    }

    @Test func partialBytesOfAnInterruptedPatchAreKeptAcrossRestarts() async throws {
        let dir = try TempDir()
        let hub = try await start(dir)
        let location = try await create(hub, length: 100_000)
        let body = (0..<100_000).map { UInt8($0 % 256) }
        _ = try? await raw(hub.port, "PATCH", location, headers: tus.merging(["Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"]) { $1 },
                           body: body, truncateBodyAt: 30_000)
        // The hub notices the cut asynchronously; poll HEAD until it has.
        var offset = "0"
        for _ in 0..<100 where offset != "30000" {
            offset = try await raw(hub.port, "HEAD", location, headers: tus)["upload-offset"] ?? "?"
            if offset != "30000" { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(offset == "30000")
        await hub.stop()
        let restarted = try await start(dir)
        defer { Task { await restarted.stop() } }
        #expect(try await raw(restarted.port, "HEAD", location, headers: tus)["upload-offset"] == "30000", "kept across a hub restart")
        #expect(try await patch(restarted, location, offset: 30_000, Array(body[30_000...])).status == 204)
        let id = String(location.dropFirst("/files/".count))
        #expect(FileManager.default.contents(atPath: dir.file("store/\(id)-upload")) == Data(body))
    }

    @Test func sha256MismatchDiscardsTheUpload() async throws {
        let dir = try TempDir()
        let hub = try await start(dir)
        defer { Task { await hub.stop() } }
        let location = try await create(hub, length: 3, metadata: "sha256 \(b64(String(repeating: "0", count: 64)))")
        let r = try await patch(hub, location, offset: 0, [1, 2, 3])
        #expect(r.status == 460)
        #expect(r.body.contains("sha256"))
        #expect(try await raw(hub.port, "HEAD", location, headers: tus).status == 404)
    }

    @Test func metadataRoundTrip() throws {
        let m = ["filename": "x.jpg", "empty": "", "site": "pie derecho ñ"]
        #expect(try TusMetadata.parse(TusMetadata.encode(m)).get() == m)
        guard case .failure = TusMetadata.parse("a \(b64("1")),a \(b64("2"))") else { Issue.record("accepted a repeated key"); return }
        guard case .failure = TusMetadata.parse("a b c") else { Issue.record("accepted three fields"); return }
    }
}
