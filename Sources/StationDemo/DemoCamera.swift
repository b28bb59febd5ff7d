import Capture
import Foundation
import Imaging
import Station
import Synchronization

/// A stand-in camera for tests and development: runs Capture's synthetic
/// camera on its own thread and encodes its frames with Imaging, so the
/// preview carries real, changing JPEG frames. Each frame counts as one
/// round of the capture loop.
public final class DemoCamera: Sendable {
    public let width: Int
    public let height: Int
    public let framesPerSecond: Double

    private struct State {
        var subscribers: [UInt64: AsyncStream<Data>.Continuation] = [:]
        var nextID: UInt64 = 0
        var stillRequests: [CheckedContinuation<Data, Never>] = []
        var stopped = false
        var missing = false
        var frameCount = 0
        var latest: Data?
    }
    private let state = Mutex(State())
    private let wake = NSCondition()
    private let onFrame: @Sendable () -> Void

    public init(width: Int = 640, height: Int = 480, framesPerSecond: Double = 8, onFrame: @escaping @Sendable () -> Void = {}) {
        self.width = width
        self.height = height
        self.framesPerSecond = framesPerSecond
        self.onFrame = onFrame
    }

    public func start() {
        let thread = Thread { [self] in self.loop() }
        thread.name = "demo-camera"
        thread.start()
    }

    public func stop() {
        state.withLock { $0.stopped = true }
        wake.lock(); wake.broadcast(); wake.unlock()
    }

    /// Simulates an unplugged camera: no frames, stills fail.
    public var isMissing: Bool {
        get { state.withLock { $0.missing } }
        set { state.withLock { $0.missing = newValue } }
    }

    public var framesProduced: Int { state.withLock { $0.frameCount } }

    public func frames() -> AsyncStream<Data> {
        let (stream, continuation) = AsyncStream.makeStream(of: Data.self, bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            s.subscribers[s.nextID] = continuation
            return s.nextID
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// A full-size still (twice the preview size), encoded on the camera thread.
    public func still() async -> Data {
        await withCheckedContinuation { c in
            state.withLock { $0.stillRequests.append(c) }
            wake.lock(); wake.broadcast(); wake.unlock()
        }
    }

    private func loop() {
        // The same synthetic camera `camera.device = "synthetic"` uses, one
        // per size so stills need no renegotiation, encoded by Imaging.
        func camera(width: Int, height: Int, fps: Double) -> SyntheticCamera? {
            let camera = SyntheticCamera(settings: .init(
                negotiation: FormatNegotiation(preference: .yuyv, width: width, height: height), framesPerSecond: fps))
            do { _ = try camera.open() } catch { return nil }
            return camera
        }
        guard let preview = camera(width: width, height: height, fps: framesPerSecond),
              let full = camera(width: width * 2, height: height * 2, fps: 1000),
              let previewEncoder = try? JPEGEncoder(quality: 75), let stillEncoder = try? JPEGEncoder(quality: 90) else { return }
        defer { preview.close(); full.close() }
        while true {
            let (stopped, missing, stills) = state.withLock { s in
                defer { s.stillRequests = [] }
                return (s.stopped, s.missing, s.stillRequests)
            }
            if stopped { break }
            if !stills.isEmpty {
                let data = Self.encode(full, stillEncoder) ?? Data()
                for c in stills { c.resume(returning: data) }
            }
            if missing {
                wake.lock()
                _ = wake.wait(until: Date().addingTimeInterval(1 / framesPerSecond))
                wake.unlock()
                continue
            }
            // `nextFrame` paces itself at `framesPerSecond`.
            if let data = Self.encode(preview, previewEncoder) {
                let subscribers = state.withLock { s in
                    s.frameCount += 1
                    s.latest = data
                    return Array(s.subscribers.values)
                }
                for s in subscribers { s.yield(data) }
            }
            onFrame()
        }
        let (subscribers, stills) = state.withLock { s in
            defer { s.subscribers = [:]; s.stillRequests = [] }
            return (Array(s.subscribers.values), s.stillRequests)
        }
        for s in subscribers { s.finish() }
        for c in stills { c.resume(returning: Data()) }
    }

    private static func encode(_ camera: SyntheticCamera, _ encoder: JPEGEncoder) -> Data? {
        var out: Data?
        try? camera.nextFrame(timeout: 5) { frame in
            guard let raw = frame.fourcc.rawPixelFormat else { return }
            out = try? encoder.encode(RawFrameView(format: raw, width: frame.width, height: frame.height,
                                                   bytesPerLine: frame.bytesPerLine, range: frame.range, bytes: frame.bytes))
        }
        return out
    }
}
