import Foundation
import Testing
@testable import Station

@Suite struct StatusLineTests {
    @Test func uploadingWithACameraThatWorks() {
        let s = StatusLine(pendingCount: 3, pendingBytes: 4_100_000, link: .uploading(bytesPerSecond: 11_000), camera: .ok)
        #expect(s.render() == "3 pending (4.1 MB), uploading at 11.0 KB/s, camera ok")
        #expect(s.problems.isEmpty)
    }

    @Test func problemsComeFirst() {
        let s = StatusLine(pendingCount: 2, pendingBytes: 900, link: .offline, camera: .missing,
                           hubRejectedToken: true, diskNearlyFull: true)
        #expect(s.render() == "disk nearly full, hub rejected token, camera missing, 2 pending (900 B), offline")
        #expect(s.problems == ["disk nearly full", "hub rejected token", "camera missing"])
    }

    @Test func idleStates() {
        #expect(StatusLine().render() == "queue empty, camera ok")
        #expect(StatusLine(pendingCount: 1, pendingBytes: 2_000_000, link: .idle).render()
                == "1 pending (2.0 MB), waiting to upload, camera ok")
        #expect(StatusLine(pendingCount: 1, pendingBytes: 10, link: .paused, camera: .starting).render()
                == "1 pending (10 B), uploads paused, camera starting")
        #expect(StatusLine(link: .disabled).render() == "queue empty, uploads off (no hub configured), camera ok")
    }

    @Test func aQueueThatCannotBeReadIsNotEmpty() {
        let s = StatusLine(queueFault: true)
        #expect(s.render() == "queue error, camera ok")
        #expect(s.problems == ["queue error"])
        #expect(!s.render().contains("queue empty"))
    }
}

/// The status line a backend builds: a failing queue read shows as a problem.
@Suite struct BackendStatusLineTests {
    struct FailingQueue: StationBackend {
        func recover() async throws {}
        func capture(_ request: CaptureRequest) async throws -> ReviewItem { throw StationError(.unavailable, "no") }
        func image(id: String, kind: ImageKind) async throws -> Data { Data() }
        func accept(id: String) async throws -> QueueItem { throw StationError(.unavailable, "no") }
        func retake(id: String) async throws {}
        func queue() async throws -> QueueSnapshot { throw StationError(.internalFailure, "database is locked") }
        func link() async -> LinkState { LinkState(online: true, rateBytesPerSecond: 0, paused: false, limitBytesPerSecond: 0, hub: .ok, uploading: false) }
        func setUploads(_ control: UploadControl) async throws {}
        func health() async -> StationHealth { StationHealth(camera: .ok, diskNearlyFull: false) }
        func cameraControls() async throws -> [CameraControl] { [] }
        func setCameraControl(name: String, value: Int) async throws -> CameraControl { throw StationError(.unavailable, "no") }
        func previewFrames() -> AsyncStream<Data> { AsyncStream { $0.finish() } }
    }

    @Test func aFailingQueueReadIsAProblemNotAnEmptyQueue() async {
        let line = await FailingQueue().statusLine()
        #expect(line.queueFault)
        #expect(line.problems.first == "queue error")
    }
}
