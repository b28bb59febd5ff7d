import Config
import Foundation

/// Writes the support bundle a technician sends from anywhere: the report,
/// the configuration, queue and device summaries and recent logs — with every
/// secret scrubbed, and never image bytes.
public struct SupportBundle {
    public var report: DiagnosticReport
    public var context: DiagnosticContext
    /// Extra named text files (queue summary, device list) from other modules.
    public var attachments: [String: String]

    public init(report: DiagnosticReport, context: DiagnosticContext, attachments: [String: String] = [:]) {
        self.report = report
        self.context = context
        self.attachments = attachments
    }

    public func write(to path: String) throws {
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("telestation-bundle-\(getpid())-\(UUID().uuidString.prefix(8))")
        let root = dir.appendingPathComponent("telestation-diagnosis")
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: dir) }

        var files = attachments
        files["report.txt"] = report.table(color: false)
        files["report.json"] = report.json()
        if let data = fm.contents(atPath: context.configPath) {
            files["station.toml"] = "# \(context.configPath) as found on the station\n"
                + Self.redactConfigValues(String(decoding: data, as: UTF8.self))
        }
        if let log = ServiceCheck.capture(["journalctl", "-u", "telestation.service", "-n", "2000", "--no-pager", "-o", "short-iso"]) {
            files["journal.txt"] = log
        }
        let secrets = self.secrets()
        for (name, text) in files {
            try redact(text, secrets).write(to: root.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/bin/tar")
        tar.arguments = ["-czf", (path as NSString).expandingTildeInPath, "-C", dir.path, "telestation-diagnosis"]
        try tar.run()
        tar.waitUntilExit()
        guard tar.terminationStatus == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "tar could not write \(path)"])
        }
    }

    /// The values that must never leave the station: the hub token and the
    /// contents of key files.
    func secrets() -> [String] {
        guard let config = context.config else { return [] }
        var out: [String] = []
        if let token = try? config.hubToken(), token.count >= 4 { out.append(token) }
        if let token = try? config.kioskToken(), token.count >= 4 { out.append(token) }
        if let key = config.hub.clientKey, let data = FileManager.default.contents(atPath: key) {
            out += String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init).filter { $0.count >= 16 && !$0.hasPrefix("-----") }
        }
        return out
    }

    /// Values of keys named like secrets (token, password, secret, passphrase,
    /// private key) in a TOML text, even one that does not load; paths to
    /// such files (`*_file`) are kept, their contents are never read here.
    static func redactConfigValues(_ text: String) -> String {
        text.replacingOccurrences(of: #"(?im)^(\s*"?[a-z0-9_.-]*(?:token|password|secret|passphrase|private_key)(?!_file)[a-z0-9_.-]*"?\s*=\s*).*$"#,
                                  with: "$1\"[redacted]\"", options: .regularExpression)
    }

    func redact(_ text: String, _ secrets: [String]) -> String {
        var t = text
        for s in secrets { t = t.replacingOccurrences(of: s, with: "[redacted]") }
        // Bearer tokens echoed in any log line.
        t = t.replacingOccurrences(of: #"(?i)(authorization:\s*bearer\s+)\S+"#, with: "$1[redacted]", options: .regularExpression)
        return t
    }
}

extension DiagnosticRunner {
    /// The checks `telestation diagnose` runs on a station.
    public static func standard(extra: [any DiagnosticCheck] = []) -> DiagnosticRunner {
        DiagnosticRunner(checks: [ConfigurationCheck(), ClockCheck(), StorageSpaceCheck(), QueueCheck(), CameraCheck()] + extra + [HubCheck(), HubCertificateCheck()]
                         + [NetworkCheck(), ServiceCheck(), PowerHeatCheck()])
    }
}
