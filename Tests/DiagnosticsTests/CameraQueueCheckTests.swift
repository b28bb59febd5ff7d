import Config
import ConfigFile
import Foundation
import Spool
import Testing
@testable import Diagnostics

/// Runs a check the way `diagnose` does: on its own thread, since checks
/// block (the camera check waits for its test capture).
func runCheck(_ check: any DiagnosticCheck, _ ctx: DiagnosticContext) async -> [CheckResult] {
    await DiagnosticRunner(checks: [check]).run(ctx).results
}

@Suite struct CameraCheckTests {
    @Test func syntheticCameraPassesAndSavesTheTestCapture() async throws {
        let f = try Fixture()
        let config = try f.config("[camera]\ndevice = \"synthetic\"\nwidth = 1280\nheight = 720\nwarmup_frames = 1\n[kiosk]\nlisten = \"127.0.0.1:9\"\n")
        var ctx = f.context(config: config)
        ctx.captureTestPath = f.path + "/test.jpg"
        let r = await runCheck(CameraCheck(), ctx)
        let capture = try named(r, "camera.capture")
        #expect(capture.status == .pass)
        #expect(capture.finding.contains("1280x720"))
        let saved = try #require(FileManager.default.contents(atPath: f.path + "/test.jpg"))
        #expect(saved.starts(with: [0xFF, 0xD8]))
    }

    @Test func missingDeviceFailsWithNextStep() async throws {
        let f = try Fixture()
        try FileManager.default.createDirectory(atPath: f.path + "/dev", withIntermediateDirectories: true)
        let config = try f.config("[camera]\ndevice = \"/dev/video97\"\n[kiosk]\nlisten = \"127.0.0.1:9\"\n")
        let r = await runCheck(CameraCheck(), f.context(config: config))
        #expect(r.count == 1)
        #expect(r[0].status == .fail)
        #expect(r[0].finding.contains("/dev/video97"))
        #expect(r[0].nextStep != nil)
    }

    @Test func autoWithNoCameraFails() async throws {
        let f = try Fixture()
        try FileManager.default.createDirectory(atPath: f.path + "/dev", withIntermediateDirectories: true)
        var check = CameraCheck()
        check.devRoot = f.path + "/dev"
        let r = await runCheck(check, f.context(config: try f.config("[kiosk]\nlisten = \"127.0.0.1:9\"\n")))
        #expect(r.map(\.status) == [.fail])
        #expect(r[0].finding.contains("no camera found"))
        #expect(r[0].nextStep?.contains("synthetic") == true)
    }
}

@Suite struct QueueCheckTests {
    /// `[spool]` with a fresh 32-byte key in the fixture.
    func keyed(_ f: Fixture, _ extra: String = "") throws -> String {
        let key = try f.file("spool.key", "", mode: 0o600)
        try Data((0..<32).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: key))
        return "[spool]\nmin_free = \"1MiB\"\nkey_file = \"\(key)\"\n" + extra
    }

    func spoolWithItems(_ f: Fixture) throws -> (String, Spool) {
        let config = try f.config(try keyed(f))
        let spool = try Spool(config: try StationConfig.load(path: config))
        let jpeg = Data([0xFF, 0xD8, 0xFF, 0xE0] + [UInt8](repeating: 7, count: 2000) + [0xFF, 0xD9])
        _ = try spool.enqueue(imageData: jpeg, preview: nil, metadata: ItemMetadata(caseID: "40123456", filename: "a.jpg"))
        _ = try spool.enqueue(imageData: jpeg + Data([1]), preview: nil, metadata: ItemMetadata(caseID: "40123457", filename: "b.jpg"))
        return (config, spool)
    }

    @Test func healthyQueuePasses() throws {
        let f = try Fixture()
        let (config, _) = try spoolWithItems(f)
        let r = QueueCheck().run(f.context(config: config))
        #expect(r[0].status == .pass)
        let pending = try named(r, "storage.pending")
        #expect(pending.status == .pass)
        #expect(pending.finding.hasPrefix("2 pending"))
    }

    @Test func missingFileFailsAndHeldItemWarns() throws {
        let f = try Fixture()
        let (config, spool) = try spoolWithItems(f)
        let items = try spool.allItems()
        try FileManager.default.removeItem(atPath: items[0].filePath)
        try spool.hold(id: items[1].id, reason: "the hub refused it: too large (413)")
        let r = QueueCheck().run(f.context(config: config))
        #expect(r[0].status == .fail)
        #expect(r[0].finding.contains("without their file"))
        let held = try named(r, "storage.held")
        #expect(held.status == .warn)
        #expect(held.finding.contains("413"))
    }

    @Test func noQueueYetPasses() throws {
        let f = try Fixture()
        let r = QueueCheck().run(f.context(config: try f.config(try keyed(f))))
        #expect(r.map(\.status) == [.pass, .pass])
        #expect(try named(r, "storage.encryption").finding.contains("encrypted at rest"))
    }

    @Test func encryptionFindings() throws {
        let f = try Fixture()
        // No key: FAIL with the command that creates it.
        let none = QueueCheck().run(f.context(config: try f.config("[spool]\nkey_file = \"\(f.path)/none.key\"\n")))
        let missing = try named(none, "storage.encryption")
        #expect(missing.status == .fail && missing.finding.contains("refuses to store images"))
        #expect(missing.nextStep?.contains("head -c 32 /dev/urandom > \(f.path)/none.key") == true)
        // The development opt-out: FAIL, images are plaintext.
        let optOut = try f.config("[spool]\nkey_file = \"\(f.path)/none.key\"\ninsecure_allow_plaintext = true\n")
        let plainSpool = try Spool(config: try StationConfig.load(path: optOut))
        _ = try plainSpool.enqueue(imageData: Data([0xFF, 0xD8, 1, 2, 3]), preview: nil, metadata: ItemMetadata(caseID: "40123456", filename: "a.jpg"))
        let off = try named(QueueCheck().run(f.context(config: optOut)), "storage.encryption")
        #expect(off.status == .fail && off.finding.contains("encryption is OFF"))
        // The key arrives: WARN until the daemon's next start encrypts the queued file.
        let keyedConfig = try f.config(try keyed(f))
        let pending = try named(QueueCheck().run(f.context(config: keyedConfig)), "storage.encryption")
        #expect(pending.status == .warn && pending.finding.contains("1 queued image file(s) are still stored unencrypted"))
        _ = try Spool(config: try StationConfig.load(path: keyedConfig))
        #expect(try named(QueueCheck().run(f.context(config: keyedConfig)), "storage.encryption").status == .pass)
        // A key systemd hands over counts as well.
        let creds = f.path + "/creds"
        try FileManager.default.createDirectory(atPath: creds, withIntermediateDirectories: true)
        let cred = try f.file("creds/spool.key", "", mode: 0o400)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: cred)
        try Data((0..<32).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: cred))
        let viaCreds = try named(QueueCheck().run(f.context(config: try f.config(), env: ["CREDENTIALS_DIRECTORY": creds])), "storage.encryption")
        #expect(viaCreds.finding.contains(cred), "\(viaCreds.finding)")
    }
}
