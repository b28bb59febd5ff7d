import Foundation

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
