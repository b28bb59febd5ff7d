import Synchronization

/// Where the capture and upload loops report their rounds, read by the
/// watchdog notifier. Cheap enough to call every round.
public final class LoopMonitor: Sendable {
    private let policy: Mutex<WatchdogPolicy>

    public init(loops: [LoopName] = [.capture, .upload]) {
        policy = Mutex(WatchdogPolicy(loops: loops))
    }

    /// Records one completed round of `loop`.
    public func beat(_ loop: LoopName) {
        policy.withLock { $0.heartbeat(loop) }
    }

    public func register(_ loop: LoopName) {
        policy.withLock { $0.register(loop) }
    }

    public func unregister(_ loop: LoopName) {
        policy.withLock { $0.unregister(loop) }
    }

    /// One ping-interval decision; see `WatchdogPolicy.tick()`.
    public func tick() -> WatchdogPolicy.Action {
        policy.withLock { $0.tick() }
    }
}

/// READY=1 goes out once, when every condition has been met.
public struct ReadinessGate: Sendable, Equatable {
    public enum Condition: String, Sendable, CaseIterable {
        case queueRecovered, portBound
    }

    private var met: Set<String> = []
    private var announced = false

    public init() {}

    /// Records a condition; returns true exactly once, when the last one is met.
    public mutating func mark(_ condition: Condition) -> Bool {
        met.insert(condition.rawValue)
        guard !announced, met.count == Condition.allCases.count else { return false }
        announced = true
        return true
    }

    public var isReady: Bool { announced }
}

/// Lets long-running responses (the MJPEG preview) end when the daemon
/// shuts down instead of holding the HTTP server open until systemd kills it.
public final class ShutdownSignal: Sendable {
    private struct State {
        var tripped = false
        var nextID: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }
    private let state = Mutex(State())

    public init() {}

    public func trip() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.tripped = true
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume() }
    }

    public var isTripped: Bool { state.withLock { $0.tripped } }

    /// Returns once `trip()` has been called or the calling task is cancelled.
    public func wait() async {
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.tripped || Task.isCancelled { return true }
                    s.waiters[id] = c
                    return false
                }
                if resumeNow { c.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}
