import Basics
import Foundation

/// A hub's answer as the tus logic sees it: status, headers (names lower-cased,
/// the last of repeated headers wins) and a bounded body.
public struct TusResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]

    public init(status: Int, headers: [String: String] = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { $1 })
        self.body = body
    }

    public subscript(header name: String) -> String? { headers[name.lowercased()] }

    /// Builds the header map from raw header lines as libcurl delivers them.
    /// A new status line (after `100 Continue`) starts over, so only the final
    /// response's headers count.
    public static func headers(fromLines lines: [String]) -> [String: String] {
        var result: [String: String] = [:]
        for raw in lines {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.hasPrefix("HTTP/") { result = [:]; continue }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty else { continue }
            result[name] = value
        }
        return result
    }

    /// The first bytes of the body as printable text, for error messages.
    public var bodySnippet: String {
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        let cleaned = String(text.unicodeScalars.map { $0.properties.isWhitespace ? " " : (($0.value >= 0x20 && $0.value < 0x7f) ? Character($0) : "?") })
        return cleaned.trimmingCharacters(in: .whitespaces)
    }
}

/// What `OPTIONS` told us about a hub.
public struct TusCapabilities: Sendable, Equatable {
    public var versions: [String]
    public var extensions: Set<String>
    public var maxSize: Int64?
    public var checksumAlgorithms: [String]
    /// The hub answers `GET <upload URL>/receipt` (`Telestation-Receipts: 1`,
    /// see `Receipt`): uploads wait for its word that the image is filed.
    public var receipts: Bool
    /// Transport encodings the hub turns back into the original file
    /// (`Telestation-Transport: jxl`, see `RecompressedFile`).
    public var transports: Set<String>
    /// The hub's public keys for bundles carried by stick
    /// (`Telestation-Hub-Keys: hpke=…, sign=…`), as the hub sent them.
    public var hubKeys: String?
    /// Where the hub answers replies about cases (`Telestation-Replies: /replies`).
    public var repliesPath: String?

    public init(versions: [String] = ["1.0.0"], extensions: Set<String> = [], maxSize: Int64? = nil,
                checksumAlgorithms: [String] = [], receipts: Bool = false, transports: Set<String> = [], hubKeys: String? = nil,
                repliesPath: String? = nil) {
        self.repliesPath = repliesPath
        self.versions = versions
        self.extensions = extensions
        self.maxSize = maxSize
        self.checksumAlgorithms = checksumAlgorithms
        self.receipts = receipts
        self.transports = transports
        self.hubKeys = hubKeys
    }

    public var supportsCreationWithUpload: Bool { extensions.contains("creation-with-upload") }

    /// The strongest checksum both sides know, or nil when the hub offers none.
    public var checksumAlgorithm: String? {
        guard extensions.contains("checksum") else { return nil }
        for algo in ["sha256", "sha1"] where checksumAlgorithms.contains(algo) { return algo }
        return nil
    }

    private static func list(_ s: String?) -> [String] {
        (s ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
    }

    /// Interprets an `OPTIONS` response.
    public static func parse(_ r: TusResponse) -> Result<TusCapabilities, UplinkError> {
        guard (200..<300).contains(r.status) else {
            return .failure(UplinkError(.configuration, "OPTIONS answered \(r.status), not a tus server's 200/204",
                                        nextStep: "check hub.url; it must be the tus creation endpoint"))
        }
        let versions = list(r[header: "Tus-Version"])
        // A server that omits Tus-Version but answers Tus-Resumable still speaks 1.0.0.
        let effective = versions.isEmpty && r[header: "Tus-Resumable"] != nil ? ["1.0.0"] : versions
        guard effective.contains("1.0.0") else {
            return .failure(UplinkError(.configuration,
                                        "the hub does not offer tus 1.0.0 (Tus-Version: \(r[header: "Tus-Version"] ?? "missing"))",
                                        nextStep: "check hub.url; it must point at a tus 1.0 server"))
        }
        let exts = Set(list(r[header: "Tus-Extension"]))
        guard exts.contains("creation") else {
            return .failure(UplinkError(.configuration, "the hub does not offer the tus creation extension",
                                        nextStep: "enable upload creation on the hub"))
        }
        var maxSize: Int64?
        if let m = r[header: "Tus-Max-Size"] {
            guard let v = TusRules.parseNonNegative(m) else {
                return .failure(UplinkError(.protocolViolation, "Tus-Max-Size is not a number: \(m.prefix(40))"))
            }
            maxSize = v
        }
        return .success(TusCapabilities(versions: effective, extensions: exts, maxSize: maxSize,
                                        checksumAlgorithms: list(r[header: "Tus-Checksum-Algorithm"]),
                                        receipts: r[header: "Telestation-Receipts"]?.trimmingCharacters(in: .whitespaces) == "1",
                                        transports: Set(list(r[header: "Telestation-Transport"])),
                                        hubKeys: r[header: "Telestation-Hub-Keys"].map { String($0.prefix(400)) },
                                        repliesPath: r[header: "Telestation-Replies"].flatMap { $0.hasPrefix("/") && $0.count < 200 ? $0 : nil }))
    }
}

/// The request a response belongs to, with what is needed to judge it.
public enum TusRequestKind: Sendable, Equatable {
    /// `POST` creating an upload of `length` bytes, carrying `sent` bytes of
    /// body (creation-with-upload) or none.
    case create(length: Int64, sent: Int64)
    /// `PATCH` of `sent` bytes starting at `from`.
    case patch(from: Int64, sent: Int64, length: Int64)
    /// `HEAD` for an upload of `length` bytes whose last acknowledged offset was `acknowledged`.
    case head(length: Int64, acknowledged: Int64)
}

/// What to do after a response: the tus rules as a pure function.
public enum TusVerdict: Sendable, Equatable {
    case created(url: String, offset: Int64)
    case offset(Int64)
    /// 409: the offset we sent is not the hub's; ask with HEAD.
    case conflict
    /// 460: the chunk arrived damaged; send it again.
    case checksumMismatch
    /// 404/410 on an upload URL: create a new one.
    case gone
    case hold(String)
    case authFailed(Int, String)
    case retry(retryAfter: Double?, String)
    /// The answer broke the protocol; recover by asking again later.
    case violation(String)
}

public enum TusRules {
    /// Largest Retry-After honoured; anything longer is treated as this.
    public static let maxRetryAfter: Double = 3600

    /// Digits only, no sign, fits in Int64.
    public static func parseNonNegative(_ s: String) -> Int64? {
        let t = s.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty, t.count <= 18, t.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int64(t)
    }

    /// `Retry-After` as delay-seconds or an HTTP date. Nonsense gives nil;
    /// values beyond `maxRetryAfter` are clamped so a broken hub cannot park
    /// a station for days.
    public static func parseRetryAfter(_ s: String?, now: Date = Date()) -> Double? {
        guard let s = s?.trimmingCharacters(in: .whitespaces), !s.isEmpty, s.count < 64 else { return nil }
        if let secs = parseNonNegative(s) { return min(Double(secs), maxRetryAfter) }
        if let date = HTTPDate.parse(s) { return min(max(0, date.timeIntervalSince(now)), maxRetryAfter) }
        return nil
    }

    /// Resolves a `Location` (absolute or relative) against the request URL
    /// and insists it stays on the hub's scheme, host and port: the bearer
    /// token goes with every request to it.
    public static func resolveLocation(_ location: String, requestURL: String, hubURL: String) -> Result<String, UplinkError> {
        guard location.count <= 2048, !location.isEmpty,
              !location.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7f }) else {
            return .failure(UplinkError(.protocolViolation, "the hub sent an unusable Location header"))
        }
        guard let base = URL(string: requestURL), let resolved = URL(string: location, relativeTo: base)?.absoluteURL,
              let hub = URL(string: hubURL) else {
            return .failure(UplinkError(.protocolViolation, "the hub's Location \(location.prefix(100)) is not a URL"))
        }
        func origin(_ u: URL) -> String {
            let scheme = (u.scheme ?? "").lowercased()
            let port = u.port ?? (scheme == "https" ? 443 : 80)
            return "\(scheme)://\((u.host ?? "").lowercased()):\(port)"
        }
        guard origin(resolved) == origin(hub) else {
            return .failure(UplinkError(.configuration,
                                        "the hub sent an upload URL on another server (\(origin(resolved))); the station only sends its token to \(origin(hub))",
                                        nextStep: "set hub.url to the server that stores the uploads, or configure the hub's public base URL"))
        }
        return .success(resolved.absoluteString)
    }

    /// Judges a response to `kind`. `requestURL` is where the request went,
    /// `hubURL` the configured creation endpoint.
    public static func verdict(for kind: TusRequestKind, response r: TusResponse, requestURL: String, hubURL: String,
                               now: Date = Date()) -> TusVerdict {
        let snippet = r.bodySnippet.isEmpty ? "" : ": \(r.bodySnippet)"
        switch r.status {
        case 200..<300:
            return success(kind, r, requestURL: requestURL, hubURL: hubURL)
        case 300..<400:
            // Never followed: the token would go wherever the redirect points.
            let to = r[header: "Location"].map { " to \($0.prefix(200))" } ?? ""
            return .hold("the hub redirected (\(r.status))\(to); set hub.url to the final address")
        case 401, 403:
            return .authFailed(r.status, "the hub refused the station's credentials (\(r.status))\(snippet); check hub.token_file and the client certificate")
        case 404, 410:
            if case .create = kind {
                return .hold("the hub has no upload endpoint at \(hubURL) (\(r.status)); check hub.url")
            }
            return .gone
        case 409:
            if case .create = kind {
                // Some servers (aiohttp-tus) refuse a second upload with the same file name.
                return .hold("the hub refused to create the upload (409 Conflict)\(snippet); it may already hold a file of this name")
            }
            return .conflict
        case 412:
            return .hold("the hub refused the tus version (412)\(snippet); it must support tus 1.0.0")
        case 413:
            return .hold("the hub refuses uploads this large (413)\(snippet)")
        case 415:
            return .hold("the hub refused the content type (415)\(snippet)")
        case 460:
            return .checksumMismatch
        case 408, 423, 429, 500..<600:
            return .retry(retryAfter: parseRetryAfter(r[header: "Retry-After"], now: now), "the hub answered \(r.status)\(snippet)")
        case 400..<500:
            return .hold("the hub refused the request (\(r.status))\(snippet)")
        default:
            return .violation("the hub answered with status \(r.status)")
        }
    }

    private static func success(_ kind: TusRequestKind, _ r: TusResponse, requestURL: String, hubURL: String) -> TusVerdict {
        let rawOffset = r[header: "Upload-Offset"]
        let offset = rawOffset.flatMap(parseNonNegative)
        if rawOffset != nil && offset == nil {
            return .violation("the hub sent an Upload-Offset that is not a number: \(rawOffset!.prefix(40))")
        }
        switch kind {
        case let .create(length, sent):
            guard let location = r[header: "Location"] else {
                return .violation("the hub created an upload (\(r.status)) without a Location header")
            }
            switch resolveLocation(location, requestURL: requestURL, hubURL: hubURL) {
            case let .failure(e): return e.code == .configuration ? .hold(e.message) : .violation(e.message)
            case let .success(url):
                // The hub already holds this item (it came by USB stick): the
                // upload is complete without a byte sent. Believed because the
                // receipt for it is then asked like any other.
                if r[header: "Telestation-Held"] != nil { return .created(url: url, offset: length) }
                // Without creation-with-upload data the hub holds nothing yet.
                let got = offset ?? 0
                guard got <= sent, got <= length else {
                    return .violation("the hub acknowledged \(got) bytes of a creation request that carried \(sent)")
                }
                return .created(url: url, offset: got)
            }
        case let .patch(from, sent, length):
            guard let got = offset else { return .violation("the hub answered PATCH without Upload-Offset") }
            guard got <= from + sent, got <= length else {
                return .violation("the hub acknowledged offset \(got) but only \(from + sent) bytes were sent")
            }
            guard got >= from else {
                return .violation("the hub acknowledged offset \(got), below the \(from) it had already confirmed")
            }
            // Taken as progress, this would resend the same chunk at once, for as long as the hub answers so.
            guard got > from || sent == 0 else {
                return .violation("the hub accepted none of the \(sent) bytes sent at offset \(from)")
            }
            return .offset(got)
        case let .head(length, _):
            guard let got = offset else { return .violation("the hub answered HEAD without Upload-Offset") }
            if let l = r[header: "Upload-Length"], let hubLength = parseNonNegative(l), hubLength != length {
                // The URL belongs to some other upload; starting over is the only safe choice.
                return .gone
            }
            guard got <= length else {
                return .violation("the hub reports offset \(got) for an upload of \(length) bytes")
            }
            // An offset below what was acknowledged means the hub lost bytes
            // (e.g. a crash before they reached its disk); the hub's number
            // is the truth and the source still has the bytes, so resend.
            return .offset(got)
        }
    }
}
