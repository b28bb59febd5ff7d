import Crypto
import Foundation
import Hub
import Recompression
import Testing
import TestSupport

/// The hub's side of transport recompression, over real HTTP: a body made by
/// `RecompressedFile` becomes the camera's file; anything else is refused
/// and nothing is stored.
@Suite struct RebuildTests {
    static let jpeg = try! CameraJPEG.encode(.yuyv, width: 640, height: 480, quality: 92, seed: 3)
    static let body = try! RecompressedFile.make(file: jpeg, jpegRange: 0..<jpeg.count)!.encoded()

    static func hex(_ b: [UInt8]) -> String { SHA256.hash(data: b).map { String(format: "%02x", $0) }.joined() }

    static func metadata(original: [UInt8] = jpeg, length: String? = nil, transport: String = "jxl", body: [UInt8] = body) -> String {
        ["filename \(b64("lesion.jpg"))", "sha256 \(b64(hex(original)))", "transport \(b64(transport))",
         "original_length \(b64(length ?? "\(original.count)"))", "transport_sha256 \(b64(hex(body)))"].joined(separator: ",")
    }

    /// Creates an upload and sends `bytes` in one PATCH; returns the PATCH's answer.
    func send(_ hub: RunningHub, _ bytes: [UInt8], metadata: String) async throws -> RawResponse {
        let c = try await raw(hub.port, "POST", "/files/", headers: tus.merging(["Upload-Length": "\(bytes.count)", "Upload-Metadata": metadata]) { $1 })
        try #require(c.status == 201, "POST: \(c.status) \(c.body)")
        let location = try #require(c["location"])
        return try await raw(hub.port, "PATCH", location, headers: tus.merging(["Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"]) { $1 }, body: bytes)
    }

    func storedFiles(_ dir: TempDir) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.file("store")).filter { !$0.hasPrefix(".") && !$0.hasSuffix(".json") }
    }

    @Test func optionsAdvertisesTheTransport() async throws {
        let dir = try TempDir()
        let hub = try await HubServer(store: HubStore(directory: dir.file("store"))).start()
        defer { Task { await hub.stop() } }
        #expect(try await raw(hub.port, "OPTIONS", "/files/")["telestation-transport"] == "jxl")
    }

    @Test func aRecompressedUploadIsStoredAsTheOriginal() async throws {
        let dir = try TempDir()
        let hub = try await HubServer(store: HubStore(directory: dir.file("store"))).start()
        defer { Task { await hub.stop() } }
        #expect(Self.body.count < Self.jpeg.count)
        let r = try await send(hub, Self.body, metadata: Self.metadata())
        #expect(r.status == 204, "\(r.body)")
        let files = try storedFiles(dir)
        #expect(files.count == 1)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("store/" + files[0]))) == Data(Self.jpeg))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("store/.incoming")).filter { $0.hasSuffix(".part") }.isEmpty)
    }

    @Test func creationsAHubCannotRebuildAreRefused() async throws {
        let dir = try TempDir()
        let hub = try await HubServer(store: HubStore(directory: dir.file("store"))).start()
        defer { Task { await hub.stop() } }
        func post(_ metadata: String) async throws -> RawResponse {
            try await raw(hub.port, "POST", "/files/", headers: tus.merging(["Upload-Length": "\(Self.body.count)", "Upload-Metadata": metadata]) { $1 })
        }
        let unknown = try await post(Self.metadata(transport: "webp"))
        #expect(unknown.status == 400 && unknown.body.contains("webp"))
        let noLength = try await post(Self.metadata(length: "many"))
        #expect(noLength.status == 400 && noLength.body.contains("original_length"))
        let noSHA = try await post("transport \(b64("jxl")),original_length \(b64("100"))")
        #expect(noSHA.status == 400 && noSHA.body.contains("sha256"))
    }

    /// Damaged bodies, a wrong declared length, the wrong original: 460,
    /// the upload discarded, nothing stored.
    @Test func whatCannotBeRebuiltIntoTheDeclaredFileIsDiscarded() async throws {
        let dir = try TempDir()
        let hub = try await HubServer(store: HubStore(directory: dir.file("store"))).start()
        defer { Task { await hub.stop() } }
        var flipped = Self.body; flipped[Self.body.count / 2] ^= 0x01
        // The body damaged in transit, caught by transport_sha256.
        let a = try await send(hub, flipped, metadata: Self.metadata())
        #expect(a.status == 460 && a.body.contains("transport_sha256"), "\(a.status) \(a.body)")
        // The same damage with a matching transport_sha256: libjxl refuses it or
        // rebuilds other bytes, which the original's sha256 refuses.
        let b = try await send(hub, flipped, metadata: Self.metadata(body: flipped))
        #expect(b.status == 460, "\(b.status) \(b.body)")
        // The wrong original length.
        let c = try await send(hub, Self.body, metadata: Self.metadata(length: "\(Self.jpeg.count - 1)"))
        #expect(c.status == 460 && c.body.contains("rebuilt"), "\(c.status) \(c.body)")
        // A body that is not one: its magic is missing.
        let d = try await send(hub, Self.jpeg, metadata: Self.metadata(body: Self.jpeg))
        #expect(d.status == 460 && d.body.contains("TSJX"), "\(d.status) \(d.body)")
        // Another image's sha256 declared as the original.
        let other = try CameraJPEG.encode(.yuyv, width: 640, height: 480, quality: 92, seed: 4)
        var wrongMeta = Self.metadata()
        wrongMeta = wrongMeta.replacingOccurrences(of: b64(Self.hex(Self.jpeg)), with: b64(Self.hex(other)))
        let e = try await send(hub, Self.body, metadata: wrongMeta)
        #expect(e.status == 460 && e.body.contains("sha256"), "\(e.status) \(e.body)")
        #expect(try storedFiles(dir).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("store")).filter { $0.hasSuffix(".rebuilding") }.isEmpty)
    }
}
