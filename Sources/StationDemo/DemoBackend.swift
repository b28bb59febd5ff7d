import Foundation
import Logging
import ServiceLifecycle
import Station
import Synchronization

/// An in-memory `StationBackend` for tests and development only: a
/// `DemoCamera`, a queue held in memory, and a simulated uplink that moves
/// bytes at `simulatedRate`. It is never part of the production daemon.
public final class DemoBackend: StationBackend {
    public let camera: DemoCamera
    public let monitor: LoopMonitor

    private struct Held {
        var item: ReviewItem
        var image: Data
    }

    private struct State {
        var review: [String: Held] = [:]
        var queue: [QueueItem] = []
        var images: [String: Data] = [:]
        var paused = false
        var limit: Int64 = 0
        var online = true
        var hub: LinkState.Hub = .ok
        var diskNearlyFull = false
        /// A USB stick shown as mounted, for the kiosk's USB button.
        var stick: String?
        var lastExport: StickOperation?
        var rate: Double = 0
        var uploading = false
        var nextWarnings: [CaptureWarning] = []
        var everyCaptureWarnings: [CaptureWarning] = []
        var controls: [CameraControl] = [
            CameraControl(name: "brightness", value: 128, minimum: 0, maximum: 255, step: 1, defaultValue: 128),
            CameraControl(name: "contrast", value: 32, minimum: 0, maximum: 64, step: 1, defaultValue: 32),
            CameraControl(name: "focus_absolute", value: 250, minimum: 0, maximum: 1023, step: 1, defaultValue: 250),
        ]
        var recoveredAt: ContinuousClock.Instant?
    }
    private let state = Mutex(State())
    private let counter = Mutex(0)

    /// Bytes per second the simulated uplink moves.
    public let simulatedRate: Int64
    /// Time `recover()` takes, to show READY waits for it.
    public let recoveryDelay: Duration

    public init(monitor: LoopMonitor, simulatedRate: Int64 = 64 * 1024, recoveryDelay: Duration = .zero,
                camera: DemoCamera? = nil) {
        self.monitor = monitor
        self.simulatedRate = simulatedRate
        self.recoveryDelay = recoveryDelay
        self.camera = camera ?? DemoCamera(onFrame: { monitor.beat(.capture) })
    }

    // MARK: Knobs for tests

    public func setNextWarnings(_ warnings: [CaptureWarning]) { state.withLock { $0.nextWarnings = warnings } }
    public func setWarningsForEveryCapture(_ warnings: [CaptureWarning]) { state.withLock { $0.everyCaptureWarnings = warnings } }
    public func setOnline(_ online: Bool) { state.withLock { $0.online = online } }
    public func setHub(_ hub: LinkState.Hub) { state.withLock { $0.hub = hub } }
    public func setDiskNearlyFull(_ full: Bool) { state.withLock { $0.diskNearlyFull = full } }
    /// Shows a USB stick as mounted at `mountPoint` (nil: none).
    public func setStick(_ mountPoint: String?) { state.withLock { $0.stick = mountPoint } }

    public func stickStatus() async -> StickStatus {
        state.withLock { s in
            let owed = s.queue.filter { !$0.state.isDelivered }
            return StickStatus(mountPoint: s.stick, owedItems: owed.count, owedBytes: owed.reduce(0) { $0 + $1.bytesTotal },
                               canExport: s.stick != nil && !owed.isEmpty,
                               reason: s.stick == nil ? "no USB stick is mounted" : owed.isEmpty ? "nothing to export" : nil,
                               lastExport: s.lastExport)
        }
    }

    /// Pretends to write the owed items (the real export is `LiveBackend`'s).
    public func exportToStick() async throws -> StickOperation {
        try state.withLock { s in
            guard s.stick != nil else { throw StationError(.conflict, "no USB stick is mounted") }
            let n = s.queue.filter { !$0.state.isDelivered }.count
            let op = StickOperation(at: Date(), ok: true, message: "\(n) items written to the USB stick", items: n)
            s.lastExport = op
            return op
        }
    }
    /// When `recover()` finished, to check that READY came after it.
    public var recoveredAt: ContinuousClock.Instant? { state.withLock { $0.recoveredAt } }

    // MARK: StationBackend

    public func recover() async throws {
        if recoveryDelay > .zero { try await Task.sleep(for: recoveryDelay) }
        state.withLock { $0.recoveredAt = .now }
    }

    public func capture(_ request: CaptureRequest) async throws -> ReviewItem {
        guard !camera.isMissing else {
            throw StationError(.cameraMissing, "the camera is not connected", nextStep: "check the camera cable")
        }
        let image = await camera.still()
        guard !image.isEmpty else { throw StationError(.cameraMissing, "the camera stopped") }
        let n = counter.withLock { $0 += 1; return $0 }
        let id = String(format: "c%04d", n)
        return state.withLock { s in
            let item = ReviewItem(id: id, request: request, width: camera.width * 2, height: camera.height * 2,
                                  bytes: Int64(image.count), warnings: s.nextWarnings.isEmpty ? s.everyCaptureWarnings : s.nextWarnings, capturedAt: Date())
            s.nextWarnings = []
            s.review[id] = Held(item: item, image: image)
            return item
        }
    }

    public func image(id: String, kind: ImageKind) async throws -> Data {
        let data = state.withLock { s in s.review[id]?.image ?? s.images[id] }
        guard let data else { throw StationError(.notFound, "no image \(id)") }
        return data
    }

    public func accept(id: String) async throws -> QueueItem {
        try state.withLock { s throws(StationError) in
            guard let held = s.review.removeValue(forKey: id) else {
                throw StationError(.notFound, "no capture \(id) is waiting for review", nextStep: "capture again")
            }
            let r = held.item.request
            let item = QueueItem(id: id, caseId: r.caseId, site: r.site, priority: r.priority, state: .queued,
                                 bytesTotal: held.item.bytes, bytesSent: 0, etaSeconds: nil, createdAt: Date())
            s.images[id] = held.image
            // Urgent cases go ahead of routine ones, as the real queue orders them.
            if r.priority == .urgent, let firstRoutine = s.queue.firstIndex(where: { $0.priority == .routine && $0.state != .uploaded && $0.bytesSent == 0 }) {
                s.queue.insert(item, at: firstRoutine)
            } else {
                s.queue.append(item)
            }
            return item
        }
    }

    public func retake(id: String) async throws {
        let removed = state.withLock { $0.review.removeValue(forKey: id) }
        guard removed != nil else { throw StationError(.notFound, "no capture \(id) is waiting for review") }
    }

    public func queue() async throws -> QueueSnapshot {
        state.withLock { s in
            let rate = s.limit > 0 ? min(Double(s.limit), Double(simulatedRate)) : Double(simulatedRate)
            var ahead: Int64 = 0
            let items = s.queue.map { item -> QueueItem in
                var item = item
                if item.state != .uploaded {
                    ahead += item.bytesTotal - item.bytesSent
                    item.etaSeconds = (s.paused || !s.online) ? nil : Double(ahead) / rate
                }
                return item
            }
            return QueueSnapshot(items: items)
        }
    }

    public func link() async -> LinkState {
        state.withLock { s in
            LinkState(online: s.online, rateBytesPerSecond: s.rate, paused: s.paused, limitBytesPerSecond: s.limit,
                      hub: s.hub, uploading: s.uploading)
        }
    }

    public func setUploads(_ control: UploadControl) async throws {
        state.withLock { s in
            switch control {
            case .pause: s.paused = true
            case .resume: s.paused = false
            case .limit(let rate): s.limit = rate
            }
        }
    }

    public func health() async -> StationHealth {
        let missing = camera.isMissing
        return state.withLock { s in
            StationHealth(camera: missing ? .missing : .ok, diskNearlyFull: s.diskNearlyFull)
        }
    }

    public func cameraControls() async throws -> [CameraControl] {
        state.withLock { $0.controls }
    }

    public func setCameraControl(name: String, value: Int) async throws -> CameraControl {
        try state.withLock { s throws(StationError) in
            guard let i = s.controls.firstIndex(where: { $0.name == name }) else {
                throw StationError(.notFound, "no control \(name)")
            }
            s.controls[i].value = value
            return s.controls[i]
        }
    }

    public func previewFrames() -> AsyncStream<Data> {
        camera.frames()
    }

    // MARK: The simulated upload loop

    /// One round of the simulated uplink: moves `elapsed` seconds' worth of
    /// bytes of the first pending item, then reports the round.
    public func uploadRound(elapsed: Double) {
        state.withLock { s in
            let rate = s.limit > 0 ? min(s.limit, simulatedRate) : simulatedRate
            guard !s.paused, s.online, s.hub == .ok,
                  let i = s.queue.firstIndex(where: { $0.state != .uploaded }) else {
                s.uploading = false
                s.rate = 0
                return
            }
            s.uploading = true
            s.rate = Double(rate)
            s.queue[i].state = .uploading
            s.queue[i].bytesSent = min(s.queue[i].bytesTotal, s.queue[i].bytesSent + Int64(Double(rate) * elapsed))
            if s.queue[i].bytesSent == s.queue[i].bytesTotal { s.queue[i].state = .uploaded }
        }
        monitor.beat(.upload)
    }

    /// The services the demo daemon runs: the simulated upload loop, and a
    /// camera keeper that starts and stops the demo camera with the daemon.
    /// A file at `wedgePath` freezes the upload loop, as a hung connection would.
    /// With `camera: false` the demo camera stays off, for measuring the daemon's own idle cost.
    public func services(roundInterval: Duration = .milliseconds(250), wedgePath: String? = nil,
                         camera runCamera: Bool = true) -> [ManagedService] {
        let camera = self.camera
        if !runCamera { monitor.unregister(.capture) }
        return (runCamera ? [ManagedService(name: "camera") { CameraKeeper(camera: camera) }] : []) + [
            ManagedService(name: "upload") { [self] in
                DemoUploadLoop(backend: self, interval: roundInterval, wedgePath: wedgePath)
            },
        ]
    }
}

struct CameraKeeper: Service {
    let camera: DemoCamera
    func run() async throws {
        camera.start()
        try? await gracefulShutdown()
        camera.stop()
    }
}

struct DemoUploadLoop: Service {
    let backend: DemoBackend
    let interval: Duration
    let wedgePath: String?

    func run() async throws {
        let seconds = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: interval)
                if let wedgePath, FileManager.default.fileExists(atPath: wedgePath) { continue }
                backend.uploadRound(elapsed: seconds)
            }
        }
    }
}
