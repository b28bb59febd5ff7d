import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Talks to a running daemon's control API, for `telestation capture` and
/// other commands that should go through the daemon (which owns the camera)
/// when it runs, and fall back to doing the work themselves when it does not.
public struct ControlClient: Sendable {
    public let base: URL
    private let session: URLSession
    private let token: String?

    /// - Parameter listen: `kiosk.listen`; a wildcard host is reached on loopback.
    /// - Parameter token: `kiosk.token_file`'s token, sent when set.
    public init(listen: String, token: String? = nil, timeout: TimeInterval = 30) throws(StationError) {
        self.token = token
        var (host, port) = try ControlAddress.bind(listen)
        if host == "0.0.0.0" { host = "127.0.0.1" }
        if host == "::" { host = "::1" }
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        guard let url = URL(string: "http://\(authority)") else {
            throw StationError(.badRequest, "kiosk.listen \"\(listen)\" does not make a URL")
        }
        base = url
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        session = URLSession(configuration: configuration)
    }

    public struct Status: Sendable, Decodable {
        public var status: String
        public var problems: [String]
        public var pendingCount: Int
        public var pendingBytes: Int64

        enum CodingKeys: String, CodingKey {
            case status, problems, pendingCount = "pending_count", pendingBytes = "pending_bytes"
        }
    }

    /// The daemon's status, or nil when nothing answers on the control port.
    public func status() async -> Status? {
        try? await call("GET", "/api/v1/status", as: Status.self)
    }

    /// Captures through the daemon; with `accept`, queues the still at once
    /// (a command line has no review screen) and returns the queue item too.
    public func capture(_ request: CaptureRequest, accept: Bool) async throws(StationError) -> (ReviewItem, QueueItem?) {
        let body = try encode(request)
        let item = try await call("POST", "/api/v1/captures", body: body, as: ReviewItem.self)
        guard accept else { return (item, nil) }
        let queued = try await call("POST", "/api/v1/captures/\(item.id)/accept", as: QueueItem.self)
        return (item, queued)
    }

    public func queue() async throws(StationError) -> QueueSnapshot {
        try await call("GET", "/api/v1/queue", as: QueueSnapshot.self)
    }

    private func encode<T: Encodable>(_ value: T) throws(StationError) -> Data {
        do { return try JSONEncoder().encode(value) } catch {
            throw StationError(.internalFailure, "cannot encode the request: \(error)")
        }
    }

    private struct ErrorBody: Decodable {
        struct Inner: Decodable { var code: String; var message: String; var fix: String? }
        var error: Inner
    }

    private func call<T: Decodable>(_ method: String, _ path: String, body: Data? = nil, as type: T.Type) async throws(StationError) -> T {
        var request = URLRequest(url: base.appendingPathComponent(path))
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await session.data(for: request)
        } catch {
            throw StationError(.unavailable, "the daemon does not answer on \(base.absoluteString): \(error.localizedDescription)",
                               nextStep: "start it with `systemctl start telestation`, or check kiosk.listen")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard (200..<300).contains(status) else {
            if let e = try? decoder.decode(ErrorBody.self, from: data) {
                let code = StationError.Code(rawValue: e.error.code) ?? .internalFailure
                throw StationError(code, e.error.message, nextStep: e.error.fix)
            }
            throw StationError(.internalFailure, "the daemon answered \(method) \(path) with HTTP \(status)")
        }
        do { return try decoder.decode(T.self, from: data) } catch {
            throw StationError(.internalFailure, "unexpected answer to \(method) \(path): \(error)",
                               nextStep: "check that telestation and the daemon are the same version")
        }
    }
}

/// Where the control API listens.
public enum ControlAddress {
    /// `host:port` of `kiosk.listen`; port 0 (an ephemeral port, for tests) is allowed here.
    public static func bind(_ listen: String) throws(StationError) -> (String, Int) {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
              (0...65535).contains(port) else {
            throw StationError(.badRequest, "kiosk.listen \"\(listen)\" is not HOST:PORT", nextStep: "use e.g. 127.0.0.1:8080")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else {
            throw StationError(.badRequest, "kiosk.listen \"\(listen)\" has no host", nextStep: "use e.g. 127.0.0.1:8080")
        }
        return (host, port)
    }
}
