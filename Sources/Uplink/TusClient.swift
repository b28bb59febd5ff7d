import Config
import Crypto
import Foundation
import Logging

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
/// the persisted URL). Link estimates, the chunk size and the backoff state
/// live here, per hub, so consecutive jobs benefit from what earlier ones
/// measured. Uploads are meant to run one at a time; concurrent calls are
/// serialised on the single connection.
public final class TusClient: Sendable {
    public let hubURL: String
    private let token: String?
    let worker: CurlWorker
    private let state: Locked<State>
    private let control: RateControl
    private let logger: Logger
    private let minChunk: Int64

    struct State {
        var capabilities: TusCapabilities?
        var chunk: AdaptiveChunkController
        var link = LinkEstimate()
        var backoff: Backoff
        var lastError: String?
        /// Whether chunks carry `Upload-Checksum` when the hub offers it.
        /// Cleared for good once a drop cuts a checksummed chunk: the hub
        /// must discard such a chunk whole, while without a checksum it keeps
        /// every byte that arrived. The whole file's sha256 (checked by the
        /// hub on completion) and TLS still protect integrity.
        var chunkChecksums = true
    }

    /// Configures the client from `hub.*` and `uplink.*`; reads the token file.
    public convenience init(config: StationConfig, logger: Logger = Logger(label: "uplink")) throws(UplinkError) {
        guard let url = config.hub.url else {
            throw UplinkError(.configuration, "hub.url is not set", fix: "set hub.url in the station configuration to enable uploads")
        }
        let token: String?
        do { token = try config.hubToken() } catch {
            throw UplinkError(.configuration, error.message, fix: error.nextStep)
        }
        try self.init(hubURL: url, token: token, uplink: config.uplink, caFile: config.hub.caFile,
                      clientCert: config.hub.clientCert, clientKey: config.hub.clientKey, pinSHA256: config.hub.pinSHA256,
                      logger: logger)
    }

    public init(hubURL: String, token: String? = nil, uplink: StationConfig.Uplink = StationConfig().uplink,
                caFile: String? = nil, clientCert: String? = nil, clientKey: String? = nil, pinSHA256: [String] = [],
                backoffBase: Double = 1, logger: Logger = Logger(label: "uplink")) throws(UplinkError) {
        guard let u = URL(string: hubURL), let scheme = u.scheme?.lowercased(), ["http", "https"].contains(scheme), u.host != nil else {
            throw UplinkError(.configuration, "hub.url \(hubURL) is not an http(s) URL", fix: "use e.g. https://hub.example.org/files/")
        }
        if !pinSHA256.isEmpty && scheme != "https" {
            throw UplinkError(.configuration, "hub.pin_sha256 is set but hub.url \(hubURL) is not https, so there is no certificate to pin",
                              fix: "use the hub's https:// address, or remove hub.pin_sha256")
        }
        self.hubURL = hubURL
        self.token = token
        self.logger = logger
        let control = RateControl(maxRate: uplink.maxRate)
        self.control = control
        minChunk = max(1, uplink.minChunk)
        state = Locked(State(chunk: AdaptiveChunkController(uplink: uplink),
                             backoff: Backoff(base: backoffBase, cap: uplink.backoffMax)))
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
            UplinkStatus(link: s.link, chunkSize: s.chunk.chunkSize, maxRate: maxRate, paused: paused,
                         capabilities: s.capabilities, lastError: s.lastError)
        }
    }

    // MARK: Uploading

    /// Delivers `job` to the hub. `events` reports `.created` (persist the URL
    /// now) and `.progress` (bytes the hub acknowledged).
    public func upload(_ job: UploadJob, events: (UploadEvent) -> Void) async -> UploadOutcome {
        let outcome = await run(job, events: events)
        state.withLock { s in
            switch outcome {
            case .completed: s.lastError = nil
            case .cancelled: break
            case let .retry(_, reason), let .hold(reason), let .authFailed(_, reason): s.lastError = reason
            case .urlGone: s.lastError = "the hub no longer has the upload; it starts over"
            }
        }
        return outcome
    }

    private func run(_ job: UploadJob, events: (UploadEvent) -> Void) async -> UploadOutcome {
        let size = job.source.size
        let caps: TusCapabilities
        switch await capabilities() {
        case let .known(c): caps = c
        case let .failed(outcome): return outcome
        }
        if let max = caps.maxSize, max > 0, size > max {
            return .hold(reason: "the file is \(size) bytes but the hub accepts at most \(max) (Tus-Max-Size)")
        }
        var url = job.resumeURL
        var acked = url == nil ? 0 : job.acknowledgedOffset
        var offsetKnown = url == nil
        var recoveries = 0
        // A drop after the hub acknowledged progress is retried at once (a
        // HEAD, then the next chunk); only a failure without progress in
        // between waits for the backoff, so a dead link is not hammered.
        var immediateRetry = true

        while true {
            if Task.isCancelled { return .cancelled }
            if control.snapshot.paused {
                await control.waitWhilePaused()
                continue
            }
            if recoveries > 3 {
                return retryOutcome(nil, "the hub kept rejecting chunks (conflicts or checksum mismatches)")
            }
            guard let uploadURL = url else {
                // Create, with a first piece inside when the hub allows it.
                let first = caps.supportsCreationWithUpload ? Int(Self.creationBody(size: size, chunk: currentChunkSize(), minChunk: minChunk)) : 0
                let body: [UInt8]
                do { body = try job.source.read(at: 0, count: first) } catch { return .hold(reason: describe(error)) }
                var headers = baseHeaders() + ["Upload-Length: \(size)", "Upload-Metadata: \(job.metadata.headerValue)"]
                if first > 0 { headers += chunkHeaders(body, caps) }
                let request = CurlRequest(method: .post, url: hubURL, headers: headers, body: body)
                let kind = TusRequestKind.create(length: size, sent: Int64(body.count))
                switch await exchange(request, kind: kind) {
                case let .verdict(.created(newURL, offset), timings):
                    url = newURL
                    events(.created(url: newURL))
                    if offset > acked { immediateRetry = true }
                    acked = offset
                    offsetKnown = true
                    if first > 0 { recordChunk(bytes: offset, timings: timings) }
                    if offset > 0 { events(.progress(offset: offset)) }
                    noteProgress(offset)
                case .verdict(.checksumMismatch, _):
                    recoveries += 1
                case let .verdict(v, _):
                    return outcome(for: v)
                case let .interrupted(reason):
                    if reason == .cancelled { return .cancelled }
                case let .failed(error):
                    if first > 0 { chunkFailed(lostWithChecksum: hasChecksum(headers)) }
                    return retryOutcome(nil, describe(error))
                }
                continue
            }

            if !offsetKnown {
                let request = CurlRequest(method: .head, url: uploadURL, headers: baseHeaders(), body: nil)
                switch await exchange(request, kind: .head(length: size, acknowledged: acked)) {
                case let .verdict(.offset(offset), _):
                    if offset < acked {
                        logger.warning("the hub reports fewer bytes than it acknowledged before; resending from its offset",
                                       metadata: ["acknowledged": "\(acked)", "hub": "\(offset)"])
                    }
                    if offset > acked { immediateRetry = true }
                    acked = offset
                    offsetKnown = true
                    events(.progress(offset: offset))
                    noteProgress(offset)
                case let .verdict(v, _):
                    return outcome(for: v)
                case let .interrupted(reason):
                    if reason == .cancelled { return .cancelled }
                case let .failed(error):
                    return retryOutcome(nil, describe(error))
                }
                continue
            }

            if acked >= size {
                state.withLock { $0.backoff.reset() }
                return .completed(url: uploadURL)
            }

            let count = Int(min(size - acked, currentChunkSize()))
            let body: [UInt8]
            do { body = try job.source.read(at: acked, count: count) } catch { return .hold(reason: describe(error)) }
            let headers = baseHeaders() + ["Upload-Offset: \(acked)"] + chunkHeaders(body, caps)
            let request = CurlRequest(method: .patch, url: uploadURL, headers: headers, body: body)
            switch await exchange(request, kind: .patch(from: acked, sent: Int64(body.count), length: size)) {
            case let .verdict(.offset(offset), timings):
                recordChunk(bytes: offset - acked, timings: timings)
                if offset > acked { immediateRetry = true }
                acked = offset
                recoveries = 0
                events(.progress(offset: offset))
                noteProgress(offset)
            case .verdict(.conflict, _):
                recoveries += 1
                offsetKnown = false
            case .verdict(.checksumMismatch, _):
                recoveries += 1
            case let .verdict(v, _):
                if case .retry = v { chunkFailed(lostWithChecksum: false) }
                if case .violation = v { offsetKnown = false }
                return outcome(for: v)
            case let .interrupted(reason):
                // Paused or throttled mid-chunk: the hub may have kept part of it.
                offsetKnown = false
                if reason == .cancelled { return .cancelled }
            case let .failed(error):
                chunkFailed(lostWithChecksum: hasChecksum(headers))
                if immediateRetry {
                    immediateRetry = false
                    offsetKnown = false
                    logger.info("chunk interrupted; asking the hub for its offset", metadata: ["reason": "\(redact(describe(error)))"])
                    continue
                }
                return retryOutcome(nil, describe(error))
            }
        }
    }

    // MARK: Pieces

    /// How much of the file goes inside the creating POST (creation-with-upload).
    /// Bytes of a POST cut short are lost whole, because the station never
    /// learns the new upload's URL, so the piece is small (at most
    /// `min_chunk`); and it never completes the file: an upload finished by
    /// its POST, followed by a power cut before the URL is stored, would be
    /// created and delivered a second time after the restart. The last byte
    /// always goes by PATCH, to an upload whose URL is already in the spool.
    static func creationBody(size: Int64, chunk: Int64, minChunk: Int64) -> Int64 {
        max(0, min(size - 1, chunk, minChunk))
    }

    private enum Exchange {
        case verdict(TusVerdict, CurlTimings)
        case interrupted(AbortReason)
        case failed(UplinkError)
    }

    private func exchange(_ request: CurlRequest, kind: TusRequestKind) async -> Exchange {
        let transfer = TransferControl()
        let rate = control.snapshot.maxRate
        switch await worker.perform(request, maxRate: rate, control: transfer) {
        case let .failed(error, _, reason?):
            _ = error
            return .interrupted(reason)
        case let .failed(error, _, nil):
            return .failed(error)
        case let .response(response, timings):
            if request.method == .head || request.method == .options || (request.body?.isEmpty ?? true) {
                let rtt = timings.starttransfer - timings.pretransfer
                state.withLock { $0.link.addRTT(rtt) }
            }
            return .verdict(TusRules.verdict(for: kind, response: response, requestURL: request.url, hubURL: hubURL), timings)
        }
    }

    private enum Discovery {
        case known(TusCapabilities)
        case failed(UploadOutcome)
    }

    private func capabilities() async -> Discovery {
        if let known = state.withLock({ $0.capabilities }) { return .known(known) }
        let request = CurlRequest(method: .options, url: hubURL, headers: baseHeaders(), body: nil)
        let transfer = TransferControl()
        switch await worker.perform(request, maxRate: control.snapshot.maxRate, control: transfer) {
        case .failed(_, _, .cancelled?):
            return .failed(.cancelled)
        case let .failed(error, _, _):
            return .failed(retryOutcome(nil, describe(error)))
        case let .response(response, timings):
            state.withLock { $0.link.addRTT(timings.starttransfer - timings.pretransfer) }
            if response.status == 401 || response.status == 403 {
                return .failed(.authFailed(status: response.status, reason: redact("the hub refused the station's credentials (\(response.status)); check hub.token_file and the client certificate")))
            }
            if response.status == 429 || response.status >= 500 {
                return .failed(outcome(for: TusRules.verdict(for: .head(length: 0, acknowledged: 0), response: response, requestURL: hubURL, hubURL: hubURL)))
            }
            switch TusCapabilities.parse(response) {
            case let .success(caps):
                state.withLock { $0.capabilities = caps }
                return .known(caps)
            case let .failure(error):
                return .failed(error.code == .configuration ? .hold(reason: describe(error)) : retryOutcome(nil, describe(error)))
            }
        }
    }

    func baseHeaders() -> [String] {
        var h = ["Tus-Resumable: 1.0.0"]
        if let token { h.append("Authorization: Bearer \(token)") }
        return h
    }

    /// The checksum to send with a chunk: the strongest the hub offers. A hub
    /// that checks checksums discards a chunk cut short by a drop, so the
    /// chunk controller is told whether partial chunks survive.
    private func checksumAlgorithm(_ caps: TusCapabilities) -> String? {
        state.withLock { s in
            let algorithm = s.chunkChecksums ? caps.checksumAlgorithm : nil
            s.chunk.partialChunksKept = algorithm == nil
            return algorithm
        }
    }

    private func hasChecksum(_ headers: [String]) -> Bool { headers.contains { $0.hasPrefix("Upload-Checksum:") } }

    private func chunkHeaders(_ body: [UInt8], _ caps: TusCapabilities) -> [String] {
        var h = ["Content-Type: application/offset+octet-stream"]
        switch checksumAlgorithm(caps) {
        case "sha256": h.append("Upload-Checksum: sha256 \(Data(SHA256.hash(data: body)).base64EncodedString())")
        case "sha1": h.append("Upload-Checksum: sha1 \(Data(Insecure.SHA1.hash(data: body)).base64EncodedString())")
        default: break
        }
        return h
    }

    private func currentChunkSize() -> Int64 { state.withLock { $0.chunk.chunkSize } }

    private func recordChunk(bytes: Int64, timings: CurlTimings) {
        let seconds = timings.total - timings.pretransfer
        state.withLock { s in
            s.chunk.chunkSucceeded(bytes: bytes, seconds: seconds)
            s.link.addThroughput(bytes: bytes, seconds: seconds)
        }
    }

    /// A chunk failed in transit. When it carried a checksum the hub dropped
    /// all of it; from then on chunks go without checksums so a drop keeps
    /// what got through.
    private func chunkFailed(lostWithChecksum: Bool) {
        let first = state.withLock { s -> Bool in
            s.chunk.chunkFailed()
            guard lostWithChecksum, s.chunkChecksums else { return false }
            s.chunkChecksums = false
            s.chunk.partialChunksKept = true
            return true
        }
        if first {
            logger.notice("the link cut a checksummed chunk, which the hub must discard whole; sending chunks without Upload-Checksum from now on (the hub still verifies the whole file's sha256)")
        }
    }
    private func noteProgress(_ offset: Int64) { state.withLock { $0.backoff.observe(offset: offset) } }

    private func retryOutcome(_ retryAfter: Double?, _ reason: String) -> UploadOutcome {
        let delay = state.withLock { $0.backoff.nextDelay(retryAfter: retryAfter) }
        return .retry(after: delay, reason: redact(reason))
    }

    private func outcome(for verdict: TusVerdict) -> UploadOutcome {
        switch verdict {
        case let .created(url, _): return .completed(url: url)  // not reached: handled by the caller
        case .offset, .conflict, .checksumMismatch: return retryOutcome(nil, "unexpected answer from the hub")
        case .gone: return .urlGone
        case let .hold(reason): return .hold(reason: redact(reason))
        case let .authFailed(status, reason): return .authFailed(status: status, reason: redact(reason))
        case let .retry(retryAfter, reason): return retryOutcome(retryAfter, reason)
        case let .violation(reason): return retryOutcome(nil, "protocol violation: \(reason)")
        }
    }

    private func describe(_ error: any Error) -> String {
        redact((error as? UplinkError)?.description ?? "\(error)")
    }

    /// Removes the token from text that came from the hub or from libcurl.
    private func redact(_ s: String) -> String {
        guard let token, !token.isEmpty else { return s }
        return s.replacingOccurrences(of: token, with: "[token]")
    }
}

/// Rate cap and pause flag, read by the curl thread's progress callback.
final class RateControl: Sendable {
    private let state: Locked<(maxRate: Int64, paused: Bool)>

    init(maxRate: Int64) { state = Locked((max(0, maxRate), false)) }

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

/// A value behind a lock, for state shared with the curl thread.
/// `@unchecked Sendable`: `value` is only reached inside `withLock`.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
