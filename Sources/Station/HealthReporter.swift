import Basics
import Config
import Foundation
import Logging
import ServiceLifecycle
import Spool

/// Makes the station's health report and queues it for the hub.
///
/// The reading of the world (queue, file system, clock, sysfs, the last
/// diagnose) happens in `gather`, at the edge; turning what was read into a
/// `HealthReport` is `report(...)`, a pure function with its own tests.
public struct HealthReporter: Sendable {
    public let config: StationConfig
    public let spool: Spool
    /// "/" on a station; tests point it at a directory laid out like sysfs.
    public var sysRoot: String = "/"
    /// The camera as the daemon sees it right now.
    public var camera: @Sendable () -> HealthReport.CameraState
    public var clockSynchronized: @Sendable () -> Bool? = { ClockSync.isSynchronized() }

    public init(config: StationConfig, spool: Spool,
                camera: @escaping @Sendable () -> HealthReport.CameraState) {
        self.config = config
        self.spool = spool
        self.camera = camera
    }

    /// What was read, before it becomes a report.
    public struct Readings: Sendable {
        public var status: SpoolStatus
        public var lastUpload: Date?
        public var disk: (available: Int64, total: Int64)?
        public var clockSynchronized: Bool?
        public var camera: HealthReport.CameraState
        public var sensors: BoardSensors
        public var diagnose: HealthReport.DiagnoseVerdict?
    }

    /// The version `telestation` reports (`DicomItem.softwareVersion` without the name).
    public static var version: String {
        let v = DicomItem.softwareVersion
        return v.hasPrefix("telestation ") ? String(v.dropFirst("telestation ".count)) : v
    }

    /// The report from what was read: pure.
    public static func report(station: String, now: Date, version: String = HealthReporter.version,
                              _ r: Readings) -> HealthReport {
        let held = r.status.pending.filter { $0.state == .held }.count
        return HealthReport(
            station: station, generatedAt: now, version: version,
            queueItems: r.status.pending.count, queueBytes: r.status.bytesPending,
            oldestPendingSeconds: r.status.oldestPendingAge.map { ($0 * 10).rounded() / 10 },
            awaitingReceipt: r.status.awaitingReceipt, heldItems: held,
            diskFreeBytes: r.disk?.available, diskTotalBytes: r.disk?.total,
            clockSynchronized: r.clockSynchronized, camera: r.camera,
            undervoltageSeen: r.sensors.undervoltageSeen, socTemperatureCelsius: r.sensors.socTemperatureCelsius,
            lastDiagnose: r.diagnose, lastUploadAt: r.lastUpload)
    }

    /// Reads everything the report says. Blocks (SQLite, statvfs, sysfs):
    /// call it on the blocking pool.
    public func gather(now: Date = Date()) throws(SpoolError) -> HealthReport {
        let status = try spool.status(now: now)
        let readings = Readings(
            status: status, lastUpload: try spool.lastUploadAt(),
            disk: try? Syscall.diskSpace(config.station.stateDir),
            clockSynchronized: clockSynchronized(), camera: camera(),
            sensors: BoardSensors.read(root: sysRoot),
            diagnose: Self.lastDiagnose(stateDir: config.station.stateDir))
        return Self.report(station: config.station.id, now: now, readings)
    }

    /// Makes a report and queues it; returns the item's id.
    @discardableResult
    public func enqueue(now: Date = Date()) async throws -> Int64 {
        let reporter = self
        return try await spool.perform { spool in
            let report = try reporter.gather(now: now)
            let stamp = HealthReport.iso(now).replacingOccurrences(of: ":", with: "")
            return try spool.enqueueHealth(report.json(), generatedAt: now,
                                           filename: "\(reporter.config.station.id)-health-\(stamp).json")
        }
    }

    // MARK: the last diagnose

    /// The verdict `telestation diagnose` left in the state directory; nil
    /// when it never ran there (or could not write) or the file is damaged.
    public static func lastDiagnose(stateDir: String) -> HealthReport.DiagnoseVerdict? {
        let path = (stateDir as NSString).appendingPathComponent(HealthReport.DiagnoseVerdict.fileName)
        guard let data = FileManager.default.contents(atPath: path), data.count < 64 * 1024 else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let v = try? decoder.decode(HealthReport.DiagnoseVerdict.self, from: data),
              ["pass", "warn", "fail"].contains(v.verdict) else { return nil }
        return v
    }

    /// Keeps `verdict` for the next health report: written to a temporary
    /// file and renamed over the old one, so a reader never sees half of it.
    /// Throws when the state directory is not writable (diagnose run by a
    /// user who cannot write there); the caller carries on without it.
    public static func recordDiagnose(_ verdict: HealthReport.DiagnoseVerdict, stateDir: String) throws {
        let path = (stateDir as NSString).appendingPathComponent(HealthReport.DiagnoseVerdict.fileName)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        let tmp = path + ".tmp"
        try encoder.encode(verdict).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw SystemCallError("rename", path: path, errno: e)
        }
    }
}

/// The daemon's health reports: the first soon after start (a minute, or
/// the interval when shorter), then one every `[health] interval`.
struct HealthService: Service {
    let reporter: HealthReporter
    let interval: Double
    let wake: @Sendable () -> Void
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var wait = min(interval, 60)
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(Int(wait * 1000)))
                wait = interval
                do {
                    let id = try await reporter.enqueue()
                    logger.debug("queued health report", metadata: ["item": "\(id)"])
                    wake()
                } catch {
                    // Not fatal: the next interval tries again.
                    logger.warning("cannot queue a health report: \(error)")
                }
            }
        }
    }
}
