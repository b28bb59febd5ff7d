import Config
import Foundation
import Hub
import Testing
@testable import Uplink

/// `hub.pin_sha256` against the real hub behind a real TLS terminator whose
/// certificate the test makes (Tests/Support/tls_front.py).
@Suite(.serialized, .timeLimit(.minutes(2))) struct PinningTests {
    /// A valid pin of some other key (SHA-256 of the empty string).
    static let otherPin = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

    struct TLSHub {
        let dir: TempDir
        let url: String
        let port: Int
        let pin: String
        let store: String
    }

    func withTLSHub(_ body: (TLSHub) async throws -> Void) async throws {
        let dir = try TempDir()
        let hub = try await HubServer(store: HubStore(directory: dir.file("store"))).start()
        let front: ChildProcess
        do {
            front = try ChildProcess("/usr/bin/env", ["python3", supportDirectory + "/tls_front.py", dir.path, "\(hub.port)"])
        } catch { await hub.stop(); throw error }
        let pin = try String(contentsOfFile: dir.file("pin.txt"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let setup = TLSHub(dir: dir, url: "https://127.0.0.1:\(front.port)/files/", port: front.port, pin: pin, store: dir.file("store"))
        do { try await body(setup) } catch { front.terminate(); await hub.stop(); throw error }
        front.terminate()
        await hub.stop()
    }

    func client(_ t: TLSHub, pins: [String]) throws -> TusClient {
        try TusClient(hubURL: t.url, uplink: testUplink(), caFile: t.dir.file("cert.pem"), pinSHA256: pins)
    }

    func storedUploads(_ store: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: store)) ?? []).filter { !$0.hasPrefix(".") && !$0.hasSuffix(".json") }
    }

    @Test func matchingPinUploadsByteIdentical() async throws {
        try await withTLSHub { t in
            // The hub's pin among others, as during a planned key change.
            let c = try client(t, pins: [Self.otherPin, t.pin])
            let bytes = randomBytes(300_000, seed: 21)
            let (outcome, _) = await deliver(c, MemoryUploadSource(bytes), metadata(for: bytes), state: JobState())
            guard case let .completed(url) = outcome else { Issue.record("got \(outcome)"); return }
            #expect(url.hasPrefix("https://127.0.0.1:\(t.port)/files/"))
            let stored = try #require(storedUploads(t.store).first)
            #expect(FileManager.default.contents(atPath: t.store + "/" + stored) == Data(bytes))
        }
    }

    @Test func wrongPinIsRefusedBeforeAnyRequestReachesTheHub() async throws {
        try await withTLSHub { t in
            let c = try client(t, pins: [Self.otherPin])
            let bytes = randomBytes(50_000, seed: 22)
            let outcome = await c.upload(UploadJob(source: MemoryUploadSource(bytes), metadata: metadata(for: bytes))) { _ in }
            guard case let .retry(after, reason) = outcome else { Issue.record("got \(outcome)"); return }
            #expect(reason.contains("hub certificate key does not match hub.pin_sha256"), "\(reason)")
            #expect(after >= 0)
            #expect(c.status.lastError?.contains("hub.pin_sha256") == true)
            // The handshake failed, so not even the creation request arrived.
            #expect(storedUploads(t.store).isEmpty)
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: t.store + "/.incoming")) ?? []).isEmpty)
        }
    }

    @Test func theDocumentedCommandComputesThePin() async throws {
        try await withTLSHub { t in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", PinSHA256.command(host: "127.0.0.1", port: t.port)]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(text.trimmingCharacters(in: .whitespacesAndNewlines) == t.pin)
        }
    }

    @Test func pinningNeedsHTTPS() throws {
        #expect(throws: UplinkError.self) {
            _ = try TusClient(hubURL: "http://127.0.0.1:1/files/", pinSHA256: [Self.otherPin])
        }
    }
}
