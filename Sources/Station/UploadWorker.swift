import Basics
import Config
import Foundation
import Logging
import Recompression
import Spool
import Synchronization
import Uplink

/// Moves queued items from the spool to the hub: claims the next item in
/// upload order, hands it to the tus client, and records every answer in the
/// spool so that a crash or power cut resumes where the hub left off.
/// Used by `telestation sync` in the foreground and by the daemon's upload
/// service in the background; the spool's leases keep the two from sending
/// the same item at once.
public final class UploadWorker: Sendable {
    public let spool: Spool
    public let client: TusClient
    let station: String
    let owner: String
    let leaseSeconds: Double
    let authBackoff: Double
    let logger: Logger
    /// What is sent for each item: its file, the transform's object (a
    /// DICOM object around the JPEG), recompressed for a hub that rebuilds.
    let preparation: UploadPreparation
    /// The keys for bundles on a stick: the worker tells the hub the station's
    /// signing key and keeps the hub's public keys when it learns them.
    let stickKeys: StickKeys?
    /// Where the hub's replies about cases are kept (nil: not fetched).
    let replies: ReplyStore?

    /// What is sent for an item when it is not its own file. Must be the
    /// same bytes every time it is made for the item (an upload interrupted
    /// by a power cut resumes with what the hub already has).
    public struct Prepared: Sendable {
        public var bytes: [UInt8]
        public var filename: String
        public var filetype: String
        public var extra: [(String, String)]
        /// Where the camera's JPEG lies in `bytes`, when it is there unchanged
        /// as one run of bytes (a DICOM object's fragment): what may be recompressed.
        public var jpegRange: Range<Int>?
        /// The SHA-256 the hub checks: of the file it stores. nil: of `bytes`.
        /// Differs when `bytes` is a recompressed body (`RecompressedFile`).
        public var sha256: String?
        /// `bytes` is a recompressed body the hub rebuilds.
        public var recompressed = false

        public init(bytes: [UInt8], filename: String, filetype: String, extra: [(String, String)] = [], jpegRange: Range<Int>? = nil) {
            self.bytes = bytes
            self.filename = filename
            self.filetype = filetype
            self.extra = extra
            self.jpegRange = jpegRange
        }
    }

    /// nil: send the item's file. Runs on the blocking pool.
    public typealias Transform = @Sendable (SpoolItem, Spool) throws -> Prepared?
    private let state = Mutex(State())
    private let wakeups = Mutex<[UUID: CheckedContinuation<Void, Never>]>([:])

    struct State {
        /// Called at each acknowledged chunk: the daemon's watchdog sees a
        /// long upload alive, and a stalled one not.
        var activity: (@Sendable () -> Void)?
        var current: Current?
        var hubProblem: HubProblem?
        var lastError: String?
        /// The hub is not contacted before this time: set by a failure the
        /// backoff policy spaces out, cleared by a delivery.
        var hubNotBefore: Date?
        /// The last failure to record upload state in the queue; cleared by
        /// the next write that works.
        var queueError: String?
    }

    /// The item being sent right now.
    public struct Current: Sendable, Equatable {
        public var id: Int64
        public var offset: Int64
        /// Bytes this upload sends: the file, its DICOM object, or the
        /// recompressed body, which `offset` counts in.
        public var size: Int64
    }

    /// A problem with the hub a person must act on.
    public enum HubProblem: Sendable, Equatable {
        case rejectedToken(status: Int)
    }

    /// What one step did.
    public enum Step: Sendable, Equatable {
        case uploaded(id: Int64)
        /// The item goes back to the queue to be retried at this time.
        case willRetry(id: Int64, at: Date, reason: String)
        case held(id: Int64, reason: String)
        /// Nothing is ready to send; the earliest retry, if any item waits for one.
        case idle(nextRetry: Date?)
        case stopped
    }

    public init(spool: Spool, client: TusClient, station: String, owner: String = UploadWorker.defaultOwner(),
                leaseSeconds: Double = 300, authBackoff: Double = 600, transform: Transform? = nil,
                recompress: Bool = false, stickKeys: StickKeys? = nil, replies: ReplyStore? = nil,
                logger: Logger = Logger(label: "telestation.upload")) {
        self.stickKeys = stickKeys
        self.replies = replies
        self.preparation = UploadPreparation(policy: .init(enabled: recompress), transform: transform, logger: logger)
        self.spool = spool
        self.client = client
        self.station = station
        self.owner = owner
        self.leaseSeconds = leaseSeconds
        self.authBackoff = authBackoff
        self.logger = logger
    }

    /// `host/pid@boot`: the boot id tells a claimant of an earlier boot from
    /// a process of this one. Pids repeat from boot to boot (a station starts
    /// the same services in the same order), so without it the upload a power
    /// cut interrupted looked claimed by a running process, often the new
    /// daemon itself, and waited out its whole lease.
    public static func defaultOwner() -> String {
        "\(ProcessInfo.processInfo.hostName)/\(getpid())" + (currentBootID().map { "@\($0)" } ?? "")
    }

    /// The kernel's id of the running boot, or nil where there is none
    /// (then owners are `host/pid`, judged by the pid alone).
    static func currentBootID() -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/sys/kernel/random/boot_id"),
              let text = String(data: data, encoding: .utf8) else { return nil }
        let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return id.isEmpty ? nil : id
    }

    /// Whether a lease owner (`host/pid` or `host/pid@boot`, see
    /// `defaultOwner`) is a process on this host that no longer runs: one of
    /// an earlier boot, or of this boot whose pid is gone. Owners on other
    /// hosts, or of this boot whose pid runs, keep their lease until it expires.
    static func ownerIsGone(_ owner: String, host: String, bootID: String? = currentBootID(),
                            isRunning: (Int32) -> Bool) -> Bool {
        guard let slash = owner.lastIndex(of: "/"), owner[..<slash] == host else { return false }
        let claimant = owner[owner.index(after: slash)...].split(separator: "@", maxSplits: 1,
                                                                 omittingEmptySubsequences: false)
        guard let pid = Int32(claimant[0]), pid > 0 else { return false }
        if claimant.count == 2, let bootID, !claimant[1].isEmpty, claimant[1] != bootID {
            return true
        }
        return !isRunning(pid)
    }

    static func processRuns(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }

    /// Takes back items an earlier process of this station left leased when
    /// it was killed, so a restart resumes them at once.
    public func reclaimAbandoned() async {
        let host = ProcessInfo.processInfo.hostName
        do {
            let boot = Self.currentBootID()
            let ids = try await spool.perform {
                try $0.releaseAbandonedLeases { Self.ownerIsGone($0, host: host, bootID: boot, isRunning: Self.processRuns) }
            }
            if !ids.isEmpty { logger.notice("resuming \(ids.count) upload(s) left unfinished by a stopped process", metadata: ["items": "\(ids)"]) }
        } catch {
            logger.error("cannot release the uploads of a stopped process: \(error)")
        }
    }

    public var current: Current? { state.withLock { $0.current } }
    public var hubProblem: HubProblem? { state.withLock { $0.hubProblem } }
    public var lastError: String? { state.withLock { $0.lastError } }
    /// Why the upload state could not be recorded, while that lasts.
    public var queueError: String? { state.withLock { $0.queueError } }

    /// Claims one item and sends it as far as the link allows.
    public func step(now: Date = Date()) async -> Step {
        if Task.isCancelled { return .stopped }
        // A hub that answered 429/5xx or could not be reached is left alone
        // for the whole backoff, not asked again for each queued item: after
        // an outage with a long queue that would be a burst of requests.
        if let gate = state.withLock({ $0.hubNotBefore }), gate > now {
            return .idle(nextRetry: gate)
        }
        let claimed: SpoolItem?
        do {
            claimed = try await spool.perform { [owner, leaseSeconds] in try $0.claimNext(owner: owner, leaseSeconds: leaseSeconds, now: now) }
        } catch {
            logger.error("cannot read the queue: \(error)")
            state.withLock { $0.lastError = "\(error)"; $0.queueError = "cannot claim the next item: \(error)" }
            return .idle(nextRetry: now.addingTimeInterval(30))
        }
        guard let item = claimed else { return .idle(nextRetry: await nextRetry()) }
        return await send(item)
    }

    private func send(_ item: SpoolItem) async -> Step {
        let source: any UploadSource
        var prepared: Prepared?
        let hubRebuilds = hubRebuilds()
        do {
            prepared = try await preparation.prepared(for: item, spool: spool, hubRebuilds: hubRebuilds)
            if let prepared {
                source = MemoryUploadSource(prepared.bytes)
            } else {
                source = try await spool.perform { try $0.uploadSource(for: item) }
            }
        } catch {
            let failedCheck = (error as? SpoolError)?.code == .integrity
            let reason = failedCheck ? "its file failed the integrity check: \(error)" : "its file cannot be read: \(error)"
            do {
                try await persist("hold item \(item.id)") { try $0.hold(id: item.id, reason: reason) }
            } catch {
                return .willRetry(id: item.id, at: Date().addingTimeInterval(leaseSeconds), reason: "\(error)")
            }
            logger.error("item \(item.id) held: \(reason)")
            return .held(id: item.id, reason: reason)
        }
        let metadata = Self.metadata(for: item, station: station, prepared: prepared,
                                     stationKey: try? stickKeys?.signingKey().publicKeyBase64)
        let job = UploadJob(source: source, metadata: metadata, resumeURL: item.uploadURL, acknowledgedOffset: item.ackedOffset,
                            mayBeHeld: stickKeys?.wasExported(item.itemName) ?? false)
        state.withLock { $0.current = Current(id: item.id, offset: item.ackedOffset, size: source.size) }
        defer { state.withLock { $0.current = nil } }
        let resume = item.uploadURL != nil ? " from offset \(item.ackedOffset)" : ""
        logger.info("uploading item \(item.id) (\(item.kind.rawValue), case \(item.metadata.caseID), \(Units.formatBytes(item.size)))\(resume)")

        // The next item is made ready while this one is on the wire.
        if preparation.policy.enabled && hubRebuilds,
           let next = try? await spool.perform({ try $0.nextDue(now: Date()) }), next.id != item.id {
            preparation.prefetch(next, spool: spool, hubRebuilds: hubRebuilds)
        }
        let outcome = await client.upload(job) { event in
            switch event {
            case let .created(url):
                // Durable before the first PATCH: after a power cut the upload resumes at this URL.
                // If it cannot be recorded the client stops, so no second upload is ever started.
                try await persist("record the upload URL of item \(item.id)") { [owner] in
                    try $0.recordUploadURL(id: item.id, url: url, owner: owner, length: source.size)
                }
            case let .progress(offset):
                let activity = state.withLock { s -> (@Sendable () -> Void)? in
                    s.current?.offset = offset
                    return s.activity
                }
                activity?()
                try await persist("record the progress of item \(item.id)") { [owner, leaseSeconds] in
                    try $0.recordOffset(id: item.id, offset: offset, owner: owner)
                    try $0.renewLease(id: item.id, owner: owner, leaseSeconds: leaseSeconds)
                }
            }
        }
        // Previews are for triage and health reports for the operators; neither is
        // filed, so only images wait for a receipt.
        let receipts = item.kind == .image && (client.status.capabilities?.receipts ?? false)
        let plan = Self.plan(for: outcome, item: item.id, now: Date(), authBackoff: authBackoff, receipts: receipts)
        if let command = plan.command {
            do {
                try await persist("record the result of item \(item.id)") { [owner] spool in
                    try Self.apply(command, to: spool, item: item.id, owner: owner)
                }
            } catch {
                // The hub's answer is not recorded; the item stays leased and is
                // claimed again when its lease runs out. A completed upload is
                // then found complete by HEAD, never sent twice.
                let retryAt = Date().addingTimeInterval(leaseSeconds)
                return .willRetry(id: item.id, at: retryAt, reason: "cannot record the upload's result in the queue: \(error)")
            }
        }
        state.withLock { s in
            switch plan.change {
            case .none: break
            case .delivered: s.lastError = nil; s.hubProblem = nil; s.hubNotBefore = nil
            case let .error(reason): s.lastError = reason
            case let .hubFailure(reason, notBefore, problem): s.lastError = reason; s.hubProblem = problem; s.hubNotBefore = notBefore
            }
        }
        if let header = client.status.capabilities?.hubKeys, let stickKeys {
            stickKeys.remember(header, logger: logger)
        }
        if case .cancelled = outcome {} else {
            let discarded = if case .urlGone = outcome { true } else { false }
            preparation.finished(item, discarded: discarded, wasRecompressed: prepared?.recompressed ?? false)
        }
        switch outcome {
        case .completed: logger.info("item \(item.id) uploaded and confirmed by the hub")
        case let .retry(after, reason): logger.warning("item \(item.id): \(reason); retrying in \(Units.formatDuration(after))")
        case let .hold(reason): logger.error("item \(item.id) held for a technician: \(reason)")
        case let .authFailed(status, reason):
            logger.error("the hub rejected the station's credentials (\(status)): \(reason); next try in \(Units.formatDuration(authBackoff))")
        case .urlGone: logger.warning("item \(item.id): the hub no longer has its upload; creating a new one")
        case let .recordFailed(reason): logger.error("item \(item.id): upload stopped: \(reason)")
        case .cancelled: break
        }
        return plan.step
    }

    /// The tus metadata of an item as the hub receives it, over the link or
    /// on a stick (`StickExport`): the same pairs either way, so the hub
    /// files it the same and knows it by the same name (`item`).
    public static func metadata(for item: SpoolItem, station: String, prepared: Prepared?, stationKey: String?) -> UploadMetadata {
        let kind: UploadMetadata.Kind = switch item.kind {
        case .image: .image
        case .preview: .preview
        case .health: .health
        }
        var metadata = UploadMetadata(
            filename: item.metadata.filename, station: station, caseID: item.metadata.caseID, site: item.metadata.site,
            priority: item.metadata.priority.rawValue, kind: kind,
            capturedAt: item.metadata.capturedAt, sha256: item.sha256)
        // The hub reads a health report as JSON (`HealthReport.parse`).
        if item.kind == .health { metadata.filetype = "application/json" }
        if let prepared {
            metadata.filename = prepared.filename
            metadata.filetype = prepared.filetype
            metadata.sha256 = prepared.sha256 ?? Digest.sha256Hex(prepared.bytes)
            metadata.extra = [("image_sha256", item.sha256)] + prepared.extra
        }
        // The case it was sent in from the kiosk: the hub groups a case's
        // images by `case_uid` and shows the patient, history and consent.
        if item.kind == .image {
            if !item.metadata.note.isEmpty { metadata.extra.append(("note", item.metadata.note)) }
            if let c = item.metadata.context { metadata.extra += Self.casePairs(c) }
        }
        // The station's name for the item (its spool file's name): the hub
        // keeps one copy whichever way the item travels.
        metadata.extra.append(("item", item.itemName))
        // The key the station signs its stick bundles with; the hub binds it
        // to the station the first time it sees it.
        if let stationKey { metadata.extra.append(("station_key", stationKey)) }
        return metadata
    }

    /// The case's pairs in an image's metadata; absent fields are left out.
    static func casePairs(_ c: CaptureContext) -> [(String, String)] {
        var pairs: [(String, String)] = []
        if let v = c.caseUID { pairs.append(("case_uid", v)) }
        if let v = c.imageIndex { pairs.append(("image_index", String(v))) }
        if let v = c.imagesInCase { pairs.append(("images_in_case", String(v))) }
        if let v = c.role { pairs.append(("role", v)) }
        if let v = c.aspect { pairs.append(("aspect", v)) }
        if let v = c.patientName { pairs.append(("patient_name", v)) }
        if let v = c.patientSex { pairs.append(("patient_sex", v)) }
        if let v = c.patientAge { pairs.append(("patient_age", v)) }
        if let v = c.history { pairs.append(("history", v.json)) }
        if let v = c.consent { pairs.append(("consent", v)) }
        return pairs
    }

    /// Fetches the hub's new replies about this station's cases, when the
    /// hub offers them (learnt from an upload's OPTIONS; never probed, so an
    /// outage costs no extra requests). Returns how many were new.
    @discardableResult
    public func checkReplies() async -> Int {
        guard let replies, client.status.capabilities?.repliesPath != nil else { return 0 }
        switch await client.replies(station: station, since: replies.lastID) {
        case let .success(fetched):
            do {
                let new = try replies.merge(fetched)
                if new > 0 { logger.notice("\(new) new repl\(new == 1 ? "y" : "ies") from the hub about cases") }
                return new
            } catch {
                logger.warning("cannot keep the hub's replies: \(error)")
            }
        case let .failure(error):
            logger.info("cannot fetch the hub's replies: \(error)")
        }
        return 0
    }

    /// Whether the hub rebuilds recompressed files, from its OPTIONS answer
    /// as the uploads have learnt it. Never asked separately: while the hub
    /// is unreachable that would double the requests of every attempt. The
    /// first upload of a process (previews go first) learns it; an image
    /// sent before that goes as it is.
    private func hubRebuilds() -> Bool {
        guard preparation.policy.enabled else { return false }
        return client.status.capabilities?.transports.contains(RecompressedFile.capability) ?? false
    }

    // MARK: outcome → queue

    /// What the queue must record for an upload outcome.
    enum Command: Sendable, Equatable {
        /// `awaitingReceipt`: the hub will say when it filed the image.
        case markUploaded(awaitingReceipt: Bool)
        case markFailed(error: String, retryAt: Date)
        case hold(reason: String)
        /// Forget the upload URL (the hub lost the upload) and queue the item again.
        case restart
        case release
    }

    /// How an outcome changes what the worker reports.
    enum Change: Sendable, Equatable {
        case none
        /// A delivery clears the last error, the hub problem and the hub's backoff.
        case delivered
        case error(String)
        /// The hub failed: left alone until `notBefore`, with the problem a person must act on, if any.
        case hubFailure(String, notBefore: Date, problem: HubProblem?)
    }

    /// The queue command, the step reported and the worker state an outcome leads to.
    struct Plan: Sendable, Equatable {
        var command: Command?
        var step: Step
        var change: Change = .none
    }

    /// The outcome → queue mapping, as a pure function (see its table test).
    static func plan(for outcome: UploadOutcome, item id: Int64, now: Date, authBackoff: Double,
                     receipts: Bool = false) -> Plan {
        switch outcome {
        case .completed:
            return Plan(command: .markUploaded(awaitingReceipt: receipts), step: .uploaded(id: id), change: .delivered)
        case let .retry(after, reason):
            let at = now.addingTimeInterval(after)
            return Plan(command: .markFailed(error: reason, retryAt: at), step: .willRetry(id: id, at: at, reason: reason),
                        change: .hubFailure(reason, notBefore: at, problem: nil))
        case let .hold(reason):
            return Plan(command: .hold(reason: reason), step: .held(id: id, reason: reason), change: .error(reason))
        case let .authFailed(status, reason):
            let at = now.addingTimeInterval(authBackoff)
            return Plan(command: .markFailed(error: reason, retryAt: at), step: .willRetry(id: id, at: at, reason: reason),
                        change: .hubFailure(reason, notBefore: at, problem: .rejectedToken(status: status)))
        case .urlGone:
            return Plan(command: .restart, step: .willRetry(id: id, at: now, reason: "the hub no longer had the upload"))
        case let .recordFailed(reason):
            // The queue refused a write: try to schedule a retry (it may fail
            // too; then the lease runs out and the item is claimed again).
            let at = now.addingTimeInterval(30)
            return Plan(command: .markFailed(error: reason, retryAt: at), step: .willRetry(id: id, at: at, reason: reason),
                        change: .error(reason))
        case .cancelled:
            return Plan(command: .release, step: .stopped)
        }
    }

    static func apply(_ command: Command, to spool: Spool, item id: Int64, owner: String) throws {
        switch command {
        case let .markUploaded(awaiting): try spool.markUploaded(id: id, owner: owner, awaitingReceipt: awaiting)
        case let .markFailed(error, retryAt): try spool.markFailed(id: id, error: error, retryAt: retryAt, owner: owner)
        case let .hold(reason): try spool.hold(id: id, reason: reason)
        case .restart:
            try spool.recordUploadURL(id: id, url: nil, owner: owner)
            try spool.release(id: id, owner: owner)
        case .release: try spool.release(id: id, owner: owner)
        }
    }

    // MARK: receipts

    /// What a receipt changes in the queue.
    enum ReceiptCommand: Sendable, Equatable {
        case received(detail: String)
        /// The hub lost the upload: a new upload of the same image.
        case resend(reason: String)
        /// The hub will never file it: a technician looks at it.
        case hold(reason: String)
    }

    /// The receipt → queue mapping, as a pure function (see its table test).
    /// "Pending" and "no answer" change nothing: the item keeps waiting and
    /// keeps its file, whatever `keep_uploaded` says.
    static func plan(for receipt: Receipt) -> ReceiptCommand? {
        switch receipt {
        case let .filed(_, detail): .received(detail: detail)
        case .unknownUpload: .resend(reason: "the hub no longer knows the upload after its last byte; sending the image again")
        case let .rejected(detail): .hold(reason: "the hub refused to file the image: \(detail)")
        case .pending, .unavailable: nil
        }
    }

    /// What one round of receipt requests found.
    public struct ReceiptRound: Sendable, Equatable {
        public var received: [Int64] = []
        public var resent: [Int64] = []
        public var held: [Int64] = []
        /// Still waiting: the hub has not filed them yet, or could not be asked.
        public var waiting: [Int64] = []
        /// Why the last item still waits, as the hub or the link said.
        public var lastWait: String?
    }

    /// Asks the hub about each uploaded image waiting for its receipt and
    /// records the answers. Does nothing while the hub is in backoff.
    public func checkReceipts(now: Date = Date()) async -> ReceiptRound {
        var round = ReceiptRound()
        if let gate = state.withLock({ $0.hubNotBefore }), gate > now { return round }
        let items: [SpoolItem]
        do {
            items = try await spool.perform { try $0.awaitingReceipts() }
        } catch {
            logger.error("cannot read the queue: \(error)")
            state.withLock { $0.queueError = "cannot list the items waiting for a receipt: \(error)" }
            return round
        }
        for item in items where !Task.isCancelled {
            guard let url = item.uploadURL else { continue }
            let receipt = await client.receipt(for: url)
            guard let command = Self.plan(for: receipt) else {
                round.waiting.append(item.id)
                switch receipt {
                case let .pending(detail), let .unavailable(detail): round.lastWait = detail
                default: break
                }
                if case let .unavailable(reason) = receipt {
                    // The hub cannot answer now: ask again next round, not item by item.
                    logger.notice("cannot ask the hub for receipts now: \(reason)")
                    break
                }
                continue
            }
            do {
                try await persist("record the receipt of item \(item.id)") { spool in
                    switch command {
                    case let .received(detail): try spool.markReceived(id: item.id, detail: detail)
                    case let .resend(reason): try spool.resend(id: item.id, reason: reason)
                    case let .hold(reason): try spool.hold(id: item.id, reason: reason)
                    }
                }
            } catch {
                round.waiting.append(item.id)
                continue
            }
            switch command {
            case let .received(detail):
                round.received.append(item.id)
                logger.info("item \(item.id) received: \(detail)")
            case let .resend(reason):
                round.resent.append(item.id)
                logger.warning("item \(item.id): \(reason)")
            case let .hold(reason):
                round.held.append(item.id)
                logger.error("item \(item.id) held for a technician: \(reason)")
            }
        }
        return round
    }

    /// The earliest time a failed item may be retried.
    /// A queue that cannot be read answers "in 30 s": never "nothing to wait for".
    func nextRetry() async -> Date? {
        do {
            let items = try await spool.perform { try $0.status().pending }
            return items.filter { $0.state == .failed }.compactMap(\.retryAt).min()
        } catch {
            logger.error("cannot read the queue: \(error)")
            state.withLock { $0.queueError = "cannot read the queue: \(error)" }
            return Date().addingTimeInterval(30)
        }
    }

    /// Records upload state in the queue on the blocking pool. A failure is
    /// kept for `status`, the kiosk and `diagnose` and thrown to the caller,
    /// which stops the item's upload; the next write that works clears it.
    private func persist(_ what: String, _ body: @escaping @Sendable (Spool) throws -> Void) async throws {
        do {
            try await spool.perform(body)
            state.withLock { $0.queueError = nil }
        } catch {
            let message = "cannot \(what): \(error)"
            logger.error("\(message)")
            state.withLock { $0.queueError = message }
            throw error
        }
    }

    // MARK: loops

    /// Uploads until nothing is pending or `deadline` passes. Returns true
    /// when the queue is empty (every item uploaded or held for a technician).
    public func drain(deadline: Date?, onStep: @Sendable (Step) -> Void = { _ in }) async -> Bool {
        await reclaimAbandoned()
        while !Task.isCancelled {
            let step = await step()
            onStep(step)
            guard case let .idle(nextRetry) = step else {
                if let deadline, Date() >= deadline { return await pendingCount() == 0 }
                continue
            }
            guard let nextRetry else { return await pendingCount() == 0 }
            let wait = nextRetry.timeIntervalSinceNow
            if let deadline, nextRetry >= deadline {
                if deadline.timeIntervalSinceNow > 0 { try? await Task.sleep(for: .seconds(deadline.timeIntervalSinceNow)) }
                return await pendingCount() == 0
            }
            if wait > 0 { try? await Task.sleep(for: .seconds(wait)) }
        }
        return false
    }

    /// Items not yet uploaded and not held.
    /// -1 when the queue cannot be read (so "nothing pending" is never claimed).
    public func pendingCount() async -> Int {
        do {
            return try await spool.perform { try $0.status() }.pending.filter { $0.state != .held }.count
        } catch {
            logger.error("cannot read the queue: \(error)")
            state.withLock { $0.queueError = "cannot read the queue: \(error)" }
            return -1
        }
    }

    /// The daemon's loop: sends whatever is ready, sleeps until a new item
    /// arrives (`wake()`), a retry falls due, or `idleRound` passes; calls
    /// `heartbeat` every round so the watchdog sees the loop alive.
    public func run(idleRound: Duration = .seconds(15), receiptInterval: Double = 15,
                    heartbeat: @Sendable @escaping () -> Void) async {
        state.withLock { $0.activity = heartbeat }
        defer { state.withLock { $0.activity = nil } }
        await reclaimAbandoned()
        // Paused on purpose (a live consultation) is not wedged: keep reporting.
        let pausedPulse = Task { [client] in
            while !Task.isCancelled {
                try? await Task.sleep(for: idleRound)
                if client.status.paused { heartbeat() }
            }
        }
        defer { pausedPulse.cancel() }
        var nextReceipts = Date()
        var nextReplies = Date()
        // Receipts are owed: the idle wait ends when the next round is due.
        var receiptsOwed = true
        while !Task.isCancelled {
            heartbeat()
            if Date() >= nextReplies {
                await checkReplies()
                // Once a minute at most: on 2G every request costs a round trip and a handshake.
                nextReplies = Date().addingTimeInterval(max(60, receiptInterval))
            }
            if Date() >= nextReceipts {
                // Between items too, so a long queue does not delay receipts
                // (and with them retention) until it is empty.
                let round = await checkReceipts()
                nextReceipts = Date().addingTimeInterval(receiptInterval)
                receiptsOwed = !round.waiting.isEmpty
                if !round.resent.isEmpty { continue }
            }
            let step = await step()
            if case .uploaded = step {
                receiptsOwed = true
                if nextReceipts.timeIntervalSinceNow > 2 {
                    // A hub without a PACS files at once: ask soon, not in a full interval.
                    nextReceipts = Date().addingTimeInterval(2)
                }
            }
            guard case let .idle(nextRetry) = step else { continue }
            var wait = idleRound
            var wakeAt = nextRetry
            if receiptsOwed { wakeAt = min(wakeAt ?? nextReceipts, nextReceipts) }
            if let wakeAt {
                let s = max(0, wakeAt.timeIntervalSinceNow)
                if .milliseconds(Int(s * 1000)) < idleRound { wait = .milliseconds(Int(s * 1000) + 10) }
            }
            await sleep(wait)
        }
    }

    /// Ends the idle wait of `run` at once, after an enqueue.
    public func wake() {
        let waiters = wakeups.withLock { w -> [CheckedContinuation<Void, Never>] in
            defer { w = [:] }
            return Array(w.values)
        }
        for w in waiters { w.resume() }
    }

    private func sleep(_ duration: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: duration) }
            group.addTask { await self.waitForWake() }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForWake() async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                // A cancellation that came before registration resumes at once.
                let now = wakeups.withLock { w -> Bool in
                    if Task.isCancelled { return true }
                    w[id] = c
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            wakeups.withLock { $0.removeValue(forKey: id) }?.resume()
        }
    }
}
