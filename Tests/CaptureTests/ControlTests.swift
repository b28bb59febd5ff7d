import Foundation
import Imaging
import Testing
@testable import Capture

/// The rules for setting a control, on plain values.
@Suite struct ControlRequestCheckTests {
    static let controls: [ControlInfo] = [
        ControlInfo(id: 1, name: "brightness", label: "Brightness", type: "int", minimum: -64, maximum: 64, step: 1, defaultValue: 0, value: 0),
        ControlInfo(id: 2, name: "auto_exposure", label: "Auto Exposure", type: "menu", minimum: 0, maximum: 3, step: 1, defaultValue: 3,
                    value: 3, menu: ["1: Manual Mode", "3: Aperture Priority Mode"]),
        ControlInfo(id: 3, name: "exposure_time_absolute", label: "Exposure Time, Absolute", type: "int", minimum: 3, maximum: 2047,
                    step: 1, defaultValue: 250, value: 250, flags: ["inactive"]),
        ControlInfo(id: 4, name: "focus_auto", label: "Focus, Auto", type: "bool", minimum: 0, maximum: 1, step: 1, defaultValue: 1, value: 1),
        ControlInfo(id: 5, name: "focus_absolute", label: "Focus (absolute)", type: "int", minimum: 0, maximum: 250, step: 5,
                    defaultValue: 0, value: 0, flags: ["inactive"]),
        ControlInfo(id: 6, name: "pan_speed", label: "Pan, Speed", type: "int", minimum: 0, maximum: 1, step: 1, defaultValue: 0,
                    value: 0, flags: ["read-only"]),
        ControlInfo(id: 7, name: "focus_trigger", label: "Focus, Trigger", type: "button", minimum: 0, maximum: 0, step: 0,
                    defaultValue: 0, value: nil),
        ControlInfo(id: 8, name: "sharpness", label: "Sharpness", type: "int", minimum: 0, maximum: 7, step: 1, defaultValue: 3,
                    value: 3, flags: ["inactive"]),
    ]

    func refusal(_ name: String, _ value: Int64) -> CaptureError? {
        if case .failure(let e) = ControlRequestCheck.check(name, value: value, in: Self.controls) { return e }
        return nil
    }

    @Test func aValueInRangeIsAccepted() throws {
        #expect(try ControlRequestCheck.check("brightness", value: -64, in: Self.controls).get().id == 1)
        #expect(try ControlRequestCheck.check("auto_exposure", value: 1, in: Self.controls).get().id == 2)
    }

    @Test func eachRefusalSaysWhy() {
        #expect(refusal("zoom_absolute", 1)?.code == .controlUnknown)
        #expect(refusal("brightness", 65)?.code == .controlOutOfRange)
        #expect(refusal("brightness", 65)?.message == "brightness must be between -64 and 64, not 65")
        // 2 (shutter priority) is inside 0...3 but not one of this camera's entries.
        #expect(refusal("auto_exposure", 2)?.code == .controlOutOfRange)
        #expect(refusal("auto_exposure", 2)?.message.contains("1: Manual Mode, 3: Aperture Priority Mode") == true)
        #expect(refusal("pan_speed", 1)?.code == .controlReadOnly)
        #expect(refusal("focus_trigger", 0)?.code == .controlUnsupported)
    }

    @Test func anInactiveControlNamesTheAutomaticModeThatOverridesIt() {
        let exposure = refusal("exposure_time_absolute", 100)
        #expect(exposure?.code == .controlInactive)
        #expect(exposure?.message == "exposure_time_absolute has no effect while auto_exposure is on")
        #expect(exposure?.nextStep == "turn auto_exposure off first")
        // Older drivers spell the automatic mode differently.
        #expect(refusal("focus_absolute", 50)?.message == "focus_absolute has no effect while focus_auto is on")
        #expect(refusal("sharpness", 5)?.code == .controlInactive)
        #expect(refusal("sharpness", 5)?.message == "sharpness is inactive on this camera right now")
    }

    @Test func menuIndexesComeFromTheEntries() {
        #expect(ControlRequestCheck.menuIndexes(Self.controls[1]) == [1, 3])
    }
}

/// Mean of the luma samples of a YUYV frame.
func meanLuma(_ f: CameraFrame) -> Double {
    var sum = 0
    for i in stride(from: 0, to: f.width * f.height * 2, by: 2) { sum += Int(f.bytes[i]) }
    return Double(sum) / Double(f.width * f.height)
}

@Suite struct SyntheticCameraControlTests {
    func camera() -> SyntheticCamera {
        SyntheticCamera(settings: .init(negotiation: FormatNegotiation(preference: .yuyv, width: 320, height: 240), framesPerSecond: 500))
    }

    func luma(_ cam: SyntheticCamera) throws -> Double {
        var m = 0.0
        try cam.nextFrame(timeout: 5) { m = meanLuma($0) }
        return m
    }

    @Test func brightnessAndManualExposureChangeThePicture() throws {
        let cam = camera()
        _ = try cam.open()
        defer { cam.close() }
        let neutral = try luma(cam)
        #expect(try cam.setControl("brightness", value: 60).value == 60)
        let darker = try luma(cam)
        #expect(try cam.setControl("brightness", value: 200).value == 200)
        let brighter = try luma(cam)
        #expect(darker < neutral - 30 && brighter > neutral + 30, "\(darker) \(neutral) \(brighter)")

        _ = try cam.setControl("brightness", value: 128)
        // Exposure time does nothing while auto exposure is on…
        #expect(throws: CaptureError.self) { try cam.setControl("exposure_time_absolute", value: 1000) }
        #expect(try cam.controls().first { $0.name == "exposure_time_absolute" }?.flags.contains("inactive") == true)
        // …and in manual mode it scales the light.
        _ = try cam.setControl("auto_exposure", value: 1)
        #expect(try cam.controls().first { $0.name == "exposure_time_absolute" }?.flags.contains("inactive") == false)
        #expect(try cam.setControl("exposure_time_absolute", value: 125).value == 125)
        let short = try luma(cam)
        #expect(short < neutral * 0.7, "\(short) vs \(neutral)")
    }

    @Test func theAppliedValueIsWhatTheDeviceKept() throws {
        let cam = camera()
        _ = try cam.open()
        defer { cam.close() }
        _ = try cam.setControl("focus_automatic_continuous", value: 0)
        // focus_absolute moves in steps of 5, as many webcams' do: 42 becomes 40.
        #expect(try cam.setControl("focus_absolute", value: 42).value == 40)
        #expect(try cam.setControl("power_line_frequency", value: 2).value == 2)
        cam.close()
        #expect(throws: CaptureError(.notStreaming, "the synthetic camera is not streaming")) { try cam.controls() }
    }
}

/// A camera that is a new device on every open (values back at their
/// defaults, as after a replug) and goes away once after `frames` frames.
final class ReplugCamera: CameraSource {
    private var inner: SyntheticCamera?
    private var framesLeft: Int?
    init(unplugAfter frames: Int) { framesLeft = frames }

    func open() throws(CaptureError) -> StreamFormat {
        let cam = SyntheticCamera(settings: .init(negotiation: FormatNegotiation(preference: .yuyv, width: 320, height: 240), framesPerSecond: 200))
        inner = cam
        return try cam.open()
    }

    func nextFrame(timeout: Double, _ body: (CameraFrame) -> Void) throws(CaptureError) {
        if let n = framesLeft {
            if n == 0 {
                framesLeft = nil
                throw CaptureError.classify(function: "VIDIOC_DQBUF", errno: ENODEV, device: "/dev/replug")
            }
            framesLeft = n - 1
        }
        try inner!.nextFrame(timeout: timeout, body)
    }

    func close() { inner?.close() }
    func controls() throws(CaptureError) -> [ControlInfo] { try inner!.controls() }
    func setControl(_ name: String, value: Int64) throws(CaptureError) -> ControlInfo { try inner!.setControl(name, value: value) }
}

@Suite(.timeLimit(.minutes(2))) struct CaptureEngineControlTests {
    func waitStreaming(_ engine: CaptureEngine) async throws {
        while true {
            if case .streaming = engine.phase { return }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    @Test func controlsGoThroughTheOneOpenStream() async throws {
        let engine = CaptureEngine(settings: .init(warmupFrames: 0)) {
            SyntheticCamera(settings: .init(negotiation: FormatNegotiation(preference: .yuyv, width: 640, height: 480), framesPerSecond: 60))
        }
        engine.start()
        try await waitStreaming(engine)
        #expect(try await engine.controls().map(\.name).contains("brightness"))
        #expect(try await engine.setControl("brightness", value: 40).value == 40)
        let dark = try await engine.captureStill(timeout: 60)
        #expect(try await engine.setControl("brightness", value: 220).value == 220)
        let bright = try await engine.captureStill(timeout: 60)
        #expect(bright.metrics.meanLuminance > dark.metrics.meanLuminance + 60, "\(dark.metrics) \(bright.metrics)")
        await #expect(throws: CaptureError.self) { try await engine.setControl("brightness", value: 300) }
        await engine.stop()
        await #expect(throws: CaptureError(.notStreaming, "capture was stopped")) { try await engine.controls() }
    }

    @Test func runtimeSettingsSurviveAReopen() async throws {
        let engine = CaptureEngine(settings: .init(warmupFrames: 0, backoff: ReopenBackoff(initial: 0.01, maximum: 0.05))) {
            ReplugCamera(unplugAfter: 300)
        }
        engine.start()
        try await waitStreaming(engine)
        _ = try await engine.setControl("brightness", value: 30)
        // Wait for the unplug and the reopen, then the new device has the value again.
        var reopened = false
        for await event in engine.events {
            if case .failed = event { reopened = true }
            if case .opened = event, reopened { break }
        }
        try await waitStreaming(engine)
        #expect(try await engine.controls().first { $0.name == "brightness" }?.value == 30)
        await engine.stop()
    }
}
