import Foundation

/// A station's health at one moment, as it travels to the hub: a small JSON
/// document queued and uploaded like an image (tus metadata `kind=health`),
/// so a report made during an outage arrives late rather than never.
///
/// It lives here, beside `TusWire`, because both ends speak it: the station
/// writes it (`Station.HealthReporter`) and the hub reads it (`Hub.Fleet`),
/// and the hub must not link the camera code that `StationAPI` brings.
/// The JSON field names are an interface between station and hub versions:
/// add fields, never rename them. Unknown fields are ignored by the reader.
public struct HealthReport: Codable, Sendable, Equatable {
    /// Format of this document; readers refuse a newer major version.
    public var schema: Int = 1
    /// `[station] id`.
    public var station: String
    /// When the station made the report, by its own clock (see `clockSynchronized`).
    public var generatedAt: Date
    /// Software version of `telestation`.
    public var version: String

    /// Images and previews not yet on the hub (health reports not counted).
    public var queueItems: Int
    /// Bytes of them the hub has not acknowledged.
    public var queueBytes: Int64
    /// Age of the oldest of them, in seconds; nil when none is pending.
    public var oldestPendingSeconds: Double?
    /// Images on the hub whose receipt (filed) has not come yet.
    public var awaitingReceipt: Int
    /// Items held for a technician.
    public var heldItems: Int

    /// Free space (for the station's user) and size of the state directory's file system.
    public var diskFreeBytes: Int64?
    public var diskTotalBytes: Int64?
    /// nil: the kernel could not be asked.
    public var clockSynchronized: Bool?

    public var camera: CameraState
    /// The firmware's sticky under-voltage flag (Raspberry Pi `rpi_volt`
    /// hwmon `in0_lcrit_alarm`) since boot; nil where the board has none.
    public var undervoltageSeen: Bool?
    /// The SoC's temperature (`thermal_zone0`); nil where there is none.
    public var socTemperatureCelsius: Double?

    /// The last `telestation diagnose` run on the station, when it could record one.
    public var lastDiagnose: DiagnoseVerdict?
    /// When an image or preview last reached the hub.
    public var lastUploadAt: Date?

    public struct CameraState: Codable, Sendable, Equatable {
        /// `ok`, `starting`, `missing` or `failed` (the kiosk's camera states).
        public var state: String
        public var model: String?
        public init(state: String, model: String? = nil) {
            self.state = state
            self.model = model
        }
    }

    /// What `telestation diagnose` concluded, kept in the state directory
    /// (`diagnose.json`) for the next health report.
    public struct DiagnoseVerdict: Codable, Sendable, Equatable {
        /// `pass`, `warn` or `fail`.
        public var verdict: String
        public var at: Date
        /// The groups run with `--only`; nil for a full run.
        public var only: [String]?
        public init(verdict: String, at: Date, only: [String]? = nil) {
            self.verdict = verdict
            self.at = at
            self.only = only
        }

        /// The file's name in the state directory.
        public static let fileName = "diagnose.json"

        public static func verdict(exitCode: Int32) -> String {
            switch exitCode {
            case 0: "pass"
            case 1: "warn"
            default: "fail"
            }
        }
    }

    public init(station: String, generatedAt: Date, version: String, queueItems: Int = 0, queueBytes: Int64 = 0,
                oldestPendingSeconds: Double? = nil, awaitingReceipt: Int = 0, heldItems: Int = 0,
                diskFreeBytes: Int64? = nil, diskTotalBytes: Int64? = nil, clockSynchronized: Bool? = nil,
                camera: CameraState = CameraState(state: "ok"), undervoltageSeen: Bool? = nil,
                socTemperatureCelsius: Double? = nil, lastDiagnose: DiagnoseVerdict? = nil, lastUploadAt: Date? = nil) {
        self.station = station
        self.generatedAt = generatedAt
        self.version = version
        self.queueItems = queueItems
        self.queueBytes = queueBytes
        self.oldestPendingSeconds = oldestPendingSeconds
        self.awaitingReceipt = awaitingReceipt
        self.heldItems = heldItems
        self.diskFreeBytes = diskFreeBytes
        self.diskTotalBytes = diskTotalBytes
        self.clockSynchronized = clockSynchronized
        self.camera = camera
        self.undervoltageSeen = undervoltageSeen
        self.socTemperatureCelsius = socTemperatureCelsius
        self.lastDiagnose = lastDiagnose
        self.lastUploadAt = lastUploadAt
    }

    enum CodingKeys: String, CodingKey {
        case schema, station, version, camera
        case generatedAt = "generated_at", queueItems = "queue_items", queueBytes = "queue_bytes"
        case oldestPendingSeconds = "oldest_pending_seconds", awaitingReceipt = "awaiting_receipt"
        case heldItems = "held_items", diskFreeBytes = "disk_free_bytes", diskTotalBytes = "disk_total_bytes"
        case clockSynchronized = "clock_synchronized", undervoltageSeen = "undervoltage_seen"
        case socTemperatureCelsius = "soc_temperature_celsius", lastDiagnose = "last_diagnose"
        case lastUploadAt = "last_upload_at"
    }

    /// Free space as a fraction of the file system, 0...1; nil when unknown.
    public var diskFreeRatio: Double? {
        guard let free = diskFreeBytes, let total = diskTotalBytes, total > 0 else { return nil }
        return min(1, max(0, Double(free) / Double(total)))
    }

    /// The document as uploaded: sorted keys, ISO 8601 dates, nulls written out
    /// (a field that is null says "the station could not tell", not "old version").
    public func json() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(HealthReport.iso(date))
        }
        // Codable's synthesised encoding drops nil optionals; write them as null.
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        guard var object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return data }
        for key in Self.nullableKeys where object[key] == nil { object[key] = NSNull() }
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? data
    }

    static let nullableKeys = ["oldest_pending_seconds", "disk_free_bytes", "disk_total_bytes", "clock_synchronized",
                               "undervoltage_seen", "soc_temperature_celsius", "last_diagnose", "last_upload_at"]

    /// Why bytes are not a health report the hub can use.
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
        /// The message goes to the hub's log as one line: control characters
        /// from the station's bytes are shown escaped, never written raw.
        init(message: String) {
            self.message = String(String.UnicodeScalarView(message.unicodeScalars.flatMap { u -> [Unicode.Scalar] in
                u.properties.generalCategory == .control ? Array(u.escaped(asASCII: true).unicodeScalars) : [u]
            }))
        }
    }

    /// Largest report read; a real one is well under 2 KiB.
    public static let maxSize = 64 * 1024

    /// Reads an uploaded report, checking what the hub will act on: a
    /// station id it can use as a Prometheus label value, no negative counts
    /// or sizes, finite numbers, a schema it knows. Never traps, whatever the bytes.
    public static func parse(_ bytes: some Collection<UInt8>) -> Result<HealthReport, Invalid> {
        guard bytes.count <= maxSize else {
            return .failure(Invalid(message: "a health report is at most \(maxSize) bytes; this one has \(bytes.count)"))
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let s = try c.decode(String.self)
            guard let d = HealthReport.date(s) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an ISO 8601 date: \(s.prefix(40))")
            }
            return d
        }
        let report: HealthReport
        do {
            report = try decoder.decode(HealthReport.self, from: Data(bytes))
        } catch let DecodingError.keyNotFound(key, _) {
            return .failure(Invalid(message: "the health report has no \(key.stringValue)"))
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return .failure(Invalid(message: "the health report's \(path) has the wrong type"))
        } catch let DecodingError.dataCorrupted(context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return .failure(Invalid(message: "the health report is not valid JSON\(path.isEmpty ? "" : " at \(path)"): \(context.debugDescription.prefix(80))"))
        } catch {
            return .failure(Invalid(message: "the health report cannot be read: \(error)"))
        }
        if let problem = report.problem { return .failure(Invalid(message: problem)) }
        return .success(report)
    }

    /// What makes a decoded report unusable, or nil.
    var problem: String? {
        if schema < 1 || schema > 1 { return "health report schema \(schema) is not one this hub reads (1)" }
        if !Self.isUsableStationID(station) {
            return "the health report's station id is empty, longer than 64 characters or has control characters"
        }
        if version.count > 64 || camera.state.count > 32 || (camera.model?.count ?? 0) > 128 {
            return "the health report's version or camera fields are too long"
        }
        if queueItems < 0 || queueBytes < 0 || awaitingReceipt < 0 || heldItems < 0
            || (diskFreeBytes ?? 0) < 0 || (diskTotalBytes ?? 0) < 0 {
            return "the health report has a negative count or size"
        }
        for v in [oldestPendingSeconds, socTemperatureCelsius].compactMap({ $0 }) where !v.isFinite {
            return "the health report has a number that is not finite"
        }
        if (oldestPendingSeconds ?? 0) < 0 { return "the health report has a negative age" }
        if let d = lastDiagnose, !["pass", "warn", "fail"].contains(d.verdict) {
            return "the health report's diagnose verdict is \(d.verdict.prefix(20)), not pass, warn or fail"
        }
        return nil
    }

    /// Station ids become label values and HTML text: printable, and short.
    public static func isUsableStationID(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 64 && !s.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    public static func iso(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }

    /// ISO 8601 with or without fractional seconds.
    public static func date(_ s: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: s) { return d }
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: s)
    }
}

/// What the board itself says about power and heat, read from sysfs.
/// `root` is "/" on a station; tests pass a directory laid out like sysfs.
/// Anything absent or unreadable is nil, never an error: most boards (and
/// every PC) have no under-voltage sensor.
public struct BoardSensors: Sendable, Equatable {
    public var undervoltageSeen: Bool?
    public var socTemperatureCelsius: Double?

    public init(undervoltageSeen: Bool? = nil, socTemperatureCelsius: Double? = nil) {
        self.undervoltageSeen = undervoltageSeen
        self.socTemperatureCelsius = socTemperatureCelsius
    }

    public static func read(root: String = "/") -> BoardSensors {
        BoardSensors(undervoltageSeen: undervoltage(root: root), socTemperatureCelsius: temperature(root: root))
    }

    /// Raspberry Pi: the hwmon device named `rpi_volt` (raspberrypi-hwmon)
    /// raises `in0_lcrit_alarm` once the firmware saw under-voltage since boot.
    static func undervoltage(root: String) -> Bool? {
        let hwmon = (root as NSString).appendingPathComponent("sys/class/hwmon")
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: hwmon) else { return nil }
        for name in names.sorted() where name.hasPrefix("hwmon") {
            let dir = (hwmon as NSString).appendingPathComponent(name)
            guard text((dir as NSString).appendingPathComponent("name")) == "rpi_volt" else { continue }
            switch text((dir as NSString).appendingPathComponent("in0_lcrit_alarm")) {
            case "0": return false
            case "1": return true
            default: return nil
            }
        }
        return nil
    }

    /// `thermal_zone0/temp` in millidegrees Celsius (the SoC on a Pi).
    static func temperature(root: String) -> Double? {
        let path = (root as NSString).appendingPathComponent("sys/class/thermal/thermal_zone0/temp")
        guard let t = text(path), let milli = Int(t), (-100_000...200_000).contains(milli) else { return nil }
        return Double(milli) / 1000
    }

    private static func text(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path), data.count < 256 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
