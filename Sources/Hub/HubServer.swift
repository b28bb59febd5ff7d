import Basics
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Recompression
import ServiceLifecycle
import Sneakernet

/// A tus 1.0 server (core, creation, creation-with-upload, checksum with sha1
/// and sha256, termination, expiration) storing into a `HubStore`.
public struct HubServer: Sendable {
    public struct Options: Sendable {
        public var host: String = "127.0.0.1"
        /// 0 picks a free port; `start()` reports it.
        public var port: Int = 0
        /// Path prefix of the creation endpoint.
        public var basePath: String = "/files/"
        public var maxSize: Int64 = 1 << 30
        /// Seconds an incomplete upload is kept.
        public var expiry: Double = 7 * 86400
        /// Largest PATCH body kept in memory to check `Upload-Checksum`.
        public var maxChecksummedChunk: Int = 64 << 20
        /// Seconds a request waits for another request on the same upload.
        public var lockWait: Double = 10
        /// `GET /metrics` and `GET /fleet` need the bearer token too. Off by
        /// default: Prometheus scrapes without credentials by convention, and
        /// neither page holds patient data (station ids and their health only).
        public var metricsRequireToken: Bool = false
        public init() {}
    }

    public let store: HubStore
    public let token: String?
    public let options: Options
    public let logger: Logger
    /// Files DICOM uploads in a PACS (`--stow-url`); nil: the hub's own copy is the filing.
    public let forwarder: PACSForwarder?
    /// The newest health report of each station (`DIR/fleet.json`).
    public let fleet: Fleet
    /// The stations with their own credentials (`DIR/.hub/stations.json`).
    public let registry: StationRegistry
    /// Replies about cases, for the stations to fetch (`DIR/.hub/replies.jsonl`).
    public let replies: ReplyBook
    /// The keys stations seal their bundles for and the hub signs receipts
    /// with (`DIR/.hub/keys.json`); nil when the file cannot be read, and then
    /// stations are not told any (they cannot export for this hub).
    public let keys: HubKeyPair?

    public init(store: HubStore, token: String? = nil, options: Options = Options(),
                logger: Logger = Logger(label: "telestation-hub"), pacs: PACSTarget? = nil, keys: HubKeyPair? = nil) {
        self.store = store
        self.token = token
        self.options = options
        self.logger = logger
        self.forwarder = pacs.map { PACSForwarder(store: store, target: $0, logger: logger) }
        self.fleet = Fleet(directory: store.directory, logger: logger)
        self.registry = StationRegistry(directory: store.directory)
        self.replies = ReplyBook(directory: store.directory)
        if let keys {
            self.keys = keys
        } else {
            do { self.keys = try HubKeyPair.loadOrCreate(path: HubServer.keyPath(store)) } catch {
                logger.error("the hub's keys cannot be read; stations cannot export bundles for it: \(error)")
                self.keys = nil
            }
        }
    }

    /// Where the hub keeps its private keys (`DIR/.hub/keys.json`, beside
    /// the station registry, out of the listing of stored uploads).
    public static func keyPath(_ store: HubStore) -> String {
        let dir = (store.directory as NSString).appendingPathComponent(".hub")
        mkdir(dir, 0o700)
        return (dir as NSString).appendingPathComponent("keys.json")
    }

    /// What follows a completed upload: DICOM goes to the PACS forwarder, a
    /// health report (metadata `kind=health`) to the fleet view.
    func stored(_ done: UploadInfo) async {
        forwarder?.enqueue(done)
        guard done.metadata["kind"] == "health", let storedAs = done.storedAs else { return }
        let path = store.filePath(storedAs: storedAs)
        let bytes: [UInt8]? = await Blocking.run {
            guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
            defer { try? handle.close() }
            // One byte more than a report may have, so the parser can say it is too long.
            return (try? handle.read(upToCount: HealthReport.maxSize + 1)).map { Array($0 ?? Data()) }
        }
        guard let bytes else {
            logger.warning("a stored health report cannot be read back", metadata: ["stored_as": "\(storedAs)"])
            return
        }
        await fleet.ingest(done, bytes: bytes)
    }

    /// The HTTP server, then the PACS forwarder when there is one.
    private func services(_ app: some Service) -> [any Service] {
        [app] + (forwarder.map { [$0] } ?? [])
    }

    /// Runs until the task is cancelled or SIGTERM/SIGINT arrives;
    /// `onReady` gets the bound port.
    public func run(onReady: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let app = makeApplication(onReady: onReady)
        let group = ServiceGroup(configuration: .init(services: services(app), gracefulShutdownSignals: [.sigterm, .sigint],
                                                      logger: logger))
        try await group.run()
    }

    /// Starts the server in the background, for tests and embedding.
    public func start() async throws -> RunningHub {
        let (stream, cont) = AsyncStream<Int>.makeStream()
        let app = makeApplication { port in cont.yield(port); cont.finish() }
        let group = ServiceGroup(configuration: .init(services: services(app), gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        var iterator = stream.makeAsyncIterator()
        guard let port = await iterator.next() else {
            task.cancel()
            throw HubError(.startup, "the hub did not start listening on \(options.host)")
        }
        return RunningHub(port: port, host: options.host, basePath: options.basePath, group: group, task: task)
    }

    private func makeApplication(onReady: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        let responder = TusResponder(server: self)
        var log = logger
        log.logLevel = max(logger.logLevel, .notice)
        return Application(
            responder: responder,
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: nil),
            onServerRunning: { channel in await onReady(channel.localAddress?.port ?? 0) },
            logger: log)
    }
}

/// A hub started with `HubServer.start()`.
public final class RunningHub: Sendable {
    public let port: Int
    public let host: String
    public let basePath: String
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    init(port: Int, host: String, basePath: String, group: ServiceGroup, task: Task<Void, any Error>) {
        self.port = port
        self.host = host
        self.basePath = basePath
        self.group = group
        self.task = task
    }

    /// The creation endpoint, e.g. `http://127.0.0.1:PORT/files/`.
    public var url: String { "http://\(host):\(port)\(basePath)" }

    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}

extension HTTPField.Name {
    static let tusResumable = Self("Tus-Resumable")!
    static let tusVersion = Self("Tus-Version")!
    static let tusExtension = Self("Tus-Extension")!
    static let tusMaxSize = Self("Tus-Max-Size")!
    static let tusChecksumAlgorithm = Self("Tus-Checksum-Algorithm")!
    static let uploadOffset = Self("Upload-Offset")!
    static let uploadLength = Self("Upload-Length")!
    static let uploadMetadata = Self("Upload-Metadata")!
    static let uploadChecksum = Self("Upload-Checksum")!
    static let uploadExpires = Self("Upload-Expires")!
    static let uploadDeferLength = Self("Upload-Defer-Length")!
    /// The hub answers `GET <upload URL>/receipt` (see `Receipt`).
    static let telestationReceipts = Self("Telestation-Receipts")!
    /// The hub rebuilds files the station sent recompressed (see `RecompressedFile`).
    static let telestationTransport = Self(RecompressedFile.capabilityHeader)!
    /// The hub's public keys, for bundles carried by stick (see `HubPublicKeys`).
    static let telestationHubKeys = Self(HubPublicKeys.headerName)!
    /// On a creation answer: the hub already holds this item (see `HubStore.itemKey`).
    static let telestationHeld = Self("Telestation-Held")!
    /// Where stations fetch replies about their cases (see `CaseReply`).
    static let telestationReplies = Self("Telestation-Replies")!
    /// On a refusal: why (`revoked`, `impersonation`), for the station's diagnose.
    static let telestationRefusal = Self("Telestation-Refusal")!
}

/// Routes every request by method; tus needs OPTIONS, POST, HEAD, PATCH, DELETE.
struct TusResponder: HTTPResponder {
    typealias Context = BasicRequestContext
    let server: HubServer
    /// Uploads with a request in progress, shared by every copy of the responder.
    let busy = Locked<Set<String>>([])

    /// Takes the upload's lock, waiting up to `lockWait` for a PATCH in
    /// progress. A client that lost its connection mid-PATCH asks with HEAD
    /// right away, often before the hub has seen the end of the cut-short
    /// body; waiting lets HEAD report the bytes that body still delivers
    /// instead of an offset the client would resend from.
    private func lock(_ id: String) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(server.options.lockWait)
        while !busy.withLock({ $0.insert(id).inserted }) {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    private func unlock(_ id: String) { _ = busy.withLock { $0.remove(id) } }

    func respond(to request: Request, context: Context) async throws -> Response {
        do {
            return try await route(request)
        } catch let error as HubError {
            server.logger.error("\(error)")
            return reply(.internalServerError, body: "the hub could not store the upload: \(error.message)")
        }
    }

    private func route(_ request: Request) async throws -> Response {
        let path = request.uri.path
        let base = server.options.basePath
        let trimmedBase = base.hasSuffix("/") ? String(base.dropLast()) : base
        if request.method == .options && (path == base || path == trimmedBase || path.hasPrefix(base)) {
            return options()
        }
        let fleetPage = request.method == .get && (path == "/metrics" || path == "/fleet")
        if fleetPage && !server.options.metricsRequireToken { return fleet(path) }
        let identity: HubIdentity
        switch identify(request) {
        case let .success(who): identity = who
        case let .failure(refusal): return refusal.response
        }
        if fleetPage { return fleet(path) }
        // Not tus requests: no Tus-Resumable needed.
        if request.method == .get && path == "/status" { return try await status() }
        if path == Self.casesPath {
            guard request.method == .get else { return reply(.methodNotAllowed, body: "use GET to list cases") }
            return try await cases(request, identity)
        }
        if path == Self.repliesPath {
            switch request.method {
            case .get: return repliesFor(request, identity)
            case .post: return try await postReply(request, identity)
            default: return reply(.methodNotAllowed, body: "use GET to fetch replies, POST to add one")
            }
        }
        if path.hasPrefix(base) && path.hasSuffix(Self.receiptSuffix) {
            guard request.method == .get else { return reply(.methodNotAllowed, body: "use GET on a receipt") }
            let id = String(path.dropFirst(base.count).dropLast(Self.receiptSuffix.count))
            if let refusal = try await ownerRefusal(id, identity) { return refusal }
            return try await receipt(id)
        }
        if path != base && path != trimmedBase && request.method != .options {
            guard path.hasPrefix(base) else { return reply(.notFound, body: "no such endpoint") }
        }
        if request.headers[.tusResumable] != "1.0.0" {
            var r = reply(.preconditionFailed, body: "this server speaks tus 1.0.0 (send Tus-Resumable: 1.0.0)")
            r.headers[.tusVersion] = "1.0.0"
            return r
        }
        if path == base || path == trimmedBase {
            guard request.method == .post else { return reply(.methodNotAllowed, body: "use POST to create an upload") }
            return try await create(request, identity)
        }
        let id = String(path.dropFirst(base.count))
        if let refusal = try await ownerRefusal(id, identity) { return refusal }
        switch request.method {
        case .head: return try await head(id)
        case .patch: return try await patch(id, request)
        case .delete: return try await delete(id)
        default: return reply(.methodNotAllowed, body: "use HEAD, PATCH or DELETE on an upload")
        }
    }

    struct Refusal: Error {
        var response: Response
    }

    /// Who is asking: a station's own credential, the shared token, or
    /// anyone when the hub has no credentials at all.
    private func identify(_ request: Request) -> Result<HubIdentity, Refusal> {
        let header = request.headers[.authorization]
        let given = header.flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst("Bearer ".count)) : nil }
        if let given {
            switch server.registry.authenticate(token: given) {
            case let .station(id): return .success(.station(id))
            case let .revoked(id, at):
                var r = reply(.forbidden, body: "revoked: the hub's operators revoked the credential of station \(id) on \(HubDate.iso(at)); the station cannot send until it is enrolled again (telestation-hub enroll \(id))")
                r.headers[.telestationRefusal] = "revoked"
                return .failure(Refusal(response: r))
            case .unknown: break
            }
            if let token = server.token, Digest.constantTimeEquals(given, token) { return .success(.shared) }
        }
        if server.token == nil && !server.registry.hasCredentials { return .success(.open) }
        return .failure(Refusal(response: reply(.unauthorized, body: given == nil ? "missing bearer token" : "missing or wrong bearer token")))
    }

    /// A station's credential reaches only its own uploads: another
    /// station's upload is answered as if it did not exist.
    private func ownerRefusal(_ id: String, _ identity: HubIdentity) async throws -> Response? {
        guard case let .station(station) = identity else { return nil }
        guard let (info, _) = try await server.store.lookup(id) else { return nil }
        return info.metadata["station"] == station ? nil : reply(.notFound)
    }

    /// The impersonation refusal for a station naming another in its metadata.
    private func impersonation(_ identity: HubIdentity, claims: String?) -> Response? {
        guard case let .station(station) = identity, claims != station else { return nil }
        var r = reply(.forbidden, body: "impersonation: this credential belongs to station \(station), but the upload names station \(claims ?? "(none)"); each station sends with its own token")
        r.headers[.telestationRefusal] = "impersonation"
        return r
    }

    private func reply(_ status: HTTPResponse.Status, body: String? = nil, headers: HTTPFields = [:]) -> Response {
        var h = headers
        h[.tusResumable] = "1.0.0"
        if let body {
            h[.contentType] = "text/plain; charset=utf-8"
            return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(string: body + "\n")))
        }
        return Response(status: status, headers: h)
    }

    private func options() -> Response {
        var h = HTTPFields()
        h[.tusVersion] = "1.0.0"
        h[.tusExtension] = "creation,creation-with-upload,checksum,termination,expiration"
        h[.tusMaxSize] = "\(server.options.maxSize)"
        h[.tusChecksumAlgorithm] = "sha1,sha256"
        h[.telestationReceipts] = "1"
        h[.telestationTransport] = RecompressedFile.capability
        if let keys = server.keys { h[.telestationHubKeys] = keys.publicKeys.headerValue }
        h[.telestationReplies] = Self.repliesPath
        return reply(.noContent, headers: h)
    }

    static let receiptSuffix = "/receipt"
    static let repliesPath = "/replies"
    static let casesPath = "/cases"

    /// `GET /replies?since=ID`: a station's replies after the last it has.
    /// A station's own credential names the station; with the shared token
    /// or none, `station=ID` does.
    private func repliesFor(_ request: Request, _ identity: HubIdentity) -> Response {
        let query = request.uri.queryParameters
        let since = query.get("since").flatMap { Int($0) } ?? 0
        let station: String
        switch identity {
        case let .station(id):
            if let named = query.get("station"), named != id {
                return impersonation(identity, claims: named) ?? reply(.forbidden)
            }
            station = id
        case .open, .shared:
            guard let named = query.get("station"), StationRegistry.isValidStationID(named) else {
                return reply(.badRequest, body: "name the station: GET /replies?station=ID&since=N")
            }
            station = named
        }
        let list = server.replies.replies(station: station, since: since)
        let data = (try? ReplyBook.encoder.encode(["replies": list])) ?? Data()
        return json(.ok, Array(data))
    }

    /// `GET /cases[?station=ID]`: the cases the hub holds, newest first
    /// (`HubCase`), for the operators and the specialist's side; a station's
    /// own credential is refused, as it holds other stations' patients.
    private func cases(_ request: Request, _ identity: HubIdentity) async throws -> Response {
        if case .station = identity {
            return reply(.forbidden, body: "a station cannot list cases; use the operators' token")
        }
        let station: String? = request.uri.queryParameters.get("station").map { String($0) }
        if let station, !StationRegistry.isValidStationID(station) {
            return reply(.badRequest, body: "station=\(station) is not a station id")
        }
        let list = HubCase.group(try await server.store.records(), station: station)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        struct Cases: Encodable { var cases: [HubCase] }
        return json(.ok, Array((try? encoder.encode(Cases(cases: list))) ?? Data()))
    }

    /// `POST /replies` {"station","case","kind","image","text"}: from the
    /// operators or a specialist's system, never from a station.
    private func postReply(_ request: Request, _ identity: HubIdentity) async throws -> Response {
        if case .station = identity {
            return reply(.forbidden, body: "a station cannot post replies; use the operators' token")
        }
        let body = try await request.body.collect(upTo: 16 * 1024)
        struct Posted: Decodable { var station: String; var `case`: String; var kind: String; var image: Int?; var text: String? }
        guard let posted = try? JSONDecoder().decode(Posted.self, from: Data(buffer: body)) else {
            return reply(.badRequest, body: #"send JSON: {"station": "ID", "case": "CASE", "kind": "received"|"retake"|"note", "image": N, "text": "…"}"#)
        }
        switch CaseReply.validate(station: posted.station, caseID: posted.case, kind: posted.kind, image: posted.image, text: posted.text ?? "") {
        case let .failure(e): return reply(.badRequest, body: e.message)
        case let .success(kind):
            let saved = try server.replies.post(station: posted.station, caseID: posted.case, kind: kind, image: posted.image, text: posted.text ?? "")
            server.logger.info("reply posted", metadata: ["station": "\(saved.station)", "case": "\(saved.caseID)", "kind": "\(saved.kind.rawValue)"])
            return json(.created, Array((try? ReplyBook.encoder.encode(saved)) ?? Data()))
        }
    }

    /// `GET <upload URL>/receipt`: the record beside a stored file is the
    /// authority (see `HubStore.update`).
    private func receipt(_ id: String) async throws -> Response {
        var found = try await server.store.lookup(id)
        if let (_, offset) = found, let storedAs = found?.0.storedAs {
            // A stored upload whose file or record is gone is lost, whatever
            // the incoming record says: 404, and the station sends it again.
            let file = (server.store.directory as NSString).appendingPathComponent(storedAs)
            if let record = try await server.store.record(storedAs: storedAs), FileManager.default.fileExists(atPath: file) {
                found = (record, offset)
            } else {
                server.logger.warning("a receipt was asked for an upload whose stored file is gone; answering 404 so the station sends it again",
                                      metadata: ["id": "\(id)", "stored_as": "\(storedAs)"])
                found = nil
            }
        }
        let answer = Receipt.answer(found?.0, offset: found?.1 ?? 0, forwarding: server.forwarder != nil,
                                    outage: server.forwarder?.outage)
        return json(HTTPResponse.Status(code: answer.status), answer.json())
    }

    /// `GET /status`: what the hub holds and how filing in the PACS goes.
    private func status() async throws -> Response {
        let records = try await server.store.records()
        let forwarding = server.forwarder != nil
        let dicom = records.filter(\.isDICOM)
        var body: [String: Any] = [
            "stored": records.count,
            "incoming": await server.store.incomingCount(),
            "dicom": dicom.count,
            "filed": records.filter { $0.filedAt != nil }.count,
            "pending_pacs": forwarding ? dicom.filter { $0.filedAt == nil && $0.rejected == nil }.count : 0,
            "rejected": records.filter { $0.rejected != nil }.count,
            "stow_url": server.forwarder.map { $0.target.root.absoluteString } ?? NSNull(),
            "last_pacs_error": NSNull(),
        ]
        if let e = server.forwarder?.lastError {
            body["last_pacs_error"] = ["at": HubDate.iso(e.at), "upload": e.upload, "error": e.message,
                                       "next_try": HubDate.iso(e.nextTry)]
        }
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
        return json(.ok, Array(data))
    }

    /// `GET /metrics` (Prometheus text format 0.0.4) or `GET /fleet` (HTML).
    private func fleet(_ path: String) -> Response {
        let stations = server.fleet.stations
        var h = HTTPFields()
        h[.cacheControl] = "no-store"
        let body: String
        if path == "/metrics" {
            h[.contentType] = FleetMetrics.contentType
            body = FleetMetrics.render(stations)
        } else {
            h[.contentType] = "text/html; charset=utf-8"
            body = FleetPage.render(stations)
        }
        return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    private func json(_ status: HTTPResponse.Status, _ bytes: [UInt8]) -> Response {
        var h = HTTPFields()
        h[.contentType] = "application/json"
        h[.cacheControl] = "no-store"
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: bytes + [0x0A])))
    }

    private func expires(_ info: UploadInfo) -> String { HTTPDate.format(info.expiresAt) }

    private static func number(_ s: String?) -> Int64? {
        guard let s, !s.isEmpty, s.count <= 18, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int64(s)
    }

    private func create(_ request: Request, _ identity: HubIdentity) async throws -> Response {
        try await server.store.sweepExpired()
        if request.headers[.uploadDeferLength] != nil {
            return reply(.badRequest, body: "Upload-Defer-Length is not supported; send Upload-Length")
        }
        guard let length = Self.number(request.headers[.uploadLength]) else {
            return reply(.badRequest, body: "Upload-Length is missing or not a non-negative integer")
        }
        guard length <= server.options.maxSize else {
            return reply(.contentTooLarge, body: "Upload-Length \(length) exceeds Tus-Max-Size \(server.options.maxSize)")
        }
        var metadata: [String: String] = [:]
        if let raw = request.headers[.uploadMetadata] {
            switch TusMetadata.parse(raw) {
            case let .success(m): metadata = m
            case let .failure(invalid): return reply(.badRequest, body: invalid.message)
            }
        }
        if let sha = metadata["sha256"], !(sha.count == 64 && sha.allSatisfy(\.isHexDigit)) {
            return reply(.badRequest, body: "metadata sha256 must be 64 hex digits")
        }
        if let refusal = Rebuild.refusal(metadata: metadata, uploadLength: length, maxSize: server.options.maxSize) {
            return reply(.badRequest, body: refusal)
        }
        if let refusal = impersonation(identity, claims: metadata["station"]) { return refusal }
        if let key = metadata["station_key"], let station = metadata["station"] {
            server.registry.learnSigningKey(key, station: station, identity: identity)
        }
        if let held = await server.store.heldItem(metadata) {
            // It came by stick (or an earlier upload): nothing to send. The
            // answer is an upload already complete, pointing at the stored one.
            let info = try await server.store.createHeld(length: length, metadata: metadata, held: held, expiresIn: server.options.expiry)
            // How much of the file came with the creation anyway (a client that
            // does not know the item went by stick sends its first piece).
            let carried = request.headers[.contentType] == "application/offset+octet-stream"
                ? (Self.number(request.headers[.contentLength]) ?? 0) : 0
            server.logger.info("creation of an item already held; \(carried) bytes of it came with the request",
                               metadata: ["id": "\(info.id)", "held_as": "\(held.id)"])
            var h = HTTPFields()
            h[HTTPField.Name.location] = server.options.basePath + info.id
            h[.uploadOffset] = "0"
            h[.telestationHeld] = held.id
            return reply(.created, headers: h)
        }
        let hasBody = request.headers[.contentType] == "application/offset+octet-stream"
        let info = try await server.store.create(length: length, metadata: metadata, expiresIn: server.options.expiry)
        server.logger.info("created upload", metadata: ["id": "\(info.id)", "length": "\(length)",
                                                        "filename": "\(metadata["filename"] ?? "")"])
        var h = HTTPFields()
        h[HTTPField.Name.location] = server.options.basePath + info.id
        h[.uploadExpires] = expires(info)
        if hasBody {
            switch try await receive(info: info, offset: 0, request: request) {
            case let .refused(response):
                // The upload exists even though its first chunk failed; tell the client where.
                var r = response
                r.headers[HTTPField.Name.location] = h[HTTPField.Name.location]
                return r
            case let .offset(offset):
                h[.uploadOffset] = "\(offset)"
            }
        } else {
            h[.uploadOffset] = "0"
            if length == 0 {
                switch try await server.store.complete(info) {
                case let .checksumMismatch(e, a):
                    return reply(Self.checksumMismatch, body: "the file's sha256 is \(a), the metadata says \(e)")
                case let .rebuildFailed(reason):
                    return reply(Self.checksumMismatch, body: "the original file could not be rebuilt: \(reason)")
                case let .stored(done):
                    await server.stored(done)
                case .alreadyHeld:
                    break
                }
            }
        }
        return reply(.created, headers: h)
    }

    private func head(_ id: String) async throws -> Response {
        guard HubStore.isValidID(id) else { return reply(.notFound) }
        guard await lock(id) else { return reply(Self.locked, body: "a PATCH to this upload is in progress") }
        defer { unlock(id) }
        guard let (info, offset) = try await server.store.lookup(id) else { return reply(.notFound) }
        if info.storedAs == nil && info.expiresAt < Date() {
            try await server.store.delete(id)
            return reply(.gone)
        }
        var h = HTTPFields()
        h[.uploadOffset] = "\(offset)"
        h[.uploadLength] = "\(info.length)"
        h[.cacheControl] = "no-store"
        if !info.metadata.isEmpty { h[.uploadMetadata] = TusMetadata.encode(info.metadata) }
        if info.storedAs == nil { h[.uploadExpires] = expires(info) }
        return reply(.ok, headers: h)
    }

    private func delete(_ id: String) async throws -> Response {
        guard try await server.store.lookup(id) != nil else { return reply(.notFound) }
        guard await lock(id) else { return reply(Self.locked, body: "a PATCH is in progress") }
        defer { unlock(id) }
        try await server.store.delete(id)
        return reply(.noContent)
    }

    static let checksumMismatch = HTTPResponse.Status(code: 460, reasonPhrase: "Checksum Mismatch")
    static let locked = HTTPResponse.Status(code: 423, reasonPhrase: "Locked")

    private func patch(_ id: String, _ request: Request) async throws -> Response {
        guard request.headers[.contentType] == "application/offset+octet-stream" else {
            return reply(.unsupportedMediaType, body: "PATCH needs Content-Type: application/offset+octet-stream")
        }
        guard let claimed = Self.number(request.headers[.uploadOffset]) else {
            return reply(.badRequest, body: "Upload-Offset is missing or not a non-negative integer")
        }
        guard await lock(id) else {
            return reply(Self.locked, body: "another PATCH to this upload is in progress")
        }
        defer { unlock(id) }
        guard let (info, offset) = try await server.store.lookup(id) else { return reply(.notFound) }
        if info.storedAs == nil && info.expiresAt < Date() {
            try await server.store.delete(id)
            return reply(.gone)
        }
        guard claimed == offset else {
            return reply(.conflict, body: "Upload-Offset \(claimed) does not match the upload's offset \(offset)",
                         headers: [.uploadOffset: "\(offset)"])
        }
        if info.storedAs != nil {
            return reply(.noContent, headers: [.uploadOffset: "\(offset)"])
        }
        switch try await receive(info: info, offset: offset, request: request) {
        case let .refused(response): return response
        case let .offset(newOffset):
            var h = HTTPFields()
            h[.uploadOffset] = "\(newOffset)"
            if newOffset < info.length { h[.uploadExpires] = expires(info) }
            return reply(.noContent, headers: h)
        }
    }

    private enum Received {
        case offset(Int64)
        case refused(Response)
    }

    /// Streams the body into the upload. Without a checksum, bytes are written
    /// as they arrive, so a connection dropped mid-body keeps what came; with
    /// one, the chunk is held until it verifies.
    private func receive(info: UploadInfo, offset: Int64, request: Request) async throws -> Received {
        var expectedChecksum: (String, [UInt8])?
        if let header = request.headers[.uploadChecksum] {
            let parts = header.split(separator: " ")
            guard parts.count == 2, let digest = Data(base64Encoded: String(parts[1])) else {
                return .refused(reply(.badRequest, body: "Upload-Checksum must be '<algorithm> <base64 digest>'"))
            }
            let algo = parts[0].lowercased()
            guard algo == "sha1" || algo == "sha256" else {
                return .refused(reply(.badRequest, body: "unsupported checksum algorithm \(algo); use sha1 or sha256"))
            }
            expectedChecksum = (algo, Array(digest))
        }
        let remaining = info.length - offset
        if let declared = request.headers[.contentLength].flatMap({ Self.number($0) }), declared > remaining {
            return .refused(reply(.contentTooLarge, body: "the body (\(declared) bytes) goes past Upload-Length"))
        }
        var received: Int64 = 0
        var held: [UInt8] = []
        var pending: [UInt8] = []
        var streamError: (any Error)?
        do {
            for try await buffer in request.body {
                received += Int64(buffer.readableBytes)
                if received > remaining {
                    return .refused(reply(.contentTooLarge, body: "the body goes past Upload-Length"))
                }
                if expectedChecksum != nil {
                    if held.count + buffer.readableBytes > server.options.maxChecksummedChunk {
                        return .refused(reply(.contentTooLarge, body: "checksummed chunks are limited to \(server.options.maxChecksummedChunk) bytes"))
                    }
                    held.append(contentsOf: buffer.readableBytesView)
                } else {
                    pending.append(contentsOf: buffer.readableBytesView)
                    if pending.count >= 256 * 1024 {
                        try await server.store.append(info.id, pending)
                        pending.removeAll(keepingCapacity: true)
                    }
                }
            }
        } catch let error as HubError {
            throw error
        } catch {
            // The client went away mid-body: keep what arrived (tus lets the
            // client resume from the offset a later HEAD reports).
            streamError = error
        }
        if let (algo, digest) = expectedChecksum {
            if streamError != nil {
                return .refused(reply(.badRequest, body: "the chunk was cut short"))
            }
            let actual: [UInt8] = algo == "sha1" ? Array(Insecure.SHA1.hash(data: held)) : Array(SHA256.hash(data: held))
            guard actual == digest else {
                return .refused(reply(Self.checksumMismatch, body: "the chunk does not match its \(algo) Upload-Checksum"))
            }
            pending = held
        }
        if !pending.isEmpty { try await server.store.append(info.id, pending) }
        try await server.store.sync(info.id)
        let newOffset = offset + (expectedChecksum != nil ? Int64(held.count) : received)
        if streamError != nil {
            server.logger.notice("PATCH cut short; partial bytes kept", metadata: ["id": "\(info.id)", "offset": "\(newOffset)"])
            return .refused(reply(.badRequest, body: "the request body ended early"))
        }
        if newOffset == info.length {
            switch try await server.store.complete(info) {
            case let .stored(done):
                server.logger.info("upload complete", metadata: ["id": "\(info.id)", "stored_as": "\(done.storedAs ?? "")",
                                                                 "sha256_verified": "\(done.sha256Verified ?? false)"])
                if let rejected = done.rejected {
                    server.logger.warning("stored upload will not be filed", metadata: ["id": "\(info.id)", "reason": "\(rejected)"])
                }
                await server.stored(done)
            case let .alreadyHeld(existing):
                server.logger.info("upload complete; the hub already held the item, kept once", metadata: ["id": "\(info.id)", "held_as": "\(existing.id)"])
            case let .checksumMismatch(expected, actual):
                server.logger.warning("upload discarded: sha256 mismatch", metadata: ["id": "\(info.id)"])
                return .refused(reply(Self.checksumMismatch,
                                      body: "the whole file's sha256 is \(actual) but the metadata says \(expected); the upload was discarded, create a new one"))
            case let .rebuildFailed(reason):
                server.logger.warning("upload discarded: its recompressed file could not be rebuilt", metadata: ["id": "\(info.id)", "reason": "\(reason)"])
                return .refused(reply(Self.checksumMismatch,
                                      body: "the original file could not be rebuilt from the recompressed upload: \(reason); the upload was discarded, send the file as it is"))
            }
        }
        return .offset(newOffset)
    }
}
