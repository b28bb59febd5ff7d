import ArgumentParser
import JournalLog
import Foundation
import Hub
import Logging

@main
struct TelestationHub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "telestation-hub",
        abstract: "A small tus 1.0 server that receives images from stations.",
        discussion: """
            Stores every completed upload in DIR as ID-FILENAME with ID-FILENAME.json beside it \
            (metadata, size, sha256 and whether it matched the station's). Incomplete uploads live \
            in DIR/.incoming and survive restarts. A national network runs tusd on object storage \
            instead; stations speak plain tus 1.0 to either.
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
        var options = HubServer.Options()
        options.host = host
        options.port = port
        options.maxSize = maxSize
        options.expiry = expiryHours * 3600
        let server = HubServer(store: hubStore, token: token, options: options)
        let storePath = URL(fileURLWithPath: store).standardizedFileURL.path
        let basePath = options.basePath
        let auth = token == nil ? "no authentication" : "bearer token from \(tokenFile!)"
        try await server.run { bound in
            let line = "telestation-hub: listening on http://\(host):\(bound)\(basePath), storing in \(storePath) (\(auth))\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
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
