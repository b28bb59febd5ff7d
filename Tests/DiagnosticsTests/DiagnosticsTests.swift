import Config
import ConfigFile
import Foundation
import Testing
import TestSupport
@testable import Diagnostics

/// A scratch directory that holds a config and fixture /sys, /run trees.
final class Fixture: @unchecked Sendable {
    // Only touched from the test that owns it.
    let root: URL
    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("diag-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("state"), withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: root) }

    var path: String { root.path }

    @discardableResult
    func file(_ relative: String, _ text: String, mode: Int = 0o644) throws -> String {
        let url = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
        return url.path
    }

    func config(_ extra: String = "", stateDir: String? = nil) throws -> String {
        try file("station.toml", "[station]\nid = \"ps-fixture\"\nstate_dir = \"\(stateDir ?? path + "/state")\"\n" + extra)
    }

    func context(config: String, now: Date = Date(), env: [String: String] = [:]) -> DiagnosticContext {
        DiagnosticContext(configPath: config,
                          roots: SystemRoots(sys: path + "/sys", proc: path + "/proc", dev: path + "/dev", run: path + "/run"),
                          environment: env, now: { now })
    }
}

func named(_ results: [CheckResult], _ name: String) throws -> CheckResult {
    try #require(results.first { $0.check == name }, "no result named \(name) in \(results.map(\.check))")
}

@Suite struct ConfigurationCheckTests {
    @Test func passWarnAndFail() throws {
        let f = try Fixture()
        let token = try f.file("token", "s3cr3t-token\n", mode: 0o600)
        let good = ConfigurationCheck().run(f.context(config: try f.config("[hub]\nurl = \"https://hub.test/files/\"\ntoken_file = \"\(token)\"\n")))
        #expect(good.map(\.status) == [.pass])

        let noHub = ConfigurationCheck().run(f.context(config: try f.config()))
        #expect(try named(noHub, "config.hub").status == .warn)
        #expect(try named(noHub, "config.hub").nextStep?.contains("hub.url") == true)

        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: token)
        let open = ConfigurationCheck().run(f.context(config: try f.config("[hub]\nurl = \"https://hub.test/files/\"\ntoken_file = \"\(token)\"\n")))
        let secret = try named(open, "config.secrets")
        #expect(secret.status == .fail)
        #expect(secret.finding.contains("readable by every user"))
        #expect(secret.nextStep == "chmod 600 \(token) && chown telestation \(token)")

        let broken = ConfigurationCheck().run(f.context(config: try f.config("[hub]\nurl = \"ftp://x\"\n")))
        #expect(broken.map(\.status) == [.fail])
        #expect(broken[0].finding.contains("hub.url: \"ftp://x\" is not an http(s) URL"))
        #expect(broken[0].nextStep?.contains("telestation config") == true)
    }
}

@Suite struct StorageSpaceCheckTests {
    @Test func writableWithSpace() throws {
        let f = try Fixture()
        let r = StorageSpaceCheck().run(f.context(config: try f.config("[spool]\nmin_free = \"1MiB\"\n")))
        #expect(r.first?.status == .pass)
        #expect(try named(r, "storage.space").status == .pass)
    }

    @Test func missingStateDirectory() throws {
        let f = try Fixture()
        let r = StorageSpaceCheck().run(f.context(config: try f.config(stateDir: f.path + "/nope")))
        #expect(r.map(\.status) == [.fail])
        #expect(r[0].nextStep?.contains("systemd-tmpfiles --create") == true)
    }

    @Test func lessFreeThanMinFreeFails() throws {
        let f = try Fixture()
        let r = StorageSpaceCheck().run(f.context(config: try f.config("[spool]\nmin_free = \"1TiB\"\n")))
        #expect(try named(r, "storage.space").status == .fail)
    }

    /// A real, small file system filled to the brim. Mounting it needs root:
    /// without, the test is skipped (and `make test` says so).
    @Test(.enabled(if: getuid() == 0, "mounting a tmpfs needs root (CAP_SYS_ADMIN)"))
    func fullDisk() throws {
        let f = try Fixture()
        let mnt = f.path + "/small"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        try #require(shell(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt]) == 0, "mounting a 2 MiB tmpfs on \(mnt) failed")
        defer { _ = shell(["umount", mnt]) }
        _ = shell(["sh", "-c", "cat /dev/zero > \(mnt)/fill 2>/dev/null"])
        let full = StorageSpaceCheck().run(f.context(config: try f.config("[spool]\nmin_free = \"1MiB\"\n", stateDir: mnt)))
        let space = try named(full, "storage.space")
        #expect(space.status == .fail)
        #expect(space.finding.hasPrefix("disk full for captures"))
        #expect(space.nextStep?.contains("telestation sync") == true)
        // Writing the probe file fails too: the disk is really full.
        #expect(full[0].status == .fail)
        #expect(full[0].finding.contains("No space left on device"))

        _ = shell(["truncate", "-s", "1200k", "\(mnt)/fill"])
        let nearly = StorageSpaceCheck().run(f.context(config: try f.config("[spool]\nmin_free = \"512KiB\"\n", stateDir: mnt)))
        #expect(try named(nearly, "storage.space").status == .warn)
    }
}

@discardableResult
func shell(_ argv: [String]) -> Int32 {
    (try? ProcessRunner.env(argv).status) ?? -1
}

@Suite struct ClockCheckTests {
    /// A clock check that sees only the fixture: an old binary, canned timedatectl.
    func clock(_ f: Fixture, synchronised: String? = "yes") throws -> ClockCheck {
        var c = ClockCheck()
        c.binary = try f.file("bin/telestation", "", mode: 0o755)
        try stamp(c.binary, Date(timeIntervalSince1970: 1_600_000_000))
        c.timesyncClock = f.path + "/var/lib/systemd/timesync/clock"
        c.command = { argv in argv.first == "timedatectl" ? synchronised.map { $0 + "\n" } : nil }
        return c
    }

    func stamp(_ path: String, _ date: Date) throws {
        try FileManager.default.setAttributes([.modificationDate: date], ofItemAtPath: path)
    }

    @Test func aClockInThePastFails() throws {
        let f = try Fixture()
        let boot = Date(timeIntervalSince1970: 0)  // a Pi without RTC before NTP answers
        let r = try clock(f).run(f.context(config: try f.config(), now: boot))
        #expect(r[0].status == .fail)
        #expect(r[0].finding.contains("1970-01-01"))
        #expect(r[0].nextStep?.contains("timedatectl") == true)
    }

    /// The queue and the heartbeat record are rewritten while the station
    /// runs: a clock behind them went back.
    @Test func aClockBehindTheNewestStateFileFails() throws {
        let f = try Fixture()
        let config = try f.config()
        let record = try f.file("state/notify.json", "{}")
        let written = Date().addingTimeInterval(86400)
        try stamp(record, written)
        let r = try clock(f).run(f.context(config: config, now: written.addingTimeInterval(-3600)))
        #expect(r[0].status == .fail)
        #expect(r[0].finding.contains("earlier than \(record)"), "\(r[0].finding)")
        // Within the tolerance of a network time step it is no failure.
        #expect(try clock(f).run(f.context(config: config, now: written.addingTimeInterval(-60)))[0].status == .pass)
    }

    @Test func aClockBehindTheBinaryOrTheSavedSyncTimeFails() throws {
        let f = try Fixture()
        let config = try f.config()
        var c = try clock(f)
        let built = Date(timeIntervalSince1970: 1_900_000_000)  // 2030
        try stamp(c.binary, built)
        let r = c.run(f.context(config: config, now: built.addingTimeInterval(-86400)))
        #expect(r[0].status == .fail && r[0].finding.contains("the telestation binary"), "\(r[0].finding)")

        c = try clock(f)
        try f.file("var/lib/systemd/timesync/clock", "")
        try stamp(c.timesyncClock, built)
        let saved = c.run(f.context(config: config, now: built.addingTimeInterval(-86400)))
        #expect(saved[0].status == .fail && saved[0].finding.contains("timesyncd's saved time"), "\(saved[0].finding)")
    }

    @Test func synchronisationDecidesBetweenPassAndWarn() throws {
        let f = try Fixture()
        let config = try f.config()
        let synced = try clock(f, synchronised: "yes").run(f.context(config: config))
        #expect(synced[0].status == .pass && synced[0].finding.contains("synchronised with network time"))

        let unsynced = try clock(f, synchronised: "no").run(f.context(config: config))
        #expect(unsynced[0].status == .warn && unsynced[0].finding.contains("is not synchronised"))
        #expect(unsynced[0].nextStep?.contains("timedatectl") == true)

        // No systemd to ask: the check cannot vouch for the clock.
        let unknown = try clock(f, synchronised: nil).run(f.context(config: config))
        #expect(unknown[0].status == .warn && unknown[0].finding.contains("may not be synchronised"))

        // systemd-timesyncd's mark is enough on its own.
        try f.file("run/systemd/timesync/synchronized", "")
        let marked = try clock(f, synchronised: nil).run(f.context(config: config))
        #expect(marked[0].status == .pass && marked[0].finding.contains("synchronised by systemd-timesyncd"))
    }
}

@Suite struct PowerHeatCheckTests {
    func power(_ setup: (Fixture) throws -> Void) throws -> [CheckResult] {
        let f = try Fixture()
        try setup(f)
        return PowerHeatCheck().run(f.context(config: try f.config()))
    }

    @Test func temperatureLevels() throws {
        for (milli, status) in [("45000", CheckStatus.pass), ("74500", .warn), ("83000", .fail)] {
            let r = try power { f in
                try f.file("sys/class/thermal/thermal_zone0/temp", milli + "\n")
                try f.file("sys/class/thermal/thermal_zone0/type", "cpu-thermal\n")
            }
            let heat = try named(r, "power.heat")
            #expect(heat.status == status, "\(milli)")
            #expect(heat.finding.contains("cpu-thermal"))
        }
    }

    @Test func raspberryPiUnderVoltageAndThrottling() throws {
        let r = try power { f in
            try f.file("sys/class/hwmon/hwmon1/name", "rpi_volt\n")
            try f.file("sys/class/hwmon/hwmon1/in0_lcrit_alarm", "1\n")
            try f.file("sys/devices/platform/soc/soc:firmware/get_throttled", "0x50000\n")
        }
        #expect(try named(r, "power.supply").status == .fail)
        let t = try named(r, "power.throttling")
        #expect(t.status == .warn)
        #expect(t.finding.contains("under-voltage since boot") && t.finding.contains("throttled since boot"))

        let ok = try power { f in
            try f.file("sys/class/hwmon/hwmon1/name", "rpi_volt\n")
            try f.file("sys/class/hwmon/hwmon1/in0_lcrit_alarm", "0\n")
            try f.file("sys/devices/platform/soc/soc:firmware/get_throttled", "0x0\n")
        }
        #expect(ok.allSatisfy { $0.status == .pass })
        #expect(ok.count == 2)
    }

    @Test func nothingExposedSkips() throws {
        let r = try power { _ in }
        #expect(r.map(\.status) == [.skip])
    }
}

@Suite struct NetworkCheckTests {
    @Test func reachableHubOnLoopback() throws {
        let f = try Fixture()
        let listener = try LoopbackListener()
        let r = NetworkCheck().run(f.context(config: try f.config("[hub]\nurl = \"http://127.0.0.1:\(listener.port)/files/\"\n")))
        #expect(try named(r, "network.dns").status == .pass)
        let tcp = try named(r, "network.tcp")
        #expect(tcp.status == .pass)
        #expect(tcp.details["connect_ms"] != nil)
    }

    @Test func unreachableAddressOnLoopback() throws {
        let f = try Fixture()
        let port = try LoopbackListener().port  // closed again when the listener goes away
        let r = NetworkCheck().run(f.context(config: try f.config("[hub]\nurl = \"http://127.0.0.1:\(port)/files/\"\n")))
        let tcp = try named(r, "network.tcp")
        #expect(tcp.status == .fail)
        #expect(tcp.finding.contains("Connection refused"))
        #expect(tcp.nextStep?.contains("hub") == true)
    }

    @Test func nameThatDoesNotResolve() throws {
        let f = try Fixture()
        let r = NetworkCheck().run(f.context(config: try f.config("[hub]\nurl = \"https://hub.invalid/files/\"\n")))
        let dns = try named(r, "network.dns")
        #expect(dns.status == .fail)
        #expect(dns.finding.hasPrefix("cannot resolve hub.invalid"))
        #expect(r.count == 1)
    }

    @Test func proxySettingsAreReportedWithoutPasswords() {
        #expect(NetworkCheck.proxy(for: "https", host: "hub.pe", environment: ["https_proxy": "http://u:pw@proxy:3128"]) == "http://u:pw@proxy:3128")
        #expect(NetworkCheck.proxy(for: "https", host: "hub.pe", environment: ["https_proxy": "http://p:3128", "no_proxy": "hub.pe"]) == nil)
        #expect(NetworkCheck.proxy(for: "https", host: "a.hub.pe", environment: ["HTTPS_PROXY": "http://p:3128", "NO_PROXY": ".hub.pe"]) == nil)
        #expect(NetworkCheck.proxy(for: "http", host: "hub.pe", environment: ["https_proxy": "http://p:3128"]) == nil)
        #expect(NetworkCheck.redactUserInfo("http://u:pw@proxy:3128") == "http://***@proxy:3128")
    }
}

/// A TCP listener on an ephemeral loopback port.
final class LoopbackListener: @unchecked Sendable {
    // Immutable after init.
    let fd: Int32
    let port: Int
    init() throws {
        (fd, port) = try Loopback.listener(backlog: 8)
    }
    deinit { close(fd) }
}

struct SlowCheck: DiagnosticCheck {
    let name = "slow"
    var timeout: Double { 0.5 }
    func run(_ ctx: DiagnosticContext) -> [CheckResult] {
        Thread.sleep(forTimeInterval: 300)
        return [result(.pass, "woke up")]
    }
}

@Suite struct RunnerAndReportTests {
    @Test func aHungCheckCannotStallTheReport() async throws {
        let f = try Fixture()
        let start = Date()
        var clock = ClockCheck()
        clock.command = { _ in "yes" }  // a synchronised clock, whatever this machine's is
        let report = await DiagnosticRunner(checks: [SlowCheck(), clock]).run(f.context(config: try f.config()))
        // The report is back while the hung check still sleeps.
        #expect(Date().timeIntervalSince(start) < 300)
        let slow = try named(report.results, "slow")
        #expect(slow.status == .fail)
        #expect(slow.finding == "did not finish within 0 s" || slow.finding.hasPrefix("did not finish"))
        #expect(try named(report.results, "clock").status == .pass)
        #expect(report.exitCode == 2)
    }

    @Test func onlySelectsGroups() async throws {
        let f = try Fixture()
        let runner = DiagnosticRunner.standard()
        let report = await runner.run(f.context(config: try f.config()), only: ["clock"])
        #expect(report.results.map(\.check) == ["clock"])
        #expect(runner.groups.contains("storage") && runner.groups.contains("network"))
    }

    @Test func exitCodesAndJSON() throws {
        func report(_ s: [CheckStatus]) -> DiagnosticReport {
            DiagnosticReport(station: "ps", generatedAt: Date(), results: s.map { CheckResult(check: "c", status: $0, finding: "f", nextStep: "n") })
        }
        #expect(report([.pass, .skip]).exitCode == 0)
        #expect(report([.pass, .warn]).exitCode == 1)
        #expect(report([.warn, .fail, .pass]).exitCode == 2)
        let json = try JSONSerialization.jsonObject(with: Data(report([.pass, .fail]).json().utf8)) as! [String: Any]
        #expect(json["exit_code"] as? Int == 2)
        let checks = json["checks"] as! [[String: Any]]
        #expect(checks.count == 2)
        #expect(checks[0]["next_step"] == nil)  // no next step for a pass
        #expect(checks[1]["next_step"] as? String == "n")
        #expect((json["summary"] as? [String: Int])?["FAIL"] == 1)
        let table = report([.fail]).table(color: false)
        #expect(table.contains("FAIL  c") && table.contains("→ n"))
        #expect(!table.contains("\u{1B}["))
        #expect(report([.fail]).table(color: true).contains("\u{1B}[1;31mFAIL"))
    }

    @Test func serviceCheckSkipsWithoutSystemd() throws {
        let f = try Fixture()
        #expect(ServiceCheck().run(f.context(config: try f.config())).map(\.status) == [.skip])
    }
}

@Suite struct BundleTests {
    @Test func bundleNeverContainsTheToken() async throws {
        let f = try Fixture()
        let token = "tok-\(UUID().uuidString)"
        let tokenFile = try f.file("token", token, mode: 0o600)
        let config = try f.config("[hub]\nurl = \"http://127.0.0.1:9/files/\"\ntoken_file = \"\(tokenFile)\"\n")
        let ctx = f.context(config: config)
        let report = await DiagnosticRunner.standard().run(ctx, only: ["config", "storage"])
        let out = f.path + "/bundle.tar.gz"
        try SupportBundle(report: report, context: ctx, attachments: ["queue.txt": "Authorization: Bearer \(token)\nitem 1 pending\n"]).write(to: out)
        let dir = f.path + "/unpacked"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        #expect(shell(["tar", "-xzf", out, "-C", dir]) == 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/telestation-diagnosis")
        #expect(Set(files).isSuperset(of: ["report.txt", "report.json", "station.toml", "queue.txt"]))
        #expect(shell(["grep", "-r", "-q", token, dir]) == 1, "the token leaked into the bundle")
        #expect(shell(["grep", "-r", "-q", "item 1 pending", dir]) == 0)
    }
}
