import CCurl
import Foundation
import Testing
import Uplink

/// The tus response rules against a hostile hub. One input is a request
/// and the raw response to it:
///
///     patch 1000 500 4000            (create L S | patch FROM SENT L | head L ACKED)
///     https://hub.example.org/files/ (hub.url)
///     https://hub.example.org/files/abc (where the request went)
///     HTTP/1.1 204 No Content
///     Upload-Offset: 1500
///
///     body
///
/// Properties beyond "no crash": an accepted offset lies within what was
/// acknowledged and sent; a created upload URL is on the hub's origin as
/// libcurl itself parses it (so the token never goes elsewhere); a redirect
/// is never followed; a PATCH answer that acknowledges none of a non-empty
/// chunk is not taken as progress (the client would resend at once, a loop
/// without backoff); Retry-After is within [0, maxRetryAfter].
@Suite(.serialized) struct TusResponseFuzz {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    struct Exchange {
        var kind: TusRequestKind?
        var hubURL: String
        var requestURL: String
        var response: TusResponse
    }

    static func decode(_ input: [UInt8]) -> Exchange {
        let text = String(decoding: input, as: UTF8.self)
        let (head, body) = text.range(of: "\r\n\r\n").map { (String(text[..<$0.lowerBound]), Array(text[$0.upperBound...].utf8)) } ?? (text, [])
        var lines = head.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        while lines.count < 3 { lines.append("") }
        let words = lines[0].split(separator: " ")
        // The client's own numbers are file sizes: up to 1 TiB here.
        func n(_ i: Int) -> Int64 { i < words.count ? min(max(0, Int64(words[i]) ?? 0), 1 << 40) : 0 }
        let kind: TusRequestKind? = switch words.first.map(String.init) ?? "" {
        case "create": .create(length: n(1), sent: n(2))
        case "patch": .patch(from: n(1), sent: n(2), length: n(3))
        case "head": .head(length: n(1), acknowledged: n(2))
        default: nil  // OPTIONS
        }
        let headerLines = Array(lines.dropFirst(3))
        // libcurl reports the final status line's code.
        let status = headerLines.last(where: { $0.hasPrefix("HTTP/") }).flatMap { line in
            line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        } ?? 0
        return Exchange(kind: kind, hubURL: lines[1].trimmingCharacters(in: .whitespacesAndNewlines),
                        requestURL: lines[2].trimmingCharacters(in: .whitespacesAndNewlines),
                        response: TusResponse(status: status, headers: TusResponse.headers(fromLines: headerLines), body: body))
    }

    /// Scheme, host and port as libcurl would connect, or nil when libcurl refuses the URL.
    static func curlOrigin(_ url: String) -> String? {
        guard let h = curl_url() else { return nil }
        defer { curl_url_cleanup(h) }
        guard curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK else { return nil }
        func part(_ p: CURLUPart, _ flags: UInt32 = 0) -> String? {
            var out: UnsafeMutablePointer<CChar>?
            guard curl_url_get(h, p, &out, flags) == CURLUE_OK, let out else { return nil }
            defer { curl_free(out) }
            return String(cString: out)
        }
        guard let scheme = part(CURLUPART_SCHEME), let host = part(CURLUPART_HOST) else { return nil }
        let port = part(CURLUPART_PORT, 1 /* CURLU_DEFAULT_PORT */) ?? "?"
        return "\(scheme.lowercased())://\(host.lowercased()):\(port)"
    }

    /// What the config (URLComponents) and TusClient (URL) both require of hub.url.
    static func stationAccepts(_ hub: String) -> Bool {
        guard let u = URL(string: hub), let scheme = u.scheme?.lowercased(), ["http", "https"].contains(scheme), u.host != nil,
              let c = URLComponents(string: hub), let host = c.host, !host.isEmpty else { return false }
        return true
    }

    static func check(_ input: [UInt8]) throws -> String {
        let x = decode(input)
        let r = x.response
        func violation(_ s: String) -> Fuzz.Violation { Fuzz.Violation("status \(r.status): \(s)") }

        if let ra = TusRules.parseRetryAfter(r[header: "Retry-After"], now: now), !(0...TusRules.maxRetryAfter).contains(ra) {
            throw violation("Retry-After \(ra) s is outside [0, \(TusRules.maxRetryAfter)]")
        }
        let snippet = r.bodySnippet
        guard snippet.count <= 200, snippet.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7f }) else {
            throw violation("the body snippet is not short printable text: \(snippet.debugDescription.prefix(100))")
        }

        guard let kind = x.kind else {
            switch TusCapabilities.parse(r) {
            case let .success(caps):
                guard (200..<300).contains(r.status), caps.versions.contains("1.0.0"), caps.extensions.contains("creation"),
                      (caps.maxSize ?? 0) >= 0 else { throw violation("accepted capabilities \(caps)") }
                return "options accepted"
            case let .failure(e):
                guard !e.message.isEmpty else { throw violation("an empty OPTIONS error") }
                return "options: " + outcomeLabel(e.message, limit: 30)
            }
        }

        let verdict = TusRules.verdict(for: kind, response: r, requestURL: x.requestURL, hubURL: x.hubURL, now: now)
        let twoXX = (200..<300).contains(r.status)
        if (300..<400).contains(r.status) {
            guard case .hold = verdict else { throw violation("a redirect was not held: \(verdict)") }
        }
        switch verdict {
        case let .created(url, offset):
            guard twoXX, case let .create(length, sent) = kind else { throw violation("created from \(kind)") }
            guard offset >= 0, offset <= sent, offset <= length else {
                throw violation("created with offset \(offset) after sending \(sent) of \(length)")
            }
            // For a hub.url the station accepts (and libcurl can reach), the token may go to that origin only.
            if stationAccepts(x.hubURL), let to = curlOrigin(url), let hub = curlOrigin(x.hubURL), to != hub {
                throw violation("upload URL \(url) is on \(to), the hub on \(hub)")
            }
            return "created"
        case let .offset(o):
            guard twoXX else { throw violation("offset \(o) from a non-2xx answer") }
            switch kind {
            case .create: throw violation("an offset verdict for a creation")
            case let .patch(from, sent, length):
                guard o >= from, o <= from + sent, o <= length else {
                    throw violation("PATCH of \(sent) bytes from \(from) (length \(length)) accepted offset \(o)")
                }
                guard sent == 0 || o > from else {
                    throw violation("PATCH of \(sent) bytes from \(from) accepted offset \(o): no progress, the client would resend at once")
                }
            case let .head(length, _):
                guard o >= 0, o <= length else { throw violation("HEAD for \(length) bytes accepted offset \(o)") }
            }
            return "offset"
        case let .retry(after, message):
            guard [408, 423, 429].contains(r.status) || (500..<600).contains(r.status) else { throw violation("retry on \(r.status)") }
            if let after, !(0...TusRules.maxRetryAfter).contains(after) { throw violation("retry after \(after) s") }
            return "retry " + outcomeLabel(message, limit: 24)
        case .gone:
            if case .create = kind { throw violation("gone for a creation") }
            return "gone"
        case .conflict:
            if case .create = kind { throw violation("conflict verdict for a creation") }
            return "conflict"
        case .checksumMismatch: return "checksum"
        case let .hold(m): return "hold " + outcomeLabel(m, limit: 30)
        case let .authFailed(s, _): return "auth \(s)"
        case let .violation(m): return "violation " + outcomeLabel(m, limit: 30)
        }
    }

    static let hubs = ["https://hub.example.org/files/", "http://127.0.0.1:1080/files/", "https://[::1]:8443/tus/", "https://Hub.Example.org:443/files"]

    static let seeds: [[UInt8]] = {
        func ex(_ kind: String, hub: Int, request: String? = nil, _ response: String, body: String = "") -> [UInt8] {
            Array("\(kind)\n\(hubs[hub])\n\(request ?? hubs[hub] + "abc")\n\(response)\r\n\r\n\(body)".utf8)
        }
        return [
            ex("create 4000 0", hub: 0, request: hubs[0], "HTTP/1.1 201 Created\nLocation: https://hub.example.org/files/abc\nTus-Resumable: 1.0.0"),
            ex("create 4000 1000", hub: 1, request: hubs[1], "HTTP/1.1 201 Created\nLocation: /files/abc\nUpload-Offset: 1000"),
            ex("create 4000 0", hub: 2, request: hubs[2], "HTTP/1.1 100 Continue\n\nHTTP/1.1 201 Created\nLocation: abc"),
            ex("create 4000 0", hub: 3, request: hubs[3], "HTTP/2 201\nlocation: //hub.example.org/files/x"),
            ex("patch 1000 500 4000", hub: 0, "HTTP/1.1 204 No Content\nUpload-Offset: 1500\nTus-Resumable: 1.0.0"),
            ex("patch 0 4000 4000", hub: 1, "HTTP/1.1 204 No Content\nUpload-Offset: 4000"),
            ex("patch 1000 500 4000", hub: 2, "HTTP/1.1 409 Conflict\nUpload-Offset: 800", body: "offset mismatch"),
            ex("patch 1000 500 4000", hub: 0, "HTTP/1.1 460 Checksum Mismatch"),
            ex("patch 1000 500 4000", hub: 0, "HTTP/1.1 429 Too Many Requests\nRetry-After: 120"),
            ex("patch 1000 500 4000", hub: 0, "HTTP/1.1 503 Service Unavailable\nRetry-After: Fri, 15 Jan 2027 08:00:00 GMT"),
            ex("head 4000 1500", hub: 0, "HTTP/1.1 200 OK\nUpload-Offset: 1500\nUpload-Length: 4000\nCache-Control: no-store"),
            ex("head 4000 1500", hub: 1, "HTTP/1.1 404 Not Found"),
            ex("create 4000 0", hub: 0, request: hubs[0], "HTTP/1.1 301 Moved Permanently\nLocation: https://other.example.org/files/"),
            ex("patch 1000 500 4000", hub: 0, "HTTP/1.1 401 Unauthorized", body: "{\"error\": \"token\"}"),
            ex("options", hub: 0, request: hubs[0], "HTTP/1.1 204 No Content\nTus-Resumable: 1.0.0\nTus-Version: 1.0.0,0.2.2\nTus-Extension: creation,creation-with-upload,termination,checksum\nTus-Max-Size: 1073741824\nTus-Checksum-Algorithm: sha1,sha256"),
        ]
    }()

    static let headerNames = ["Upload-Offset", "Location", "Retry-After", "Upload-Length", "Upload-Expires", "Tus-Version",
                              "Tus-Extension", "Tus-Max-Size", "Tus-Resumable", "Tus-Checksum-Algorithm", "HTTP/1.1 200 OK", "HTTP/1.1 100 Continue"]
    static let values = [
        "0", "-1", "+5", "1500", "4000", "4001", "1499", "9223372036854775807", "9223372036854775808", "18446744073709551616", "1e3",
        "0x10", "١٥٠٠", "１５００", " 1500 ", "1500, 1600", "", "NaN", "99999999999999999", "3601", "86400",
        "Fri, 15 Jan 2027 08:00:00 GMT", "Thu, 01 Jan 1970 00:00:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT", "Mon, 32 Foo 2027 99:99:99 XYZ",
        "https://hub.example.org/files/abc", "https://evil.example/files/abc", "//evil.example/x", "/files/../../x", "abc",
        "https://hub.example.org@evil.example/", "https://evil.example\\@hub.example.org/", "https://hub.example.org:8443/x",
        "http://hub.example.org/files/abc", "https://hub.example.org./files/x", "https://HUB.EXAMPLE.ORG/files/x",
        "https://hub.example.org%2eevil.example/", "https://[::1]:8443/tus/x", "https://[::1]/tus/x", "https://127.0.0.1:1080/x",
        "http://127.0.0.1:1080@evil.example/x", "http://0x7f.1:1080/x", "file:///etc/passwd", "javascript:alert(1)", "https://é.example/",
        "1.0.0", "0.2.2,1.0.0", "creation", "creation,creation-with-upload,checksum", "sha256", "md5,sha1",
    ]
    static let dictionary = ByteMutator.tokens(headerNames.map { $0 + ": " } + values + ["\n", "\r\n\r\n", ":", " ", "\u{0}", "é"])

    static func mutate(_ bytes: inout [UInt8], _ rng: inout SplitMix, _ pool: [[UInt8]]) {
        guard rng.chance(3) else {
            ByteMutator.mutate(&bytes, &rng, pool: pool, dictionary: dictionary)
            return
        }
        // Structured: replace the request line or add a header line.
        var lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\n")
        if rng.chance(3) {
            let a = Int64(rng.below(5000)), b = Int64(rng.below(5000)), c = Int64(rng.below(5000))
            lines[0] = rng.pick(["create \(a) \(b)", "patch \(a) \(b) \(c)", "head \(a) \(b)", "patch \(a) \(b) \(a + b)", "options"])
        } else {
            // Offsets near the request's own numbers (from, from + sent, length, ±1) hit the bounds.
            let numbers = lines[0].split(separator: " ").compactMap { Int64($0) }
            let near = numbers.isEmpty ? "0" : String(rng.pick(numbers + [numbers[0] &+ (numbers.count > 1 ? numbers[1] : 0)]) &+ Int64(rng.below(3)) &- 1)
            let at = min(lines.count, 4 + rng.below(4))
            lines.insert("\(rng.pick(headerNames)): \(rng.chance(2) ? near : rng.pick(values))", at: at)
        }
        bytes = Array(lines.joined(separator: "\n").utf8)
    }

    @Test func tusResponses() {
        let f = Fuzz.run("tus-response", short: 20_000, seeds: Self.seeds, mutate: Self.mutate, check: Self.check)
        #expect(f.violations == 0)
        // The campaign must reach both the accepting and the refusing branches.
        for outcome in ["created", "offset", "options accepted", "gone", "conflict", "checksum"] {
            #expect(f.outcomes[outcome, default: 0] > 0, "no input gave \(outcome)")
        }
        #expect(f.outcomes.keys.contains { $0.hasPrefix("violation") } && f.outcomes.keys.contains { $0.hasPrefix("retry") })
    }
}
