import Capture
import Config
import ConfigFile
import Foundation
import Imaging
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import ServiceLifecycle
import Spool
import Testing
@testable import Station

/// Camera controls over the control API on the real composition: the
/// capture engine streaming from the synthetic camera, whose brightness
/// really changes its picture, and a real spool.
@Suite(.serialized, .timeLimit(.minutes(3))) struct CameraControlAPITests {
    func withLiveStation(source: (@Sendable () -> any CameraSource)? = nil, _ body: (StationClient) async throws -> Void) async throws {
        let dir = NSTemporaryDirectory() + "telestation-controls-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = StationConfig()
        config.station.id = "ps-controls"
        config.station.stateDir = dir
        config.kiosk.listen = "127.0.0.1:0"
        config.camera.device = "synthetic"
        config.camera.width = 640
        config.camera.height = 480
        config.camera.warmupFrames = 0
        config.spool.minFree = 1 << 20
        config.spool.keyFile = try makeSpoolKey(in: dir)
        let spool = try Spool(config: config)
        let engine = CaptureEngine(settings: CaptureEngine.Settings(config.camera), source: source ?? CameraSelection(config.camera).sourceFactory())
        let monitor = LoopMonitor(loops: [.capture])
        let backend = LiveBackend(config: config, spool: spool, engine: engine, worker: nil, monitor: monitor, logger: Logger(label: "test"))
        let daemon = StationDaemon(config: config, backend: backend, monitor: monitor, services: backend.services(round: .seconds(1)),
                                   notifier: SystemdNotifier(environment: NotifyEnvironment(socketPath: nil, watchdogInterval: nil)),
                                   logger: Logger(label: "test"))
        try await serve(daemon) { base in
            // Controls are served from the open stream: wait until the camera streams.
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline {
                if case .streaming = engine.phase { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            try await body(StationClient(base: base))
        }
    }

    func controls(_ c: StationClient) async throws -> [String: CameraControl] {
        let list = try JSONDecoder().decode([CameraControl].self, from: try await c.request("GET", "/api/v1/camera/controls").data)
        return Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
    }

    /// A still's mean luminance and the capture check's exposure warnings;
    /// the still is then discarded.
    func still(_ c: StationClient) async throws -> (luminance: Double, warnings: Set<CaptureWarning>) {
        let r = try await c.request("POST", "/api/v1/captures", json: #"{"case_id":"45871236","site":"face"}"#)
        #expect(r.status == 201)
        let item = try JSONDecoder.station.decode(ReviewItem.self, from: r.data)
        let jpeg = try await c.request("GET", "/api/v1/captures/\(item.id)/image").data
        _ = try await c.request("POST", "/api/v1/captures/\(item.id)/retake")
        let metrics = QualityMetrics.measure(try JPEGDecoder().decode(jpeg))
        return (metrics.meanLuminance, Set(item.warnings).intersection([.tooDark, .tooBright]))
    }

    @Test func listSetAndSeeTheEffect() async throws {
        try await withLiveStation { c in
            let list = try await controls(c)
            #expect(Set(list.keys) == Set(SyntheticCamera.controlSpecs.map(\.name)))
            let brightness = try #require(list["brightness"])
            #expect(brightness.value == 128 && brightness.minimum == 0 && brightness.maximum == 255 && brightness.type == "int")
            #expect(list["power_line_frequency"]?.menu == [.init(value: 0, label: "Disabled"), .init(value: 1, label: "50 Hz"),
                                                           .init(value: 2, label: "60 Hz")])
            #expect(list["exposure_time_absolute"]?.inactive == true)

            // The value the camera kept comes back, rounded to the control's step.
            _ = try await c.request("PUT", "/api/v1/camera/controls/focus_automatic_continuous", json: #"{"value": false}"#)
            let focus = try await c.request("PUT", "/api/v1/camera/controls/focus_absolute", json: #"{"value": 42}"#)
            #expect(focus.status == 200)
            #expect(focus.json["value"] as? Int == 40)

            // Brightness and manual exposure change what the camera sees.
            let neutral = try await still(c)
            #expect(neutral.warnings == [])
            #expect(try await c.request("PUT", "/api/v1/camera/controls/brightness", json: #"{"value": 255}"#).json["value"] as? Int == 255)
            let bright = try await still(c)
            #expect(bright.luminance > neutral.luminance + 40, "\(neutral.luminance) → \(bright.luminance)")
            #expect(try await controls(c)["brightness"]?.value == 255)
            _ = try await c.request("PUT", "/api/v1/camera/controls/brightness", json: #"{"value": 128}"#)
            _ = try await c.request("PUT", "/api/v1/camera/controls/auto_exposure", json: #"{"value": 1}"#)
            #expect(try await c.request("PUT", "/api/v1/camera/controls/exposure_time_absolute", json: #"{"value": 3}"#).status == 200)
            // The capture check sees it too: the review screen would warn.
            let dark = try await still(c)
            let now = try await controls(c).filter { ["auto_exposure", "exposure_time_absolute", "brightness"].contains($0.key) }.mapValues(\.value)
            #expect(dark.warnings == [.tooDark], "mean luminance \(dark.luminance) after exposure 3 (neutral \(neutral.luminance)); controls now \(now)")
        }
    }

    @Test func refusalsAreClearAndChangeNothing() async throws {
        try await withLiveStation { c in
            let inactive = try await c.request("PUT", "/api/v1/camera/controls/exposure_time_absolute", json: #"{"value": 100}"#)
            #expect(inactive.status == 409)
            #expect(inactive.errorMessage == "exposure_time_absolute has no effect while auto_exposure is on")
            #expect(inactive.errorFix == "turn auto_exposure off first")

            let notInMenu = try await c.request("PUT", "/api/v1/camera/controls/auto_exposure", json: #"{"value": 2}"#)
            #expect(notInMenu.status == 400)
            #expect(notInMenu.errorMessage?.contains("not one of auto_exposure's entries") == true)

            #expect(try await c.request("PUT", "/api/v1/camera/controls/brightness", json: #"{"value": 256}"#).status == 400)
            #expect(try await c.request("PUT", "/api/v1/camera/controls/zoom_absolute", json: #"{"value": 1}"#).status == 404)
            #expect(try await c.request("PUT", "/api/v1/camera/controls/Brightness", json: #"{"value": 1}"#).status == 400)
            #expect(try await c.request("PUT", "/api/v1/camera/controls/brightness", json: #"{"value": "bright"}"#).status == 400)
            #expect(try await controls(c)["brightness"]?.value == 128)

            // Manual exposure makes the exposure time settable.
            #expect(try await c.request("PUT", "/api/v1/camera/controls/auto_exposure", json: #"{"value": 1}"#).status == 200)
            let list = try await controls(c)
            #expect(list["exposure_time_absolute"]?.inactive == false)
            #expect(try await c.request("PUT", "/api/v1/camera/controls/exposure_time_absolute", json: #"{"value": 100}"#).json["value"] as? Int == 100)
        }
    }

    /// Faults the engine rides out (a dropped frame, a damaged buffer) leave
    /// no camera error: the status shows them as counts.
    @Test func droppedAndDamagedFramesShowInTheStatus() async throws {
        try await withLiveStation(source: { LossyCamera() }) { c in
            var health: [String: Any] = [:]
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline {
                health = try await c.request("GET", "/api/v1/status").json["health"] as? [String: Any] ?? [:]
                if (health["frames_dropped"] as? Int ?? 0) >= 6, (health["frames_damaged"] as? Int ?? 0) >= 3 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect((health["frames_dropped"] as? Int ?? 0) >= 6 && (health["frames_damaged"] as? Int ?? 0) >= 3, "\(health)")
            #expect(health["camera"] as? String == "ok" && health["camera_error"] == nil, "\(health)")
        }
    }
}

@Suite struct CameraControlRequestTests {
    func parse(_ name: String, _ body: String) -> Result<Int, StationError> {
        do throws(StationError) {
            return .success(try CaptureRequestValidator.cameraControl(name: name, json: Data(body.utf8)).value)
        } catch {
            return .failure(error)
        }
    }

    @Test func integersAndOnOff() throws {
        #expect(try parse("brightness", #"{"value": 140}"#).get() == 140)
        #expect(try parse("brightness", #"{"value": -12}"#).get() == -12)
        #expect(try parse("focus_automatic_continuous", #"{"value": true}"#).get() == 1)
        #expect(try parse("focus_automatic_continuous", #"{"value": false}"#).get() == 0)
    }

    @Test func badRequestsAreRefusedWithWhatToSend() {
        for (name, body, message) in [
            ("brightness", #"{"value": 1.5}"#, "the request body must be a JSON object with an integer value"),
            ("brightness", #"{"value": "140"}"#, "the request body must be a JSON object with an integer value"),
            ("brightness", #"[140]"#, "the request body must be a JSON object with an integer value"),
            ("brightness", #"{}"#, "the request has no value"),
            ("brightness", #"{"value": 1, "force": true}"#, #"unknown field "force" in the request"#),
            ("bright ness", #"{"value": 1}"#, #""bright ness" is not a control name"#),
            ("../brightness", #"{"value": 1}"#, #""../brightness" is not a control name"#),
        ] {
            guard case .failure(let e) = parse(name, body) else {
                Issue.record("\(name) \(body) was accepted")
                continue
            }
            #expect(e.code == .badRequest)
            #expect(e.message == message)
            #expect(e.nextStep != nil)
        }
    }
}

/// The synthetic camera, reporting the loss a real driver's buffers would
/// show: every third frame skips a sequence number, every fourth buffer is damaged.
final class LossyCamera: CameraSource {
    private let inner: SyntheticCamera
    private var counter = FrameLossCounter()
    private var sequence: UInt32 = 0

    init() {
        inner = SyntheticCamera(settings: .init(negotiation: FormatNegotiation(preference: .yuyv, width: 640, height: 480),
                                                framesPerSecond: 30))
    }

    var frameLoss: FrameLoss { counter.loss }

    func open() throws(CaptureError) -> StreamFormat {
        counter.streamStarted()
        return try inner.open()
    }

    func nextFrame(timeout: Double, _ body: (CameraFrame) -> Void) throws(CaptureError) {
        sequence += sequence % 3 == 2 ? 2 : 1
        counter.dequeued(sequence: sequence, damaged: sequence % 4 == 0)
        try inner.nextFrame(timeout: timeout, body)
    }

    func close() { inner.close() }
    func controls() throws(CaptureError) -> [ControlInfo] { try inner.controls() }
}
