import ArgumentParser
import JournalLog
import Foundation
import Hub
import Logging

/// The hub's command line. It lives in a library so the one installed binary
/// can run it: the package ships `telestation` once and `telestation-hub` as a
/// symlink to it (a second statically linked copy of the Swift runtime and
/// Foundation's ICU data would double the download), and `telestation` runs
/// this command when it is started under that name. The `telestation-hub`
/// executable target runs it too, for `swift run` and the tests.
public struct TelestationHub: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "telestation-hub",
        abstract: "A small tus 1.0 server that receives images from stations.",
        discussion: """
            Stores every completed upload in DIR as ID-FILENAME with ID-FILENAME.json beside it \
            (metadata, size, sha256 and whether it matched the station's). Incomplete uploads live \
            in DIR/.incoming and survive restarts. A national network runs tusd on object storage \
            instead; stations speak plain tus 1.0 to either.

            With --stow-url, every stored upload whose metadata filetype is application/dicom is filed \
            in the PACS with DICOMweb STOW-RS (URL/studies), retried with backoff until the PACS holds it; \
            GET /files/ID/receipt tells the station, GET /status the operator.

            Stations also upload health reports (metadata kind=health); the newest of each station is kept \
            in DIR/fleet.json and shown on GET /metrics (Prometheus text format, label station) and \
            GET /fleet (an HTML page), both without the token unless --metrics-require-token.
            """)

    @Option(help: "Address to listen on, HOST:PORT (port 0 picks a free one).")
    var listen: String = "127.0.0.1:1080"

    @Option(help: "Directory that receives the uploads.")
    var store: String

    @Option(name: .customLong("token-file"), help: "File holding the bearer token stations must send; without it, no authentication.")
    var tokenFile: String?

    @Option(name: .customLong("max-size"), help: "Largest upload accepted, in bytes.")
    var maxSize: Int64 = 1 << 30

    @Option(help: "Hours an incomplete upload is kept.")
    var expiryHours: Double = 168

    @Option(name: .customLong("stow-url"), help: "DICOMweb root of the PACS (e.g. http://127.0.0.1:8042/dicom-web): DICOM uploads are posted to URL/studies.")
    var stowURL: String?

    @Option(name: .customLong("stow-user"), help: "User for HTTP basic auth at the PACS.")
    var stowUser: String?

    @Option(name: .customLong("stow-password-file"), help: "File holding the password for --stow-user.")
    var stowPasswordFile: String?

    @Option(name: .customLong("stow-retry-max"), help: "Longest wait, in seconds, between two tries to file an upload.")
    var stowRetryMax: Double = 300

    @Flag(name: .customLong("no-stow-verify"), help: "Take STOW-RS's answer as final instead of asking QIDO-RS whether the PACS holds the instance (for a PACS without QIDO-RS).")
    var noStowVerify = false

    @Flag(name: .customLong("metrics-require-token"), help: "Ask for the bearer token on GET /metrics and GET /fleet too (by default they answer without it, as Prometheus expects).")
    var metricsRequireToken = false

    public func run() async throws {
        JournalLogHandler.bootstrap(level: .info)

        guard let (host, port) = Self.splitListen(listen) else {
            throw ValidationError("--listen \(listen) is not HOST:PORT (e.g. 0.0.0.0:1080)")
        }
        var token: String?
        if let tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile) else {
                throw ValidationError("cannot read the token file \(tokenFile); check that it exists and is readable")
            }
            token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if token?.isEmpty ?? true { throw ValidationError("the token file \(tokenFile) is empty") }
        }
        let hubStore: HubStore
        do { hubStore = try HubStore(directory: store) } catch {
            throw ValidationError(error.description)
        }
        let pacs = try pacsTarget()
        var options = HubServer.Options()
        options.host = host
        options.port = port
        options.maxSize = maxSize
        options.expiry = expiryHours * 3600
        options.metricsRequireToken = metricsRequireToken
        if metricsRequireToken && token == nil {
            throw ValidationError("--metrics-require-token needs --token-file (there is no token to ask for)")
        }
        let server = HubServer(store: hubStore, token: token, options: options, pacs: pacs)
        let storePath = URL(fileURLWithPath: store).standardizedFileURL.path
        let basePath = options.basePath
        let auth = token == nil ? "no authentication" : "bearer token from \(tokenFile!)"
        let filing = pacs.map { "; filing DICOM in \($0.root.absoluteString)" } ?? ""
        try await server.run { bound in
            let line = "telestation-hub: listening on http://\(host):\(bound)\(basePath), storing in \(storePath) (\(auth))\(filing)\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
    }

    func pacsTarget() throws -> PACSTarget? {
        guard let stowURL else {
            if stowUser != nil || stowPasswordFile != nil {
                throw ValidationError("--stow-user and --stow-password-file need --stow-url")
            }
            return nil
        }
        let root: URL
        switch PACSTarget.parse(stowURL) {
        case let .success(url): root = url
        case let .failure(error): throw ValidationError(error.description)
        }
        var password: String?
        if let stowPasswordFile {
            guard stowUser != nil else { throw ValidationError("--stow-password-file needs --stow-user") }
            guard let data = FileManager.default.contents(atPath: stowPasswordFile) else {
                throw ValidationError("cannot read the password file \(stowPasswordFile); check that it exists and is readable")
            }
            password = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard stowRetryMax >= 1 else { throw ValidationError("--stow-retry-max \(stowRetryMax) is below 1 second") }
        var target = PACSTarget(root: root, user: stowUser, password: password)
        target.verify = !noStowVerify
        target.backoff = FilingBackoff(base: min(2, stowRetryMax), cap: stowRetryMax)
        return target
    }

    /// HOST:PORT with port 0 allowed (the kernel picks one; the startup line says which).
    static func splitListen(_ s: String) -> (String, Int)? {
        guard let colon = s.lastIndex(of: ":") else { return nil }
        var host = String(s[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        return (host, port)
    }
}
