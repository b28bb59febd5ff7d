import Basics
import Foundation
import Testing
@testable import Hub

/// The hub's fleet view: health reports uploaded with `kind=health`, the
/// newest per station kept in `fleet.json`, and `/metrics` in Prometheus
/// text format 0.0.4.
@Suite(.timeLimit(.minutes(2))) struct FleetTests {
    static func report(_ station: String, at t: Double, queue: Int = 0) -> HealthReport {
        HealthReport(station: station, generatedAt: Date(timeIntervalSince1970: t), version: "0.1.0", queueItems: queue,
                     queueBytes: Int64(queue) * 1000, oldestPendingSeconds: queue > 0 ? 600 : nil,
                     diskFreeBytes: 1 << 30, diskTotalBytes: 4 << 30, clockSynchronized: true,
                     camera: .init(state: "ok", model: "Cam"))
    }

    static func info(_ station: String) -> UploadInfo {
        UploadInfo(id: UUID().uuidString, length: 0, metadata: ["station": station, "kind": "health"],
                   createdAt: Date(), expiresAt: Date())
    }

    @Test func keepsTheNewestReportPerStationAndSurvivesARestart() async throws {
        let dir = try TempDir()
        let fleet = Fleet(directory: dir.path)
        #expect(await fleet.ingest(Self.info("ps-a"), bytes: Array(Self.report("ps-a", at: 2000, queue: 2).json())))
        // Late: made before the one held (an outage's queue arrives oldest first
        // but may cross a newer report sent by another process).
        #expect(await fleet.ingest(Self.info("ps-a"), bytes: Array(Self.report("ps-a", at: 1000, queue: 9).json())) == false)
        #expect(await fleet.ingest(Self.info("ps-b"), bytes: Array(Self.report("ps-b", at: 1500).json())))
        #expect(fleet.stations["ps-a"]?.report.queueItems == 2)
        let again = Fleet(directory: dir.path)
        #expect(again.stations.mapValues(\.report) == fleet.stations.mapValues(\.report))
        #expect(again.stations.keys.sorted() == ["ps-a", "ps-b"])
    }

    @Test func unusableReportsAreIgnored() async throws {
        let dir = try TempDir()
        let fleet = Fleet(directory: dir.path)
        #expect(await fleet.ingest(Self.info("ps-a"), bytes: Array("{not json".utf8)) == false)
        // A report for another station than the upload's own metadata says.
        #expect(await fleet.ingest(Self.info("ps-a"), bytes: Array(Self.report("ps-b", at: 1).json())) == false)
        #expect(fleet.stations.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir.file("fleet.json")))
    }

    @Test func aDamagedFleetFileStartsEmpty() throws {
        let dir = try TempDir()
        try Data("{".utf8).write(to: URL(fileURLWithPath: dir.file("fleet.json")))
        #expect(Fleet(directory: dir.path).stations.isEmpty)
    }

    @Test func labelValuesAreEscaped() {
        #expect(FleetMetrics.escapeLabel(#"a"b\c"# + "\nd") == #"a\"b\\c\nd"#)
        #expect(FleetMetrics.escapeLabel("ps-ñandú") == "ps-ñandú")
    }

    @Test func exposition() {
        var r = Self.report("ps-a", at: 1_790_000_000, queue: 3)
        r.camera = .init(state: "missing", model: #"Cam "X"\"#)
        r.undervoltageSeen = true
        r.socTemperatureCelsius = 48.5
        let b = Self.report("ps-b", at: 1_790_000_100)
        let text = FleetMetrics.render([
            "ps-a": FleetEntry(report: r, receivedAt: Date(timeIntervalSince1970: 1_790_000_050), upload: "u1"),
            "ps-b": FleetEntry(report: b, receivedAt: Date(timeIntervalSince1970: 1_790_000_150), upload: "u2"),
        ])
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains(#"telestation_info{station="ps-a",version="0.1.0",camera_model="Cam \"X\"\\",camera_state="missing"} 1"#))
        #expect(lines.contains(#"telestation_queue_items{station="ps-a"} 3"#))
        #expect(lines.contains(#"telestation_queue_bytes{station="ps-a"} 3000"#))
        #expect(lines.contains(#"telestation_oldest_pending_seconds{station="ps-b"} 0"#))
        #expect(lines.contains(#"telestation_camera_ok{station="ps-a"} 0"#))
        #expect(lines.contains(#"telestation_camera_ok{station="ps-b"} 1"#))
        #expect(lines.contains(#"telestation_disk_free_ratio{station="ps-a"} 0.25"#))
        #expect(lines.contains(#"telestation_undervoltage_seen{station="ps-a"} 1"#))
        #expect(lines.contains(#"telestation_soc_temperature_celsius{station="ps-a"} 48.5"#))
        #expect(lines.contains(#"telestation_last_report_timestamp_seconds{station="ps-b"} 1790000100"#))
        #expect(lines.contains("telestation_fleet_stations 2"))
        // A board that cannot tell has no series, not a made-up 0.
        #expect(!lines.contains { $0.hasPrefix(#"telestation_undervoltage_seen{station="ps-b"}"#) })
        // Each family: HELP, then TYPE gauge, then its samples, once.
        for name in ["telestation_queue_items", "telestation_info", "telestation_clock_synchronized"] {
            let help = lines.firstIndex(of: lines.first { $0.hasPrefix("# HELP \(name) ") }!)!
            #expect(lines[help + 1] == "# TYPE \(name) gauge")
            #expect(lines.filter { $0.hasPrefix("# TYPE \(name) ") }.count == 1)
        }
        #expect(text.hasSuffix("\n"))
    }

    @Test func fleetPageSaysWhatNeedsAVisitAndEscapes() {
        let now = Date(timeIntervalSince1970: 1_790_000_000)
        var quiet = Self.report("ps-<quiet>", at: now.timeIntervalSince1970 - 3 * 86400 - 60)
        quiet.diskFreeBytes = 300 << 20
        quiet.diskTotalBytes = 4 << 30
        quiet.camera = .init(state: "missing")
        let fine = Self.report("ps-fine", at: now.timeIntervalSince1970 - 60)
        let page = FleetPage.render([
            quiet.station: FleetEntry(report: quiet, receivedAt: now, upload: "u"),
            fine.station: FleetEntry(report: fine, receivedAt: now, upload: "v"),
        ], now: now)
        #expect(page.contains("silent for 3 days"))
        #expect(page.contains("camera missing"))
        #expect(page.contains("disk 93 %"))
        #expect(page.contains("ps-&lt;quiet&gt;"))
        #expect(!page.contains("ps-<quiet>"))
        // The station that needs attention comes first.
        #expect(page.range(of: "ps-&lt;quiet&gt;")!.lowerBound < page.range(of: "ps-fine")!.lowerBound)
    }

    /// Over HTTP: a report uploaded with tus reaches /metrics without the token, /status still needs it.
    @Test func uploadedReportReachesMetrics() async throws {
        let dir = try TempDir()
        let server = HubServer(store: try HubStore(directory: dir.file("store")), token: "s3cret")
        let hub = try await server.start()
        defer { Task { await hub.stop() } }
        let auth = ["Authorization": "Bearer s3cret"]
        let body = Array(Self.report("ps-a", at: Date().timeIntervalSince1970, queue: 1).json())
        let post = try await raw(hub.port, "POST", "/files/", headers: tus.merging(auth) { $1 }.merging([
            "Upload-Length": "\(body.count)", "Content-Type": "application/offset+octet-stream",
            "Upload-Metadata": "filename \(b64("h.json")),filetype \(b64("application/json")),station \(b64("ps-a")),kind \(b64("health"))",
        ]) { $1 }, body: body)
        #expect(post.status == 201)
        let metrics = try await raw(hub.port, "GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(metrics.body.contains(#"telestation_queue_items{station="ps-a"} 1"#))
        #expect(try await raw(hub.port, "GET", "/fleet").body.contains("<td>ps-a</td>"))
        #expect(try await raw(hub.port, "GET", "/status").status == 401)
        #expect(FileManager.default.fileExists(atPath: dir.file("store/fleet.json")))
    }

    @Test func metricsCanRequireTheToken() async throws {
        let dir = try TempDir()
        var options = HubServer.Options()
        options.metricsRequireToken = true
        let hub = try await HubServer(store: try HubStore(directory: dir.file("store")), token: "s3cret", options: options).start()
        defer { Task { await hub.stop() } }
        #expect(try await raw(hub.port, "GET", "/metrics").status == 401)
        #expect(try await raw(hub.port, "GET", "/metrics", headers: ["Authorization": "Bearer s3cret"]).status == 200)
    }
}
