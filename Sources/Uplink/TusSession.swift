import Foundation

/// What the station has learnt about one hub, kept from one upload to the
/// next: its capabilities, the chunk size and link estimates it measured, how
/// long to back off, and how it treats a PATCH cut short by a drop.
///
/// `TusClient` keeps this value (behind a mutex, because `status` reads it
/// while an upload runs) and lends it to the upload's `TusSession` for each
/// transition. The session decides with it; the client only stores it. That
/// way every rule is a pure function of (hub, session, event), testable
/// without I/O, while consecutive uploads to the same hub still start from
/// what the earlier ones measured.
struct TusHubState: Sendable, Equatable {
    /// What the hub does with the bytes of a PATCH that a drop cut short,
    /// as the HEAD after the drop showed.
    enum CutPatches: Sendable, Equatable {
        /// No drop seen yet (or none that showed it).
        case unknown
        /// The hub's offset moved past the chunk's start: partial bytes are kept.
        case kept
        /// The hub's offset stayed where the chunk started although bytes
        /// were sent: it throws away a cut PATCH (the tus spec allows it).
        case discarded
    }

    /// From `OPTIONS`; nil until asked.
    var capabilities: TusCapabilities?
    var chunk: AdaptiveChunkController
    var link = LinkEstimate()
    var backoff: Backoff
    /// Whether chunks carry `Upload-Checksum` when the hub offers it.
    /// Cleared for good once a drop cuts a checksummed chunk: the hub must
    /// discard such a chunk whole, while without a checksum it may keep every
    /// byte that arrived. The whole file's sha256 (checked by the hub on
    /// completion) and TLS still protect integrity.
    var chunkChecksums = true
    var cutPatches = CutPatches.unknown

    init(chunk: AdaptiveChunkController, backoff: Backoff) {
        self.chunk = chunk
        self.backoff = backoff
    }
}

/// One call of `TusClient.upload` as a value-type state machine, in the
/// manner of async-http-client's `HTTPRequestStateMachine`: it is told what
/// happened (`receive(_:)`) and answers with the next request to make or the
/// outcome (`Action`). It does no I/O and reads no clock; the client performs
/// the actions, feeds the results back and delivers the `Report`s (events
/// for the caller, notices for the log) the transitions queue.
///
/// Per upload it holds what the hub acknowledged, whether that is still
/// known, how many conflicts or checksum mismatches it met and whether the
/// next drop may be retried at once. Per hub it borrows `hub` (see
/// `TusHubState`).
struct TusSession: Sendable {
    /// The next thing to do.
    enum Action: Sendable, Equatable {
        /// Ask the hub for its capabilities.
        case options
        /// Create the upload; `bodyCount` bytes from the start of the file go
        /// inside the POST (creation-with-upload), with this checksum
        /// algorithm when non-nil.
        case create(bodyCount: Int64, checksum: String?)
        /// Ask the hub for its offset.
        case head
        /// Send `count` bytes from `offset`.
        case patch(offset: Int64, count: Int64, checksum: String?)
        /// Done: hand this to the caller. A `.retry` already carries the
        /// backoff delay.
        case finish(UploadOutcome)
    }

    /// How an exchange went on the wire, for the chunk controller and the
    /// link estimate.
    struct Transfer: Sendable, Equatable {
        /// Body bytes libcurl sent before the answer or the failure.
        var bytesSent: Int64 = 0
        /// From the first byte sent to the end of the exchange.
        var seconds: Double = 0
        /// From the first byte sent to the first byte of the answer; 0 when
        /// there was no answer.
        var firstByte: Double = 0
    }

    enum Event: Sendable, Equatable {
        /// `OPTIONS` told what the hub offers.
        case capabilities(TusCapabilities, Transfer)
        /// The hub answered the request in flight; `TusRules` judged it.
        case answered(TusVerdict, Transfer)
        /// The request failed in transit (reset, stall, refused connection).
        case failed(UplinkError, Transfer)
        /// The station stopped the transfer itself: paused, rate lowered or cancelled.
        case interrupted(AbortReason)
        /// Reading the file for the request failed.
        case sourceFailed(String)
    }

    /// Things worth a log line; the client words and redacts them.
    enum Notice: Sendable, Equatable {
        /// HEAD reported fewer bytes than the hub had acknowledged before.
        case hubLostBytes(acknowledged: Int64, hub: Int64)
        /// A chunk failed after progress; the hub is asked for its offset at once.
        case askingForOffset(reason: String)
        /// A drop cut a checksummed chunk; chunks go without checksums from now on.
        case checksumsDropped
        /// The hub kept none of `sent` bytes of a PATCH at `offset` cut by a
        /// drop after `seconds`; chunks are now at most `nextChunk` bytes.
        case cutChunkDiscarded(offset: Int64, sent: Int64, seconds: Double, nextChunk: Int64)
        /// The hub kept part of a cut PATCH after an earlier one looked discarded.
        case cutChunkKept(offset: Int64, hub: Int64)
        /// A drop cut a chunk to a hub known to discard cut PATCHes; it goes
        /// again from `offset` without a HEAD, in chunks of at most `nextChunk`.
        case resendingCutChunk(offset: Int64, nextChunk: Int64, reason: String)
    }

    enum Report: Sendable, Equatable {
        case event(UploadEvent)
        case notice(Notice)
    }

    /// More conflicts or checksum mismatches than this without progress end
    /// the call with a retry instead of looping against the hub.
    static let maxRecoveries = 3

    /// What the last PATCH that a drop cut short looked like, until the HEAD
    /// after it shows what the hub kept.
    private struct Cut: Sendable, Equatable {
        var offset: Int64
        var count: Int64
        var sent: Int64
        /// How long it had been on its way when the drop came.
        var seconds: Double
        /// The chunk size the chunk was sent with.
        var chunkSize: Int64
    }

    /// The request in flight, which the next event answers.
    private enum Pending: Sendable, Equatable {
        case none
        case options
        case create(bodyCount: Int64, checksum: Bool)
        case head
        case patch(offset: Int64, count: Int64, checksum: Bool)
    }

    var hub: TusHubState
    let size: Int64
    private(set) var url: String?
    /// Every byte before this offset is on the hub (as far as the station knows).
    private(set) var acked: Int64
    /// False when a HEAD must tell the hub's offset before the next PATCH.
    private(set) var offsetKnown: Bool
    /// Conflicts and checksum mismatches since the last acknowledged chunk.
    private(set) var recoveries = 0
    /// Whether the next dropped chunk is followed at once by a HEAD and the
    /// next chunk. A drop after progress is retried at once; only a failure
    /// without progress in between waits for the backoff, so a dead link is
    /// not hammered.
    private(set) var immediateRetry = true
    private var pending = Pending.none
    private var cut: Cut?
    /// The PATCH in flight resends a cut chunk without having asked for the offset.
    private var resentUnasked = false
    private var finished: UploadOutcome?
    private var reports: [Report] = []
    /// A number in [0, 1) for the backoff's jitter; injectable for tests.
    private let jitter: @Sendable () -> Double
    /// Create without a first piece of the file (see `UploadJob.mayBeHeld`).
    private let createEmpty: Bool
    /// The upload names its item (see `UploadJob.namesItem`).
    private let namesItem: Bool

    init(size: Int64, resumeURL: String?, acknowledgedOffset: Int64, hub: TusHubState,
         jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }, createEmpty: Bool = false,
         namesItem: Bool = false) {
        self.size = size
        self.createEmpty = createEmpty
        self.namesItem = namesItem
        self.url = resumeURL
        // With a stored URL the offset comes from the hub; the stored one only
        // tells whether the hub lost bytes since.
        self.acked = resumeURL == nil ? 0 : acknowledgedOffset
        self.offsetKnown = resumeURL == nil
        self.hub = hub
        self.jitter = jitter
    }

    init(job: UploadJob, hub: TusHubState) {
        self.init(size: job.source.size, resumeURL: job.resumeURL, acknowledgedOffset: job.acknowledgedOffset, hub: hub,
                  createEmpty: job.mayBeHeld, namesItem: job.namesItem)
    }

    /// Reports queued by the transitions so far, oldest first; clears them.
    mutating func takeReports() -> [Report] {
        defer { reports = [] }
        return reports
    }

    // MARK: Deciding

    /// The next action from the current state. Safe to call again (e.g. after
    /// a pause) without an event in between.
    mutating func next() -> Action {
        if let finished { return .finish(finished) }
        guard let caps = hub.capabilities else {
            pending = .options
            return .options
        }
        if let max = caps.maxSize, max > 0, size > max {
            return finish(.hold(reason: "the file is \(size) bytes but the hub accepts at most \(max) (Tus-Max-Size)"))
        }
        if recoveries > Self.maxRecoveries {
            return finish(retry(nil, "the hub kept rejecting chunks (conflicts or checksum mismatches)"))
        }
        guard let url else {
            // Create, with a first piece inside when the hub allows it.
            let first = caps.supportsCreationWithUpload && !createEmpty
                ? Self.creationBody(size: size, chunk: hub.chunk.chunkSize, minChunk: hub.chunk.minChunk,
                                    mayComplete: caps.receipts && namesItem)
                : 0
            let algorithm = first > 0 ? checksumAlgorithm(caps) : nil
            pending = .create(bodyCount: first, checksum: algorithm != nil)
            return .create(bodyCount: first, checksum: algorithm)
        }
        if !offsetKnown {
            pending = .head
            return .head
        }
        if acked >= size {
            hub.backoff.reset()
            return finish(.completed(url: url))
        }
        let count = min(size - acked, hub.chunk.chunkSize)
        let algorithm = checksumAlgorithm(caps)
        pending = .patch(offset: acked, count: count, checksum: algorithm != nil)
        return .patch(offset: acked, count: count, checksum: algorithm)
    }

    /// How much of the file goes inside the creating POST (creation-with-upload).
    /// Bytes of a POST cut short are lost whole, because the station never
    /// learns the new upload's URL, so the piece is small (at most
    /// `min_chunk`). It completes the file only when `mayComplete`: an upload
    /// finished by its POST, followed by a power cut before the URL is
    /// stored, is created again after the restart, and only a hub that keeps
    /// one copy per item (one that gives receipts, to an upload that names
    /// its item) answers that creation "held" instead of storing a second
    /// copy. Otherwise the last byte goes by PATCH, to an upload whose URL is
    /// already in the spool. A small file (a preview, a health report) sent
    /// whole in its POST saves that PATCH's round trip.
    static func creationBody(size: Int64, chunk: Int64, minChunk: Int64, mayComplete: Bool = false) -> Int64 {
        if mayComplete && size <= min(chunk, minChunk) { return size }
        return max(0, min(size - 1, chunk, minChunk))
    }

    /// The checksum to send with a chunk: the strongest the hub offers, unless
    /// checksums were dropped, or the hub checks every whole file against
    /// its sha256 before accepting it (a hub that gives receipts does: a
    /// damaged byte is refused with the file, so a per-chunk checksum would
    /// only make a chunk cut by a drop worthless). Tells the chunk controller
    /// whether a cut chunk survives in part: not when it carries a checksum,
    /// nor when the hub was seen to discard cut PATCHes.
    private mutating func checksumAlgorithm(_ caps: TusCapabilities) -> String? {
        let algorithm = hub.chunkChecksums && !caps.receipts ? caps.checksumAlgorithm : nil
        hub.chunk.partialChunksKept = algorithm == nil && hub.cutPatches != .discarded
        return algorithm
    }

    // MARK: Transitions

    /// Feeds what happened to the request in flight; returns the next action.
    mutating func receive(_ event: Event) -> Action {
        if let finished { return .finish(finished) }
        let request = pending
        pending = .none
        if case let .sourceFailed(reason) = event { return finish(.hold(reason: reason)) }
        switch request {
        case .none:
            // Nothing was asked; nothing to learn.
            return next()
        case .options:
            return optionsFinished(event)
        case let .create(bodyCount, checksum):
            return createFinished(event, bodyCount: bodyCount, checksum: checksum)
        case .head:
            return headFinished(event)
        case let .patch(offset, count, checksum):
            return patchFinished(event, offset: offset, count: count, checksum: checksum)
        }
    }

    private mutating func optionsFinished(_ event: Event) -> Action {
        switch event {
        case let .capabilities(caps, transfer):
            hub.link.addRTT(transfer.firstByte)
            hub.capabilities = caps
            return next()
        case let .answered(verdict, transfer):
            hub.link.addRTT(transfer.firstByte)
            return finish(outcome(for: verdict))
        case .interrupted(.cancelled):
            return finish(.cancelled)
        case let .interrupted(reason):
            return finish(retry(nil, UplinkError(.transport, "transfer stopped (\(reason))").description))
        case let .failed(error, _):
            return finish(retry(nil, error.description))
        case .sourceFailed:
            return next()
        }
    }

    private mutating func createFinished(_ event: Event, bodyCount: Int64, checksum: Bool) -> Action {
        switch event {
        case let .answered(verdict, transfer):
            if bodyCount == 0 { hub.link.addRTT(transfer.firstByte) }
            switch verdict {
            case let .created(newURL, offset):
                url = newURL
                reports.append(.event(.created(url: newURL)))
                if offset > acked { immediateRetry = true }
                acked = offset
                offsetKnown = true
                if bodyCount > 0 { chunkSucceeded(bytes: offset, transfer) }
                if offset > 0 { reports.append(.event(.progress(offset: offset))) }
                hub.backoff.observe(offset: offset)
            case .checksumMismatch:
                recoveries += 1
            default:
                return finish(outcome(for: verdict))
            }
        case .interrupted(.cancelled):
            return finish(.cancelled)
        case .interrupted:
            // Paused or throttled: nothing was created that the station knows of; create again.
            break
        case let .failed(error, _):
            if bodyCount > 0 { chunkFailed(lostWithChecksum: checksum) }
            return finish(retry(nil, error.description))
        case .capabilities, .sourceFailed:
            break
        }
        return next()
    }

    private mutating func headFinished(_ event: Event) -> Action {
        switch event {
        case let .answered(verdict, transfer):
            hub.link.addRTT(transfer.firstByte)
            guard case let .offset(offset) = verdict else { return finish(outcome(for: verdict)) }
            if offset < acked {
                // The hub's number is the truth and the source still has the bytes: resend.
                reports.append(.notice(.hubLostBytes(acknowledged: acked, hub: offset)))
            }
            if offset > acked { immediateRetry = true }
            if let cut {
                self.cut = nil
                judgeCutChunk(cut, hubOffset: offset)
            }
            acked = offset
            offsetKnown = true
            reports.append(.event(.progress(offset: offset)))
            hub.backoff.observe(offset: offset)
        case .interrupted(.cancelled):
            return finish(.cancelled)
        case .interrupted:
            break  // ask again once the pause is over
        case let .failed(error, _):
            return finish(retry(nil, error.description))
        case .capabilities, .sourceFailed:
            break
        }
        return next()
    }

    private mutating func patchFinished(_ event: Event, offset: Int64, count: Int64, checksum: Bool) -> Action {
        let unasked = resentUnasked
        resentUnasked = false
        switch event {
        case let .answered(verdict, transfer):
            switch verdict {
            case let .offset(newOffset):
                cut = nil
                chunkSucceeded(bytes: newOffset - acked, transfer)
                if newOffset > acked { immediateRetry = true }
                acked = newOffset
                recoveries = 0
                reports.append(.event(.progress(offset: newOffset)))
                hub.backoff.observe(offset: newOffset)
            case .conflict:
                // The hub's offset is not ours: ask for it.
                recoveries += 1
                offsetKnown = false
            case .checksumMismatch:
                // The chunk arrived damaged and was discarded: send it again.
                recoveries += 1
            case let .retry(_, reason) where unasked:
                // E.g. 423: the hub is still busy with the cut PATCH (it has
                // not seen the drop yet), so it may be keeping its bytes
                // after all. Ask now, as after any drop; the HEAD judges the cut.
                offsetKnown = false
                reports.append(.notice(.askingForOffset(reason: reason)))
            case .retry:
                chunkFailed(lostWithChecksum: false)
                return finish(outcome(for: verdict))
            case .violation:
                offsetKnown = false
                return finish(outcome(for: verdict))
            default:
                return finish(outcome(for: verdict))
            }
        case let .interrupted(reason):
            // Paused or throttled mid-chunk: the hub may have kept part of it.
            offsetKnown = false
            if reason == .cancelled { return finish(.cancelled) }
        case let .failed(error, transfer):
            let chunkSize = hub.chunk.chunkSize
            chunkFailed(lostWithChecksum: checksum)
            guard immediateRetry else { return finish(retry(nil, error.description)) }
            immediateRetry = false
            // A cut chunk with a checksum is discarded by every hub; only one
            // without tells how the hub treats cut PATCHes.
            cut = !checksum && transfer.bytesSent > 0
                ? Cut(offset: offset, count: count, sent: transfer.bytesSent, seconds: transfer.seconds, chunkSize: chunkSize) : nil
            if hub.cutPatches == .discarded, !checksum {
                // This hub throws cut PATCHes away, so its offset is still the
                // chunk's start: the chunk goes again from there without a
                // HEAD first, a round trip saved per drop. Had the hub kept
                // bytes after all (the whole chunk, its answer lost in the
                // drop; or a "discard" that was a chunk still all in buffers
                // when the link cut it), it refuses that PATCH (409, or 423
                // while still busy with the cut one) and the station asks; the
                // cut is kept until then so the HEAD can judge it. Where the
                // hub had nothing, this resend is what a HEAD would have led to.
                if let cut, cut.seconds >= 2 * (hub.link.rtt ?? 0) { cutChunkDiscarded(cut, confirmed: false) }
                reports.append(.notice(.resendingCutChunk(offset: offset, nextChunk: hub.chunk.chunkSize, reason: error.description)))
                resentUnasked = true
                return next()
            }
            offsetKnown = false
            reports.append(.notice(.askingForOffset(reason: error.description)))
        case .capabilities, .sourceFailed:
            break
        }
        return next()
    }

    /// The HEAD after a drop shows what the hub did with the cut chunk.
    ///
    /// Cut within two round trips of its start: bytes sent so early may all
    /// have been in flight (queued in buffers, or thrown away by the reset),
    /// so even a hub that keeps what arrives may have nothing. That proves
    /// nothing either way.
    ///
    /// Offset unmoved although bytes had been on their way longer: the hub
    /// throws away cut PATCHes (allowed by tus; servers that read the whole
    /// body before storing it do so). Every byte of a cut chunk is then lost, as with a
    /// checksummed chunk: the chunk shrinks to half the cut one (and keeps
    /// halving while chunks are cut), and the controller keeps it below the
    /// bytes that typically get through between drops. It grows again as
    /// chunks get through. The shrink earns an immediate retry: the link
    /// works (HEAD just answered) and the next attempt differs; it ends at
    /// `min_chunk`, so a hub that keeps cutting cannot make the station spin.
    ///
    /// Offset moved: the hub keeps what arrived, so a smaller chunk would not
    /// have lost less; nothing shrinks, and an earlier "discarded" verdict
    /// (e.g. after a link whose deep buffer still held every byte of the
    /// cut chunk) is withdrawn.
    private mutating func judgeCutChunk(_ cut: Cut, hubOffset: Int64) {
        if hubOffset > cut.offset {
            if hub.cutPatches == .discarded {
                reports.append(.notice(.cutChunkKept(offset: cut.offset, hub: hubOffset)))
            }
            hub.cutPatches = .kept
        } else if hubOffset == cut.offset, cut.seconds >= 2 * (hub.link.rtt ?? 0) {
            cutChunkDiscarded(cut, confirmed: true)
        }
        // Below the chunk's start the hub lost older bytes: that says nothing about cut chunks either.
    }

    /// Every byte of a cut chunk is lost: the chunk shrinks, and a smaller
    /// chunk than the one that was cut is worth a try at once. `confirmed`:
    /// a HEAD showed the offset unmoved; otherwise the hub is already known
    /// to discard and was not asked.
    private mutating func cutChunkDiscarded(_ cut: Cut, confirmed: Bool) {
        hub.cutPatches = .discarded
        hub.chunk.partialChunksKept = false
        hub.chunk.cutChunkLost(count: cut.count)
        if hub.chunk.chunkSize < cut.chunkSize { immediateRetry = true }
        if confirmed {
            reports.append(.notice(.cutChunkDiscarded(offset: cut.offset, sent: cut.sent, seconds: cut.seconds, nextChunk: hub.chunk.chunkSize)))
        }
    }

    // MARK: Pieces

    private mutating func finish(_ outcome: UploadOutcome) -> Action {
        finished = outcome
        return .finish(outcome)
    }

    private mutating func chunkSucceeded(bytes: Int64, _ transfer: Transfer) {
        hub.link.addThroughput(bytes: bytes, seconds: transfer.seconds)
        hub.chunk.roundTrip = hub.link.rtt
        hub.chunk.rate = hub.link.throughput
        hub.chunk.chunkSucceeded(bytes: bytes, seconds: transfer.seconds)
    }

    /// A chunk failed in transit. When it carried a checksum the hub dropped
    /// all of it; from then on chunks go without checksums so a drop keeps
    /// what got through.
    private mutating func chunkFailed(lostWithChecksum: Bool) {
        hub.chunk.chunkFailed()
        guard lostWithChecksum, hub.chunkChecksums else { return }
        hub.chunkChecksums = false
        hub.chunk.partialChunksKept = hub.cutPatches != .discarded
        reports.append(.notice(.checksumsDropped))
    }

    /// A retry outcome with the backoff's next delay.
    private mutating func retry(_ retryAfter: Double?, _ reason: String) -> UploadOutcome {
        .retry(after: hub.backoff.nextDelay(retryAfter: retryAfter, random: jitter()), reason: reason)
    }

    private mutating func outcome(for verdict: TusVerdict) -> UploadOutcome {
        switch verdict {
        case let .created(url, _): return .completed(url: url)  // not reached: a creation is handled above
        case .offset, .conflict, .checksumMismatch: return retry(nil, "unexpected answer from the hub")
        case .gone: return .urlGone
        case let .hold(reason): return .hold(reason: reason)
        case let .authFailed(status, reason): return .authFailed(status: status, reason: reason)
        case let .retry(retryAfter, reason): return retry(retryAfter, reason)
        case let .violation(reason): return retry(nil, "protocol violation: \(reason)")
        }
    }

    // MARK: OPTIONS

    /// How an `OPTIONS` answer enters the session: capabilities, or the
    /// verdict that ends the call (refused credentials, a busy hub, a server
    /// that is not a usable tus server).
    static func optionsEvent(_ response: TusResponse, _ transfer: Transfer, hubURL: String, now: Date = Date()) -> Event {
        if response.status == 401 || response.status == 403 {
            return .answered(.authFailed(response.status, "the hub refused the station's credentials (\(response.status)); check hub.token_file and the client certificate"), transfer)
        }
        if response.status == 429 || response.status >= 500 {
            return .answered(TusRules.verdict(for: .head(length: 0, acknowledged: 0), response: response, requestURL: hubURL, hubURL: hubURL, now: now), transfer)
        }
        switch TusCapabilities.parse(response) {
        case let .success(caps):
            return .capabilities(caps, transfer)
        case let .failure(error):
            // Not a tus server we can use: a person must change the configuration.
            return error.code == .configuration ? .answered(.hold(error.description), transfer) : .failed(error, transfer)
        }
    }
}
