import Basics
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The newest health report of each station, as the hub keeps it.
public struct FleetEntry: Codable, Sendable, Equatable {
    public var report: HealthReport
    /// When the hub stored the upload that carried it (the hub's clock).
    public var receivedAt: Date
    /// The upload it came in, for whoever wants the file.
    public var upload: String

    public init(report: HealthReport, receivedAt: Date, upload: String) {
        self.report = report
        self.receivedAt = receivedAt
        self.upload = upload
    }

    enum CodingKeys: String, CodingKey {
        case report, upload
        case receivedAt = "received_at"
    }
}

/// Every station's latest health report, kept in `DIR/fleet.json`: read at
/// start, replaced atomically (temporary file, fsync, rename) on each newer
/// report. Reports arrive out of order after an outage (the oldest queued
/// first), so "latest" is by the report's own `generated_at`, never by arrival.
public final class Fleet: Sendable {
    public let path: String
    private let entries: Locked<[String: FleetEntry]>
    let logger: Logger

    public init(directory: String, logger: Logger = Logger(label: "telestation-hub")) {
        self.path = (directory as NSString).appendingPathComponent("fleet.json")
        self.logger = logger
        var loaded: [String: FleetEntry] = [:]
        if let data = FileManager.default.contents(atPath: path) {
            do {
                loaded = try Self.decoder.decode(Wire.self, from: data).stations
            } catch {
                // The uploads themselves are kept: the fleet view fills again
                // as stations report. Say so instead of refusing to start.
                logger.warning("\(path) cannot be read; the fleet view starts empty and fills as stations report",
                               metadata: ["error": "\(error)"])
            }
        }
        entries = Locked(loaded)
    }

    struct Wire: Codable {
        var stations: [String: FleetEntry]
    }

    /// Every station's entry, by station id.
    public var stations: [String: FleetEntry] { entries.withLock { $0 } }

    /// Takes a stored upload's health report: parsed, checked against the
    /// upload's `station` metadata, and kept when newer than the one held.
    /// A report that cannot be used is logged and left in the store.
    /// Returns whether the fleet changed.
    @discardableResult
    public func ingest(_ info: UploadInfo, bytes: [UInt8], now: Date = Date()) async -> Bool {
        let report: HealthReport
        switch HealthReport.parse(bytes) {
        case let .success(r): report = r
        case let .failure(invalid):
            logger.warning("a health report was stored but cannot be read; the fleet view ignores it",
                           metadata: ["id": "\(info.id)", "stored_as": "\(info.storedAs ?? "")", "reason": "\(invalid.message)"])
            return false
        }
        if let claimed = info.metadata["station"], claimed != report.station {
            logger.warning("a health report names another station than its upload; the fleet view ignores it",
                           metadata: ["id": "\(info.id)", "upload_station": "\(claimed)", "report_station": "\(report.station)"])
            return false
        }
        let entry = FleetEntry(report: report, receivedAt: now, upload: info.id)
        let newer = entries.withLock { e -> Bool in
            if let held = e[report.station], held.report.generatedAt >= report.generatedAt { return false }
            e[report.station] = entry
            return true
        }
        guard newer else {
            logger.info("older health report stored; the fleet keeps the newer one",
                        metadata: ["station": "\(report.station)", "generated_at": "\(HealthReport.iso(report.generatedAt))"])
            return false
        }
        do {
            try await write()
        } catch {
            logger.error("cannot write \(path): \(error); the fleet view holds the report until the hub restarts")
        }
        logger.info("health report", metadata: ["station": "\(report.station)", "generated_at": "\(HealthReport.iso(report.generatedAt))",
                                                "queue_items": "\(report.queueItems)"])
        return true
    }

    /// One writer at a time; each writes the state as it is then.
    private let writing = Locked(())

    private func write() async throws {
        let path = self.path
        let entries = self.entries
        let writing = self.writing
        try await Blocking.run {
            try writing.withLock { _ in
                // The newest state, not the snapshot: two ingests racing
                // must not leave the older one's view on disk.
                let current = entries.withLock { $0 }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                encoder.dateEncodingStrategy = .iso8601
                let data = try encoder.encode(Wire(stations: current))
                let tmp = path + ".tmp"
                let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw SystemCallError("open", path: tmp, errno: errno) }
                defer { close(fd) }
                try Syscall.writeAll(fd, Array(data), path: tmp)
                guard fsync(fd) == 0 else { throw SystemCallError("fsync", path: tmp, errno: errno) }
                guard rename(tmp, path) == 0 else { throw SystemCallError("rename", path: path, errno: errno) }
                try Syscall.syncDirectory((path as NSString).deletingLastPathComponent)
            }
        }
    }

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let s = try c.decode(String.self)
            guard let date = HealthReport.date(s) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an ISO 8601 date")
            }
            return date
        }
        return d
    }()
}

/// The fleet in Prometheus text exposition format 0.0.4: one gauge family
/// per measure, each series labelled `station`.
public enum FleetMetrics {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// A label value escaped as the format requires: backslash, double quote and line feed.
    public static func escapeLabel(_ s: String) -> String {
        var out = ""
        for ch in s.unicodeScalars {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// A sample value: Go's float formatting accepts these, and integers stay integers.
    static func value(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    struct Family: Sendable {
        let name: String
        let help: String
        let sample: @Sendable (FleetEntry) -> Double?
    }

    static let families: [Family] = [
        Family(name: "telestation_last_report_timestamp_seconds", help: "When the station made its newest health report (station clock, Unix seconds).") {
            $0.report.generatedAt.timeIntervalSince1970 },
        Family(name: "telestation_report_received_timestamp_seconds", help: "When the hub received that report (hub clock, Unix seconds).") {
            $0.receivedAt.timeIntervalSince1970 },
        Family(name: "telestation_queue_items", help: "Images and previews not yet on the hub.") { Double($0.report.queueItems) },
        Family(name: "telestation_queue_bytes", help: "Bytes of them the hub has not acknowledged.") { Double($0.report.queueBytes) },
        Family(name: "telestation_oldest_pending_seconds", help: "Age of the oldest image or preview not yet on the hub, when the report was made; 0 when none.") {
            $0.report.oldestPendingSeconds ?? 0 },
        Family(name: "telestation_awaiting_receipt_items", help: "Images on the hub whose filing receipt has not come back.") {
            Double($0.report.awaitingReceipt) },
        Family(name: "telestation_held_items", help: "Items held on the station for a technician.") { Double($0.report.heldItems) },
        Family(name: "telestation_disk_free_bytes", help: "Free bytes on the file system of the station's state directory.") {
            $0.report.diskFreeBytes.map(Double.init) },
        Family(name: "telestation_disk_free_ratio", help: "Free fraction of the file system of the station's state directory (0-1).") {
            $0.report.diskFreeRatio },
        Family(name: "telestation_clock_synchronized", help: "1 when the station's clock is synchronised with network time.") {
            $0.report.clockSynchronized.map { $0 ? 1 : 0 } },
        Family(name: "telestation_camera_ok", help: "1 when the station's camera is streaming.") { $0.report.camera.state == "ok" ? 1 : 0 },
        Family(name: "telestation_undervoltage_seen", help: "1 when the board saw under-voltage since boot (Raspberry Pi); absent where the board cannot tell.") {
            $0.report.undervoltageSeen.map { $0 ? 1 : 0 } },
        Family(name: "telestation_soc_temperature_celsius", help: "SoC temperature in degrees Celsius; absent where the board cannot tell.") {
            $0.report.socTemperatureCelsius },
        Family(name: "telestation_last_upload_timestamp_seconds", help: "When an image or preview last reached the hub (station clock, Unix seconds).") {
            $0.report.lastUploadAt?.timeIntervalSince1970 },
        Family(name: "telestation_diagnose_verdict", help: "The last `telestation diagnose`: 0 pass, 1 warn, 2 fail.") {
            switch $0.report.lastDiagnose?.verdict {
            case "pass": 0
            case "warn": 1
            case "fail": 2
            default: nil
            }
        },
        Family(name: "telestation_last_diagnose_timestamp_seconds", help: "When `telestation diagnose` last ran (Unix seconds).") {
            $0.report.lastDiagnose?.at.timeIntervalSince1970 },
    ]

    /// The whole exposition, stations in id order.
    public static func render(_ stations: [String: FleetEntry]) -> String {
        let ordered = stations.sorted { $0.key < $1.key }
        var out = "# HELP telestation_fleet_stations Stations that have sent the hub a health report.\n"
        out += "# TYPE telestation_fleet_stations gauge\ntelestation_fleet_stations \(ordered.count)\n"
        out += "# HELP telestation_info The station's software version and camera model; always 1.\n# TYPE telestation_info gauge\n"
        for (id, e) in ordered {
            out += "telestation_info{station=\"\(escapeLabel(id))\",version=\"\(escapeLabel(e.report.version))\","
                + "camera_model=\"\(escapeLabel(e.report.camera.model ?? ""))\",camera_state=\"\(escapeLabel(e.report.camera.state))\"} 1\n"
        }
        for f in families {
            out += "# HELP \(f.name) \(f.help)\n# TYPE \(f.name) gauge\n"
            for (id, e) in ordered {
                guard let v = f.sample(e) else { continue }
                out += "\(f.name){station=\"\(escapeLabel(id))\"} \(value(v))\n"
            }
        }
        return out
    }
}

/// `GET /fleet`: one plain HTML page for operators without Grafana, a row
/// per station with what needs a visit said in words.
public enum FleetPage {
    /// A report older than this makes the station "silent".
    public static let silentAfter: Double = 24 * 3600

    public static func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }

    /// "3 days", "5 h", "12 min", "40 s".
    public static func age(_ seconds: Double) -> String {
        let s = max(0, seconds)
        if s >= 2 * 86400 { return "\(Int(s / 86400)) days" }
        if s >= 3600 { return "\(Int(s / 3600)) h" }
        if s >= 60 { return "\(Int(s / 60)) min" }
        return "\(Int(s)) s"
    }

    /// What an operator should notice about a station, worst first; empty when all is well.
    public static func problems(_ e: FleetEntry, now: Date) -> [String] {
        let r = e.report
        var out: [String] = []
        let silent = now.timeIntervalSince(r.generatedAt)
        if silent > silentAfter { out.append("silent for \(age(silent))") }
        switch r.camera.state {
        case "ok": break
        case "missing": out.append("camera missing")
        case "starting": out.append("camera starting")
        default: out.append("camera failed")
        }
        if let ratio = r.diskFreeRatio, ratio < 0.15 {
            out.append("disk \(Int(((1 - ratio) * 100).rounded())) %")
        }
        if let oldest = r.oldestPendingSeconds, oldest > 3 * 86400 { out.append("images waiting \(age(oldest))") }
        if r.undervoltageSeen == true { out.append("under-voltage seen") }
        if r.clockSynchronized == false { out.append("clock not synchronised") }
        if r.heldItems > 0 { out.append("\(r.heldItems) held for a technician") }
        if r.lastDiagnose?.verdict == "fail" { out.append("diagnose FAIL") }
        return out
    }

    public static func render(_ stations: [String: FleetEntry], now: Date = Date()) -> String {
        let ordered = stations.sorted { a, b in
            // Stations needing attention first, then by id.
            let pa = problems(a.value, now: now).isEmpty, pb = problems(b.value, now: now).isEmpty
            return pa != pb ? !pa : a.key < b.key
        }
        var rows = ""
        for (id, e) in ordered {
            let r = e.report
            let found = problems(e, now: now)
            let disk = r.diskFreeRatio.map { "\(Int(((1 - $0) * 100).rounded())) % used" } ?? "?"
            let queue = r.queueItems == 0 ? "empty" : "\(r.queueItems) (\(bytes(r.queueBytes)))"
            let oldest = r.oldestPendingSeconds.map(age) ?? "–"
            let camera = r.camera.state + (r.camera.model.map { " · \($0)" } ?? "")
            let temp = r.socTemperatureCelsius.map { String(format: "%.0f °C", $0) } ?? "–"
            let upload = r.lastUploadAt.map { age(now.timeIntervalSince($0)) + " ago" } ?? "never"
            let diag = r.lastDiagnose.map { "\($0.verdict) (\(age(now.timeIntervalSince($0.at))) ago)" } ?? "–"
            rows += "<tr class=\"\(found.isEmpty ? "ok" : "attention")\">"
            rows += "<td>\(escape(id))</td><td>\(escape(found.isEmpty ? "ok" : found.joined(separator: ", ")))</td>"
            rows += "<td>\(escape(age(now.timeIntervalSince(r.generatedAt)))) ago</td><td>\(escape(queue))</td><td>\(escape(oldest))</td>"
            rows += "<td>\(escape(disk))</td><td>\(escape(camera))</td><td>\(escape(temp))</td><td>\(escape(upload))</td>"
            rows += "<td>\(escape(diag))</td><td>\(escape(r.version))</td></tr>\n"
        }
        if ordered.isEmpty { rows = "<tr><td colspan=\"11\">No station has reported yet.</td></tr>\n" }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Telestation fleet</title>
            <meta http-equiv="refresh" content="60">
            <style>
            body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}
            td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left}tr.attention td:nth-child(2){color:#a00;font-weight:bold}
            </style></head><body>
            <h1>Telestation fleet</h1>
            <p>\(ordered.count) station(s); newest health report of each, as of \(escape(HealthReport.iso(now))). Metrics for Prometheus: <a href="/metrics">/metrics</a>.</p>
            <table><thead><tr><th>station</th><th>needs attention</th><th>last report</th><th>queue</th><th>oldest pending</th><th>disk</th><th>camera</th><th>SoC</th><th>last upload</th><th>diagnose</th><th>version</th></tr></thead>
            <tbody>
            \(rows)</tbody></table></body></html>

            """
    }

    static func bytes(_ n: Int64) -> String {
        let d = Double(n)
        if d >= 1_073_741_824 { return String(format: "%.1f GiB", d / 1_073_741_824) }
        if d >= 1_048_576 { return String(format: "%.1f MiB", d / 1_048_576) }
        if d >= 1024 { return String(format: "%.0f KiB", d / 1024) }
        return "\(n) B"
    }
}
