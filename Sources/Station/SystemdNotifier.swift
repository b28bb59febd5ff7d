import Basics
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One field of the sd_notify protocol (see sd_notify(3)).
public enum NotifyField: Sendable, Equatable {
    case ready
    case stopping
    case watchdog
    case status(String)

    var line: String {
        switch self {
        case .ready: "READY=1"
        case .stopping: "STOPPING=1"
        case .watchdog: "WATCHDOG=1"
        // systemd reads the datagram line by line; a newline in a status
        // would start a bogus assignment.
        case .status(let s): "STATUS=" + s.replacingOccurrences(of: "\n", with: " ")
        }
    }

    /// The datagram for a list of fields, one `KEY=value` per line.
    public static func datagram(_ fields: [NotifyField]) -> String {
        fields.map(\.line).joined(separator: "\n")
    }
}

/// Where and how often to tell systemd we are alive, read from the
/// environment systemd gives a `Type=notify` service.
public struct NotifyEnvironment: Sendable, Equatable {
    /// `$NOTIFY_SOCKET`: a filesystem path, or `@name` for an abstract socket.
    public var socketPath: String?
    /// `$WATCHDOG_USEC` as a duration, nil when the watchdog is off for this
    /// process (unset, zero, unparsable, or `$WATCHDOG_PID` names another process).
    public var watchdogInterval: Duration?

    public init(socketPath: String?, watchdogInterval: Duration?) {
        self.socketPath = socketPath
        self.watchdogInterval = watchdogInterval
    }

    public init(environment: [String: String] = ProcessInfo.processInfo.environment,
                pid: Int32 = getpid()) {
        let socket = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        self.socketPath = socket
        var interval: Duration?
        if let usec = environment["WATCHDOG_USEC"].flatMap(UInt64.init), usec > 0 {
            // sd_watchdog_enabled(3): WATCHDOG_PID, when present, must be us;
            // a child that inherited the variables must not pet our watchdog.
            if let pidText = environment["WATCHDOG_PID"] {
                if Int32(pidText) == pid { interval = .microseconds(Int64(clamping: usec)) }
            } else {
                interval = .microseconds(Int64(clamping: usec))
            }
        }
        self.watchdogInterval = interval
    }

    /// How often to ping: half the watchdog interval, as sd_watchdog_enabled(3) advises.
    public var pingInterval: Duration? { watchdogInterval.map { $0 / 2 } }
}

/// Sends sd_notify datagrams to `$NOTIFY_SOCKET` without libsystemd.
///
/// Each `send` opens an `AF_UNIX`/`SOCK_DGRAM` socket with `socket(2)`, sends
/// one datagram with `sendto(2)` and closes it, as `sd_notify` does; that keeps
/// the type free of shared mutable state. The send uses `MSG_DONTWAIT`, so it
/// never blocks the calling task even if systemd's queue were full; a dropped
/// notification then surfaces as an error the caller logs.
public struct SystemdNotifier: Sendable {
    public let environment: NotifyEnvironment

    public init(environment: NotifyEnvironment = NotifyEnvironment()) {
        self.environment = environment
    }

    /// False when not started by systemd (no `$NOTIFY_SOCKET`): sends are no-ops.
    public var isActive: Bool { environment.socketPath != nil }

    /// Sends the fields as one datagram. Returns false when there is no socket to send to.
    @discardableResult
    public func send(_ fields: NotifyField...) throws(StationError) -> Bool {
        try send(fields)
    }

    @discardableResult
    public func send(_ fields: [NotifyField]) throws(StationError) -> Bool {
        guard let path = environment.socketPath else { return false }
        try Self.sendDatagram(NotifyField.datagram(fields), to: path)
        return true
    }

    /// Calls `socket(2)` and `sendto(2)`. A leading `@` in `path` names an
    /// abstract socket: the `@` becomes a NUL byte and the address length
    /// covers exactly the name, without a terminator.
    static func sendDatagram(_ text: String, to path: String) throws(StationError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(path.utf8)
        let abstract = pathBytes.first == UInt8(ascii: "@")
        if abstract { pathBytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        // A filesystem path needs room for its terminating NUL.
        guard pathBytes.count < capacity || (abstract && pathBytes.count <= capacity), pathBytes.count > (abstract ? 1 : 0) else {
            throw StationError(.notifySocket, "NOTIFY_SOCKET \"\(path)\" is not a usable AF_UNIX address",
                               nextStep: "leave NOTIFY_SOCKET to systemd (Type=notify), or unset it")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        let length = socklen_t(pathOffset + pathBytes.count + (abstract ? 0 : 1))

        #if canImport(Darwin)
        let fd = socket(AF_UNIX, SOCK_DGRAM, 0)
        #else
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #endif
        guard fd >= 0 else { throw StationError.system("socket", errno: errno, "sd_notify") }
        defer { close(fd) }

        let payload = Array(text.utf8)
        let target = address
        let sent = payload.withUnsafeBytes { buffer in
            withUnsafePointer(to: target) { ptr in
                ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    Result { () throws(SystemCallError) in
                        try Syscall.call("sendto", path) {
                            sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL), sa, length)
                        }
                    }
                }
            }
        }
        if case let .failure(error) = sent {
            throw StationError.system("sendto", errno: error.errno.rawValue, "sd_notify to \(path)",
                                      nextStep: "check that systemd's notify socket is reachable (NotifyAccess=main)")
        }
    }
}
