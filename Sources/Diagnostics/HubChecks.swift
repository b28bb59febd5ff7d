import Basics
import Config
import Foundation
import Crypto
import Uplink

/// The hub answers, speaks tus, accepts this station's token, has a clock
/// that agrees with the station's, and takes a small probe upload, which is
/// then removed when the hub supports termination.
public struct HubCheck: DiagnosticCheck {
    public let name = "hub"
    public var timeout: Double { 60 }
    /// Bytes in the probe upload.
    public var probeBytes = 32 * 1024
    public init() {}

    public func run(_ ctx: DiagnosticContext) -> [CheckResult] {
        guard let config = ctx.config else { return skip("configuration does not load") }
        guard config.hub.url != nil else { return skip("hub.url is not set") }
        let client: TusClient
        do { client = try TusClient(config: config) } catch {
            return [result(.fail, "\(error)", next: "fix the hub settings in \(ctx.configPath)")]
        }
        return waitForAsync { await probe(client, config: config, now: ctx.now) }
    }

    func probe(_ client: TusClient, config: StationConfig, now: @Sendable () -> Date) async -> [CheckResult] {
        var results: [CheckResult] = []
        let tokenFile = config.hub.tokenFile ?? "/etc/telestation/token"
        switch await client.probeOptions() {
        case let .failure(error):
            // A pinning mismatch is an answer, from the wrong key: a TLS finding, not an outage.
            let pinned = error.message.contains("pin_sha256")
            return [CheckResult(check: pinned ? "hub.tls" : "hub.options", status: .fail,
                                finding: pinned ? error.message : "the hub does not answer: \(error.message)",
                                nextStep: Self.nextStep(for: error.message, config: config))]
        case let .success(r):
            if r.status == 401 || r.status == 403 {
                return [Self.authFailure(r.status, tokenFile: tokenFile)]
            }
            guard (200..<300).contains(r.status), let version = r.headers["tus-version"] ?? r.headers["tus-resumable"] else {
                return [CheckResult(check: "hub.options", status: .fail, finding: "\(config.hub.url!) answered OPTIONS with \(r.status) and no tus headers",
                                    nextStep: "hub.url must be the hub's tus creation endpoint (e.g. https://hub.example.org/files/); ask the hub's operators")]
            }
            let extensions = r.headers["tus-extension"] ?? "none"
            results.append(CheckResult(check: "hub.options", status: .pass,
                                       finding: "tus \(version), extensions: \(extensions); answered in \(Int(r.seconds * 1000)) ms",
                                       details: ["tus_version": version, "tus_extension": extensions, "rtt_ms": "\(Int(r.seconds * 1000))",
                                                 "connect_ms": "\(Int(r.connectSeconds * 1000))"]))
            if let dateText = r.headers["date"], let hubDate = HTTPDate.parse(dateText) {
                let skew = now().timeIntervalSince(hubDate)
                let line = "station clock is \(Units.formatDuration(abs(skew))) \(skew >= 0 ? "ahead of" : "behind") the hub's"
                if abs(skew) > 300 {
                    results.append(CheckResult(check: "hub.clock", status: .fail, finding: line,
                                               nextStep: "set the station's time (timedatectl status; date -s) — certificates and capture times depend on it",
                                               details: ["skew_s": "\(Int(skew))"]))
                } else if abs(skew) > 30 {
                    results.append(CheckResult(check: "hub.clock", status: .warn, finding: line, nextStep: "check network time (timedatectl status)",
                                               details: ["skew_s": "\(Int(skew))"]))
                } else {
                    results.append(CheckResult(check: "hub.clock", status: .pass, finding: line, details: ["skew_s": "\(Int(skew))"]))
                }
            }
        }

        // A small real upload: the token, the creation and PATCH path, and the link's rate.
        var bytes = [UInt8](repeating: 0, count: probeBytes)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        let digest = SHA256.hash(data: bytes).hex
        let metadata = UploadMetadata(filename: "telestation-probe.bin", filetype: "application/octet-stream", station: config.station.id,
                                      caseID: "probe", site: "other", priority: "routine", kind: .preview, capturedAt: now(), sha256: digest)
        let started = Date()
        var createdURL: String?
        let outcome = await client.upload(UploadJob(source: MemoryUploadSource(bytes), metadata: metadata)) { event in
            if case let .created(url) = event { createdURL = url }
        }
        let seconds = Date().timeIntervalSince(started)
        switch outcome {
        case .completed(let url):
            let rate = Double(probeBytes) / max(seconds, 0.001)
            var line = "probe upload of \(Units.formatBytes(Int64(probeBytes))) accepted in \(String(format: "%.1f", seconds)) s (\(Units.formatBytes(Int64(rate)))/s)"
            if let rtt = client.status.link.rtt { line += ", RTT \(Int(rtt * 1000)) ms" }
            if client.status.capabilities?.extensions.contains("termination") == true {
                if case let .success(r) = await client.terminate(url: url), (200..<300).contains(r.status) {
                    line += "; removed again"
                }
            }
            results.append(CheckResult(check: "hub.auth", status: .pass, finding: "the hub accepts this station's token"))
            results.append(CheckResult(check: "hub.upload", status: .pass, finding: line, details: ["rate_bytes_per_second": "\(Int(rate))"]))
        case let .authFailed(status, reason):
            results.append(Self.authFailure(status, tokenFile: tokenFile, reason: reason, station: config.station.id))
        case let .hold(reason):
            results.append(CheckResult(check: "hub.upload", status: .fail, finding: "the hub refuses uploads from this station: \(reason)",
                                       nextStep: "ask the hub's operators; send them the bundle from `telestation diagnose --bundle`"))
        case let .retry(_, reason):
            results.append(CheckResult(check: "hub.upload", status: .fail, finding: "probe upload failed: \(reason)",
                                       nextStep: Self.nextStep(for: reason, config: config)))
        case let .recordFailed(reason):
            // The probe records nothing; kept for completeness of the outcomes.
            results.append(CheckResult(check: "hub.upload", status: .fail, finding: "probe upload stopped: \(reason)"))
        case .urlGone, .cancelled:
            results.append(CheckResult(check: "hub.upload", status: .warn, finding: "probe upload did not finish\(createdURL == nil ? "" : " (the hub dropped it)")",
                                       nextStep: "run diagnose again; if it repeats, send the bundle to the hub's operators"))
        }
        return results
    }

    static func authFailure(_ status: Int, tokenFile: String, reason: String = "", station: String = "") -> CheckResult {
        // The hub says why in its answer's first word (see the hub's `identify`).
        if reason.contains("revoked:") {
            return CheckResult(check: "hub.auth", status: .fail,
                               finding: "the hub's operators revoked this station's credential (station \(station)); the hub refuses its uploads, receipts, health reports and USB-stick bundles",
                               nextStep: "images stay queued and nothing is lost; ask the network's operators to enrol the station again (telestation-hub enroll \(station)) and put the new token in \(tokenFile)")
        }
        if reason.contains("impersonation:") {
            return CheckResult(check: "hub.auth", status: .fail,
                               finding: "the token in \(tokenFile) belongs to another station, not \(station) (the hub refuses one station acting as another)",
                               nextStep: "check station.id in the configuration, or put this station's own token in \(tokenFile) (telestation-hub enroll \(station) at the hub)")
        }
        return CheckResult(check: "hub.auth", status: .fail, finding: "hub rejected the token (\(status))",
                           nextStep: "replace \(tokenFile) with the token the hub issued to this station; see README §Enrolment")
    }

    /// What to do about a transport failure, from curl's message.
    static func nextStep(for message: String, config: StationConfig) -> String {
        let m = message.lowercased()
        if m.contains("pin_sha256") {
            let url = URLComponents(string: config.hub.url ?? "")
            let host = url?.host ?? "HUB"
            let command = PinSHA256.command(host: host, port: url?.port ?? 443)
            return "the hub presented a certificate key that is not pinned: ask the hub's operators whether its key changed and for the new pin, "
                + "or compute it over a trusted network with `\(command)`, then set hub.pin_sha256; if the key did not change, this network intercepts TLS: do not upload through it"
        }
        if m.contains("expired") {
            return "the hub's certificate has expired, or this station's clock is wrong (see the clock check); tell the hub's operators"
        }
        if m.contains("certificate") || m.contains("ssl") || m.contains("tls") {
            return config.hub.caFile == nil
                ? "the hub's certificate is not trusted: if it uses a private CA, set hub.ca_file to its PEM file"
                : "the hub's certificate does not match hub.ca_file (\(config.hub.caFile!)): get the current CA file from the hub's operators"
        }
        if m.contains("resolve") { return "check the uplink and DNS (see the network check)" }
        return "check the uplink and that the hub is up (see the network check)"
    }
}
