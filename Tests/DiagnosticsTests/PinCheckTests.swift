import Config
import ConfigFile
import Foundation
import Hub
import Testing
@testable import Diagnostics

/// `hub.pin_sha256` in diagnose, against the real hub behind a TLS terminator
/// with a certificate the test makes (Tests/Support/tls_front.py).
@Suite(.serialized) struct PinCheckTests {
    func withTLSHub(_ f: Fixture, _ body: (_ port: Int, _ pin: String) async throws -> Void) async throws {
        let hub = try await HubServer(store: HubStore(directory: f.path + "/store")).start()
        let front = Process()
        front.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        front.arguments = ["python3", URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Support/tls_front.py").standardized.path, f.path, "\(hub.port)"]
        let out = Pipe()
        front.standardOutput = out
        try front.run()
        defer { front.terminate() }
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let port = try #require(Int(line.replacingOccurrences(of: "READY ", with: "")), "tls_front.py said \(line)")
        let pin = try String(contentsOfFile: f.path + "/pin.txt", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        do { try await body(port, pin) } catch { await hub.stop(); throw error }
        await hub.stop()
    }

    func config(_ f: Fixture, port: Int, pin: String) throws -> String {
        try f.config("[hub]\nurl = \"https://127.0.0.1:\(port)/files/\"\nca_file = \"\(f.path)/cert.pem\"\npin_sha256 = \"\(pin)\"\n")
    }

    @Test func wrongPinFailsWithHowToComputeTheRightOne() async throws {
        let f = try Fixture()
        try await withTLSHub(f) { port, _ in
            let r = await runCheck(HubCheck(), f.context(config: try config(f, port: port, pin: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")))
            let tls = try named(r, "hub.tls")
            #expect(tls.status == .fail)
            #expect(tls.finding.contains("hub certificate key does not match hub.pin_sha256"), "\(tls.finding)")
            let next = try #require(tls.nextStep)
            #expect(next.contains("openssl s_client -connect 127.0.0.1:\(port)"), "\(next)")
            #expect(next.contains("openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | openssl base64"))
            #expect(next.contains("hub.pin_sha256"))
            #expect(!r.contains { $0.check == "hub.upload" && $0.status == .pass })
        }
    }

    @Test func matchingPinPasses() async throws {
        let f = try Fixture()
        try await withTLSHub(f) { port, pin in
            let r = await runCheck(HubCheck(), f.context(config: try config(f, port: port, pin: pin)))
            #expect(try named(r, "hub.options").status == .pass)
            #expect(try named(r, "hub.upload").status == .pass)
        }
    }
}
