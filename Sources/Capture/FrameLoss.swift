/// Frames the camera lost since the engine started, so a technician (and the
/// VM harness) can see that a fault reached the station even when the engine
/// rode it out without an error.
public struct FrameLoss: Sendable, Equatable {
    /// Frames the driver numbered but never delivered: gaps in the buffers'
    /// sequence numbers (the driver dropped them, or had no free buffer).
    public var dropped: UInt64
    /// Buffers delivered flagged as damaged (V4L2_BUF_FLAG_ERROR) or empty,
    /// which the engine skipped.
    public var damaged: UInt64

    public init(dropped: UInt64 = 0, damaged: UInt64 = 0) {
        self.dropped = dropped
        self.damaged = damaged
    }
}

/// Counts frame loss from every dequeued buffer, good or damaged, in order.
/// Pure, so the counting is tested without a camera.
public struct FrameLossCounter: Sendable {
    public private(set) var loss = FrameLoss()
    /// The previous buffer's sequence number in this stream.
    private var last: UInt32?

    public init() {}

    /// A new stream numbers its frames from scratch.
    public mutating func streamStarted() { last = nil }

    public mutating func dequeued(sequence: UInt32, damaged: Bool) {
        // A number at or below the last one is a restarted (or wrapped)
        // count, not a loss: start counting from it.
        if let last, sequence > last {
            loss.dropped += UInt64(sequence - last - 1)
        }
        last = sequence
        if damaged { loss.damaged += 1 }
    }
}
