import Foundation
import Imaging
import Logging
import Synchronization

/// A still, ready to store and send.
public struct CapturedStill: Sendable {
    public var jpeg: Data
    public var preview: Data
    public var width: Int
    public var height: Int
    /// The camera's pixel format the still came from.
    public var sourceFormat: FourCC
    /// True when `jpeg` holds the camera's own MJPEG bytes.
    public var cameraEncoded: Bool
    public var metrics: QualityMetrics
    public var warnings: [QualityFloor.Warning]
    public var stream: StreamFormat
    public var capturedAt: Date
    /// The frame's number in its stream (0 is the first after opening).
    public var sequence: UInt64
}

/// A small image of the live stream for the kiosk's viewfinder.
public struct LiveFrame: Sendable {
    public var jpeg: Data
    public var sequence: UInt64
    public var timestamp: Double
}

public enum CaptureEvent: Sendable {
    /// The camera opened and streams in this format.
    case opened(StreamFormat)
    case preview(LiveFrame)
    case still(CapturedStill)
    /// The camera failed; the engine closes it and keeps trying to reopen it.
    case failed(CaptureError)
}

/// Runs a camera on its own thread: opens it, streams continuously,
/// serves stills and live previews from that one stream (a second open
/// would get EBUSY), and reopens the camera after it fails or is unplugged.
///
/// Blocking work (ioctl, poll, JPEG encoding) happens only on the engine's
/// thread; async code gets frames through `events`, a bounded stream that
/// keeps the newest events when nobody reads, and stills from `captureStill()`.
public final class CaptureEngine: Sendable {
    public struct Settings: Sendable {
        public var warmupFrames: Int
        /// Seconds to wait for any frame before declaring the camera stuck.
        public var frameTimeout: Double
        /// Seconds between live previews on `events`; nil: none.
        public var livePreviewInterval: Double?
        public var jpegQuality: Int
        public var previewWidth: Int
        public var backoff: ReopenBackoff

        public init(warmupFrames: Int = 10, frameTimeout: Double = 5, livePreviewInterval: Double? = nil,
                    jpegQuality: Int = 92, previewWidth: Int = 480, backoff: ReopenBackoff = ReopenBackoff()) {
            self.warmupFrames = warmupFrames
            self.frameTimeout = frameTimeout
            self.livePreviewInterval = livePreviewInterval
            self.jpegQuality = jpegQuality
            self.previewWidth = previewWidth
            self.backoff = backoff
        }
    }

    public enum Phase: Sendable, Equatable {
        case idle, opening
        case streaming(StreamFormat)
        /// Closed after `CaptureError`, reopening soon.
        case down(CaptureError)
        case stopped
    }

    private struct Pending {
        var requestedAt: Double
        var continuation: CheckedContinuation<Result<CapturedStill, CaptureError>, Never>
    }

    /// A control request for the engine thread, which alone touches the source.
    private struct ControlWork {
        var run: @Sendable (any CameraSource) -> Void
        var fail: @Sendable (CaptureError) -> Void
    }

    private struct State {
        var phase: Phase = .idle
        var pending: [UInt64: Pending] = [:]
        var controlWork: [ControlWork] = []
        /// Controls set at runtime, in the order they were set, applied again after a reopen.
        var controlOverrides: [(name: String, value: Int64)] = []
        var nextID: UInt64 = 0
        var stopRequested = false
        var started = false
        var finished: [CheckedContinuation<Void, Never>] = []
        var threadDone = false
        /// Rounds the engine thread has made: a frame taken or timed out, an
        /// open tried, a slice of a retry wait slept. Stops moving only when
        /// the thread is stuck (a hung ioctl, a wedged driver).
        var rounds: UInt64 = 0
        var frameLoss = FrameLoss()
    }

    public let settings: Settings
    public let events: AsyncStream<CaptureEvent>
    private let eventSink: AsyncStream<CaptureEvent>.Continuation
    private let state = Mutex(State())
    // The factory runs on the engine thread, which then owns the source alone.
    private let makeSource: @Sendable () -> any CameraSource
    private let logger: Logger

    public init(settings: Settings, logger: Logger = Logger(label: "telestation.capture"),
                source makeSource: @escaping @Sendable () -> any CameraSource) {
        self.settings = settings
        self.makeSource = makeSource
        self.logger = logger
        (events, eventSink) = AsyncStream.makeStream(of: CaptureEvent.self, bufferingPolicy: .bufferingNewest(8))
    }

    public var phase: Phase { state.withLock { $0.phase } }

    /// How many rounds the engine thread has made; the daemon feeds the
    /// watchdog only while this moves.
    public var rounds: UInt64 { state.withLock { $0.rounds } }

    private func round() { state.withLock { $0.rounds &+= 1 } }
    /// Frames the camera dropped or delivered damaged since the engine started.
    public var frameLoss: FrameLoss { state.withLock { $0.frameLoss } }

    /// Stills requested and not yet answered.
    public var waitingStills: Int { state.withLock { $0.pending.count } }

    /// Starts the engine thread; calling it again does nothing.
    public func start() {
        let first = state.withLock { s -> Bool in
            defer { s.started = true }
            if !s.started { s.phase = .opening }
            return !s.started
        }
        guard first else { return }
        let thread = Thread { [self] in run() }
        thread.name = "telestation-capture"
        thread.start()
    }

    /// Stops streaming, fails waiting stills with `.stopped` and returns when
    /// the camera is closed.
    public func stop() async {
        let running = state.withLock { s -> Bool in
            s.stopRequested = true
            return s.started && !s.threadDone
        }
        guard running else {
            failAll(CaptureError(.stopped, "capture was stopped"))
            eventSink.finish()
            return
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s -> Bool in
                if s.threadDone { return true }
                s.finished.append(c)
                return false
            }
            if done { c.resume() }
        }
    }

    /// Takes a still from the next fresh frame after warm-up. Fails at once
    /// with the camera's last error while it is down, so the kiosk can say
    /// why; the engine keeps reopening it in the background.
    public func captureStill(timeout: Double = 60) async throws(CaptureError) -> CapturedStill {
        start()
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        let timer = Task { [self] in
            try? await Task.sleep(for: .seconds(timeout))
            if !Task.isCancelled {
                complete(id, .failure(CaptureError(.timeout, String(format: "no still within %.0f s", timeout),
                                                   nextStep: "check the camera; it may be too slow at this size")))
            }
        }
        defer { timer.cancel() }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Result<CapturedStill, CaptureError>, Never>) in
                let refusal = state.withLock { s -> CaptureError? in
                    if s.stopRequested { return CaptureError(.stopped, "capture was stopped") }
                    if case .down(let e) = s.phase { return e }
                    s.pending[id] = Pending(requestedAt: monotonicNow(), continuation: c)
                    return nil
                }
                if let refusal { c.resume(returning: .failure(refusal)) }
            }
        } onCancel: {
            complete(id, .failure(CaptureError(.stopped, "the still was cancelled")))
        }
        return try result.get()
    }

    // MARK: - Controls

    /// The camera's user controls with their current values, read on the
    /// engine thread from the one open stream.
    public func controls() async throws(CaptureError) -> [ControlInfo] {
        try await onEngineThread { source throws(CaptureError) in try source.controls() }
    }

    /// Sets a control on the streaming camera and returns it as the driver
    /// reports it afterwards. The value is applied again whenever the engine
    /// reopens the camera.
    public func setControl(_ name: String, value: Int64) async throws(CaptureError) -> ControlInfo {
        try await onEngineThread { [self] source throws(CaptureError) in
            let control = try source.setControl(name, value: value)
            state.withLock { s in
                s.controlOverrides.removeAll { $0.name == name }
                s.controlOverrides.append((name, value))
            }
            return control
        }
    }

    /// Runs `body` on the engine thread between two frames. Refused at once
    /// while the camera is not streaming, so the kiosk can say why.
    private func onEngineThread<T: Sendable>(_ body: @escaping @Sendable (any CameraSource) throws(CaptureError) -> T) async throws(CaptureError) -> T {
        start()
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<T, CaptureError>, Never>) in
            let refusal = state.withLock { s -> CaptureError? in
                if s.stopRequested { return CaptureError(.notStreaming, "capture was stopped") }
                switch s.phase {
                case .streaming: break
                case .down(let e): return CaptureError(.notStreaming, "the camera is not available: \(e.message)", nextStep: e.nextStep)
                case .idle, .opening: return CaptureError(.notStreaming, "the camera is still starting", nextStep: "try again in a few seconds")
                case .stopped: return CaptureError(.notStreaming, "capture was stopped")
                }
                s.controlWork.append(ControlWork(
                    run: { source in c.resume(returning: Result { () throws(CaptureError) -> T in try body(source) }) },
                    fail: { c.resume(returning: .failure($0)) }))
                return nil
            }
            if let refusal { c.resume(returning: .failure(refusal)) }
        }
        return try result.get()
    }

    /// Serves the control requests waiting for the engine thread.
    private func runControlWork(_ source: any CameraSource) {
        let work = state.withLock { s -> [ControlWork] in
            defer { s.controlWork = [] }
            return s.controlWork
        }
        for w in work { w.run(source) }
    }

    private func failControlWork(_ error: CaptureError) {
        let work = state.withLock { s -> [ControlWork] in
            defer { s.controlWork = [] }
            return s.controlWork
        }
        for w in work { w.fail(error) }
    }

    /// After a reopen, the controls set at runtime apply again: a replugged
    /// camera keeps the brightness staff chose.
    private func reapplyControls(_ source: any CameraSource) {
        for (name, value) in state.withLock({ $0.controlOverrides }) {
            do { _ = try source.setControl(name, value: value) } catch {
                logger.warning("camera control not applied again after reopening", metadata: ["control": "\(name)", "reason": "\(error)"])
            }
        }
    }

    private func complete(_ id: UInt64, _ result: Result<CapturedStill, CaptureError>) {
        state.withLock { $0.pending.removeValue(forKey: id) }?.continuation.resume(returning: result)
    }

    private func failAll(_ error: CaptureError) {
        let waiting = state.withLock { s -> [Pending] in
            defer { s.pending = [:] }
            return Array(s.pending.values)
        }
        for p in waiting { p.continuation.resume(returning: .failure(error)) }
    }

    private var stopRequested: Bool { state.withLock { $0.stopRequested } }

    /// Sleeps on the engine thread in short slices so `stop()` is prompt.
    private func pause(_ seconds: Double) {
        let end = monotonicNow() + seconds
        while !stopRequested, monotonicNow() < end {
            usleep(20_000)
            round()
        }
    }

    // MARK: - The engine thread

    private func run() {
        let source = makeSource()
        var backoff = settings.backoff
        let processor: StillProcessor
        do {
            processor = try StillProcessor(jpegQuality: settings.jpegQuality, previewWidth: settings.previewWidth)
        } catch {
            fail(CaptureError(.imaging, "cannot set up JPEG encoding: \(error)"))
            return finish(source)
        }
        outer: while !stopRequested {
            round()
            state.withLock { $0.phase = .opening }
            let format: StreamFormat
            do {
                format = try source.open()
            } catch {
                fail(error)
                pause(backoff.next())
                continue
            }
            backoff.reset()
            reapplyControls(source)
            state.withLock { $0.phase = .streaming(format) }
            eventSink.yield(.opened(format))
            for r in format.rejectedControls {
                logger.warning("camera control rejected", metadata: ["control": "\(r.name)", "reason": "\(r.reason ?? "")"])
            }
            logger.info("camera streaming", metadata: ["device": "\(format.device)", "format": "\(format.fourcc)",
                                                       "size": "\(format.width)x\(format.height)"])
            var scheduler = StillScheduler(warmupFrames: settings.warmupFrames, livePreviewInterval: settings.livePreviewInterval)
            while !stopRequested {
                round()
                runControlWork(source)
                do {
                    // The source is the engine thread's alone: copy its count out
                    // before a frame can answer a still, and after a failed wait.
                    defer { noteFrameLoss(source) }
                    try source.nextFrame(timeout: settings.frameTimeout) { frame in
                        noteFrameLoss(source)
                        handle(frame, format: format, scheduler: &scheduler, processor: processor)
                    }
                } catch {
                    source.close()
                    fail(error)
                    pause(backoff.next())
                    continue outer
                }
            }
        }
        finish(source)
    }

    private func noteFrameLoss(_ source: any CameraSource) {
        let loss = source.frameLoss
        state.withLock { $0.frameLoss = loss }
    }

    private func handle(_ frame: CameraFrame, format: StreamFormat, scheduler: inout StillScheduler, processor: StillProcessor) {
        let now = monotonicNow()
        // Trust the driver's clock only if it is on our time line.
        let ts = abs(frame.timestamp - now) < 10 ? frame.timestamp : now
        let oldest = state.withLock { $0.pending.values.map(\.requestedAt).min() }
        switch scheduler.frameArrived(timestamp: ts, oldestRequest: oldest) {
        case .discard:
            return
        case .livePreview:
            if let jpeg = try? livePreview(frame, processor: processor) {
                eventSink.yield(.preview(LiveFrame(jpeg: jpeg, sequence: frame.sequence, timestamp: ts)))
            }
        case .takeStill:
            let result: Result<CapturedStill, CaptureError>
            do {
                let p = try process(frame, processor: processor)
                result = .success(CapturedStill(jpeg: p.jpeg, preview: p.preview, width: p.info.width, height: p.info.height,
                                                sourceFormat: frame.fourcc, cameraEncoded: p.cameraEncoded, metrics: p.metrics,
                                                warnings: p.warnings, stream: format, capturedAt: Date(),
                                                sequence: frame.sequence))
            } catch {
                result = .failure(CaptureError(.imaging, "the captured frame could not be made into a JPEG: \(error)",
                                               nextStep: "capture again"))
            }
            // Every request made before this frame was captured is served by it.
            let served = state.withLock { s -> [Pending] in
                let ids = s.pending.filter { $0.value.requestedAt <= ts }.map(\.key)
                return ids.compactMap { s.pending.removeValue(forKey: $0) }
            }
            for p in served { p.continuation.resume(returning: result) }
            if case .success(let still) = result { eventSink.yield(.still(still)) }
        }
    }

    private func process(_ frame: CameraFrame, processor: StillProcessor) throws(ImagingError) -> ProcessedStill {
        if frame.fourcc.isJPEG {
            return try processor.process(mjpeg: Data(frame.bytes))
        }
        guard let raw = frame.fourcc.rawPixelFormat else {
            throw ImagingError(.invalidFrame, "the station cannot encode \(frame.fourcc) frames")
        }
        return try processor.process(RawFrameView(format: raw, width: frame.width, height: frame.height,
                                                  bytesPerLine: frame.bytesPerLine, range: frame.range, bytes: frame.bytes))
    }

    private func livePreview(_ frame: CameraFrame, processor: StillProcessor) throws(ImagingError) -> Data {
        if frame.fourcc.isJPEG {
            return try processor.preview(ofJPEG: MJPEG.insertHuffmanTablesIfMissing(Data(frame.bytes)))
        }
        guard let raw = frame.fourcc.rawPixelFormat else { throw ImagingError(.invalidFrame, "unsupported live format") }
        return try processor.preview(ofRaw: RawFrameView(format: raw, width: frame.width, height: frame.height,
                                                         bytesPerLine: frame.bytesPerLine, range: frame.range, bytes: frame.bytes))
    }

    private func fail(_ error: CaptureError) {
        logger.error("camera failed", metadata: ["error": "\(error)"])
        state.withLock { $0.phase = .down(error) }
        failAll(error)
        failControlWork(CaptureError(.notStreaming, "the camera is not available: \(error.message)", nextStep: error.nextStep))
        eventSink.yield(.failed(error))
    }

    private func finish(_ source: any CameraSource) {
        source.close()
        failAll(CaptureError(.stopped, "capture was stopped"))
        failControlWork(CaptureError(.notStreaming, "capture was stopped"))
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.phase = .stopped
            s.threadDone = true
            defer { s.finished = [] }
            return s.finished
        }
        eventSink.finish()
        for w in waiters { w.resume() }
    }
}
