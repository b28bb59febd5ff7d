import Config
import Foundation

/// Chooses the size of the next PATCH from how the last ones went. Small
/// chunks waste a round trip of idle link each; large ones lose a lot when a
/// bad link drops mid-chunk and the hub discards the cut chunk (it checks
/// chunk checksums). The controller aims a chunk's duration at
/// `targetTime / 2` when a drop loses the chunk, so one drop costs at most one
/// target time, and at `3 × targetTime` when the hub keeps partial chunks,
/// where a drop costs only the bytes in flight.
///
/// - grows ×2 while chunks finish in under half that aim (under 80 % of it
///   when the hub keeps partial chunks), and toward the size the measured
///   rate allows when it can see it;
/// - shrinks to what fits the target after a slow chunk;
/// - shrinks ×½ on a failure when the failure lost the chunk, and to half a
///   cut chunk when the hub turns out to have discarded it;
/// - when a dropped chunk is lost whole, stays near the size that wastes
///   least: each chunk idles the link for a round trip, each drop loses half
///   a chunk on average, and the two balance at √(2 · round trip · rate ·
///   bytes between drops) (Young's checkpoint interval), kept between a
///   sixth and half of the bytes between drops; a sixth before the round
///   trip and rate are known;
/// - always stays within `[minChunk, maxChunk]`.
public struct AdaptiveChunkController: Sendable, Equatable {
    public let minChunk: Int64
    public let maxChunk: Int64
    public let targetTime: Double
    public private(set) var chunkSize: Int64
    /// EWMA of bytes acknowledged between two failures; nil before the first failure.
    public private(set) var failureSpacing: Double?
    public private(set) var bytesSinceFailure: Int64 = 0
    /// Whether the hub keeps the part of a chunk that arrived before a drop
    /// (tus core without checksums). Then a drop costs only the bytes in
    /// flight and the drop-rate cap does not apply.
    public var partialChunksKept = false
    /// The link as last measured (`LinkEstimate`): seconds per round trip
    /// and bytes per second, which size the cap when drops lose chunks.
    public var roundTrip: Double?
    public var rate: Double?

    public init(minChunk: Int64 = 16 * 1024, maxChunk: Int64 = 8 * 1024 * 1024, targetTime: Double = 10,
                initial: Int64 = 64 * 1024) {
        let lo = max(1, minChunk)
        let hi = max(lo, maxChunk)
        self.minChunk = lo
        self.maxChunk = hi
        self.targetTime = max(0.1, targetTime)
        self.chunkSize = Self.clamp(initial, lo, hi)
    }

    public init(uplink: StationConfig.Uplink) {
        self.init(minChunk: uplink.minChunk, maxChunk: uplink.maxChunk, targetTime: uplink.targetChunkTime)
    }

    private static func clamp(_ v: Int64, _ lo: Int64, _ hi: Int64) -> Int64 { min(hi, max(lo, v)) }

    /// The largest chunk the observed drop rate allows.
    public var dropCap: Int64 {
        guard let spacing = failureSpacing, !partialChunksKept else { return maxChunk }
        // A long run without drops shows the link has improved.
        let effective = max(spacing, Double(bytesSinceFailure))
        var cap = effective / 6
        if let roundTrip, let rate, roundTrip > 0, rate > 0 {
            cap = min(effective / 2, max(cap, (2 * roundTrip * rate * effective).squareRoot()))
        }
        return Self.clamp(Int64(cap), minChunk, maxChunk)
    }

    /// A chunk of `bytes` was acknowledged after `seconds`.
    public mutating func chunkSucceeded(bytes: Int64, seconds: Double) {
        guard bytes > 0 else { return }
        bytesSinceFailure += bytes
        defer { chunkSize = min(chunkSize, dropCap) }
        let t = max(seconds, 0.001)
        let rate = Double(bytes) / t
        if t > slowLimit {
            // Slow: aim with the rate just measured.
            chunkSize = Self.clamp(min(chunkSize / 2, Int64(rate * aim)), minChunk, maxChunk)
        } else if t < growthLimit && bytes >= chunkSize / 2 {
            // Fast and the chunk was a real sample (not a short tail).
            chunkSize = Self.clamp(min(chunkSize * 2, max(chunkSize, Int64(rate * aim))), minChunk, maxChunk)
        }
    }

    /// The chunk duration aimed at: half the target where a drop loses the
    /// chunk, so a drop costs at most half a target time; three targets where
    /// the hub keeps what arrived, since a drop then costs only the bytes in
    /// flight whatever the chunk's size, and every chunk costs a round trip
    /// of idle link waiting for the hub's answer.
    public var aim: Double { partialChunksKept ? targetTime * 3 : targetTime / 2 }

    /// A chunk quicker than this grows: half the aim where a drop loses the
    /// chunk, 80 % of it where the hub keeps partial chunks.
    var growthLimit: Double { partialChunksKept ? aim * 0.8 : aim / 2 }

    /// A chunk slower than this shrinks to what fits the aim: the target
    /// (twice the aim) where a drop loses the chunk, the aim where it does not.
    var slowLimit: Double { partialChunksKept ? aim : targetTime }

    /// A drop cut a chunk of `count` bytes and the hub kept none of it
    /// (it discards cut PATCHes): the next chunk is at most half the cut
    /// one, and within the drop-rate cap. Called after `chunkFailed()`, so a
    /// chunk already halved there is not halved twice.
    public mutating func cutChunkLost(count: Int64) {
        chunkSize = min(chunkSize, Self.clamp(count / 2, minChunk, maxChunk), dropCap)
    }

    /// The last chunk failed (reset, stall, 5xx).
    public mutating func chunkFailed() {
        // Failures with no progress in between (an outage, a refused
        // connection) say nothing about how far a chunk gets.
        if bytesSinceFailure > 0 {
            let sample = Double(bytesSinceFailure)
            failureSpacing = failureSpacing.map { $0 + 0.3 * (sample - $0) } ?? sample
            bytesSinceFailure = 0
        }
        // When the hub keeps what arrived, a smaller chunk would not have
        // lost less; it would only add idle round trips.
        guard !partialChunksKept else { return }
        chunkSize = min(Self.clamp(chunkSize / 2, minChunk, maxChunk), dropCap)
    }
}

/// Exponentially weighted moving averages of upload throughput and round-trip
/// time, kept per hub for `status` and `diagnose`.
public struct LinkEstimate: Sendable, Equatable, CustomStringConvertible {
    /// Weight of a new sample.
    public let alpha: Double
    /// Bytes per second, nil before the first sample.
    public private(set) var throughput: Double?
    /// Seconds, nil before the first sample.
    public private(set) var rtt: Double?
    public private(set) var samples: Int = 0

    public init(alpha: Double = 0.3) { self.alpha = min(1, max(0.01, alpha)) }

    public mutating func addThroughput(bytes: Int64, seconds: Double) {
        guard bytes > 0, seconds > 0, seconds.isFinite else { return }
        let v = Double(bytes) / seconds
        throughput = throughput.map { $0 + alpha * (v - $0) } ?? v
        samples += 1
    }

    public mutating func addRTT(_ seconds: Double) {
        guard seconds > 0, seconds.isFinite else { return }
        rtt = rtt.map { $0 + alpha * (seconds - $0) } ?? seconds
    }

    public var description: String {
        let t = throughput.map { String(format: "%.1f kbit/s", $0 * 8 / 1000) } ?? "unknown"
        let r = rtt.map { String(format: "%.0f ms", $0 * 1000) } ?? "unknown"
        return "throughput \(t), rtt \(r)"
    }
}
