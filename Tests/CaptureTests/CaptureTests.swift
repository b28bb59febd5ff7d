import Foundation
import Imaging
import Testing
@testable import Capture

// MARK: - Format negotiation against made-up devices

@Suite struct FormatNegotiationTests {
    static let uvcWebcam: [FormatInfo] = [
        FormatInfo(fourcc: .yuyv, sizes: [.discrete(640, 480), .discrete(1280, 720), .discrete(1920, 1080)]),
        FormatInfo(fourcc: .mjpeg, compressed: true, sizes: [.discrete(640, 480), .discrete(1280, 720), .discrete(2592, 1944)]),
    ]

    @Test func autoPrefersMJPEGAtItsLargestSize() throws {
        let c = try FormatNegotiation(preference: .auto).choose(from: Self.uvcWebcam)
        #expect(c == FormatChoice(fourcc: .mjpeg, width: 2592, height: 1944))
    }

    @Test func autoFallsBackToRawFormatsInOrder() throws {
        let raw = [FormatInfo(fourcc: .yu12, sizes: [.discrete(800, 600)]),
                   FormatInfo(fourcc: .nv12, sizes: [.discrete(640, 480)]),
                   FormatInfo(fourcc: FourCC("UYVY"), sizes: [.discrete(3840, 2160)])]
        #expect(try FormatNegotiation(preference: .auto).choose(from: raw) == FormatChoice(fourcc: .nv12, width: 640, height: 480))
    }

    @Test func anExactSizeWinsOverTheFormatOrder() throws {
        // MJPEG lacks 1920×1080, YUYV has it.
        let c = try FormatNegotiation(preference: .auto, width: 1920, height: 1080).choose(from: Self.uvcWebcam)
        #expect(c == FormatChoice(fourcc: .yuyv, width: 1920, height: 1080))
    }

    @Test func aSizeNobodyOffersGetsTheNearestOfTheBestFormat() throws {
        let c = try FormatNegotiation(preference: .auto, width: 1600, height: 900).choose(from: Self.uvcWebcam)
        #expect(c == FormatChoice(fourcc: .mjpeg, width: 1280, height: 720))
    }

    @Test func stepwiseRangesAreClampedOntoTheirGrid() throws {
        let f = [FormatInfo(fourcc: .yuyv, sizes: [.range(.stepwise, min: (16, 16), max: (1920, 1080), step: (16, 8))])]
        #expect(try FormatNegotiation(preference: .yuyv, width: 1024, height: 768).choose(from: f)
                == FormatChoice(fourcc: .yuyv, width: 1024, height: 768))
        #expect(try FormatNegotiation(preference: .yuyv, width: 1000, height: 5000).choose(from: f)
                == FormatChoice(fourcc: .yuyv, width: 992, height: 1080))
        #expect(try FormatNegotiation(preference: .yuyv).choose(from: f) == FormatChoice(fourcc: .yuyv, width: 1920, height: 1080))
    }

    @Test func aForcedFormatTheDeviceLacksIsAClearError() {
        #expect {
            try FormatNegotiation(preference: .nv12).choose(from: Self.uvcWebcam, device: "/dev/video0 (Webcam)")
        } throws: { e in
            let e = e as! CaptureError
            return e.code == .formatUnsupported && e.message.contains("/dev/video0 (Webcam) offers no NV12")
                && e.message.contains("YUYV, MJPG") && e.nextStep?.contains("auto") == true
        }
    }

    @Test func jpegFourccCountsAsMJPEG() throws {
        let f = [FormatInfo(fourcc: .jpeg, sizes: [.discrete(1600, 1200)])]
        #expect(try FormatNegotiation(preference: .mjpeg).choose(from: f).fourcc == .jpeg)
    }
}

// MARK: - Small pure pieces

@Suite struct NamingAndErrorTests {
    @Test func controlNamesMatchV4l2Ctl() {
        #expect(ControlInfo.variableName("Power Line Frequency") == "power_line_frequency")
        #expect(ControlInfo.variableName("White Balance Temperature, Auto") == "white_balance_temperature_auto")
        #expect(ControlInfo.variableName("Inject VIDIOC_STREAMON Error") == "inject_vidioc_streamon_error")
        #expect(ControlInfo.variableName("100% Black") == "100_black")
        #expect(ControlInfo.variableName("Focus, Auto ") == "focus_auto")
    }

    @Test func fourccRoundTrips() throws {
        #expect(FourCC("YUYV").rawValue == 0x5659_5559)
        #expect(FourCC.mjpeg.description == "MJPG")
        let data = try JSONEncoder().encode([FourCC.nv12])
        #expect(String(decoding: data, as: UTF8.self) == "[\"NV12\"]")
        #expect(try JSONDecoder().decode([FourCC].self, from: data) == [.nv12])
    }

    @Test func bandwidthErrorsSuggestMJPEGOrASmallerSize() {
        let e = CaptureError.classify(function: "VIDIOC_STREAMON", errno: ENOSPC, device: "/dev/video0")
        #expect(e.code == .bandwidth)
        #expect(e.message.contains("VIDIOC_STREAMON on /dev/video0 failed: No space left on device"))
        #expect(e.nextStep?.contains("mjpeg") == true && e.nextStep?.contains("smaller") == true)
    }

    @Test func busyNamesTheHolder() {
        let e = CaptureError.classify(function: "VIDIOC_S_FMT", errno: EBUSY, device: "/dev/video0", holder: "cheese (pid 42)")
        #expect(e.code == .deviceBusy)
        #expect(e.message.contains("cheese (pid 42) is using it"))
        let anon = CaptureError.classify(function: "VIDIOC_REQBUFS", errno: EBUSY, device: "/dev/video0")
        #expect(anon.message.contains("another program"))
    }

    @Test func unplugAndMissingAreTold() {
        #expect(CaptureError.classify(function: "VIDIOC_DQBUF", errno: ENODEV, device: "/dev/video0").code == .unplugged)
        #expect(CaptureError.classify(function: "VIDIOC_DQBUF", errno: EIO, device: "/dev/video0").code == .unplugged)
        #expect(CaptureError.classify(function: "v4l2_open", errno: ENOENT, device: "/dev/video9").code == .deviceMissing)
        let other = CaptureError.classify(function: "VIDIOC_QBUF", errno: EINVAL, device: "/dev/video0")
        #expect(other.code == .driverError && other.function == "VIDIOC_QBUF" && other.errno == EINVAL)
    }

    @Test func schedulerWarmsUpThenTakesTheFirstFreshFrame() {
        var s = StillScheduler(warmupFrames: 3)
        // Requested at t=10: warm-up frames are never used, stale ones neither.
        #expect(s.frameArrived(timestamp: 9.0, oldestRequest: 10) == .discard)
        #expect(s.frameArrived(timestamp: 9.5, oldestRequest: 10) == .discard)
        #expect(s.frameArrived(timestamp: 10.1, oldestRequest: 10) == .discard)  // third frame: still warming up
        #expect(s.frameArrived(timestamp: 9.9, oldestRequest: 10) == .discard)   // captured before the request
        #expect(s.frameArrived(timestamp: 10.2, oldestRequest: 10) == .takeStill)
        #expect(s.frameArrived(timestamp: 10.3, oldestRequest: nil) == .discard)
    }

    @Test func schedulerPacesLivePreviews() {
        var s = StillScheduler(warmupFrames: 0, livePreviewInterval: 0.5)
        let actions = stride(from: 0.0, to: 2.0, by: 0.1).map { s.frameArrived(timestamp: $0, oldestRequest: nil) }
        #expect(actions.filter { $0 == .livePreview }.count == 4)
        #expect(actions.first == .livePreview)
        // A still request takes precedence over a due preview.
        #expect(s.frameArrived(timestamp: 5, oldestRequest: 4) == .takeStill)
    }

    @Test func backoffDoublesUpToItsCapAndResets() {
        var b = ReopenBackoff(initial: 0.25, maximum: 2)
        #expect((0..<6).map { _ in b.next() } == [0.25, 0.5, 1, 2, 2, 2])
        b.reset()
        #expect(b.next() == 0.25)
    }
}

// MARK: - Real files and processes

@Suite struct SystemTests {
    @Test func theHolderOfADeviceIsFoundThroughProc() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("holder-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let node = dir.appendingPathComponent("video0").path
        #expect(FileManager.default.createFile(atPath: node, contents: Data()))
        // A child that keeps the "device" open on its stdin.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = ["60"]
        child.standardInput = FileHandle(forReadingAtPath: node)
        try child.run()
        defer { child.terminate() }
        var holder: String?
        for _ in 0..<200 where holder == nil {
            holder = ProcessHolder.find(device: node)
            if holder == nil { usleep(25_000) }
        }
        #expect(holder == "sleep (pid \(child.processIdentifier))")
    }

    @Test func discoverySkipsNodesThatAreNotCameras() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dev-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["video10", "video2", "videoX", "vbi0"] {
            #expect(FileManager.default.createFile(atPath: dir.appendingPathComponent(name).path, contents: Data()))
        }
        let d = DeviceDiscovery(devRoot: dir.path)
        #expect(d.nodes() == ["\(dir.path)/video2", "\(dir.path)/video10"])
        // Regular files answer VIDIOC_QUERYCAP with ENOTTY.
        #expect(d.captureDevices().isEmpty)
        #expect(throws: CaptureError.self) { try d.firstCaptureDevice() }
        #expect {
            try d.inspect("\(dir.path)/video2")
        } throws: { e in
            let e = e as! CaptureError
            return e.function == "VIDIOC_QUERYCAP" && e.errno == ENOTTY
        }
    }

    @Test func aMissingDeviceIsReportedWithTheNextStep() {
        let cam = V4L2Camera(settings: .init(device: "/dev/video-does-not-exist", negotiation: FormatNegotiation(preference: .auto)))
        #expect {
            _ = try cam.open()
        } throws: { e in
            let e = e as! CaptureError
            return e.code == .deviceMissing && e.message.contains("/dev/video-does-not-exist") && e.nextStep != nil
        }
    }
}

// MARK: - The synthetic camera and the engine

@Suite struct SyntheticCameraTests {
    @Test(arguments: [FormatPreference.yuyv, .nv12, .yu12])
    func framesHaveTheNegotiatedLayoutAndMove(_ pref: FormatPreference) throws {
        let cam = SyntheticCamera(settings: .init(negotiation: FormatNegotiation(preference: pref, width: 640, height: 480),
                                                  framesPerSecond: 200))
        let fmt = try cam.open()
        defer { cam.close() }
        #expect(fmt.width == 640 && fmt.height == 480 && fmt.fourcc == pref.candidates[0])
        var frames: [[UInt8]] = []
        var sequences: [UInt64] = []
        for _ in 0..<3 {
            try cam.nextFrame(timeout: 5) { f in
                frames.append(Array(f.bytes))
                sequences.append(f.sequence)
                #expect(f.bytes.count == fmt.fourcc.rawPixelFormat!.frameSize(width: 640, height: 480, bytesPerLine: f.bytesPerLine))
            }
        }
        #expect(sequences == [0, 1, 2])
        #expect(frames[0] != frames[1] && frames[1] != frames[2])
        // Its frames encode to the bars it promises.
        let jpeg = try frames[2].withUnsafeBytes {
            try JPEGEncoder(quality: 92).encode(RawFrameView(format: fmt.fourcc.rawPixelFormat!, width: 640, height: 480, bytes: $0))
        }
        let image = try JPEGDecoder().decode(jpeg)
        for (i, c) in SyntheticCamera.barColours.enumerated() {
            let got = image.rgb(x: (2 * i + 1) * 40, y: 400)
            #expect(abs(Int(got.r) - Int(c.0)) <= 6 && abs(Int(got.g) - Int(c.1)) <= 6 && abs(Int(got.b) - Int(c.2)) <= 6, "bar \(i)")
        }
    }

    @Test func configuredControlsAreAppliedOrReportedAsRejected() throws {
        let cam = SyntheticCamera(settings: .init(controls: ["exposure_absolute": 100, "brightness": 90]))
        let fmt = try cam.open()
        #expect(fmt.rejectedControls.map(\.name) == ["exposure_absolute"])
        #expect(fmt.controls.first { $0.name == "brightness" }?.applied == true)
        #expect(try cam.controls().first { $0.name == "brightness" }?.value == 90)
    }
}

/// Wraps the synthetic camera and fails on cue, like a flaky USB camera.
final class FlakyCamera: CameraSource {
    enum Step { case failOpen(CaptureError), openOK, unplugAfter(frames: Int) }
    private var plan: [Step]
    private let inner = SyntheticCamera(settings: .init(negotiation: FormatNegotiation(preference: .yuyv, width: 640, height: 480),
                                                        framesPerSecond: 100))
    private var framesLeft: Int?
    private let gate: DispatchSemaphore?

    /// `gate`: an unplugging open waits for it, so a test can line up a
    /// still request first.
    init(plan: [Step], gate: DispatchSemaphore? = nil) {
        self.plan = plan
        self.gate = gate
    }

    func open() throws(CaptureError) -> StreamFormat {
        framesLeft = nil
        if !plan.isEmpty {
            switch plan.removeFirst() {
            case .failOpen(let e): throw e
            case .unplugAfter(let n):
                gate?.wait()
                framesLeft = n
            case .openOK: break
            }
        }
        return try inner.open()
    }

    func nextFrame(timeout: Double, _ body: (CameraFrame) -> Void) throws(CaptureError) {
        if let n = framesLeft {
            if n == 0 { throw CaptureError.classify(function: "VIDIOC_DQBUF", errno: ENODEV, device: "/dev/flaky") }
            framesLeft = n - 1
        }
        try inner.nextFrame(timeout: timeout, body)
    }

    func close() { inner.close() }
}

@Suite struct CaptureEngineTests {
    @Test func aStillComesAfterWarmUpAsAValidJPEGWithPreview() async throws {
        let engine = CaptureEngine(settings: .init(warmupFrames: 5, jpegQuality: 90, previewWidth: 320)) {
            SyntheticCamera(settings: .init(negotiation: FormatNegotiation(preference: .nv12, width: 1280, height: 720), framesPerSecond: 60))
        }
        let still = try await engine.captureStill(timeout: 120)
        await engine.stop()
        #expect(still.sequence >= 5)
        #expect(still.width == 1280 && still.height == 720 && still.sourceFormat == .nv12 && !still.cameraEncoded)
        #expect(try JPEG.validate(still.jpeg).width == 1280)
        #expect(try JPEG.validate(still.preview).width == 320)
        #expect(still.metrics.flags.isEmpty, "\(still.metrics)")
        #expect(engine.phase == .stopped)
    }

    @Test func exposureFlagsComeThroughTheEngine() async throws {
        for (pattern, flag) in [(SyntheticCamera.Pattern.black, QualityMetrics.Flag.tooDark), (.white, .overexposed), (.gradient, .blurred)] {
            let engine = CaptureEngine(settings: .init(warmupFrames: 0)) {
                SyntheticCamera(settings: .init(negotiation: FormatNegotiation(preference: .yuyv, width: 640, height: 480),
                                                pattern: pattern, framesPerSecond: 60))
            }
            let still = try await engine.captureStill(timeout: 120)
            await engine.stop()
            #expect(still.metrics.flags.contains(flag), "\(pattern): \(still.metrics)")
            // 640×480 is below the diagnostic floor.
            #expect(still.warnings.map(\.code) == [.resolution])
        }
    }

    @Test func livePreviewsAndStillsShareOneStream() async throws {
        let engine = CaptureEngine(settings: .init(warmupFrames: 0, livePreviewInterval: 0.01, previewWidth: 160)) {
            SyntheticCamera(settings: .init(negotiation: FormatNegotiation(preference: .yuyv, width: 640, height: 480), framesPerSecond: 60))
        }
        engine.start()
        var previews = 0
        var opened = 0
        let taker = Task { try await engine.captureStill(timeout: 120) }
        // The event stream keeps only the newest events when its reader is
        // slow (a loaded machine), so the still is awaited from captureStill,
        // not looked for among the events.
        for await event in engine.events {
            switch event {
            case .opened: opened += 1
            case .preview(let p):
                #expect(try JPEG.validate(p.jpeg).width == 160)
                previews += 1
            case .still: break
            case .failed(let e): Issue.record("unexpected failure \(e)")
            }
            if previews >= 3 { break }
        }
        let still = try await taker.value
        #expect(still.width == 640 && still.height == 480)
        await engine.stop()
        #expect(opened <= 1, "one stream served previews and the still")
        #expect(previews >= 3)
    }

    @Test func failuresReachTheCallerAndTheEngineRecovers() async throws {
        let missing = CaptureError(.deviceMissing, "camera /dev/flaky is not connected")
        // Missing at first, then unplugged during warm-up (so a still is
        // necessarily waiting when it happens), then healthy.
        let gate = DispatchSemaphore(value: 0)
        let engine = CaptureEngine(settings: .init(warmupFrames: 2, backoff: ReopenBackoff(initial: 0.01, maximum: 0.05))) {
            FlakyCamera(plan: [.failOpen(missing), .unplugAfter(frames: 1), .openOK], gate: gate)
        }
        await #expect { try await engine.captureStill(timeout: 120) } throws: { ($0 as! CaptureError) == missing }

        // While the engine retries, its second open is held until a still waits.
        var errors: [CaptureError.Code] = [.deviceMissing]
        while engine.phase != .opening { try await Task.sleep(for: .milliseconds(2)) }
        let waiting = Task { () async -> CaptureError? in
            do throws(CaptureError) {
                _ = try await engine.captureStill(timeout: 120)
                return nil
            } catch {
                return error
            }
        }
        while engine.waitingStills == 0 { try await Task.sleep(for: .milliseconds(2)) }
        gate.signal()
        let unplugged = await waiting.value
        #expect(unplugged?.code == .unplugged, "a still must not come from a stream unplugged during warm-up")
        if let unplugged { errors.append(unplugged.code) }

        var still: CapturedStill?
        let deadline = ContinuousClock.now + .seconds(120)
        while still == nil, ContinuousClock.now < deadline {
            do {
                still = try await engine.captureStill(timeout: 120)
            } catch {
                errors.append(error.code)
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        await engine.stop()
        let recovered = try #require(still)
        #expect(try JPEG.validate(recovered.jpeg).width == 640)
        #expect(errors.contains(.unplugged))
        #expect(Set(errors) == [.deviceMissing, .unplugged])
        // Errors come in the order the camera failed.
        #expect(errors.firstIndex(of: .unplugged)! > errors.lastIndex(of: .deviceMissing)!)
    }

    @Test func stopFailsWaitingStills() async throws {
        let engine = CaptureEngine(settings: .init(warmupFrames: 100_000)) {
            SyntheticCamera(settings: .init(negotiation: FormatNegotiation(preference: .yuyv, width: 640, height: 480), framesPerSecond: 30))
        }
        let waiting = Task { try await engine.captureStill(timeout: 300) }
        while case .opening = engine.phase { try await Task.sleep(for: .milliseconds(10)) }
        await engine.stop()
        await #expect { try await waiting.value } throws: { ($0 as! CaptureError).code == .stopped }
    }
}
