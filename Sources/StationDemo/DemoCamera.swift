import CTurboJPEG
import Foundation
import Station
import Synchronization

/// A stand-in camera for tests and development: draws a moving test scene
/// on its own thread and encodes it with TurboJPEG (`tjCompress2`), so the
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
        guard let handle = tjInitCompress() else { return }
        defer { tjDestroy(handle) }
        let interval = 1.0 / framesPerSecond
        var next = Date()
        var backgrounds: [Int: [UInt8]] = [:]
        while true {
            let (stopped, missing, stills) = state.withLock { s in
                defer { s.stillRequests = [] }
                return (s.stopped, s.missing, s.stillRequests)
            }
            if stopped { break }
            if !stills.isEmpty {
                let n = state.withLock { $0.frameCount }
                let data = Self.encode(handle, width: width * 2, height: height * 2, frame: n, quality: 90, backgrounds: &backgrounds) ?? Data()
                for c in stills { c.resume(returning: data) }
            }
            if !missing {
                let n = state.withLock { $0.frameCount }
                if let data = Self.encode(handle, width: width, height: height, frame: n, quality: 75, backgrounds: &backgrounds) {
                    let subscribers = state.withLock { s in
                        s.frameCount += 1
                        s.latest = data
                        return Array(s.subscribers.values)
                    }
                    for s in subscribers { s.yield(data) }
                }
                onFrame()
            }
            next = next.addingTimeInterval(interval)
            if next < Date() { next = Date() }
            wake.lock()
            _ = wake.wait(until: next)
            wake.unlock()
        }
        let (subscribers, stills) = state.withLock { s in
            defer { s.subscribers = [:]; s.stillRequests = [] }
            return (Array(s.subscribers.values), s.stillRequests)
        }
        for s in subscribers { s.finish() }
        for c in stills { c.resume(returning: Data()) }
    }

    /// Draws a skin-toned field with a dark lesion-like spot drifting across
    /// it and a bar whose position encodes the frame number, then encodes it.
    /// The background is drawn once per size; each frame redraws only the spot and bar.
    static func encode(_ handle: tjhandle, width: Int, height: Int, frame: Int, quality: Int32,
                       backgrounds: inout [Int: [UInt8]]) -> Data? {
        let key = width << 16 | height
        if backgrounds[key] == nil {
            var bg = [UInt8](repeating: 0, count: width * height * 3)
            for y in 0..<height {
                let shade = Double(y) / Double(height) * 30
                let row = (UInt8(224 - shade), UInt8(172 - shade), UInt8(140 - shade))
                for x in 0..<width {
                    let i = (y * width + x) * 3
                    bg[i] = row.0; bg[i + 1] = row.1; bg[i + 2] = row.2
                }
            }
            backgrounds[key] = bg
        }
        var pixels = backgrounds[key]!
        let t = Double(frame)
        let cx = Double(width) * (0.5 + 0.25 * sin(t / 20)), cy = Double(height) * (0.5 + 0.2 * cos(t / 27))
        let r = Double(min(width, height)) * 0.12
        let x0 = max(0, Int(cx - r)), x1 = min(width - 1, Int(cx + r))
        let y0 = max(0, Int(cy - r)), y1 = min(height - 1, Int(cy + r))
        if x0 <= x1 && y0 <= y1 {
            for y in y0...y1 {
                for x in x0...x1 {
                    let dx = Double(x) - cx, dy = Double(y) - cy
                    let d = (dx * dx + dy * dy).squareRoot() / r
                    guard d < 1 else { continue }
                    let k = 0.35 + 0.4 * d
                    let i = (y * width + x) * 3
                    pixels[i] = UInt8(Double(pixels[i]) * k)
                    pixels[i + 1] = UInt8(Double(pixels[i + 1]) * k * 0.8)
                    pixels[i + 2] = UInt8(Double(pixels[i + 2]) * k * 0.7)
                }
            }
        }
        let barX = (frame * 7) % max(1, width - 6)
        for y in max(0, height - 24)..<height {
            for x in barX..<(barX + 6) {
                let i = (y * width + x) * 3
                pixels[i] = 40; pixels[i + 1] = 120; pixels[i + 2] = 220
            }
        }
        var jpeg: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let rc = tjCompress2(handle, pixels, Int32(width), 0, Int32(height), Int32(TJPF_RGB.rawValue),
                             &jpeg, &size, Int32(TJSAMP_420.rawValue), quality, 0)
        defer { if let jpeg { tjFree(jpeg) } }
        guard rc == 0, let jpeg else { return nil }
        return Data(bytes: jpeg, count: Int(size))
    }
}
