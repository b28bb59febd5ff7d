import CCurl
import Foundation

/// One certificate of the chain a TLS server presented, as libcurl's
/// CURLINFO_CERTINFO describes it.
public struct PeerCertificate: Sendable, Equatable {
    public var subject: String
    public var issuer: String
    public var notBefore: Date?
    public var notAfter: Date?

    public init(subject: String, issuer: String, notBefore: Date?, notAfter: Date?) {
        self.subject = subject
        self.issuer = issuer
        self.notBefore = notBefore
        self.notAfter = notAfter
    }

    /// From certinfo's "Name:value" lines.
    init(fields: [String: String]) {
        subject = fields["Subject"] ?? "?"
        issuer = fields["Issuer"] ?? "?"
        notBefore = fields["Start date"].flatMap(Self.parseDate)
        notAfter = fields["Expire date"].flatMap(Self.parseDate)
    }

    /// Dates as libcurl's TLS backends print them: OpenSSL's
    /// `Nov  2 10:00:00 2026 GMT`, GnuTLS's `2026-11-02 10:00:00 GMT`.
    public static func parseDate(_ text: String) -> Date? {
        let squeezed = text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        for format in ["MMM d HH:mm:ss yyyy zzz", "yyyy-MM-dd HH:mm:ss zzz"] {
            f.dateFormat = format
            if let d = f.date(from: squeezed) { return d }
        }
        return nil
    }
}

/// Reads the certificate chain of the hub with a TLS handshake and nothing
/// else (CURLOPT_CONNECT_ONLY: no request, no token), for `diagnose`.
public enum CertificateProbe {
    /// The chain, leaf first, or curl's reason the handshake failed. With
    /// `verify` false the chain is read even from a server that does not
    /// verify, to say why (expired, not yet valid); nothing is sent to it.
    public static func chain(url: String, caFile: String?, verify: Bool, timeout: Double = 15) -> Result<[PeerCertificate], UplinkError> {
        _ = globalInit
        guard let h = curl_easy_init() else { return .failure(UplinkError(.transport, "curl_easy_init failed")) }
        defer { curl_easy_cleanup(h) }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        _ = ts_curl_setopt_str(h, CURLOPT_URL, url)
        _ = ts_curl_setopt_long(h, CURLOPT_CONNECT_ONLY, 1)
        _ = ts_curl_setopt_long(h, CURLOPT_CERTINFO, 1)
        _ = ts_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        _ = ts_curl_setopt_str(h, CURLOPT_PROTOCOLS_STR, "https")
        _ = ts_curl_setopt_long(h, CURLOPT_SSLVERSION, TS_CURL_SSLVERSION_TLSv1_2)
        _ = ts_curl_setopt_long(h, CURLOPT_SSL_VERIFYPEER, verify ? 1 : 0)
        _ = ts_curl_setopt_long(h, CURLOPT_SSL_VERIFYHOST, verify ? 2 : 0)
        if let caFile { _ = ts_curl_setopt_str(h, CURLOPT_CAINFO, caFile) }
        _ = ts_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, Int(timeout * 1000))
        _ = ts_curl_setopt_ptr(h, CURLOPT_ERRORBUFFER, &errorBuffer)
        let code = curl_easy_perform(h)
        guard code == CURLE_OK else {
            let detail = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            var message = String(cString: curl_easy_strerror(code))
            if !detail.isEmpty { message += " (\(detail))" }
            return .failure(UplinkError(.transport, message))
        }
        var info: UnsafeMutablePointer<curl_certinfo>?
        guard ts_curl_getinfo_certinfo(h, &info) == CURLE_OK, let info, info.pointee.num_of_certs > 0 else {
            return .failure(UplinkError(.transport, "the TLS library reported no certificate for \(url)"))
        }
        var chain: [PeerCertificate] = []
        for i in 0..<Int(info.pointee.num_of_certs) {
            var fields: [String: String] = [:]
            var node = info.pointee.certinfo[i]
            while let n = node {
                let line = String(cString: n.pointee.data)
                if let colon = line.firstIndex(of: ":") {
                    fields[String(line[..<colon])] = String(line[line.index(after: colon)...])
                }
                node = n.pointee.next
            }
            chain.append(PeerCertificate(fields: fields))
        }
        return .success(chain)
    }

    private static let globalInit: Void = { _ = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()
}
