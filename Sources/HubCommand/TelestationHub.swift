import ArgumentParser
import JournalLog
import Foundation
import Hub
import Logging
import Sneakernet

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
        discussion: "Without a subcommand it serves (telestation-hub --store DIR is telestation-hub serve --store DIR).",
        subcommands: [Serve.self, Enroll.self, Revoke.self, Stations.self, Import.self, Keys.self, Reply.self],
        defaultSubcommand: Serve.self)
}

/// `telestation-hub serve`: the server.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Receive uploads (the default).",
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

            Stations enrolled with `telestation-hub enroll` send with their own token and may act only as \
            themselves; --token-file is the older shared token for any station. The hub's public keys \
            (DIR/.hub/keys.json) are told to stations in the OPTIONS answer, so they can seal bundles for a \
            USB stick (`telestation export`) that `telestation-hub import` files here.
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

    func run() async throws {
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
        let enrolled = server.registry.stations().values.filter { $0.tokenSHA256 != nil && $0.revokedAt == nil }.count
        var auth = token == nil ? (enrolled == 0 ? "no authentication" : "") : "shared bearer token from \(tokenFile!)"
        if enrolled > 0 { auth += (auth.isEmpty ? "" : ", ") + "\(enrolled) enrolled station\(enrolled == 1 ? "" : "s")" }
        let filing = pacs.map { "; filing DICOM in \($0.root.absoluteString)" } ?? ""
        let authText = auth
        try await server.run { bound in
            let line = "telestation-hub: listening on http://\(host):\(bound)\(basePath), storing in \(storePath) (\(authText))\(filing)\n"
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


/// Where the store is, for the operator's commands.
struct StoreOption: ParsableArguments {
    @Option(help: "The hub's store directory (as given to serve --store).")
    var store: String

    func open() throws -> HubStore {
        do { return try HubStore(directory: store) } catch { throw ValidationError(error.description) }
    }
}

/// `telestation-hub enroll ID`: a station's own credential.
struct Enroll: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Give a station its own token (printed once; enrolling again replaces it).",
        discussion: """
            Put the token in the station's hub.token_file (e.g. /etc/telestation/token, mode 0600). \
            With its own token a station may upload, ask receipts and report health only as itself; \
            the hub learns its signing key from its first upload and checks its USB-stick bundles with it. \
            Enrolling again (a reinstalled station) replaces the token and forgets the old signing key.
            """)

    @OptionGroup var store: StoreOption
    @Argument(help: "The station's id (station.id in its configuration).")
    var station: String
    @Option(help: "Write the token to this file (mode 0600) instead of printing it.")
    var output: String?

    func run() throws {
        let hub = try store.open()
        let token: String
        do { token = try StationRegistry(directory: hub.directory).enroll(station) } catch { throw ValidationError(error.description) }
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
                throw ValidationError("cannot write \(output)")
            }
            print("enrolled \(station); its token is in \(output) — copy it to the station's hub.token_file")
        } else {
            print(token)
        }
    }
}

/// `telestation-hub revoke ID`.
struct Revoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Revoke a station's credential: its uploads, receipts, health reports and bundles are refused.")
    @OptionGroup var store: StoreOption
    @Argument(help: "The station's id.")
    var station: String

    func run() throws {
        let hub = try store.open()
        do { try StationRegistry(directory: hub.directory).revoke(station) } catch { throw ValidationError(error.description) }
        print("revoked \(station): refused from now on (a running hub reads the change at once)")
    }
}

/// `telestation-hub stations`.
struct Stations: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List enrolled stations.")
    @OptionGroup var store: StoreOption

    func run() throws {
        let hub = try store.open()
        let stations = StationRegistry(directory: hub.directory).stations()
        if stations.isEmpty { print("no stations enrolled (telestation-hub enroll ID)") }
        for (id, r) in stations.sorted(by: { $0.key < $1.key }) {
            let state = r.revokedAt.map { "revoked \(HubDate.iso($0))" } ?? (r.tokenSHA256 == nil ? "no credential" : "enrolled")
            let key = r.signingKey == nil ? "signing key not yet seen" : "signing key known"
            print("\(id)\t\(state)\t\(key)")
        }
    }
}

/// `telestation-hub keys`.
struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the hub's public keys (the value of uplink.hub_keys for a station that never reached the hub).")
    @OptionGroup var store: StoreOption

    func run() throws {
        let hub = try store.open()
        do {
            let keys = try HubKeyPair.loadOrCreate(path: HubServer.keyPath(hub))
            print(keys.publicKeys.headerValue)
            FileHandle.standardError.write(Data("fingerprint \(keys.publicKeys.fingerprint)\n".utf8))
        } catch { throw ValidationError(error.description) }
    }
}

/// `telestation-hub import DIR`.
struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "File the bundles on a USB stick as if uploaded, and write receipts back onto it.",
        discussion: """
            DIR is where the stick is mounted; bundles are in DIR/telestation/. Each bundle's signature, \
            files and seal are checked before anything of it is filed; items the hub already holds (by an \
            earlier import or over the link) are skipped. A running hub files imported DICOM in the PACS \
            within a minute. Exit status 0 when every bundle was imported, 1 when any was refused.
            """)
    @OptionGroup var store: StoreOption
    @Argument(help: "Where the stick is mounted.")
    var directory: String

    func run() async throws {
        let hub = try store.open()
        let keys: HubKeyPair
        do { keys = try HubKeyPair.loadOrCreate(path: HubServer.keyPath(hub)) } catch { throw ValidationError(error.description) }
        var logger = Logger(label: "telestation-hub")
        logger.logLevel = .warning
        let report = await StickImport(store: hub, keys: keys, logger: logger).run(root: directory)
        for name in report.unfinished {
            print("\(name): skipped — an unfinished bundle (the stick was pulled while the station wrote it); export again at the station")
        }
        if report.bundles.isEmpty && report.unfinished.isEmpty {
            print("no bundles in \(directory)/telestation/")
        }
        for outcome in report.bundles { print(outcome.line) }
        let filed = report.bundles.reduce(0) { $0 + $1.filed }, held = report.bundles.reduce(0) { $0 + $1.alreadyHeld }
        print("total: \(filed) filed, \(held) already held, \(report.bundles.filter { $0.refused != nil }.count) bundles refused")
        if report.bundles.contains(where: { $0.refused != nil || !$0.refusedItems.isEmpty || $0.receiptsError != nil }) {
            throw ExitCode(1)
        }
    }
}

/// `telestation-hub reply`: an answer about a case, for its station.
struct Reply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a station a reply about a case: received, a retake of image N, or a note.",
        discussion: """
            The station fetches it the next time it reaches the hub (GET /replies) and the kiosk shows it \
            under Respuestas with an unread badge. Systems can post the same with POST /replies and the \
            shared token (--token-file): {"station": "ID", "case": "CASE", "kind": "note", "text": "…"}.
            """)
    @OptionGroup var store: StoreOption
    @Option(help: "The station's id.")
    var station: String
    @Option(name: .customLong("case"), help: "The case id, as the station sent it (tus metadata case).")
    var caseID: String
    @Option(help: "received, retake or note.")
    var kind: String = "note"
    @Option(help: "For a retake: which image of the case, 1, 2, … in the order they were sent.")
    var image: Int?
    @Argument(help: "The text (for a note: the dermatologist's answer).")
    var text: String = ""

    func run() throws {
        let hub = try store.open()
        switch CaseReply.validate(station: station, caseID: caseID, kind: kind, image: image, text: text) {
        case let .failure(e): throw ValidationError(e.message)
        case let .success(k):
            do {
                let r = try ReplyBook(directory: hub.directory).post(station: station, caseID: caseID, kind: k, image: image, text: text)
                print("reply \(r.id) for station \(station), case \(caseID): \(k.rawValue)")
            } catch { throw ValidationError(error.description) }
        }
    }
}
