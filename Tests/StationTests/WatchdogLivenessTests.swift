import Capture
import Config
import ConfigFile
import Foundation
import ServiceLifecycle
import Spool
import Synchronization
import Testing
@testable import Station

/// A synthetic camera whose `nextFrame` can be made to hang, as a driver
/// call stuck in the kernel does.
final class WedgingCamera: CameraSource, @unchecked Sendable {
    // @unchecked Sendable: the engine thread alone calls the CameraSource
    // methods; the test touches only `wedged`, a Mutex.
    let inner = SyntheticCamera(settings: .init(negotiation: FormatNegotiation(preference: .yuyv, width: 320, height: 240), framesPerSecond: 30))
    let wedged = Mutex(false)
    func open() throws(CaptureError) -> StreamFormat { try inner.open() }
    func nextFrame(timeout: Double, _ body: (CameraFrame) -> Void) throws(CaptureError) {
        while wedged.withLock({ $0 }) { usleep(10_000) }
        try inner.nextFrame(timeout: timeout, body)
    }
    func close() { inner.close() }
    func controls() throws(CaptureError) -> [ControlInfo] { try inner.controls() }
    func setControl(_ name: String, value: Int64) throws(CaptureError) -> ControlInfo { try inner.setControl(name, value: value) }
}

/// The watchdog is fed by the capture loop's progress, not by its existence:
/// an engine thread stuck in a driver call withholds the ping.
@Suite(.serialized, .timeLimit(.minutes(2))) struct WatchdogLivenessTests {
    @Test func aWedgedEngineThreadWithholdsTheWatchdog() async throws {
        let dir = NSTemporaryDirectory() + "telestation-wedge-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try makeSpoolKey(in: dir)
        let config = try StationConfig.parse("""
            [station]
            id = "ps-wedge"
            state_dir = "\(dir)"
            [camera]
            device = "synthetic"
            [spool]
            min_free = "1MiB"
            key_file = "\(key)"
            """)
        let spool = try Spool(config: config)
        let camera = WedgingCamera()
        let engine = CaptureEngine(settings: CaptureEngine.Settings(config.camera), source: { camera })
        let monitor = LoopMonitor(loops: [.capture])
        let backend = LiveBackend(config: config, spool: spool, engine: engine, worker: nil, monitor: monitor)
        let service = LiveBackend.CaptureService(backend: backend, round: .milliseconds(100))
        let task = Task { try await service.run() }
        defer { task.cancel() }

        // Streaming: every ping interval sees fresh rounds.
        try await Task.sleep(for: .milliseconds(600))
        #expect(monitor.tick() == .ping)
        try await Task.sleep(for: .milliseconds(300))
        #expect(monitor.tick() == .ping)

        // Stuck in the driver: the engine still says "streaming", but no round moves.
        camera.wedged.withLock { $0 = true }
        try await Task.sleep(for: .milliseconds(300))
        _ = monitor.tick()  // a beat from before the wedge may still be counted once
        try await Task.sleep(for: .milliseconds(600))
        if case .streaming = engine.phase {} else { Issue.record("the engine should still look streaming: \(engine.phase)") }
        #expect(monitor.tick() == .withhold(stalled: [.capture]))

        // Unstuck: the pings resume.
        camera.wedged.withLock { $0 = false }
        try await Task.sleep(for: .milliseconds(600))
        #expect(monitor.tick() == .ping)
        task.cancel()
        await engine.stop()
    }
}
