import Basics
import Config
import Foundation

/// The configuration loads, names a hub, and keeps its secrets private.
public struct ConfigurationCheck: DiagnosticCheck {
    public let name = "config"
    public init() {}

    public func run(_ ctx: DiagnosticContext) -> [CheckResult] {
        guard let config = ctx.config else {
            let e = ctx.configError
            return [result(.fail, "configuration does not load: \(e?.description ?? "unknown error")",
                           next: e?.nextStep.map { "\($0), then run `telestation config` to check" } ?? "fix \(ctx.configPath) and run `telestation config`")]
        }
        var results = [result(.pass, "\(ctx.configPath) loads (station \(config.station.id))")]
        if config.hub.url == nil {
            results.append(CheckResult(check: "config.hub", status: .warn, finding: "hub.url is not set: nothing will be uploaded",
                                       nextStep: "set hub.url and hub.token_file in \(ctx.configPath) (see README, Enrolment)"))
        }
        for (key, path) in [("hub.token_file", config.hub.tokenFile), ("hub.client_key", config.hub.clientKey)] {
            guard let path else { continue }
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            if st.st_mode & 0o004 != 0 {
                results.append(CheckResult(check: "config.secrets", status: .fail,
                                           finding: "\(key) \(path) is readable by every user (mode \(String(st.st_mode & 0o777, radix: 8)))",
                                           nextStep: "chmod 600 \(path) && chown telestation \(path)"))
            } else if st.st_mode & 0o040 != 0 {
                results.append(CheckResult(check: "config.secrets", status: .warn,
                                           finding: "\(key) \(path) is readable by its group (mode \(String(st.st_mode & 0o777, radix: 8)))",
                                           nextStep: "chmod 600 \(path) unless the group holds only the telestation user"))
            }
        }
        if config.hub.tokenFile == nil && config.hub.url != nil {
            results.append(CheckResult(check: "config.secrets", status: .warn, finding: "no hub.token_file: uploads go without authentication",
                                       nextStep: "set hub.token_file to the token the hub issued (see README, Enrolment)"))
        }
        return results
    }
}

/// The state directory is writable and the disk has room for new captures.
public struct StorageSpaceCheck: DiagnosticCheck {
    public let name = "storage"
    public init() {}

    public func run(_ ctx: DiagnosticContext) -> [CheckResult] {
        guard let config = ctx.config else { return skip("configuration does not load") }
        let dir = config.station.stateDir
        var results: [CheckResult] = []
        var isDir: ObjCBool = false
        if !FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) || !isDir.boolValue {
            return [result(.fail, "state directory \(dir) does not exist",
                           next: "create it: systemd-tmpfiles --create, or mkdir -p \(dir) && chown telestation \(dir)")]
        }
        let probe = (dir as NSString).appendingPathComponent(".diagnose-\(getpid())")
        // Creating a file is not enough: a full disk still has inodes. Write and sync a block.
        var failure: Int32 = 0
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        if fd < 0 {
            failure = errno
        } else {
            let block = [UInt8](repeating: 0, count: 4096)
            if write(fd, block, block.count) != block.count || fsync(fd) != 0 { failure = errno == 0 ? ENOSPC : errno }
            close(fd)
            unlink(probe)
        }
        if failure != 0 {
            let why = String(cString: strerror(failure))
            results.append(result(.fail, "cannot write to \(dir): \(why)",
                                  next: failure == EROFS ? "the file system is read-only: check the SD card (dmesg) and remount it read-write"
                                      : failure == ENOSPC ? "the disk is full: let pending images upload (telestation sync) and delete files that are not Telestation's"
                                      : "chown -R telestation \(dir), or run diagnose as the telestation user"))
        } else {
            results.append(result(.pass, "\(dir) is writable"))
        }
        if let (free, total) = try? Syscall.diskSpace(dir) {
            let details = ["free_bytes": "\(free)", "total_bytes": "\(total)", "min_free_bytes": "\(config.spool.minFree)"]
            let line = "\(Units.formatBytes(free)) free of \(Units.formatBytes(total)) (captures need \(Units.formatBytes(config.spool.minFree)))"
            if free < config.spool.minFree {
                results.append(CheckResult(check: "storage.space", status: .fail, finding: "disk full for captures: " + line,
                                           nextStep: "let pending images upload (telestation sync), delete files that are not Telestation's, or use a larger SD card",
                                           details: details))
            } else if free < 2 * config.spool.minFree {
                results.append(CheckResult(check: "storage.space", status: .warn, finding: "disk nearly full: " + line,
                                           nextStep: "free space soon: check that uploads are going out (telestation status)", details: details))
            } else {
                results.append(CheckResult(check: "storage.space", status: .pass, finding: line, details: details))
            }
        }
        return results
    }
}

/// The system clock, judged by things that move with time rather than a
/// fixed date: it must not read earlier than what was stamped while it was
/// right — the running binary (built, then installed), the newest entry in
/// the state directory (the queue; the heartbeat record the daemon rewrites
/// every few seconds), the time systemd-timesyncd last saved — and it should
/// be synchronised with network time. A Pi has no battery clock: until
/// network time answers, it may read the last shutdown, or 1970, and TLS
/// certificates then look invalid.
public struct ClockCheck: DiagnosticCheck {
    public let name = "clock"
    /// How far behind a stamp a correct clock may read: a step by network
    /// time, coarse file times. Far below any error that matters for a capture.
    static let tolerance: Double = 300
    /// The running program; its modification time is its build (or the package's).
    public var binary = "/proc/self/exe"
    /// systemd-timesyncd saves the time here at each synchronisation and at shutdown.
    public var timesyncClock = "/var/lib/systemd/timesync/clock"
    /// Runs a command and returns its output; tests give canned `timedatectl` answers.
    public var command: @Sendable ([String]) -> String? = { ServiceCheck.capture($0) }
    public init() {}

    public func run(_ ctx: DiagnosticContext) -> [CheckResult] {
        let now = ctx.now()
        let iso = ISO8601DateFormatter()
        let text = iso.string(from: now)
        let marker = ctx.roots.path(\.run, "systemd/timesync/synchronized")

        // The latest time the clock is known to have passed, and what says so.
        var stamps: [(what: String, at: Date)] = []
        func stamp(_ what: String, _ path: String) {
            if let at = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date { stamps.append((what, at)) }
        }
        stamp("the telestation binary", binary)
        stamp("systemd-timesyncd's saved time (\(timesyncClock))", timesyncClock)
        stamp("the last network time synchronisation (\(marker))", marker)
        if let dir = ctx.config?.station.stateDir {
            stamp("the state directory \(dir)", dir)
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
                stamp("\(dir)/\(entry)", dir + "/" + entry)
            }
        }
        let latest = stamps.max { $0.at < $1.at }
        var details = ["now": text]
        if let latest { details["latest_stamp"] = iso.string(from: latest.at) }
        if let latest, now < latest.at.addingTimeInterval(-Self.tolerance) {
            return [result(.fail, "system clock reads \(text), earlier than \(latest.what), stamped \(iso.string(from: latest.at)): the clock is behind",
                           next: "the station has no working time source: check network time (timedatectl status), or set it by hand: date -s 'YYYY-MM-DD HH:MM'",
                           details: details)]
        }
        // systemd-timesyncd marks a synchronised clock with this file; timedatectl
        // also knows chrony's and ntpd's, through the kernel.
        if FileManager.default.fileExists(atPath: marker) {
            return [result(.pass, "system clock reads \(text), synchronised by systemd-timesyncd", details: details)]
        }
        let answer = command(["timedatectl", "show", "--property=NTPSynchronized", "--value"])?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if answer == "yes" {
            return [result(.pass, "system clock reads \(text), synchronised with network time", details: details)]
        }
        let why = answer == "no" ? "is not synchronised with network time"
            : "may not be synchronised with network time (no systemd-timesyncd mark, and timedatectl does not answer)"
        return [result(.warn, "system clock reads \(text) and \(why): captures are stamped with it",
                       next: "give the station network time: timedatectl set-ntp true, and check timedatectl timesync-status",
                       details: details)]
    }
}

/// CPU temperature from thermal zones, and the Raspberry Pi's under-voltage
/// and throttling flags where the firmware exposes them.
public struct PowerHeatCheck: DiagnosticCheck {
    public let name = "power"
    public init() {}

    public func run(_ ctx: DiagnosticContext) -> [CheckResult] {
        var results: [CheckResult] = []
        let thermal = ctx.roots.path(\.sys, "class/thermal")
        let zones = ((try? FileManager.default.contentsOfDirectory(atPath: thermal)) ?? []).filter { $0.hasPrefix("thermal_zone") }.sorted()
        var hottest: (String, Double)? = nil
        for zone in zones {
            guard let raw = read("\(thermal)/\(zone)/temp"), let milli = Double(raw) else { continue }
            let type = read("\(thermal)/\(zone)/type") ?? zone
            let celsius = milli / 1000
            if hottest == nil || celsius > hottest!.1 { hottest = (type, celsius) }
        }
        if let (type, c) = hottest {
            let d = ["temperature_c": String(format: "%.1f", c), "zone": type]
            let line = String(format: "CPU temperature %.1f °C (%@)", c, type)
            if c >= 80 {
                results.append(CheckResult(check: "power.heat", status: .fail, finding: line + ": the CPU is throttling to cool down",
                                           nextStep: "give the board air: a heatsink or fan, out of direct sun, not in a closed box", details: d))
            } else if c >= 70 {
                results.append(CheckResult(check: "power.heat", status: .warn, finding: line + ": running hot",
                                           nextStep: "add a heatsink or fan and keep the case ventilated", details: d))
            } else {
                results.append(CheckResult(check: "power.heat", status: .pass, finding: line, details: d))
            }
        }

        // raspberrypi-hwmon reports under-voltage as an lcrit alarm on "rpi_volt".
        let hwmon = ctx.roots.path(\.sys, "class/hwmon")
        for dev in ((try? FileManager.default.contentsOfDirectory(atPath: hwmon)) ?? []).sorted()
        where read("\(hwmon)/\(dev)/name") == "rpi_volt" {
            if read("\(hwmon)/\(dev)/in0_lcrit_alarm") == "1" {
                results.append(CheckResult(check: "power.supply", status: .fail, finding: "under-voltage detected by the Raspberry Pi firmware",
                                           nextStep: "use the official 5.1 V / 3 A (Pi 4) or 5 V / 5 A (Pi 5) supply and a short thick cable; on solar, check the battery"))
            } else {
                results.append(CheckResult(check: "power.supply", status: .pass, finding: "supply voltage is within range"))
            }
        }
        // get_throttled bit field (firmware): 0 under-voltage now, 2 throttled now, 16/18 the same since boot.
        let throttledPath = ctx.roots.path(\.sys, "devices/platform/soc/soc:firmware/get_throttled")
        if let raw = read(throttledPath), let bits = Int(raw.replacingOccurrences(of: "0x", with: ""), radix: 16) {
            var flags: [String] = []
            if bits & (1 << 0) != 0 { flags.append("under-voltage now") }
            if bits & (1 << 2) != 0 { flags.append("throttled now") }
            if bits & (1 << 16) != 0 { flags.append("under-voltage since boot") }
            if bits & (1 << 18) != 0 { flags.append("throttled since boot") }
            if flags.isEmpty {
                results.append(CheckResult(check: "power.throttling", status: .pass, finding: "no under-voltage or throttling since boot"))
            } else {
                let now = bits & 0b101 != 0
                results.append(CheckResult(check: "power.throttling", status: now ? .fail : .warn,
                                           finding: "firmware reports: \(flags.joined(separator: ", ")) (0x\(String(bits, radix: 16)))",
                                           nextStep: "check the power supply and cable; power cuts and brown-outs corrupt SD cards — consider a UPS or battery"))
            }
        }
        if results.isEmpty { return skip("this platform exposes no temperature or power sensors") }
        return results
    }

    private func read(_ path: String) -> String? {
        guard let d = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: "\0")))
    }
}
