import Basics
import Foundation
import Testing
import TestSupport
@testable import Station

/// `telestation run` itself under the notify protocol: the real capture
/// engine (synthetic camera), the real spool, and a hub that accepts
/// connections and then never answers — a wedged upload, as a dead link
/// behind a NAT produces.
@Suite(.serialized, .timeLimit(.minutes(3))) struct RealDaemonNotifyTests {
    @Test func readyPingsWithheldWhileTheUploadIsWedgedAndCleanStop() async throws {
        let dir = NSTemporaryDirectory() + "telestation-notify-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hole = try BlackHoleServer()
        let kioskPort = try BlackHoleServer.freePort()
        let config = dir + "/station.toml"
        try """
            [station]
            id = "ps-notify"
            state_dir = "\(dir)/state"
            [hub]
            url = "http://127.0.0.1:\(hole.port)/files/"
            [camera]
            device = "synthetic"
            width = 640
            height = 480
            warmup_frames = 1
            [uplink]
            stall_timeout = "60s"
            [kiosk]
            listen = "127.0.0.1:\(kioskPort)"
            [spool]
            min_free = "1MiB"
            """.write(toFile: config, atomically: true, encoding: .utf8)
        // The spool key the way systemd's LoadCredential= hands it over; the
        // configuration names no key file, so the daemon must find this one.
        let credentials = dir + "/credentials"
        try FileManager.default.createDirectory(atPath: credentials, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: credentials + "/spool.key", contents: Data((0..<32).map { _ in UInt8.random(in: 0...255) }),
                                       attributes: [.posixPermissions: 0o400])
        let binary = DaemonHarness.buildDirectory.appendingPathComponent("telestation")
        let daemon = try DaemonHarness(executable: binary, arguments: ["run", "--config", config],
                                       environment: ["CREDENTIALS_DIRECTORY": credentials], watchdog: .seconds(2))
        defer { daemon.stop() }
        let notify = daemon.listener

        #expect(await notify.wait { $0.contains { $0.fields.contains("READY=1") } }, "no READY=1; stderr: \(daemon.stderr)")
        #expect(daemon.stdout.contains("listening http://127.0.0.1:\(kioskPort)/"))
        // Healthy and idle: both loops make their rounds, pings keep coming.
        #expect(await notify.wait { msgs in msgs.filter { $0.fields.contains("WATCHDOG=1") }.count >= 3 }, "stderr: \(daemon.stderr)")
        // What it told systemd is on disk for `diagnose`, written at most every 5 s.
        let recordPath = dir + "/state/" + NotifyRecord.fileName
        let healthy = try #require(await Self.record(at: recordPath) { $0.lastWatchdogAt != nil }, "no record at \(recordPath)")
        #expect(healthy.pid == daemon.process.processIdentifier)
        #expect(healthy.readyAt != nil && healthy.notifySocket && healthy.watchdogIntervalSeconds == 2)
        #expect(notify.fields.contains("STATUS=" + (healthy.status ?? "-")), "\(healthy.status ?? "no status")")

        // Queue an image from another process: the daemon's upload loop picks
        // it up and hangs on the silent hub.
        let capture = Process()
        capture.executableURL = binary
        capture.arguments = ["capture", "--config", config, "--case", "40123456", "--site", "face"]
        capture.standardOutput = FileHandle.nullDevice
        try capture.run()
        capture.waitUntilExit()
        #expect(capture.terminationStatus == 0)
        // Queued through the daemon, so sealed with the credential's key.
        let spooled = try FileManager.default.contentsOfDirectory(atPath: dir + "/state/spool").filter { $0.hasSuffix(".jpg") }
        #expect(spooled.count == 2 && spooled.allSatisfy { name in
            FileManager.default.contents(atPath: dir + "/state/spool/" + name)?.starts(with: Array("TSENC".utf8)) == true
        }, "\(spooled)")
        // The kiosk's thumbnail is the preview decrypted in memory: a JPEG again.
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-sf", "-o", dir + "/thumb.jpg", "http://127.0.0.1:\(kioskPort)/api/v1/queue/1/thumbnail"]
        try curl.run()
        curl.waitUntilExit()
        let thumb = FileManager.default.contents(atPath: dir + "/thumb.jpg") ?? Data()
        #expect(curl.terminationStatus == 0 && thumb.starts(with: [0xFF, 0xD8]) && thumb.suffix(2) == Data([0xFF, 0xD9]),
                "thumbnail: curl \(curl.terminationStatus), \(thumb.count) bytes")
        #expect(await hole.waitForConnection(), "the daemon never reached the hub")
        #expect(await daemon.waitForOutput { $0.contains("withholding WATCHDOG=1") }, "stderr: \(daemon.stderr)")
        let pingsWhenWedged = notify.count("WATCHDOG=1")
        let quietStart = ContinuousClock.now
        while ContinuousClock.now - quietStart < .seconds(3) { try await Task.sleep(for: .milliseconds(100)) }
        #expect(notify.count("WATCHDOG=1") == pingsWhenWedged, "pinged while the upload was wedged")
        #expect(notify.fields.contains { $0.hasPrefix("STATUS=") && $0.contains("1 pending") })
        // The record shows the wedge: its last ping falls behind the watchdog interval.
        let wedged = try #require(await Self.record(at: recordPath) { ($0.status ?? "").contains("1 pending") })
        let lastPing = try #require(wedged.lastWatchdogAt)
        #expect(Date().timeIntervalSince(lastPing) > 2, "last ping \(lastPing) while wedged")

        // SIGTERM stops the hung transfer and the daemon promptly.
        let termAt = ContinuousClock.now
        daemon.signal(SIGTERM)
        let status = await daemon.waitForExit(timeout: .seconds(25))
        #expect(status == 0, "exit status \(String(describing: status)); stderr: \(daemon.stderr)")
        #expect(ContinuousClock.now - termAt < .seconds(20))
        #expect(notify.count("STOPPING=1") == 1)
        let stopped = try #require(await Self.record(at: recordPath) { $0.stoppingAt != nil })
        #expect(stopped.status == "stopping")
        // No ping since the wedge, which began more than 3 s before the stop.
        #expect(stopped.lastWatchdogAt.map { termAt.duration(to: .now) < .seconds(20) && Date().timeIntervalSince($0) > 3 } == true,
                "last ping \(String(describing: stopped.lastWatchdogAt)), first seen while wedged \(lastPing)")
    }

    /// Polls the daemon's notify record until `condition` holds (generous
    /// bound: the record is written at most every 5 s on a loaded machine).
    static func record(at path: String, _ condition: (NotifyRecord) -> Bool) async -> NotifyRecord? {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let data = FileManager.default.contents(atPath: path), let r = try? NotifyRecord.decode(data), condition(r) { return r }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }
}

/// Accepts TCP connections on loopback and never answers.
final class BlackHoleServer: @unchecked Sendable {
    // fd and port are set once; accepted sockets are kept open until deinit.
    let fd: Int32
    let port: Int
    private let accepted = Locked([Int32]())

    init() throws {
        let (fd, port) = try Loopback.listener()
        self.fd = fd
        self.port = port
        let accepted = self.accepted
        Thread {
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { return }
                accepted.withLock { $0.append(c) }
            }
        }.start()
    }

    func waitForConnection(timeout: Duration = .seconds(60)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !accepted.withLock({ $0.isEmpty }) { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    static func freePort() throws -> Int { try Loopback.closedPort() }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        for c in accepted.withLock({ $0 }) { close(c) }
    }
}
