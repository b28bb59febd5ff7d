import Capture
import Config
import ConfigFile
import Foundation
import Spool
import Testing
@testable import Station

@Suite struct OpenCaseTests {
    let request = CaptureRequest(caseId: "40123456", site: "face")
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func withoutAnOpenCaseAPressAsksForOne() {
        let open = OpenCase()
        #expect(open.decide(at: t0, busy: false, autoSend: false) == .askForCase)
    }

    @Test func aPressCapturesIntoTheOpenCase() {
        var open = OpenCase()
        open.set(request, at: t0)
        #expect(open.decide(at: t0.addingTimeInterval(10), busy: false, autoSend: false) == .capture(request, send: false))
        #expect(open.decide(at: t0.addingTimeInterval(10), busy: false, autoSend: true) == .capture(request, send: true))
        #expect(open.decide(at: t0.addingTimeInterval(10), busy: true, autoSend: false) == .ignore)
    }

    @Test func aCaseLeftBehindExpiresAndAClosedOneIsGone() {
        var open = OpenCase()
        open.set(request, at: t0)
        #expect(open.decide(at: t0.addingTimeInterval(OpenCase.lifetime - 1), busy: false, autoSend: false) == .capture(request, send: false))
        #expect(open.decide(at: t0.addingTimeInterval(OpenCase.lifetime + 1), busy: false, autoSend: false) == .askForCase)
        open.set(request, at: t0.addingTimeInterval(OpenCase.lifetime))
        #expect(open.current(at: t0.addingTimeInterval(OpenCase.lifetime + 1)) == request)
        open.set(nil, at: t0)
        #expect(open.current(at: t0) == nil)
    }
}

/// Presses delivered to the real backend: the synthetic camera through the
/// real capture engine, the real spool on disk, the status the kiosk reads.
@Suite(.serialized, .timeLimit(.minutes(2))) struct TriggerBackendTests {
    func withBackend(autoSend: Bool, _ body: (LiveBackend) async throws -> Void) async throws {
        let dir = NSTemporaryDirectory() + "telestation-trigger-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try makeSpoolKey(in: dir)
        let config = try StationConfig.parse("""
            [station]
            id = "ps-trigger"
            state_dir = "\(dir)"
            [camera]
            device = "synthetic"
            width = 640
            height = 480
            warmup_frames = 1
            [spool]
            min_free = "1MiB"
            key_file = "\(key)"
            [trigger]
            auto_send = \(autoSend)
            """)
        let spool = try Spool(config: config)
        let engine = CaptureEngine(settings: CaptureEngine.Settings(config.camera), source: CameraSelection(config.camera).sourceFactory())
        engine.start()
        let backend = LiveBackend(config: config, spool: spool, engine: engine, worker: nil, monitor: LoopMonitor(loops: [.capture]))
        do { try await body(backend) } catch { await engine.stop(); throw error }
        await engine.stop()
    }

    func statusJSON(_ backend: LiveBackend) async throws -> [String: Any] {
        let data = try ControlAPI.encoder.encode(await StatusReport(backend: backend))
        return try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func aPressWithoutACaseTakesNothingAndTheKioskIsTold() async throws {
        try await withBackend(autoSend: false) { backend in
            await backend.handlePress(TriggerPress(kind: .cameraButton, device: "/dev/input/event4 (UVC Camera)"), led: nil)
            let last = try #require(await backend.triggerStatus().last)
            #expect(last.outcome == .needsCase && last.trigger == .cameraButton && last.review == nil)
            #expect(try await backend.queue().items.isEmpty)
            let triggers = try #require(try await statusJSON(backend)["triggers"] as? [String: Any])
            #expect(triggers["case_open"] as? Bool == false)
            #expect((triggers["last"] as? [String: Any])?["outcome"] as? String == "needs_case")
        }
    }

    @Test func aPressCapturesIntoTheOpenCaseForReview() async throws {
        try await withBackend(autoSend: false) { backend in
            await backend.setOpenCase(CaptureRequest(caseId: "40123456", site: "face"))
            await backend.handlePress(TriggerPress(kind: .key, device: "/dev/input/event7 (FootSwitch)"), led: nil)
            let last = try #require(await backend.triggerStatus().last)
            #expect(last.outcome == .captured, "\(last)")
            let review = try #require(last.review)
            #expect(review.trigger == .key && review.request.caseId == "40123456" && review.width == 640)
            // The same review the kiosk's own button makes: its image is there, Send queues it.
            #expect(try await backend.image(id: review.id, kind: .full).starts(with: [0xFF, 0xD8]))
            let queued = try await backend.accept(id: review.id)
            #expect(try await backend.queue().items.map(\.id) == [queued.id])
            let status = try await statusJSON(backend)
            let triggers = try #require(status["triggers"] as? [String: Any])
            #expect(triggers["case_open"] as? Bool == true)
            let json = try #require(triggers["last"] as? [String: Any])
            #expect(json["trigger"] as? String == "key")
            #expect((json["review"] as? [String: Any])?["trigger"] as? String == "key")
        }
    }

    @Test func autoSendQueuesWithoutReview() async throws {
        try await withBackend(autoSend: true) { backend in
            await backend.setOpenCase(CaptureRequest(caseId: "HC-000123", site: "hand", priority: .urgent))
            await backend.handlePress(TriggerPress(kind: .gpioButton, device: "gpiochip0:17"), led: nil)
            let last = try #require(await backend.triggerStatus().last)
            #expect(last.outcome == .queued, "\(last)")
            let items = try await backend.spool.perform { try $0.allItems() }.filter { $0.kind == .image }
            #expect(items.count == 1)
            #expect(items.first.map { String($0.id) } == last.queueId)
            #expect(items.first?.metadata.caseID == "HC-000123")
            #expect(items.first?.metadata.priority == .urgent)
        }
    }
}

@Suite(.serialized, .timeLimit(.minutes(2))) struct OpenCaseAPITests {
    /// The kiosk's `PUT /api/v1/case` is checked like a capture request, and
    /// `GET /api/v1/status` always carries the buttons' section.
    @Test func theOpenCaseIsValidatedLikeACapture() async throws {
        try await RunningStation.withStation { s in
            let bad = try await s.request("PUT", "/api/v1/case", json: #"{"case_id":"abc","site":"face"}"#)
            #expect(bad.status == 400 && bad.errorCode == "invalid_case_id")
            let foreign = try await s.request("PUT", "/api/v1/case", json: #"{"case_id":"45871236","site":"face"}"#,
                                              headers: ["Origin": "http://evil.example"])
            #expect(foreign.status == 403)
            let ok = try await s.request("PUT", "/api/v1/case", json: #"{"case_id":"45871236","site":"face"}"#)
            #expect(ok.status == 200 && ok.json["devices"] is [Any])
            #expect(try await s.request("DELETE", "/api/v1/case").status == 204)
            let status = try await s.request("GET", "/api/v1/status")
            #expect((status.json["triggers"] as? [String: Any])?["case_open"] as? Bool == false)
        }
    }
}
