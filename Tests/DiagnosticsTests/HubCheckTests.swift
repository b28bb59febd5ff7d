import Config
import ConfigFile
import Foundation
import Hub
import Testing
@testable import Diagnostics

/// The hub checks against real servers on loopback: the project's hub with
/// and without the right token, and an HTTPS server whose certificate has expired.
@Suite(.serialized) struct HubCheckTests {
    func withHub(token: String, _ body: (String) async throws -> Void) async throws {
        let store = NSTemporaryDirectory() + "diag-hub-\(UUID().uuidString)"
        let hub = try await HubServer(store: HubStore(directory: store), token: token).start()
        do { try await body(hub.url) } catch { await hub.stop(); throw error }
        await hub.stop()
        try? FileManager.default.removeItem(atPath: store)
    }

    @Test func acceptedTokenProbeUploadAndTermination() async throws {
        try await withHub(token: "right-token") { url in
            let f = try Fixture()
            let token = try f.file("token", "right-token\n", mode: 0o600)
            let r = await runCheck(HubCheck(), f.context(config: try f.config("[hub]\nurl = \"\(url)\"\ntoken_file = \"\(token)\"\n")))
            let options = try named(r, "hub.options")
            #expect(options.status == .pass)
            #expect(options.finding.contains("creation") && options.finding.contains("termination"))
            #expect(try named(r, "hub.clock").status == .pass)
            #expect(try named(r, "hub.auth").status == .pass)
            let upload = try named(r, "hub.upload")
            #expect(upload.status == .pass)
            #expect(upload.finding.contains("removed again"))
        }
    }

    @Test func rejectedTokenSaysWhatToReplace() async throws {
        try await withHub(token: "right-token") { url in
            let f = try Fixture()
            let token = try f.file("token", "old-token\n", mode: 0o600)
            let r = await runCheck(HubCheck(), f.context(config: try f.config("[hub]\nurl = \"\(url)\"\ntoken_file = \"\(token)\"\n")))
            let auth = try named(r, "hub.auth")
            #expect(auth.status == .fail)
            #expect(auth.finding == "hub rejected the token (401)")
            #expect(auth.nextStep == "replace \(token) with the token the hub issued to this station; see README §Enrolment")
            let report = DiagnosticReport(station: "ps", generatedAt: Date(), results: r)
            #expect(!report.json().contains("old-token") && !report.table(color: false).contains("old-token"))
        }
    }

    @Test func expiredCertificateFails() async throws {
        let f = try Fixture()
        let server = try TLSTestServer(dir: f.path, daysLeft: -1)
        defer { server.stop() }
        // The station trusts the certificate's own CA, so only its age is wrong.
        let r = await runCheck(HubCheck(), f.context(config: try f.config(server.hubConfig)))
        let options = try named(r, "hub.options")
        #expect(options.status == .fail)
        #expect(options.finding.lowercased().contains("expired"), "\(options.finding)")
        #expect(options.nextStep?.contains("certificate has expired") == true)
    }

    @Test func unreachableHubFails() async throws {
        let f = try Fixture()
        let port = try LoopbackListener().port
        let r = await runCheck(HubCheck(), f.context(config: try f.config("[hub]\nurl = \"http://127.0.0.1:\(port)/files/\"\n")))
        #expect(try named(r, "hub.options").status == .fail)
    }
}

/// `Tests/Support/expired_tls_server.py`: an HTTPS server on loopback with a
/// certificate the test makes, expiring `daysLeft` days from now (negative: already expired).
final class TLSTestServer: Sendable {
    let process: Process
    let port: Int
    let dir: String

    init(dir: String, daysLeft: Double) throws {
        self.dir = dir
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Support/expired_tls_server.py").standardized.path, dir, String(daysLeft)]
        let out = Pipe()
        server.standardOutput = out
        try server.run()
        process = server
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        port = try #require(Int(line.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "port ", with: "")))
    }

    /// `[hub]` for a station that trusts the server's own certificate.
    var hubConfig: String { "[hub]\nurl = \"https://127.0.0.1:\(port)/files/\"\nca_file = \"\(dir)/cert.pem\"\n" }

    func stop() { process.terminate() }
}
