import Config
import Foundation
import StationAPI

/// The daemon's last READY, WATCHDOG and STATUS, from the record it keeps in
/// the state directory (`NotifyRecord`), judged against the unit's state.
extension ServiceCheck {
    /// What systemd says about the unit, when it says anything.
    public struct UnitState: Sendable, Equatable {
        public var active: Bool
        public var mainPID: Int32?
        public init(active: Bool, mainPID: Int32?) {
            self.active = active
            self.mainPID = mainPID
        }
    }

    /// Reads the record and judges it; nil when there is nothing to say
    /// (no record and no running unit).
    func heartbeat(_ ctx: DiagnosticContext, unit state: UnitState?) -> CheckResult? {
        guard let config = ctx.config else { return nil }
        let path = NotifyRecord.path(stateDir: config.station.stateDir)
        guard let data = FileManager.default.contents(atPath: path) else {
            // A state directory closed to this user hides even whether the file exists.
            if access(path, F_OK) == 0 || errno == EACCES {
                return CheckResult(check: "service.heartbeat", status: .skip, finding: "cannot read \(path): \(String(cString: strerror(EACCES)))",
                                   nextStep: "run diagnose as root or as the telestation user: sudo -u telestation telestation diagnose")
            }
            return Self.judge(nil, path: path, unit: state, now: ctx.now())
        }
        guard let record = try? NotifyRecord.decode(data) else {
            return CheckResult(check: "service.heartbeat", status: .warn, finding: "\(path) is not a heartbeat record the station can read",
                               nextStep: "restart the service so the daemon writes it again: systemctl restart \(unit)")
        }
        return Self.judge(record, path: path, unit: state, now: ctx.now())
    }

    /// Pure: the verdict on a record (or its absence) for a unit in `state`
    /// (nil without systemd) at `now`.
    static func judge(_ record: NotifyRecord?, path: String, unit state: UnitState?, now: Date, unitName: String = "telestation.service") -> CheckResult? {
        let active = state?.active == true
        guard let record else {
            guard active else { return nil }
            return CheckResult(check: "service.heartbeat", status: .warn,
                               finding: "\(unitName) is active but has written no heartbeat record at \(path)",
                               nextStep: "check that diagnose reads the daemon's configuration (--config); the daemon writes the record once it is ready")
        }
        func ago(_ d: Date) -> String { "\(Units.formatDuration(max(0, now.timeIntervalSince(d)))) ago" }
        let iso = ISO8601DateFormatter()
        var parts: [String] = []
        var details = ["pid": "\(record.pid)", "notify_socket": "\(record.notifySocket)"]
        if let ready = record.readyAt {
            parts.append("last READY \(ago(ready))")
            details["ready_at"] = iso.string(from: ready)
        } else {
            parts.append("never READY")
        }
        if let interval = record.watchdogIntervalSeconds {
            details["watchdog_interval_s"] = String(format: "%g", interval)
            if let ping = record.lastWatchdogAt {
                parts.append("last WATCHDOG \(ago(ping)) (interval \(Units.formatDuration(interval)))")
                details["last_watchdog_at"] = iso.string(from: ping)
            } else {
                parts.append("no WATCHDOG yet (interval \(Units.formatDuration(interval)))")
            }
        } else {
            parts.append("watchdog off")
        }
        if let status = record.status {
            parts.append("status \"\(status)\"")
            details["status"] = status
        }
        if let stopping = record.stoppingAt { parts.append("stopped \(ago(stopping))") }
        let line = parts.joined(separator: ", ")
        guard active else { return CheckResult(check: "service.heartbeat", status: .pass, finding: line, details: details) }

        if let main = state?.mainPID, main > 0, main != record.pid {
            return CheckResult(check: "service.heartbeat", status: .warn,
                               finding: "the service runs as pid \(main) but the heartbeat record is from pid \(record.pid): the daemon has not reported READY yet",
                               nextStep: "wait a minute and run diagnose again; if it stays, see journalctl -u \(unitName) -n 50 (the queue recovery or the kiosk port may be stuck)",
                               details: details)
        }
        guard record.readyAt != nil else {
            return CheckResult(check: "service.heartbeat", status: .warn,
                               finding: "the daemon started \(ago(record.startedAt)) and never reported READY",
                               nextStep: "see journalctl -u \(unitName) -n 50: the queue recovery or the kiosk port may be stuck", details: details)
        }
        if let interval = record.watchdogIntervalSeconds, let last = record.lastWatchdogAt ?? record.readyAt,
           now.timeIntervalSince(last) > interval {
            return CheckResult(check: "service.heartbeat", status: .warn,
                               finding: "the last WATCHDOG=1 was \(ago(last)), longer than the \(Units.formatDuration(interval)) watchdog interval: the capture or upload loop has stopped making rounds (\(line))",
                               nextStep: "journalctl -u \(unitName) -n 100 names the stalled loop (\"withholding WATCHDOG=1\"); systemd restarts the service when the watchdog runs out — if it keeps happening, send `telestation diagnose --bundle`",
                               details: details)
        }
        // The daemon's own status line starts with the problems it sees.
        if let status = record.status, status.hasPrefix("queue error") {
            return CheckResult(check: "service.heartbeat", status: .fail,
                               finding: "the daemon cannot record upload state in its queue (\(line)): uploads stop until it can; no image is lost",
                               nextStep: "check the SD card: `journalctl -u \(unitName) | grep 'cannot record'` names the error; a read-only or full file system needs a technician (fsck, free space), then restart the service",
                               details: details)
        }
        return CheckResult(check: "service.heartbeat", status: .pass, finding: line, details: details)
    }
}
