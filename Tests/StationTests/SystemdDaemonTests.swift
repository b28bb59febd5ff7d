import Foundation
import Testing

/// The daemon under systemd's notify protocol, as a separate process.
///
/// By default this runs `telestation-demo-station` (the daemon on the demo
/// backend). `TELESTATION_DAEMON_UNDER_TEST=/path/to/telestation` with
/// `TELESTATION_DAEMON_ARGS="run --config /path/station.toml"` points it at
/// another build. That daemon must print `listening http://HOST:PORT/` on
/// stdout once bound, and stall its upload loop while the file named by
/// `TELESTATION_DEMO_WEDGE` exists; `TELESTATION_DAEMON_NO_WEDGE=1` skips the
/// wedge step for a daemon without that knob.
@Suite(.serialized, .timeLimit(.minutes(3))) struct SystemdDaemonTests {
    static var executable: URL {
        if let p = ProcessInfo.processInfo.environment["TELESTATION_DAEMON_UNDER_TEST"] { return URL(fileURLWithPath: p) }
        return DaemonHarness.buildDirectory.appendingPathComponent("telestation-demo-station")
    }
    static var arguments: [String] {
        if let a = ProcessInfo.processInfo.environment["TELESTATION_DAEMON_ARGS"] { return a.split(separator: " ").map(String.init) }
        return ["--listen", "127.0.0.1:0"]
    }

    @Test(arguments: [false, true])
    func readyWatchdogStatusAndStopping(abstractSocket: Bool) async throws {
        let wedge = NSTemporaryDirectory() + "telestation-wedge-\(UUID().uuidString)"
        // WatchdogSec=2s: a ping is due every second.
        let daemon = try DaemonHarness(
            executable: Self.executable, arguments: Self.arguments,
            environment: ["TELESTATION_DEMO_WEDGE": wedge, "TELESTATION_DEMO_RECOVERY_MS": "500"],
            watchdog: .seconds(2), abstractSocket: abstractSocket)
        defer { daemon.stop(); unlink(wedge) }
        let notify = daemon.listener

        // READY=1, with a status line, once the port is bound and the queue recovered.
        #expect(await notify.wait { $0.contains { $0.fields.contains("READY=1") } }, "no READY=1; stderr: \(daemon.stderr)")
        let ready = try #require(notify.all.first { $0.fields.contains("READY=1") })
        #expect(ready.fields.contains { $0.hasPrefix("STATUS=") && $0.contains("camera") })
        #expect(daemon.stdout.contains("listening http://127.0.0.1:"), "READY came before the port was bound")
        #expect(notify.count("READY=1") == 1)

        // Healthy: pings keep coming.
        #expect(await notify.wait { msgs in msgs.filter { $0.fields.contains("WATCHDOG=1") }.count >= 3 })

        if ProcessInfo.processInfo.environment["TELESTATION_DAEMON_NO_WEDGE"] == nil {
            // Wedge the upload loop: once the daemon notices, no more pings.
            #expect(FileManager.default.createFile(atPath: wedge, contents: nil))
            #expect(await daemon.waitForOutput { $0.contains("withholding WATCHDOG=1") }, "stderr: \(daemon.stderr)")
            let pingsWhenWedged = notify.count("WATCHDOG=1")
            let quietStart = ContinuousClock.now
            // Three ping intervals without a ping: more than systemd needs to act.
            while ContinuousClock.now - quietStart < .seconds(3) { try await Task.sleep(for: .milliseconds(100)) }
            #expect(notify.count("WATCHDOG=1") == pingsWhenWedged, "pinged while the upload loop was wedged")

            // Unwedged: pings resume.
            unlink(wedge)
            #expect(await notify.wait { msgs in msgs.filter { $0.fields.contains("WATCHDOG=1") }.count > pingsWhenWedged })
        }

        // A kiosk holds the live preview open, as it always does on a station.
        let url = try #require(daemon.stdout.split(separator: "\n").first { $0.hasPrefix("listening ") }?.dropFirst("listening ".count))
        let viewer = Process()
        viewer.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        let received = NSTemporaryDirectory() + "telestation-preview-\(UUID().uuidString)"
        viewer.arguments = ["-s", "-N", "-o", received, "--max-time", "120", "\(url)api/v1/preview.mjpeg"]
        try viewer.run()
        defer {
            if viewer.isRunning { viewer.terminate() }
            unlink(received)
        }
        // Frames are flowing once the file grows.
        #expect(await daemon.waitForOutput { _ in
            ((try? FileManager.default.attributesOfItem(atPath: received))?[.size] as? Int ?? 0) > 0
        })

        // SIGTERM: STOPPING=1 and a clean exit well inside TimeoutStopSec,
        // and before the daemon's own 20 s limit would force it.
        let termAt = ContinuousClock.now
        daemon.signal(SIGTERM)
        let status = await daemon.waitForExit(timeout: .seconds(25))
        #expect(status == 0, "exit status \(String(describing: status)); stderr: \(daemon.stderr)")
        #expect(ContinuousClock.now - termAt < .seconds(20), "shutdown waited for the open preview")
        #expect(notify.count("STOPPING=1") == 1)
        let stopping = try #require(notify.all.first { $0.fields.contains("STOPPING=1") })
        #expect(stopping.at >= termAt)
        // Status lines came along the way.
        #expect(notify.fields.filter { $0.hasPrefix("STATUS=") }.count >= 2)
    }
}
