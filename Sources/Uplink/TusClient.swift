import Basics
import Config
import Crypto
import Foundation
import Logging
import Synchronization

/// What the daemon shows about the uplink in `status` and `diagnose`.
public struct UplinkStatus: Sendable, Equatable {
    public var link: LinkEstimate
    public var chunkSize: Int64
    public var maxRate: Int64
    public var paused: Bool
    public var capabilities: TusCapabilities?
    /// The most recent failure, token-free; nil after a success.
    public var lastError: String?
}

/// A tus 1.0 client for one hub over libcurl.
///
/// `upload` drives one job as far as the link allows and returns an outcome;
/// the caller owns the retry loop (sleep `retry(after:)`, then call again with
/// the persisted URL). The tus rules live in `TusSession`, a value that turns
/// events into actions; this class performs the actions (reads the file,
/// talks to the hub) and feeds the results back. What the session learns
/// about the hub (capabilities, chunk size, link estimates, backoff, how it
/// treats cut chunks) is kept here per hub in a `TusHubState`, so consecutive
/// jobs benefit from what earlier ones measured. Uploads are meant to run one
/// at a time; concurrent calls are serialised on the single connection.
public final class TusClient: Sendable {
    public let hubURL: String
    private let token: String?
    let worker: CurlWorker
    private let state: Mutex<State>
    private let control: RateControl
    private let logger: Logger

    struct State: Sendable {
        var hub: TusHubState
        var lastError: String?
    }

    /// Configures the client from `hub.*` and `uplink.*`; reads the token file.
    public convenience init(config: StationConfig, logger: Logger = Logger(label: "uplink")) throws(UplinkError) {
        guard let url = config.hub.url else {
            throw UplinkError(.configuration, "hub.url is not set", nextStep: "set hub.url in the station configuration to enable uploads")
        }
        let token: String?
        do { token = try config.hubToken() } catch {
            throw UplinkError(.configuration, error.message, nextStep: error.nextStep)
        }
        try self.init(hubURL: url, token: token, uplink: config.uplink, caFile: config.hub.caFile,
                      clientCert: config.hub.clientCert, clientKey: config.hub.clientKey, pinSHA256: config.hub.pinSHA256,
                      logger: logger)
    }

    public init(hubURL: String, token: String? = nil, uplink: StationConfig.Uplink = StationConfig().uplink,
                caFile: String? = nil, clientCert: String? = nil, clientKey: String? = nil, pinSHA256: [String] = [],
                backoffBase: Double = 1, logger: Logger = Logger(label: "uplink")) throws(UplinkError) {
        guard let u = URL(string: hubURL), let scheme = u.scheme?.lowercased(), ["http", "https"].contains(scheme), u.host != nil else {
            throw UplinkError(.configuration, "hub.url \(hubURL) is not an http(s) URL", nextStep: "use e.g. https://hub.example.org/files/")
        }
        if !pinSHA256.isEmpty && scheme != "https" {
            throw UplinkError(.configuration, "hub.pin_sha256 is set but hub.url \(hubURL) is not https, so there is no certificate to pin",
                              nextStep: "use the hub's https:// address, or remove hub.pin_sha256")
        }
        self.hubURL = hubURL
        self.token = token
        self.logger = logger
        let control = RateControl(maxRate: uplink.maxRate)
        self.control = control
        state = Mutex(State(hub: TusHubState(chunk: AdaptiveChunkController(uplink: uplink),
                                             backoff: Backoff(base: backoffBase, cap: uplink.backoffMax))))
        let settings = CurlSettings(caFile: caFile, clientCert: clientCert, clientKey: clientKey,
                                    pinnedKeys: PinSHA256.curlValue(pinSHA256), stallTimeout: uplink.stallTimeout, connectTimeout: min(uplink.stallTimeout, 60))
        worker = try CurlWorker(settings: settings) { startedWith in control.abortReason(startedWith: startedWith) }
    }

    deinit { worker.shutdown() }

    // MARK: Runtime rate control (safe to call while an upload runs)

    /// Caps upload bandwidth; 0 lifts the cap. A lower cap interrupts the
    /// chunk in flight (the hub keeps what it received) so it applies at once.
    public func setMaxRate(_ bytesPerSecond: Int64) { control.setMaxRate(bytesPerSecond) }
    /// Stops sending within about a second, e.g. during a live video consultation.
    public func pause() { control.setPaused(true) }
    public func resume() { control.setPaused(false) }

    public var status: UplinkStatus {
        let (maxRate, paused) = control.snapshot
        return state.withLock { s in
            UplinkStatus(link: s.hub.link, chunkSize: s.hub.chunk.chunkSize, maxRate: maxRate, paused: paused,
                         capabilities: s.hub.capabilities, lastError: s.lastError)
        }
    }

    /// What the client knows about the hub now.
    var hubState: TusHubState { state.withLock { $0.hub } }

    // MARK: Uploading

    /// Delivers `job` to the hub. `events` reports `.created` (persist the URL
    /// now) and `.progress` (bytes the hub acknowledged).
    /// If `events` throws (the caller could not record the URL or the
    /// progress durably), the upload stops at once with `.recordFailed`:
    /// sending on would risk a second upload of the same file after a restart.
    public func upload(_ job: UploadJob, events: (UploadEvent) async throws -> Void) async -> UploadOutcome {
        let outcome = redact(await run(job, events: events))
        state.withLock { s in
            switch outcome {
            case .completed: s.lastError = nil
            case .cancelled: break
            case let .retry(_, reason), let .hold(reason), let .authFailed(_, reason), let .recordFailed(reason): s.lastError = reason
            case .urlGone: s.lastError = "the hub no longer has the upload; it starts over"
            }
        }
        return outcome
    }

    /// Performs the session's actions until it finishes. Cancellation and
    /// pauses are checked before every request, not before an outcome.
    private func run(_ job: UploadJob, events: (UploadEvent) async throws -> Void) async -> UploadOutcome {
        var session = state.withLock { TusSession(job: job, hub: $0.hub) }
        // One transition: the session works on the hub state as it is now
        // (another upload may have changed it) and leaves its changes there.
        // Its events go to the caller before the next request is made.
        func step(_ transition: (inout TusSession) -> TusSession.Action) async -> TusSession.Action {
            let (action, reports) = state.withLock { s in
                session.hub = s.hub
                let action = transition(&session)
                s.hub = session.hub
                return (action, session.takeReports())
            }
            for report in reports {
                switch report {
                case let .event(e):
                    do { try await events(e) } catch {
                        return .finish(.recordFailed(reason: "cannot record the upload's state in the queue: \(error)"))
                    }
                case let .notice(n): log(n)
                }
            }
            return action
        }

        var action = await step { $0.next() }
        while true {
            if case let .finish(outcome) = action { return outcome }
            if Task.isCancelled { return .cancelled }
            if control.snapshot.paused {
                await control.waitWhilePaused()
                action = await step { $0.next() }
                continue
            }
            let event = await perform(action, job: job, acknowledged: session.acked, url: session.url)
            action = await step { $0.receive(event) }
        }
    }

    /// Reads a piece of the file and its chunk headers on the blocking pool:
    /// reading, decrypting and hashing a chunk never occupy the cooperative pool.
    private func prepare(_ job: UploadJob, at offset: Int64, count: Int64,
                         checksum: String?) async -> Result<(body: [UInt8], headers: [String]), UplinkError> {
        let source = job.source
        do {
            return .success(try await Blocking.run { () throws -> (body: [UInt8], headers: [String]) in
                let body = try source.read(at: offset, count: Int(count))
                return (body, body.isEmpty ? [] : Self.chunkHeaders(body, checksum))
            })
        } catch {
            return .failure(UplinkError(.source, describe(error)))
        }
    }

    /// Does what `action` asks on the wire and says how it went.
    private func perform(_ action: TusSession.Action, job: UploadJob, acknowledged: Int64, url: String?) async -> TusSession.Event {
        let size = job.source.size
        switch action {
        case .finish:
            preconditionFailure("a finished session has nothing to perform")
        case .options:
            let request = CurlRequest(method: .options, url: hubURL, headers: baseHeaders(), body: nil)
            switch await worker.perform(request, maxRate: control.snapshot.maxRate, control: TransferControl()) {
            case let .failed(_, _, reason?): return .interrupted(reason)
            case let .failed(error, timings, nil): return .failed(error, Self.transfer(failed: timings))
            case let .response(response, timings):
                return TusSession.optionsEvent(response, Self.transfer(timings), hubURL: hubURL)
            }
        case let .create(count, checksum):
            let body: [UInt8], chunk: [String]
            switch await prepare(job, at: 0, count: count, checksum: checksum) {
            case let .success(p): (body, chunk) = p
            case let .failure(error): return .sourceFailed(error.message)
            }
            let headers = baseHeaders() + ["Upload-Length: \(size)", "Upload-Metadata: \(job.metadata.headerValue)"] + chunk
            let request = CurlRequest(method: .post, url: hubURL, headers: headers, body: body)
            return await exchange(request, kind: .create(length: size, sent: Int64(body.count)))
        case .head:
            guard let url else { preconditionFailure("HEAD before the upload exists") }
            let request = CurlRequest(method: .head, url: url, headers: baseHeaders(), body: nil)
            return await exchange(request, kind: .head(length: size, acknowledged: acknowledged))
        case let .patch(offset, count, checksum):
            guard let url else { preconditionFailure("PATCH before the upload exists") }
            let body: [UInt8], chunk: [String]
            switch await prepare(job, at: offset, count: count, checksum: checksum) {
            case let .success(p): (body, chunk) = p
            case let .failure(error): return .sourceFailed(error.message)
            }
            let headers = baseHeaders() + ["Upload-Offset: \(offset)"] + chunk
            let request = CurlRequest(method: .patch, url: url, headers: headers, body: body)
            return await exchange(request, kind: .patch(from: offset, sent: Int64(body.count), length: size))
        }
    }

    private func exchange(_ request: CurlRequest, kind: TusRequestKind) async -> TusSession.Event {
        switch await worker.perform(request, maxRate: control.snapshot.maxRate, control: TransferControl()) {
        case let .failed(_, _, reason?):
            return .interrupted(reason)
        case let .failed(error, timings, nil):
            return .failed(error, Self.transfer(failed: timings))
        case let .response(response, timings):
            let verdict = TusRules.verdict(for: kind, response: response, requestURL: request.url, hubURL: hubURL)
            return .answered(verdict, Self.transfer(timings))
        }
    }

    private static func transfer(_ t: CurlTimings) -> TusSession.Transfer {
        TusSession.Transfer(bytesSent: t.uploaded, seconds: t.total - t.pretransfer, firstByte: t.starttransfer - t.pretransfer)
    }

    /// No answer, so no round-trip time to learn from; how long the body was
    /// on its way comes from the station's clock (see `CurlTimings.sending`).
    private static func transfer(failed t: CurlTimings) -> TusSession.Transfer {
        TusSession.Transfer(bytesSent: t.uploaded, seconds: t.sending ?? (t.total - t.pretransfer), firstByte: 0)
    }

    private func log(_ notice: TusSession.Notice) {
        switch notice {
        case let .hubLostBytes(acknowledged, hub):
            logger.warning("the hub reports fewer bytes than it acknowledged before; resending from its offset",
                           metadata: ["acknowledged": "\(acknowledged)", "hub": "\(hub)"])
        case let .askingForOffset(reason):
            logger.info("chunk interrupted; asking the hub for its offset", metadata: ["reason": "\(redact(reason))"])
        case .checksumsDropped:
            logger.notice("the link cut a checksummed chunk, which the hub must discard whole; sending chunks without Upload-Checksum from now on (the hub still verifies the whole file's sha256)")
        case let .cutChunkDiscarded(offset, sent, seconds, next):
            logger.notice("the hub kept none of a chunk the link cut short (its offset stayed at \(offset) after \(sent) bytes were sent for \(String(format: "%.2f", seconds)) s); sending chunks of at most \(next) bytes until they get through",
                          metadata: ["offset": "\(offset)", "sent": "\(sent)", "seconds": "\(seconds)", "chunk": "\(next)"])
        case let .resendingCutChunk(offset, next, reason):
            logger.info("chunk interrupted; this hub throws cut chunks away, so it goes again from offset \(offset) in chunks of at most \(next) bytes without asking for the offset",
                        metadata: ["offset": "\(offset)", "chunk": "\(next)", "reason": "\(redact(reason))"])
        case let .cutChunkKept(offset, hub):
            logger.info("the hub kept part of a chunk the link cut short; cut chunks are no longer taken as lost",
                        metadata: ["offset": "\(offset)", "hub": "\(hub)"])
        }
    }

    // MARK: Receipts

    /// Whether the hub gives receipts (see `Receipt`), from its OPTIONS
    /// answer; asks once when no upload has asked yet. nil: not reachable.
    public func hubGivesReceipts() async -> Bool? {
        await hubCapabilities()?.receipts
    }

    /// What the hub's OPTIONS answer offers; asks once when no upload has
    /// asked yet. nil: not reachable, or not a tus server.
    public func hubCapabilities() async -> TusCapabilities? {
        if let known = state.withLock({ $0.hub.capabilities }) { return known }
        let request = CurlRequest(method: .options, url: hubURL, headers: baseHeaders(), body: nil)
        guard case let .response(response, _) = await worker.perform(request, maxRate: control.snapshot.maxRate, control: TransferControl()),
              case let .success(capabilities) = TusCapabilities.parse(response) else { return nil }
        state.withLock { $0.hub.capabilities = capabilities }
        return capabilities
    }

    /// Asks the hub whether the upload at `uploadURL` is filed.
    public func receipt(for uploadURL: String) async -> Receipt {
        let url = uploadURL.hasSuffix("/") ? uploadURL + "receipt" : uploadURL + "/receipt"
        let request = CurlRequest(method: .get, url: url, headers: baseHeaders(), body: nil)
        switch await worker.perform(request, maxRate: control.snapshot.maxRate, control: TransferControl()) {
        case let .failed(error, _, _): return .unavailable(reason: describe(error))
        case let .response(response, _):
            switch Receipt.parse(response) {
            case let .filed(place, detail): return .filed(where: place, detail: redact(detail))
            case let .pending(detail): return .pending(detail: redact(detail))
            case let .rejected(detail): return .rejected(detail: redact(detail))
            case .unknownUpload: return .unknownUpload
            case let .unavailable(reason): return .unavailable(reason: redact(reason))
            }
        }
    }

    // MARK: Replies

    /// Replies about this station's cases after `since`, from the hub's
    /// replies endpoint (nil path: the hub has none, or is not known yet).
    public func replies(station: String, since: Int) async -> Result<[HubReply], UplinkError> {
        guard let path = status.capabilities?.repliesPath, var url = URLComponents(string: hubURL) else {
            return .success([])
        }
        url.path = path
        url.queryItems = [URLQueryItem(name: "station", value: station), URLQueryItem(name: "since", value: "\(since)")]
        guard let target = url.string else { return .success([]) }
        let request = CurlRequest(method: .get, url: target, headers: baseHeaders(), body: nil)
        switch await worker.perform(request, maxRate: control.snapshot.maxRate, control: TransferControl()) {
        case let .failed(error, _, _): return .failure(UplinkError(.transport, describe(error)))
        case let .response(response, _):
            guard response.status == 200 else {
                return .failure(UplinkError(.protocolViolation, redact("the hub answered \(response.status) for its replies: \(response.bodySnippet)")))
            }
            return HubReply.parse(response.body)
        }
    }

    // MARK: Pieces

    func baseHeaders() -> [String] {
        var h = ["Tus-Resumable: 1.0.0"]
        if let token { h.append("Authorization: Bearer \(token)") }
        return h
    }

    private static func chunkHeaders(_ body: [UInt8], _ algorithm: String?) -> [String] {
        var h = ["Content-Type: application/offset+octet-stream"]
        switch algorithm {
        case "sha256": h.append("Upload-Checksum: sha256 \(Data(SHA256.hash(data: body)).base64EncodedString())")
        case "sha1": h.append("Upload-Checksum: sha1 \(Data(Insecure.SHA1.hash(data: body)).base64EncodedString())")
        default: break
        }
        return h
    }

    private func describe(_ error: any Error) -> String {
        redact((error as? UplinkError)?.description ?? "\(error)")
    }

    /// Removes the token from text that came from the hub or from libcurl.
    private func redact(_ s: String) -> String {
        guard let token, !token.isEmpty else { return s }
        return s.replacingOccurrences(of: token, with: "[token]")
    }

    private func redact(_ outcome: UploadOutcome) -> UploadOutcome {
        switch outcome {
        case let .retry(after, reason): .retry(after: after, reason: redact(reason))
        case let .hold(reason): .hold(reason: redact(reason))
        case let .authFailed(status, reason): .authFailed(status: status, reason: redact(reason))
        case let .recordFailed(reason): .recordFailed(reason: redact(reason))
        case .completed, .urlGone, .cancelled: outcome
        }
    }
}

/// Rate cap and pause flag, read by the curl thread's progress callback.
final class RateControl: Sendable {
    private let state: Mutex<(maxRate: Int64, paused: Bool)>

    init(maxRate: Int64) { state = Mutex((max(0, maxRate), false)) }

    var snapshot: (maxRate: Int64, paused: Bool) { state.withLock { $0 } }
    func setMaxRate(_ r: Int64) { state.withLock { $0.maxRate = max(0, r) } }
    func setPaused(_ p: Bool) { state.withLock { $0.paused = p } }

    /// Why a transfer that started with `startedWith` bytes/s should stop now.
    func abortReason(startedWith: Int64) -> AbortReason? {
        let (rate, paused) = snapshot
        if paused { return .paused }
        if rate > 0 && (startedWith == 0 || rate < startedWith) { return .rateLowered }
        return nil
    }

    func waitWhilePaused() async {
        while snapshot.paused && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}
