import Basics
import Config
import ConfigFile
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import ServiceLifecycle
import Synchronization
import Testing
@testable import Station
import StationDemo

/// A DemoBackend daemon on a loopback port, driven over real HTTP.
struct RunningStation {
    let backend: DemoBackend
    let base: URL
    let listener: NotifyListener?

    static func withStation(language: StationConfig.Language = .es, notify: NotifyListener? = nil,
                            watchdog: Duration? = nil, recoveryDelay: Duration = .zero, wedgePath: String? = nil,
                            _ body: (RunningStation) async throws -> Void) async throws {
        var config = StationConfig()
        config.kiosk.listen = "127.0.0.1:0"
        config.kiosk.language = language
        let monitor = LoopMonitor()
        let backend = DemoBackend(monitor: monitor, simulatedRate: 200_000, recoveryDelay: recoveryDelay)
        let daemon = StationDaemon(
            config: config, backend: backend, monitor: monitor,
            services: backend.services(roundInterval: .milliseconds(50), wedgePath: wedgePath),
            notifier: SystemdNotifier(environment: NotifyEnvironment(socketPath: notify?.address, watchdogInterval: watchdog)),
            logger: Logger(label: "test"))
        try await serve(daemon) { base in
            try await body(RunningStation(backend: backend, base: base, listener: notify))
        }
    }

    typealias Reply = StationClient.Reply

    func request(_ method: String, _ path: String, json: String? = nil, headers: [String: String] = [:]) async throws -> Reply {
        try await StationClient(base: base).request(method, path, json: json, headers: headers)
    }
}

/// Runs a daemon in a service group on a free loopback port until `body`
/// returns, then shuts it down gracefully.
func serve(_ daemon: StationDaemon, _ body: (URL) async throws -> Void) async throws {
    var daemon = daemon
    let port = Locked<Int?>(nil)
    daemon.gracefulShutdownSignals = []
    daemon.onListening = { _, p in port.withLock { $0 = p } }
    let group = ServiceGroup(services: [daemon], logger: Logger(label: "test"))
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        let deadline = ContinuousClock.now + .seconds(60)
        while port.withLock({ $0 }) == nil && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let p = try #require(port.withLock { $0 })
        do {
            try await body(URL(string: "http://127.0.0.1:\(p)")!)
        } catch {
            await group.triggerGracefulShutdown()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
    }
}

/// Real HTTP requests to a station's control API.
struct StationClient {
    let base: URL

    struct Reply {
        var status: Int
        var data: Data
        var contentType: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:] }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
        var errorMessage: String? { (json["error"] as? [String: Any])?["message"] as? String }
        var errorFix: String? { (json["error"] as? [String: Any])?["fix"] as? String }
    }

    func request(_ method: String, _ path: String, json: String? = nil, headers: [String: String] = [:]) async throws -> Reply {
        var r = URLRequest(url: base.appendingPathComponent(path))
        r.httpMethod = method
        r.timeoutInterval = 60
        if let json {
            r.httpBody = Data(json.utf8)
            r.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        for (k, v) in headers { r.setValue(v, forHTTPHeaderField: k) }
        let (data, response) = try await URLSession.shared.data(for: r)
        let http = response as! HTTPURLResponse
        return Reply(status: http.statusCode, data: data, contentType: http.value(forHTTPHeaderField: "Content-Type") ?? "")
    }
}

func isJPEG(_ d: Data) -> Bool { d.count > 100 && d.prefix(2) == Data([0xFF, 0xD8]) && d.suffix(2) == Data([0xFF, 0xD9]) }

@Suite(.timeLimit(.minutes(3))) struct ControlAPITests {
    @Test func captureReviewSendAndWatchItUpload() async throws {
        try await RunningStation.withStation { s in
            let page = try await s.request("GET", "/")
            #expect(page.status == 200)
            #expect(page.contentType.hasPrefix("text/html"))
            #expect(String(decoding: page.data, as: UTF8.self).contains("CAPTURAR"))

            s.backend.setNextWarnings([.blurry])
            let captured = try await s.request("POST", "/api/v1/captures",
                                               json: #"{"case_id":"hc 004512","site":"arm_left","note":"lesión","priority":"urgent"}"#)
            #expect(captured.status == 201)
            let item = try JSONDecoder.station.decode(ReviewItem.self, from: captured.data)
            #expect(item.request.caseId == "HC004512")
            #expect(item.warnings == [.blurry])

            let image = try await s.request("GET", "/api/v1/captures/\(item.id)/image")
            #expect(image.contentType == "image/jpeg")
            #expect(isJPEG(image.data))
            #expect(Int64(image.data.count) == item.bytes)

            // A tight limit (as for a live consultation), set before the item
            // is sent, makes the progress visible part-way...
            #expect(try await s.request("POST", "/api/v1/uploads", json: #"{"action":"limit","rate":4000}"#).status == 200)
            let accepted = try await s.request("POST", "/api/v1/captures/\(item.id)/accept")
            #expect(accepted.status == 200)
            #expect(try await s.request("POST", "/api/v1/captures/\(item.id)/accept").errorCode == "not_found")
            func current() async throws -> QueueItem {
                let q = try JSONDecoder.station.decode(QueueSnapshot.self, from: try await s.request("GET", "/api/v1/queue").data)
                return try #require(q.items.first { $0.id == item.id })
            }
            var partial: QueueItem?
            let deadline = ContinuousClock.now + .seconds(60)
            while partial == nil && ContinuousClock.now < deadline {
                let it = try await current()
                if it.bytesSent > 0 { partial = it } else { try await Task.sleep(for: .milliseconds(20)) }
            }
            let seen = try #require(partial)
            #expect(seen.state == .uploading)
            #expect(seen.bytesSent < seen.bytesTotal)
            #expect(seen.etaSeconds != nil)

            // ...and lifting it lets the item finish.
            #expect(try await s.request("POST", "/api/v1/uploads", json: #"{"action":"limit","rate":"unlimited"}"#).status == 200)
            var done = try await current()
            while done.state != .uploaded && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
                done = try await current()
            }
            #expect(done.state == .uploaded)
            #expect(done.bytesSent == done.bytesTotal)
            let thumb = try await s.request("GET", "/api/v1/queue/\(item.id)/thumbnail")
            #expect(isJPEG(thumb.data))
        }
    }

    @Test func retakeDiscardsTheStill() async throws {
        try await RunningStation.withStation { s in
            let captured = try await s.request("POST", "/api/v1/captures", json: #"{"case_id":"45871236","site":"face"}"#)
            let item = try JSONDecoder.station.decode(ReviewItem.self, from: captured.data)
            #expect(try await s.request("POST", "/api/v1/captures/\(item.id)/retake").status == 204)
            #expect(try await s.request("GET", "/api/v1/captures/\(item.id)/image").status == 404)
            let q = try JSONDecoder.station.decode(QueueSnapshot.self, from: try await s.request("GET", "/api/v1/queue").data)
            #expect(q.items.isEmpty)
        }
    }

    @Test func badRequestsGetClearJSONErrors() async throws {
        try await RunningStation.withStation { s in
            let badCase = try await s.request("POST", "/api/v1/captures", json: #"{"case_id":"abc","site":"face"}"#)
            #expect(badCase.status == 400)
            #expect(badCase.errorCode == "invalid_case_id")
            let err = try #require(badCase.json["error"] as? [String: Any])
            #expect((err["fix"] as? String)?.contains("DNI") == true)

            let badSite = try await s.request("POST", "/api/v1/captures", json: #"{"case_id":"45871236","site":"elbow"}"#)
            #expect(badSite.status == 400)
            #expect((badSite.json["error"] as? [String: Any])?["message"] as? String == #"unknown body site "elbow""#)

            let big = try await s.request("POST", "/api/v1/captures", json: String(repeating: " ", count: 40_000) + "{}")
            #expect(big.status == 413)
            #expect(big.errorCode == "payload_too_large")

            let foreign = try await s.request("POST", "/api/v1/captures", json: #"{"case_id":"45871236","site":"face"}"#,
                                              headers: ["Origin": "http://evil.example"])
            #expect(foreign.status == 403)

            let control = try await s.request("PUT", "/api/v1/camera/controls/brightness", json: #"{"value": 999}"#)
            #expect(control.status == 400)
            #expect(try await s.request("PUT", "/api/v1/camera/controls/zoom", json: #"{"value": 1}"#).status == 404)
            let ok = try await s.request("PUT", "/api/v1/camera/controls/brightness", json: #"{"value": 140}"#)
            #expect(ok.json["value"] as? Int == 140)

            // Nothing was queued by any of the rejected requests.
            let q = try JSONDecoder.station.decode(QueueSnapshot.self, from: try await s.request("GET", "/api/v1/queue").data)
            #expect(q.items.isEmpty)
        }
    }

    @Test func uploadsCanBePausedAndLimited() async throws {
        try await RunningStation.withStation { s in
            let paused = try await s.request("POST", "/api/v1/uploads", json: #"{"action":"pause"}"#)
            #expect(paused.json["paused"] as? Bool == true)
            let status = try await s.request("GET", "/api/v1/status")
            #expect((status.json["status"] as? String)?.contains("uploads paused") == true)
            let limited = try await s.request("POST", "/api/v1/uploads", json: #"{"action":"limit","rate":"64kbit"}"#)
            #expect(limited.json["limit_bytes_per_second"] as? Int == 8000)
            let resumed = try await s.request("POST", "/api/v1/uploads", json: #"{"action":"resume"}"#)
            #expect(resumed.json["paused"] as? Bool == false)
        }
    }

    @Test func healthProblemsShowInStatus() async throws {
        try await RunningStation.withStation { s in
            s.backend.camera.isMissing = true
            s.backend.setHub(.rejectedToken)
            s.backend.setDiskNearlyFull(true)
            let status = try await s.request("GET", "/api/v1/status")
            #expect(status.json["problems"] as? [String] == ["disk nearly full", "hub rejected token", "camera missing"])
            let capture = try await s.request("POST", "/api/v1/captures", json: #"{"case_id":"45871236","site":"face"}"#)
            #expect(capture.status == 503)
            #expect(capture.errorCode == "camera_missing")
        }
    }

    @Test func previewStreamsChangingJPEGFrames() async throws {
        try await RunningStation.withStation { s in
            let one = try await s.request("GET", "/api/v1/preview.jpg")
            #expect(isJPEG(one.data))
            // Read the MJPEG stream with curl for a few frames, then hang up.
            let out = try await Task.detached { () throws -> Data in
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
                p.arguments = ["-s", "--max-time", "15", s.base.appendingPathComponent("/api/v1/preview.mjpeg").absoluteString]
                let pipe = Pipe()
                p.standardOutput = pipe
                try p.run()
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                p.waitUntilExit()
                return data
            }.value
            let text = String(decoding: out, as: UTF8.self)
            let parts = text.components(separatedBy: "--\(ControlAPI.mjpegBoundary)\r\n").dropFirst()
            #expect(parts.count >= 3)
            let frames = parts.compactMap { part -> Data? in
                guard let r = part.range(of: "\r\n\r\n") else { return nil }
                return Data(part[r.upperBound...].utf8)
            }
            #expect(Set(frames).count >= 2, "frames differ from one another")
        }
    }
}

extension JSONDecoder {
    static let station: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }()
}

@Suite(.timeLimit(.minutes(3))) struct ControlClientTests {
    @Test func capturesThroughARunningDaemon() async throws {
        try await RunningStation.withStation { s in
            let client = try ControlClient(listen: "0.0.0.0:\(s.base.port!)")
            let status = try #require(await client.status())
            #expect(status.status == "queue empty, camera ok")

            let (item, queued) = try await client.capture(
                CaptureRequest(caseId: "45871236", site: "chest", note: "cli", priority: .urgent), accept: true)
            #expect(item.request.caseId == "45871236")
            #expect(queued?.id == item.id)
            #expect(try await client.queue().items.map(\.id) == [item.id])

            // The daemon's error comes back whole, code and fix included.
            await #expect {
                _ = try await client.capture(CaptureRequest(caseId: "nope", site: "chest"), accept: true)
            } throws: { error in
                (error as? StationError)?.code == .invalidCaseId && (error as? StationError)?.nextStep?.contains("DNI") == true
            }
        }
    }

    @Test func nothingListeningMeansNoStatus() async throws {
        // Port 1 (tcpmux) is privileged and unused on these machines: the connection is refused.
        let client = try ControlClient(listen: "127.0.0.1:1", timeout: 10)
        #expect(await client.status() == nil)
        await #expect(throws: StationError.self) { _ = try await client.queue() }
    }
}

@Suite(.timeLimit(.minutes(3))) struct DaemonNotifyTests {
    @Test func readyWaitsForQueueRecoveryAndStatusFollowsHealth() async throws {
        let listener = try NotifyListener()
        defer { listener.close() }
        try await RunningStation.withStation(notify: listener, watchdog: .seconds(1), recoveryDelay: .seconds(1)) { s in
            #expect(await listener.wait { $0.contains { $0.fields.contains("READY=1") } })
            let ready = try #require(listener.all.first { $0.fields.contains("READY=1") })
            let recovered = try #require(s.backend.recoveredAt)
            #expect(recovered <= ready.at, "READY=1 before the queue was recovered")

            // A camera that disappears shows in STATUS= without anyone asking.
            s.backend.camera.isMissing = true
            #expect(await listener.wait { msgs in
                msgs.contains { $0.fields.contains { $0.hasPrefix("STATUS=camera missing") } }
            })
            s.backend.camera.isMissing = false
            s.backend.setHub(.rejectedToken)
            #expect(await listener.wait { msgs in
                msgs.contains { $0.fields.contains { $0.hasPrefix("STATUS=hub rejected token") } }
            })
            // Both loops run, so the watchdog is fed.
            #expect(await listener.wait { $0.contains { $0.fields.contains("WATCHDOG=1") } })
        }
        #expect(listener.count("STOPPING=1") == 1)
        #expect(listener.count("READY=1") == 1)
    }
}

@Suite(.timeLimit(.minutes(3))) struct OfflineTests {
    @Test func capturingAndSendingNeverWaitForTheNetwork() async throws {
        try await RunningStation.withStation { s in
            s.backend.setOnline(false)
            let captured = try await s.request("POST", "/api/v1/captures", json: #"{"case_id":"45871236","site":"back"}"#)
            #expect(captured.status == 201)
            let item = try JSONDecoder.station.decode(ReviewItem.self, from: captured.data)
            #expect(try await s.request("POST", "/api/v1/captures/\(item.id)/accept").status == 200)
            let link = try await s.request("GET", "/api/v1/link")
            #expect(link.json["online"] as? Bool == false)
            let status = try await s.request("GET", "/api/v1/status")
            #expect((status.json["status"] as? String)?.hasSuffix("offline, camera ok") == true)
            let q = try JSONDecoder.station.decode(QueueSnapshot.self, from: try await s.request("GET", "/api/v1/queue").data)
            let queued = try #require(q.items.first)
            #expect(queued.state == .queued)
            #expect(queued.etaSeconds == nil)
            #expect(q.pendingCount == 1)
        }
    }
}
