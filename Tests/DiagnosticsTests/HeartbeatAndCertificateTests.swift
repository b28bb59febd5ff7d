import Config
import ConfigFile
import Foundation
import StationAPI
import Testing
import Uplink
@testable import Diagnostics

/// The hub's certificate read ahead of its expiry, against real HTTPS
/// servers on loopback with certificates the test makes.
@Suite(.serialized) struct HubCertificateCheckTests {
    func check(daysLeft: Double) throws -> CheckResult {
        let f = try Fixture()
        let server = try TLSTestServer(dir: f.path, daysLeft: daysLeft)
        defer { server.stop() }
        let r = HubCertificateCheck().run(f.context(config: try f.config(server.hubConfig)))
        #expect(r.count == 1)
        return try named(r, "hub.tls")
    }

    @Test func aCertificateWithMonthsLeftPassesAndSaysUntilWhen() throws {
        let r = try check(daysLeft: 200)
        #expect(r.status == .pass, "\(r.finding)")
        #expect(r.finding.contains("CN = 127.0.0.1") && r.finding.contains("(200 days left)"), "\(r.finding)")
        #expect(r.details["days_left"] == "199" || r.details["days_left"] == "200")
    }

    @Test func aCertificateExpiringWithinAMonthWarnsAhead() throws {
        let r = try check(daysLeft: 3)
        #expect(r.status == .warn)
        #expect(r.finding.hasPrefix("the hub's certificate (CN = 127.0.0.1) expires on "), "\(r.finding)")
        #expect(r.finding.hasSuffix(", in 3 days"), "\(r.finding)")
        #expect(r.nextStep == "tell the hub's operators to renew it before then: uploads stop the moment it expires")
    }

    @Test func anExpiredCertificateFailsWithItsDate() throws {
        let r = try check(daysLeft: -2)
        #expect(r.status == .fail)
        #expect(r.finding.contains("expired on ") && r.finding.hasSuffix(", 2 days ago"), "\(r.finding)")
        #expect(r.nextStep?.contains("renew") == true)
    }

    @Test func plainHTTPWarnsAndNoHubSkips() throws {
        let f = try Fixture()
        #expect(HubCertificateCheck().run(f.context(config: try f.config("[hub]\nurl = \"http://127.0.0.1:9/files/\"\n")))[0].status == .warn)
        #expect(HubCertificateCheck().run(f.context(config: try f.config()))[0].status == .skip)
    }

    @Test func certinfoDatesFromEitherBackend() {
        let a = PeerCertificate.parseDate("Nov  2 10:00:00 2026 GMT")
        let b = PeerCertificate.parseDate("2026-11-02 10:00:00 GMT")
        #expect(a != nil && a == b)
        #expect(a.map { ISO8601DateFormatter().string(from: $0) } == "2026-11-02T10:00:00Z")
    }
}

/// The daemon's last READY / WATCHDOG / STATUS as the service check reads
/// them from the record in the state directory.
@Suite struct HeartbeatTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    func record(ready: Double? = -3600, watchdog: Double? = -20, interval: Double? = 180, pid: Int32 = 4242) -> NotifyRecord {
        var r = NotifyRecord(pid: pid, startedAt: Self.now.addingTimeInterval(-3700), watchdogIntervalSeconds: interval, notifySocket: true)
        if let ready {
            r.readyAt = Self.now.addingTimeInterval(ready)
            r.status = "0 pending, idle, camera ok"
            r.statusAt = r.readyAt
        }
        if let watchdog { r.lastWatchdogAt = Self.now.addingTimeInterval(watchdog) }
        return r
    }

    func judge(_ r: NotifyRecord?, active: Bool? = true, mainPID: Int32? = 4242) -> CheckResult? {
        ServiceCheck.judge(r, path: "/var/lib/telestation/daemon-notify.json",
                           unit: active.map { ServiceCheck.UnitState(active: $0, mainPID: mainPID) }, now: Self.now)
    }

    @Test func aRecentPingPasses() throws {
        let r = try #require(judge(record()))
        #expect(r.status == .pass)
        #expect(r.finding == "last READY 1h 00m ago, last WATCHDOG 20s ago (interval 3m 00s), status \"0 pending, idle, camera ok\"")
        #expect(r.details["last_watchdog_at"] == "2027-01-15T07:59:40Z")
    }

    @Test func aDaemonThatCannotRecordItsUploadsFails() throws {
        var r = record()
        r.status = "queue error, 2 pending (1.2 MB), camera ok"
        let result = try #require(judge(r))
        #expect(result.status == .fail)
        #expect(result.finding.contains("cannot record upload state"))
        #expect(result.nextStep?.contains("fsck") == true)
    }

    @Test func aPingOlderThanTheIntervalWarnsWhileTheUnitIsActive() throws {
        let r = try #require(judge(record(watchdog: -400)))
        #expect(r.status == .warn)
        #expect(r.finding.hasPrefix("the last WATCHDOG=1 was 6m 40s ago, longer than the 3m 00s watchdog interval"))
        #expect(r.nextStep?.contains("withholding WATCHDOG=1") == true)
        // The same record from a stopped unit is history, not a problem.
        #expect(judge(record(watchdog: -400), active: false)?.status == .pass)
        #expect(judge(record(watchdog: -400), active: nil)?.status == .pass)
    }

    @Test func otherWaysTheDaemonIsNotAlive() throws {
        #expect(judge(record(ready: nil, watchdog: nil))?.finding.contains("never reported READY") == true)
        #expect(judge(record(), mainPID: 999)?.status == .warn)
        #expect(judge(record(), mainPID: 999)?.finding.contains("runs as pid 999 but the heartbeat record is from pid 4242") == true)
        #expect(judge(nil)?.status == .warn)
        #expect(judge(nil, active: false) == nil)
        // No watchdog configured: nothing to be late for.
        #expect(judge(record(watchdog: nil, interval: nil))?.status == .pass)
        #expect(judge(record(watchdog: nil, interval: nil))?.finding.contains("watchdog off") == true)
    }

    /// Fixture files: a record in the state directory, systemd's /run marker
    /// and canned `systemctl show` answers.
    @Test func theServiceCheckReadsTheRecordFile() throws {
        let f = try Fixture()
        let config = try f.config()
        var stale = record(watchdog: -600)
        stale.status = "1 pending (2.0 MB), uploading at 11 KB/s, camera ok"
        stale.statusAt = Self.now.addingTimeInterval(-610)
        try f.file("state/daemon-notify.json", String(decoding: try stale.encoded(), as: UTF8.self))
        try FileManager.default.createDirectory(atPath: f.path + "/run/systemd/system", withIntermediateDirectories: true)
        var check = ServiceCheck()
        check.command = { argv in
            argv.first == "systemctl"
                ? "LoadState=loaded\nActiveState=active\nSubState=running\nNRestarts=0\nResult=success\nActiveEnterTimestamp=Thu 2027-01-14 06:00:00 UTC\nMainPID=4242\n"
                : nil
        }
        let r = check.run(f.context(config: config, now: Self.now))
        #expect(try named(r, "service").status == .pass)
        let beat = try named(r, "service.heartbeat")
        #expect(beat.status == .warn)
        #expect(beat.finding.contains("the last WATCHDOG=1 was 10m 00s ago"), "\(beat.finding)")
        #expect(beat.details["status"] == "1 pending (2.0 MB), uploading at 11 KB/s, camera ok")

        // Without systemd the record is still reported, as history.
        try FileManager.default.removeItem(atPath: f.path + "/run/systemd")
        let plain = check.run(f.context(config: config, now: Self.now))
        #expect(plain.map(\.status) == [.skip, .pass])
    }
}
