import Foundation

/// Exponential backoff with full jitter: the n-th consecutive failure waits
/// `rand(0, min(cap, base·2^n))`. Spreading retries uniformly over the window
/// keeps a hub from being hit by every station at once when a shared link
/// comes back. The counter resets as soon as the hub acknowledges new bytes,
/// so a link that drops every few minutes but makes progress never climbs
/// to the long waits.
public struct Backoff: Sendable, Equatable {
    public var base: Double
    public var cap: Double
    /// Consecutive failures since the last progress.
    public private(set) var failures: Int = 0
    /// The highest offset seen; progress past it resets the counter.
    public private(set) var bestOffset: Int64 = -1

    public init(base: Double = 1, cap: Double = 600) {
        self.base = max(0.001, base)
        self.cap = max(self.base, cap)
    }

    /// The upper bound of the next wait without jitter.
    public var window: Double {
        // 2^n overflows Double only for n > 1023; the cap is reached long before.
        min(cap, base * pow(2, Double(min(failures, 60))))
    }

    /// Records a failure and returns how long to wait. `retryAfter` (from the
    /// hub) is honoured as a lower bound but never beyond `cap`.
    /// - Parameter random: a number in [0, 1); injectable for tests.
    public mutating func nextDelay(retryAfter: Double? = nil, random: Double = Double.random(in: 0..<1)) -> Double {
        let jittered = window * min(max(random, 0), 1)
        failures += 1
        if let retryAfter, retryAfter.isFinite, retryAfter > 0 {
            return min(cap, max(jittered, retryAfter))
        }
        return jittered
    }

    /// Reports the hub's acknowledged offset; progress resets the counter.
    public mutating func observe(offset: Int64) {
        if offset > bestOffset {
            if bestOffset >= 0 { failures = 0 }
            bestOffset = offset
        }
    }

    /// Forgets everything, e.g. after a completed upload.
    public mutating func reset() {
        failures = 0
        bestOffset = -1
    }
}
