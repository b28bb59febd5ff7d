import Config
import Foundation
import Uplink

/// The hub's TLS certificate: who it is for, who issued it, and when it
/// expires — with a warning weeks ahead, so a technician can have it
/// renewed before uploads stop.
public struct HubCertificateCheck: DiagnosticCheck {
    public let name = "hub.tls"
    public var timeout: Double { 30 }
    /// Warn when a certificate of the chain expires sooner than this.
    public var warnWithin: Double = 30 * 86400
    public init() {}

    public func run(_ ctx: DiagnosticContext) -> [CheckResult] {
        guard let config = ctx.config else { return skip("configuration does not load") }
        guard let url = config.hub.url else { return skip("hub.url is not set") }
        guard URLComponents(string: url)?.scheme?.lowercased() == "https" else {
            return [result(.warn, "the hub is reached over plain http: images and the token cross the network unencrypted",
                           next: "use the hub's https:// address in hub.url")]
        }
        switch CertificateProbe.chain(url: url, caFile: config.hub.caFile, verify: true) {
        case .success(let chain):
            return [Self.judge(chain, now: ctx.now(), warnWithin: warnWithin)]
        case .failure(let error):
            // Read the chain without verifying, only to say what is wrong with it.
            let unverified = try? CertificateProbe.chain(url: url, caFile: config.hub.caFile, verify: false).get()
            return [Self.judgeFailure(error.message, chain: unverified ?? [], now: ctx.now(), config: config)]
        }
    }

    static func day(_ d: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
        return f.string(from: d)
    }

    static func days(_ seconds: Double) -> String {
        let n = Int((abs(seconds) / 86400).rounded())
        return n == 1 ? "1 day" : "\(n) days"
    }

    /// Pure: the verdict on a chain that verified.
    static func judge(_ chain: [PeerCertificate], now: Date, warnWithin: Double) -> CheckResult {
        guard let leaf = chain.first, let leafEnd = leaf.notAfter else {
            return CheckResult(check: "hub.tls", status: .warn, finding: "the hub's certificate has no readable expiry date",
                               nextStep: "check it by hand: openssl s_client -connect HOST:443 </dev/null | openssl x509 -noout -dates")
        }
        // The chain lapses with its first certificate to expire.
        let first = chain.filter { $0.notAfter != nil }.min { $0.notAfter! < $1.notAfter! } ?? leaf
        let end = first.notAfter ?? leafEnd
        let left = end.timeIntervalSince(now)
        let which = first == leaf ? "the hub's certificate (\(leaf.subject))" : "a certificate in the hub's chain (\(first.subject))"
        let details = ["subject": leaf.subject, "issuer": leaf.issuer, "not_after": ISO8601DateFormatter().string(from: leafEnd),
                       "chain_not_after": ISO8601DateFormatter().string(from: end), "days_left": "\(Int(left / 86400))"]
        if left < warnWithin {
            return CheckResult(check: "hub.tls", status: .warn,
                               finding: "\(which) expires on \(day(end)), in \(days(left))",
                               nextStep: "tell the hub's operators to renew it before then: uploads stop the moment it expires", details: details)
        }
        return CheckResult(check: "hub.tls", status: .pass,
                           finding: "certificate \(leaf.subject), issued by \(leaf.issuer), valid until \(day(leafEnd)) (\(days(leafEnd.timeIntervalSince(now))) left)",
                           details: details)
    }

    /// Pure: the verdict when the handshake failed, from curl's message and
    /// the chain read without verification.
    static func judgeFailure(_ message: String, chain: [PeerCertificate], now: Date, config: StationConfig) -> CheckResult {
        if let leaf = chain.first, let end = leaf.notAfter, end < now {
            return CheckResult(check: "hub.tls", status: .fail,
                               finding: "the hub's certificate (\(leaf.subject)) expired on \(day(end)), \(days(now.timeIntervalSince(end))) ago",
                               nextStep: "tell the hub's operators to renew it; if the date looks wrong, the station's clock is (see the clock check)",
                               details: ["not_after": ISO8601DateFormatter().string(from: end)])
        }
        if let leaf = chain.first, let start = leaf.notBefore, start > now {
            return CheckResult(check: "hub.tls", status: .fail,
                               finding: "the hub's certificate (\(leaf.subject)) is valid only from \(day(start)): the station's clock is behind",
                               nextStep: "set the station's time (timedatectl status; date -s)")
        }
        return CheckResult(check: "hub.tls", status: .fail, finding: "TLS handshake with the hub failed: \(message)",
                           nextStep: HubCheck.nextStep(for: message, config: config))
    }
}
