import Basics
import Foundation
import Hub
import Testing

/// The hub's reading of a station's health report (`HealthReport.parse`),
/// and what it does with one: bytes uploaded with `kind=health` are
/// untrusted. Every input either parses into a report whose station id is
/// usable as a label value, whose counts are not negative and whose numbers
/// are finite — and which the Prometheus exposition and the fleet page
/// render with the label and the HTML escaped — or is refused with a
/// one-line message; never a crash.
@Suite(.serialized) struct HealthReportFuzz {
    static func check(_ input: [UInt8]) throws -> String {
        switch HealthReport.parse(input) {
        case let .failure(invalid):
            guard !invalid.message.isEmpty, !invalid.message.contains("\n") else {
                throw Fuzz.Violation("the refusal is not one line: \(invalid.message.debugDescription)")
            }
            return "refused: " + outcomeLabel(invalid.message, limit: 40)
        case let .success(r):
            guard HealthReport.isUsableStationID(r.station), r.queueItems >= 0, r.queueBytes >= 0,
                  (r.oldestPendingSeconds ?? 0).isFinite, (r.oldestPendingSeconds ?? 0) >= 0,
                  (r.socTemperatureCelsius ?? 0).isFinite else {
                throw Fuzz.Violation("accepted an unusable report: \(r)")
            }
            if let ratio = r.diskFreeRatio, !(0...1).contains(ratio) {
                throw Fuzz.Violation("disk free ratio \(ratio) outside 0...1")
            }
            // What the hub serves from it: every line of the exposition is a
            // comment or one sample whose label value has no raw quote or newline.
            let entry = FleetEntry(report: r, receivedAt: Date(timeIntervalSince1970: 0), upload: "x")
            let text = FleetMetrics.render([r.station: entry])
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty && !line.hasPrefix("#") {
                guard let open = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}"), open < close else {
                    if line.hasPrefix("telestation_fleet_stations ") { continue }
                    throw Fuzz.Violation("a sample line without labels: \(line.debugDescription)")
                }
                let value = line[line.index(after: close)...].trimmingCharacters(in: .whitespaces)
                guard Double(value) != nil || ["NaN", "+Inf", "-Inf"].contains(value) else {
                    throw Fuzz.Violation("a sample value Prometheus cannot read: \(line.debugDescription)")
                }
            }
            let page = FleetPage.render([r.station: entry], now: Date(timeIntervalSince1970: 0))
            if r.station.contains("<") && page.contains("<td>\(r.station)") {
                throw Fuzz.Violation("the fleet page shows the station id unescaped: \(r.station.debugDescription)")
            }
            return "parsed" + (r.lastDiagnose == nil ? "" : " with diagnose")
        }
    }

    static let valid = HealthReport(
        station: "ps-ejemplo-01", generatedAt: Date(timeIntervalSince1970: 1_790_000_000), version: "0.1.0",
        queueItems: 3, queueBytes: 123_456, oldestPendingSeconds: 3600.5, awaitingReceipt: 1, heldItems: 0,
        diskFreeBytes: 10 << 30, diskTotalBytes: 30 << 30, clockSynchronized: true,
        camera: .init(state: "ok", model: "Dermlite \"DL5\""), undervoltageSeen: false, socTemperatureCelsius: 51.2,
        lastDiagnose: .init(verdict: "warn", at: Date(timeIntervalSince1970: 1_789_000_000)),
        lastUploadAt: Date(timeIntervalSince1970: 1_789_999_000))

    static let seeds: [[UInt8]] = [
        Array(valid.json()),
        Array(HealthReport(station: "a", generatedAt: Date(timeIntervalSince1970: 0), version: "").json()),
        Array(#"{"schema":1,"station":"x<b>\"\\","generated_at":"2026-01-01T00:00:00.5Z","version":"1","queue_items":0,"queue_bytes":0,"awaiting_receipt":0,"held_items":0,"camera":{"state":"missing"}}"#.utf8),
        Array(#"{"schema":2}"#.utf8),
        Array("[]".utf8),
        [],
    ]

    static let dictionary = ByteMutator.tokens([
        "\"", "\\", "\\n", "\\u0000", "null", "true", "false", "-1", "1e308", "-0", "NaN", "1e400", "{", "}", "[", "]", ",", ":",
        "\"station\":", "\"schema\":", "\"queue_items\":", "\"generated_at\":", "\"2026-13-01T00:00:00Z\"", "<script>", "&",
        "é", "🙂", "\u{FEFF}",
    ])

    @Test func healthReport() {
        let f = Fuzz.run("health-report", short: 20_000, seeds: Self.seeds,
                         mutate: { bytes, rng, pool in ByteMutator.mutate(&bytes, &rng, pool: pool, dictionary: Self.dictionary) },
                         check: Self.check)
        #expect(f.violations == 0)
        #expect(f.outcomes.keys.contains { $0.hasPrefix("parsed") }, "no input parsed")
        #expect(f.outcomes.keys.contains { $0.hasPrefix("refused") }, "no input was refused")
    }
}
