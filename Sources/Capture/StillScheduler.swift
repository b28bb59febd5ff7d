/// What the capture thread does with a frame it just dequeued.
public enum FrameAction: Sendable, Equatable {
    /// Nothing: give the buffer back.
    case discard
    /// Turn it into the still that pending requests wait for.
    case takeStill
    /// Make a small live-view image of it.
    case livePreview
}

/// Decides, frame by frame, when a still is taken and when a live preview
/// is due. Pure, so the warm-up and freshness rules are tested without a camera.
public struct StillScheduler: Sendable, Equatable {
    /// Frames discarded after the stream (re)starts so auto-exposure and
    /// white balance settle.
    public let warmupFrames: Int
    /// Seconds between live previews; nil: no live view.
    public let livePreviewInterval: Double?
    public private(set) var framesSinceStart = 0
    public private(set) var lastPreviewAt: Double?

    public init(warmupFrames: Int, livePreviewInterval: Double? = nil) {
        self.warmupFrames = max(0, warmupFrames)
        self.livePreviewInterval = livePreviewInterval
    }

    /// `timestamp`: when the frame was captured; `oldestRequest`: when the
    /// oldest still still waiting was asked for (nil: none is waiting).
    /// A still is never taken from a frame captured before it was asked
    /// for (the patient may have moved), nor during warm-up.
    public mutating func frameArrived(timestamp: Double, oldestRequest: Double?) -> FrameAction {
        framesSinceStart += 1
        if let oldestRequest, framesSinceStart > warmupFrames, timestamp >= oldestRequest {
            return .takeStill
        }
        if let interval = livePreviewInterval, lastPreviewAt.map({ timestamp - $0 >= interval }) ?? true {
            lastPreviewAt = timestamp
            return .livePreview
        }
        return .discard
    }
}

/// Delay before reopening a camera that failed: quick at first (a brief USB
/// glitch), then backing off so a missing camera does not spin the CPU.
public struct ReopenBackoff: Sendable, Equatable {
    public var initial: Double
    public var maximum: Double
    public private(set) var attempts = 0

    public init(initial: Double = 0.25, maximum: Double = 5) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The delay before the next attempt, doubling each time up to `maximum`.
    public mutating func next() -> Double {
        defer { attempts += 1 }
        return min(maximum, initial * Double(1 << min(attempts, 30)))
    }

    public mutating func reset() { attempts = 0 }
}
