import Foundation
import Logging

/// A swift-log handler writing one line per record to stderr with the
/// `<N>` syslog priority prefix that journald turns into a log level.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let prefixPriority: Bool

    public init(label: String, level: Logger.Level, prefixPriority: Bool = true) {
        self.label = label
        self.logLevel = level
        self.prefixPriority = prefixPriority
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    public func log(event: LogEvent) {
        var line = prefixPriority ? "<\(Self.priority(event.level))>" : ""
        line += "\(label): \(event.message)"
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for (k, v) in merged.sorted(by: { $0.key < $1.key }) { line += " \(k)=\(v)" }
        line = line.replacingOccurrences(of: "\n", with: " ⏎ ")
        line += "\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// Sets up swift-log once for a process. Priority prefixes are used when
    /// stderr goes to journald (`JOURNAL_STREAM`) or is not a terminal.
    public static func bootstrap(level: Logger.Level) {
        let env = ProcessInfo.processInfo.environment
        let prefix = env["JOURNAL_STREAM"] != nil || isatty(STDERR_FILENO) == 0
        LoggingSystem.bootstrap { label in JournalLogHandler(label: label, level: level, prefixPriority: prefix) }
    }
}
