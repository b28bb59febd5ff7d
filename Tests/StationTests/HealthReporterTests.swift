import Basics
import Config
import Crypto
import Foundation
import Spool
import Testing
@testable import Station

/// The station's health report: the pure mapping from readings, the
/// diagnose verdict left in the state directory, and a whole gather over a
/// real spool and a fake sysfs.
@Suite struct HealthReporterTests {
    @Test func reportFromReadings() {
        let now = Date(timeIntervalSince1970: 1_790_000_000)
        let status = SpoolStatus(counts: [.queued: 3], bytesPending: 45_000, oldestPendingAge: 3600.04, pending: [],
                                 awaitingReceipt: 2, healthPending: 5)
        let r = HealthReporter.report(station: "ps-a", now: now, version: "9.9", HealthReporter.Readings(
            status: status, lastUpload: now.addingTimeInterval(-60), disk: (available: 1 << 30, total: 8 << 30),
            clockSynchronized: true, camera: .init(state: "missing"),
            sensors: BoardSensors(undervoltageSeen: false, socTemperatureCelsius: 55),
            diagnose: .init(verdict: "fail", at: now.addingTimeInterval(-3600))))
        #expect(r.station == "ps-a" && r.version == "9.9" && r.generatedAt == now)
        #expect(r.queueItems == 0)  // `pending` lists the items; counts alone are not items to send
        #expect(r.queueBytes == 45_000 && r.oldestPendingSeconds == 3600 && r.awaitingReceipt == 2)
        #expect(r.diskFreeRatio == 0.125)
        #expect(r.clockSynchronized == true && r.camera.state == "missing")
        #expect(r.undervoltageSeen == false && r.socTemperatureCelsius == 55)
        #expect(r.lastDiagnose?.verdict == "fail")
    }

    @Test func diagnoseVerdictRoundTrip() throws {
        let dir = NSTemporaryDirectory() + "diag-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(HealthReporter.lastDiagnose(stateDir: dir) == nil)
        let v = HealthReport.DiagnoseVerdict(verdict: "warn", at: Date(timeIntervalSince1970: 1_790_000_000), only: ["storage"])
        try HealthReporter.recordDiagnose(v, stateDir: dir)
        #expect(HealthReporter.lastDiagnose(stateDir: dir) == v)
        try Data("{garbage".utf8).write(to: URL(fileURLWithPath: dir + "/diagnose.json"))
        #expect(HealthReporter.lastDiagnose(stateDir: dir) == nil)
        #expect(throws: (any Error).self) { try HealthReporter.recordDiagnose(v, stateDir: dir + "/missing") }
        #expect(HealthReport.DiagnoseVerdict.verdict(exitCode: 0) == "pass")
        #expect(HealthReport.DiagnoseVerdict.verdict(exitCode: 2) == "fail")
    }

    @Test func gatherAndQueueOverARealSpool() async throws {
        let root = NSTemporaryDirectory() + "health-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        var config = StationConfig()
        config.station.id = "ps-gather"
        config.station.stateDir = root
        let spool = try Spool(directory: root + "/spool", databasePath: root + "/queue.sqlite", minFree: 0,
                              protection: .encrypted(SpoolKey(key: SymmetricKey(size: .bits256), source: "test")))
        _ = try spool.enqueue(imageData: Data(repeating: 7, count: 4000), preview: Data(repeating: 8, count: 400),
                              metadata: ItemMetadata(caseID: "HC-1", filename: "a.jpg"))
        let sys = root + "/sysfs"
        try FileManager.default.createDirectory(atPath: sys + "/sys/class/thermal/thermal_zone0", withIntermediateDirectories: true)
        try "61000\n".write(toFile: sys + "/sys/class/thermal/thermal_zone0/temp", atomically: true, encoding: .utf8)
        var reporter = HealthReporter(config: config, spool: spool) { .init(state: "ok", model: "Cam") }
        reporter.sysRoot = sys
        reporter.clockSynchronized = { nil }
        let id = try await reporter.enqueue(now: Date(timeIntervalSince1970: 1_790_000_000))
        let item = try #require(try spool.item(id: id))
        #expect(item.kind == .health)
        #expect(item.metadata.filename == "ps-gather-health-2026-09-21T141320Z.json")
        let r = try HealthReport.parse(Array(try spool.openFile(item).readAll())).get()
        #expect(r.station == "ps-gather" && r.queueItems == 2 && r.queueBytes == 4400)
        #expect(r.socTemperatureCelsius == 61 && r.undervoltageSeen == nil && r.clockSynchronized == nil)
        #expect((r.diskTotalBytes ?? 0) > 0 && r.camera == .init(state: "ok", model: "Cam"))
        // The report does not count itself, or other reports, as queue.
        #expect(try spool.status().pending.count == 2)
    }
}
