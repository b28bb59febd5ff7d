import Basics
import Foundation
import Testing

@Suite struct HealthReportTests {
    static let full = HealthReport(
        station: "ps-ccatca", generatedAt: Date(timeIntervalSince1970: 1_790_000_000), version: "0.1.0",
        queueItems: 4, queueBytes: 2_000_000, oldestPendingSeconds: 7200, awaitingReceipt: 2, heldItems: 1,
        diskFreeBytes: 8 << 30, diskTotalBytes: 32 << 30, clockSynchronized: false,
        camera: .init(state: "ok", model: "DermLite DL5"), undervoltageSeen: true, socTemperatureCelsius: 61.5,
        lastDiagnose: .init(verdict: "warn", at: Date(timeIntervalSince1970: 1_789_990_000), only: ["storage"]),
        lastUploadAt: Date(timeIntervalSince1970: 1_789_999_000))

    @Test func roundTripsThroughTheHubsParser() throws {
        let parsed = try HealthReport.parse(Array(Self.full.json())).get()
        #expect(parsed == Self.full)
        #expect(parsed.diskFreeRatio == 0.25)
    }

    @Test func unknownsAreWrittenAsNullNotLeftOut() throws {
        let bare = HealthReport(station: "ps-x", generatedAt: Date(timeIntervalSince1970: 0), version: "0.1.0")
        let object = try #require(try JSONSerialization.jsonObject(with: bare.json()) as? [String: Any])
        for key in ["undervoltage_seen", "soc_temperature_celsius", "clock_synchronized", "last_diagnose", "last_upload_at",
                    "oldest_pending_seconds", "disk_free_bytes"] {
            #expect(object[key] is NSNull, "\(key) should be null")
        }
        #expect(object["generated_at"] as? String == "1970-01-01T00:00:00Z")
        #expect(try HealthReport.parse(Array(bare.json())).get() == bare)
    }

    @Test(arguments: [
        (#"{"schema":1}"#, "has no station"),
        (#"not json"#, "not valid JSON"),
        (#"{"schema":2,"station":"a","generated_at":"2026-01-01T00:00:00Z","version":"1","queue_items":0,"queue_bytes":0,"awaiting_receipt":0,"held_items":0,"camera":{"state":"ok"}}"#, "schema 2"),
        (#"{"schema":1,"station":"","generated_at":"2026-01-01T00:00:00Z","version":"1","queue_items":0,"queue_bytes":0,"awaiting_receipt":0,"held_items":0,"camera":{"state":"ok"}}"#, "station id"),
        (#"{"schema":1,"station":"a\nb","generated_at":"2026-01-01T00:00:00Z","version":"1","queue_items":0,"queue_bytes":0,"awaiting_receipt":0,"held_items":0,"camera":{"state":"ok"}}"#, "station id"),
        (#"{"schema":1,"station":"a","generated_at":"2026-01-01T00:00:00Z","version":"1","queue_items":-3,"queue_bytes":0,"awaiting_receipt":0,"held_items":0,"camera":{"state":"ok"}}"#, "negative"),
        (#"{"schema":1,"station":"a","generated_at":"yesterday","version":"1","queue_items":0,"queue_bytes":0,"awaiting_receipt":0,"held_items":0,"camera":{"state":"ok"}}"#, "generated_at"),
        (#"{"schema":1,"station":"a","generated_at":"2026-01-01T00:00:00Z","version":"1","queue_items":"3","queue_bytes":0,"awaiting_receipt":0,"held_items":0,"camera":{"state":"ok"}}"#, "queue_items has the wrong type"),
    ])
    func refusesWhatTheHubCannotUse(json: String, expected: String) {
        guard case let .failure(invalid) = HealthReport.parse(Array(json.utf8)) else {
            Issue.record("accepted \(json)")
            return
        }
        #expect(invalid.message.contains(expected), "\(invalid.message)")
    }

    @Test func refusesOversizedReports() {
        let big = [UInt8](repeating: 0x20, count: HealthReport.maxSize + 1)
        guard case let .failure(invalid) = HealthReport.parse(big) else { Issue.record("accepted"); return }
        #expect(invalid.message.contains("at most"))
    }
}

@Suite struct BoardSensorsTests {
    /// A directory laid out like the parts of sysfs the sensors read.
    func sysfs(_ files: [String: String]) throws -> String {
        let root = NSTemporaryDirectory() + "sysfs-" + UUID().uuidString
        for (path, text) in files {
            let full = root + "/" + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: true, encoding: .utf8)
        }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        return root
    }

    @Test func raspberryPiWithUndervoltageSeen() throws {
        let root = try sysfs([
            "sys/class/hwmon/hwmon0/name": "cpu_thermal\n",
            "sys/class/hwmon/hwmon1/name": "rpi_volt\n",
            "sys/class/hwmon/hwmon1/in0_lcrit_alarm": "1\n",
            "sys/class/thermal/thermal_zone0/temp": "48312\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(BoardSensors.read(root: root) == BoardSensors(undervoltageSeen: true, socTemperatureCelsius: 48.312))
    }

    @Test func raspberryPiWithAGoodSupply() throws {
        let root = try sysfs(["sys/class/hwmon/hwmon3/name": "rpi_volt", "sys/class/hwmon/hwmon3/in0_lcrit_alarm": "0"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(BoardSensors.read(root: root) == BoardSensors(undervoltageSeen: false, socTemperatureCelsius: nil))
    }

    @Test func aBoardWithoutSensorsSaysNothingRatherThanFailing() throws {
        let root = try sysfs([
            "sys/class/hwmon/hwmon0/name": "coretemp",
            "sys/class/hwmon/hwmon0/in0_lcrit_alarm": "1",
            "sys/class/thermal/thermal_zone0/temp": "garbage",
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(BoardSensors.read(root: root) == BoardSensors())
        #expect(BoardSensors.read(root: root + "/does-not-exist") == BoardSensors())
    }
}
