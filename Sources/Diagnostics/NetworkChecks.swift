import Config
import Foundation

/// Resolves the hub's name and opens a TCP connection to it, timing both.
public struct NetworkCheck: DiagnosticCheck {
    public let name = "network"
    public var timeout: Double { 20 }
    public init() {}

    public func run(_ ctx: DiagnosticContext) -> [CheckResult] {
        guard let config = ctx.config else { return skip("configuration does not load") }
        guard let url = config.hub.url, let parts = URLComponents(string: url), let host = parts.host else {
            return skip("hub.url is not set")
        }
        let port = parts.port ?? (parts.scheme == "https" ? 443 : 80)
        var results: [CheckResult] = []

        let proxy = Self.proxy(for: parts.scheme ?? "https", host: host, environment: ctx.environment)
        if let proxy {
            results.append(CheckResult(check: "network.proxy", status: .pass, finding: "connections to \(host) go through proxy \(Self.redactUserInfo(proxy))"))
        }

        let start = Date()
        let resolved: [String]
        switch Self.resolve(host, port: port) {
        case .failure(let message):
            results.append(CheckResult(check: "network.dns", status: .fail, finding: "cannot resolve \(host): \(message)",
                                       nextStep: proxy == nil
                                           ? "check the uplink (router, SIM credit, antenna) and the DNS server in /etc/resolv.conf; try `getent hosts \(host)`"
                                           : "the proxy resolves names: check that it is reachable"))
            return results
        case .success(let addresses):
            resolved = addresses
            let ms = Int(Date().timeIntervalSince(start) * 1000)
            results.append(CheckResult(check: "network.dns", status: .pass, finding: "\(host) resolves to \(addresses.prefix(3).joined(separator: ", ")) in \(ms) ms",
                                       details: ["dns_ms": "\(ms)"]))
        }
        if proxy != nil { return results }

        let connectStart = Date()
        switch Self.connect(host: host, port: port, timeout: 10) {
        case .success(let address):
            let ms = Int(Date().timeIntervalSince(connectStart) * 1000)
            let slow = ms > 3000
            results.append(CheckResult(check: "network.tcp", status: slow ? .warn : .pass,
                                       finding: "TCP connect to \(address) port \(port) took \(ms) ms",
                                       nextStep: "the link is very slow or congested; uploads will work but slowly", details: ["connect_ms": "\(ms)"]))
        case .failure(let message):
            results.append(CheckResult(check: "network.tcp", status: .fail,
                                       finding: "cannot connect to \(host) (\(resolved.first ?? "?")) port \(port): \(message)",
                                       nextStep: "the hub or the path to it is down: check the uplink, a firewall on the way, and whether the hub is up (call the hub's operators)"))
        }
        return results
    }

    /// The proxy libcurl would use, from the usual environment variables.
    static func proxy(for scheme: String, host: String, environment env: [String: String]) -> String? {
        let noProxy = (env["no_proxy"] ?? env["NO_PROXY"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if noProxy.contains("*") || noProxy.contains(where: { !$0.isEmpty && (host == $0 || host.hasSuffix("." + $0.trimmingCharacters(in: CharacterSet(charactersIn: ".")))) }) {
            return nil
        }
        let key = scheme == "https" ? "https_proxy" : "http_proxy"
        let value = env[key] ?? env[key.uppercased()] ?? env["all_proxy"] ?? env["ALL_PROXY"]
        return value?.isEmpty == false ? value : nil
    }

    static func redactUserInfo(_ proxy: String) -> String {
        guard var c = URLComponents(string: proxy), c.user != nil || c.password != nil else { return proxy }
        c.user = "***"
        c.password = nil
        return c.string ?? proxy
    }

    enum Outcome<T> { case success(T), failure(String) }

    /// getaddrinfo(3).
    static func resolve(_ host: String, port: Int) -> Outcome<[String]> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else { return .failure(String(cString: gai_strerror(rc))) }
        defer { freeaddrinfo(list) }
        var out: [String] = []
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let ai = p {
            var buf = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(ai.pointee.ai_addr, ai.pointee.ai_addrlen, &buf, socklen_t(buf.count), nil, 0, NI_NUMERICHOST) == 0 {
                let s = numericHost(buf)
                if !out.contains(s) { out.append(s) }
            }
            p = ai.pointee.ai_next
        }
        return .success(out)
    }

    /// A non-blocking connect(2) bounded by `timeout`, trying each address.
    static func connect(host: String, port: Int, timeout: Double) -> Outcome<String> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0 else { return .failure("name does not resolve") }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var p = list
        while let ai = p {
            p = ai.pointee.ai_next
            let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { lastError = String(cString: strerror(errno)); continue }
            defer { close(fd) }
            var buf = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            getnameinfo(ai.pointee.ai_addr, ai.pointee.ai_addrlen, &buf, socklen_t(buf.count), nil, 0, NI_NUMERICHOST)
            let address = numericHost(buf)
            if Glibc.connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 { return .success(address) }
            guard errno == EINPROGRESS else { lastError = String(cString: strerror(errno)); continue }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&pfd, 1, Int32(timeout * 1000))
            if ready == 0 { lastError = "no answer within \(Int(timeout)) s"; continue }
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if err == 0 { return .success(address) }
            lastError = String(cString: strerror(err))
        }
        return .failure(lastError)
    }
}

/// The systemd unit's state, its restarts, the daemon's last heartbeat and
/// recent errors from its log.
public struct ServiceCheck: DiagnosticCheck {
    public let name = "service"
    public var unit = "telestation.service"
    /// Runs a command and returns its output; tests give canned `systemctl` answers.
    public var command: @Sendable ([String]) -> String? = { ServiceCheck.capture($0) }
    public init() {}

    public func run(_ ctx: DiagnosticContext) -> [CheckResult] {
        guard FileManager.default.fileExists(atPath: ctx.roots.path(\.run, "systemd/system")) else {
            return skip("systemd is not running on this machine") + [heartbeat(ctx, unit: nil)].compactMap { $0 }
        }
        guard let show = command(["systemctl", "show", unit, "--property=LoadState,ActiveState,SubState,NRestarts,Result,ActiveEnterTimestamp,MainPID"]) else {
            return skip("systemctl is not available") + [heartbeat(ctx, unit: nil)].compactMap { $0 }
        }
        var props: [String: String] = [:]
        for line in show.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1).map(String.init)
            if kv.count == 2 { props[kv[0]] = kv[1] }
        }
        var results: [CheckResult] = []
        let active = props["ActiveState"] ?? "unknown"
        let restarts = Int(props["NRestarts"] ?? "0") ?? 0
        let details = ["active_state": active, "sub_state": props["SubState"] ?? "", "restarts": "\(restarts)"]
        if props["LoadState"] == "not-found" {
            results.append(result(.fail, "\(unit) is not installed", next: "install the package, or run `make install` and `systemctl daemon-reload`"))
        } else if active != "active" {
            results.append(result(.fail, "\(unit) is \(active) (\(props["SubState"] ?? "?"), result \(props["Result"] ?? "?"))",
                                  next: "see why: journalctl -u \(unit) -n 50; then systemctl restart \(unit)", details: details))
        } else if restarts > 0 {
            results.append(result(.warn, "\(unit) is running but systemd restarted it \(restarts) time(s)",
                                  next: "read the errors before each restart: journalctl -u \(unit) -p warning -n 50", details: details))
        } else {
            results.append(result(.pass, "\(unit) is running since \(props["ActiveEnterTimestamp"] ?? "?")", details: details))
        }
        if let beat = heartbeat(ctx, unit: UnitState(active: active == "active", mainPID: props["MainPID"].flatMap { Int32($0) })) {
            results.append(beat)
        }
        if let errors = command(["journalctl", "-u", unit, "-p", "err", "-n", "5", "--no-pager", "-o", "cat", "--since", "-24h"]),
           !errors.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, !errors.contains("-- No entries --") {
            let last = errors.split(separator: "\n").last.map(String.init) ?? ""
            results.append(CheckResult(check: "service.log", status: .warn, finding: "errors in the last 24 h, latest: \(last.prefix(160))",
                                       nextStep: "journalctl -u \(unit) -p err --since -24h"))
        }
        return results
    }

    static func capture(_ argv: [String]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = argv
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return p.terminationStatus == 0 || !data.isEmpty ? String(decoding: data, as: UTF8.self) : nil
    }
}

/// The text of a NUL-terminated buffer filled by getnameinfo(3).
func numericHost(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
