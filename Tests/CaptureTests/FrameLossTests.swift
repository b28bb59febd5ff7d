import Foundation
import Testing
@testable import Capture

/// The synthetic camera, reporting the loss a real driver's buffers would show.
final class LossyCamera: CameraSource {
    private let inner = SyntheticCamera(settings: .init(negotiation: FormatNegotiation(preference: .yuyv, width: 320, height: 240),
                                                        framesPerSecond: 100))
    private var counter = FrameLossCounter()
    private var sequence: UInt32 = 0

    var frameLoss: FrameLoss { counter.loss }

    func open() throws(CaptureError) -> StreamFormat {
        counter.streamStarted()
        return try inner.open()
    }

    /// Every fourth frame skips two sequence numbers; every fifth buffer is damaged.
    func nextFrame(timeout: Double, _ body: (CameraFrame) -> Void) throws(CaptureError) {
        sequence += sequence % 4 == 3 ? 3 : 1
        counter.dequeued(sequence: sequence, damaged: sequence % 5 == 0)
        try inner.nextFrame(timeout: timeout, body)
    }

    func close() { inner.close() }
}

@Suite struct FrameLossTests {
    @Test func gapsInSequenceNumbersAreDroppedFramesAndFlaggedBuffersDamaged() {
        var c = FrameLossCounter()
        c.streamStarted()
        for s: UInt32 in [0, 1, 2] { c.dequeued(sequence: s, damaged: false) }
        #expect(c.loss == FrameLoss(dropped: 0, damaged: 0))
        c.dequeued(sequence: 5, damaged: false)       // 3 and 4 never came
        c.dequeued(sequence: 6, damaged: true)        // delivered, flagged
        c.dequeued(sequence: 7, damaged: false)       // a damaged buffer is no gap
        #expect(c.loss == FrameLoss(dropped: 2, damaged: 1))

        // A reopened stream numbers from 0 again: no loss, and counts add up.
        c.streamStarted()
        c.dequeued(sequence: 0, damaged: false)
        c.dequeued(sequence: 2, damaged: false)
        #expect(c.loss == FrameLoss(dropped: 3, damaged: 1))
        // A count that restarts without a reopen is not a loss either.
        c.dequeued(sequence: 1, damaged: false)
        c.dequeued(sequence: 2, damaged: false)
        #expect(c.loss == FrameLoss(dropped: 3, damaged: 1))

        // Nor is the 32-bit sequence number wrapping around.
        var w = FrameLossCounter()
        for s: UInt32 in [.max - 1, .max, 0, 1] { w.dequeued(sequence: s, damaged: false) }
        #expect(w.loss == FrameLoss())
    }

    @Test func theEngineExposesItsSourcesLoss() async throws {
        let engine = CaptureEngine(settings: .init(warmupFrames: 0)) { LossyCamera() }
        engine.start()
        let deadline = ContinuousClock.now + .seconds(60)
        while engine.frameLoss.dropped < 4 || engine.frameLoss.damaged < 2, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let seen = engine.frameLoss
        await engine.stop()
        #expect(seen.dropped >= 4 && seen.damaged >= 2, "\(seen)")
        // Two numbers skipped every fourth frame: about half as many dropped as delivered.
        #expect(seen.dropped % 2 == 0, "\(seen)")
    }
}
