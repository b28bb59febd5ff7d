import Foundation
import Logging
import Synchronization

/// What the daemon last told systemd — READY, WATCHDOG, STATUS, STOPPING and
/// when — kept in a small JSON file in the state directory, so
/// `telestation diagnose` can tell a wedged daemon from a healthy one
/// without privileges or the journal.
public struct NotifyRecord: Codable, Sendable, Equatable {
    public var pid: Int32
    public var startedAt: Date
    public var readyAt: Date?
    public var lastWatchdogAt: Date?
    /// `$WATCHDOG_USEC` in seconds; nil when systemd's watchdog is off for the daemon.
    public var watchdogIntervalSeconds: Double?
    public var status: String?
    public var statusAt: Date?
    public var stoppingAt: Date?
    /// Whether `$NOTIFY_SOCKET` was set, i.e. systemd heard all this.
    public var notifySocket: Bool
    public var updatedAt: Date

    public static let fileName = "daemon-notify.json"

    public static func path(stateDir: String) -> String { (stateDir as NSString).appendingPathComponent(fileName) }

    public init(pid: Int32, startedAt: Date, watchdogIntervalSeconds: Double?, notifySocket: Bool) {
        self.pid = pid
        self.startedAt = startedAt
        self.watchdogIntervalSeconds = watchdogIntervalSeconds
        self.notifySocket = notifySocket
        self.updatedAt = startedAt
    }

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
            case .reloading, .watchdogTrigger: break
            }
        }
        updatedAt = date
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.dateEncodingStrategy = .iso8601
        e.keyEncodingStrategy = .convertToSnakeCase
        return e
    }()

    public func encoded() throws -> Data { try Self.encoder.encode(self) }

    public static func decode(_ data: Data) throws -> NotifyRecord {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        d.keyDecodingStrategy = .convertFromSnakeCase
        return try d.decode(NotifyRecord.self, from: data)
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
