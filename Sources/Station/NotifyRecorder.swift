import Foundation
import Logging
import StationAPI
import Synchronization

extension NotifyRecord {
    /// Takes in the fields of one datagram sent at `date`.
    public mutating func note(_ fields: [NotifyField], at date: Date) {
        for field in fields {
            switch field {
            case .ready: readyAt = date
            case .watchdog: lastWatchdogAt = date
            case .stopping: stoppingAt = date
            case .status(let s):
                status = s
                statusAt = date
            }
        }
        updatedAt = date
    }
}

/// Keeps the daemon's `NotifyRecord` file current: written whole to a
/// temporary file and renamed over the old one, so a reader never sees half
/// a record; READY and STOPPING at once, everything else at most every
/// `minInterval` seconds so an SD card is not worn by status updates.
public final class NotifyRecorder: Sendable {
    private struct State {
        var record: NotifyRecord
        var lastWrite: Date?
        var dirty = true
        var reportedFailure = false
    }
    public let path: String
    public let minInterval: Double
    private let state: Mutex<State>
    private let logger: Logger

    public init(path: String, environment: NotifyEnvironment, minInterval: Double = 5, logger: Logger) {
        self.path = path
        self.minInterval = minInterval
        self.logger = logger
        let interval = environment.watchdogInterval.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
        state = Mutex(State(record: NotifyRecord(pid: getpid(), startedAt: Date(), watchdogIntervalSeconds: interval,
                                                 notifySocket: environment.socketPath != nil)))
    }

    public var record: NotifyRecord { state.withLock { $0.record } }

    /// Records fields the daemon just sent; READY and STOPPING are written at once.
    public func note(_ fields: [NotifyField]) {
        state.withLock { s in
            s.record.note(fields, at: Date())
            s.dirty = true
        }
        flush(force: fields.contains(.ready) || fields.contains(.stopping))
    }

    /// Writes the record if it changed and the last write is `minInterval` old.
    public func flush(force: Bool = false) {
        let now = Date()
        let data = state.withLock { s -> Data? in
            guard s.dirty, force || s.lastWrite.map({ now.timeIntervalSince($0) >= minInterval }) ?? true else { return nil }
            s.dirty = false
            s.lastWrite = now
            return try? s.record.encoded()
        }
        guard let data else { return }
        let temp = path + ".tmp"
        do {
            try data.write(to: URL(fileURLWithPath: temp))
            guard rename(temp, path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        } catch {
            let first = state.withLock { s -> Bool in
                defer { s.reportedFailure = true }
                return !s.reportedFailure
            }
            if first { logger.warning("cannot write \(path) for diagnose: \(error)") }
        }
    }
}
