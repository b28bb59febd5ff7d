/// A loop whose progress keeps the systemd watchdog fed.
public struct LoopName: Hashable, Sendable, Comparable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public var description: String { rawValue }
    public static func < (a: LoopName, b: LoopName) -> Bool { a.rawValue < b.rawValue }

    public static let capture: LoopName = "capture"
    public static let upload: LoopName = "upload"
}

/// Decides when `WATCHDOG=1` may be sent.
///
/// A blind timer would keep pinging while the upload loop sits wedged in a
/// dead TCP connection, which is exactly what the watchdog is there to catch.
/// So the daemon pings only when every registered loop has reported at least
/// one round (a heartbeat) since the previous ping. Loops must report a round
/// even when idle — an upload loop with nothing to send still wakes up, looks
/// at the queue and reports — at least once per ping interval (half of
/// `WatchdogSec=`). A loop that misses one ping interval withholds one ping;
/// systemd acts only after the whole `WatchdogSec=` passes without one.
public struct WatchdogPolicy: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        case ping
        /// Do not ping; these loops have not reported since the last ping.
        case withhold(stalled: [LoopName])
    }

    private var fresh: [LoopName: Bool] = [:]

    public init(loops: [LoopName] = []) {
        for loop in loops { fresh[loop] = false }
    }

    public var loops: [LoopName] { fresh.keys.sorted() }

    /// Adds a loop. It must report a round before the next ping can go out.
    public mutating func register(_ loop: LoopName) {
        if fresh[loop] == nil { fresh[loop] = false }
    }

    /// Removes a loop that has finished for good (for example during shutdown).
    public mutating func unregister(_ loop: LoopName) {
        fresh[loop] = nil
    }

    /// Records that `loop` completed a round. Unknown loops are registered.
    public mutating func heartbeat(_ loop: LoopName) {
        fresh[loop] = true
    }

    /// Called once per ping interval. Returns what to do; a ping resets
    /// every loop so the next ping needs fresh rounds from all of them.
    public mutating func tick() -> Action {
        let stalled = fresh.filter { !$0.value }.map(\.key).sorted()
        guard stalled.isEmpty else { return .withhold(stalled: stalled) }
        for key in fresh.keys { fresh[key] = false }
        return .ping
    }
}
