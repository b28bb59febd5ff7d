import Config
import Foundation
import Logging
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
    // Spool writes are small SQLite transactions with an fsync; they run on
    // this queue, in order, rather than on the cooperative pool.
    private let persist = DispatchQueue(label: "telestation.upload.persist")
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
    }

    /// The item being sent right now.
    public struct Current: Sendable, Equatable {
        public var id: Int64
        public var offset: Int64
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
                leaseSeconds: Double = 300, authBackoff: Double = 600, logger: Logger = Logger(label: "telestation.upload")) {
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
            state.withLock { $0.lastError = "\(error)" }
            return .idle(nextRetry: now.addingTimeInterval(30))
        }
        guard let item = claimed else { return .idle(nextRetry: await nextRetry()) }
        return await send(item)
    }

    private func send(_ item: SpoolItem) async -> Step {
        let source: any UploadSource
        do {
            source = try await spool.perform { try $0.uploadSource(for: item) }
        } catch {
            let failedCheck = (error as? SpoolError)?.code == .integrity
            let reason = failedCheck ? "its file failed the integrity check: \(error)" : "its file cannot be read: \(error)"
            persistSync { try $0.hold(id: item.id, reason: reason) }
            logger.error("item \(item.id) held: \(reason)")
            return .held(id: item.id, reason: reason)
        }
        let metadata = UploadMetadata(
            filename: item.metadata.filename, station: station, caseID: item.metadata.caseID, site: item.metadata.site,
            priority: item.metadata.priority.rawValue, kind: item.kind == .preview ? .preview : .image,
            capturedAt: item.metadata.capturedAt, sha256: item.sha256)
        let job = UploadJob(source: source, metadata: metadata, resumeURL: item.uploadURL, acknowledgedOffset: item.ackedOffset)
        state.withLock { $0.current = Current(id: item.id, offset: item.ackedOffset, size: item.size) }
        defer { state.withLock { $0.current = nil } }
        let resume = item.uploadURL != nil ? " from offset \(item.ackedOffset)" : ""
        logger.info("uploading item \(item.id) (\(item.kind.rawValue), case \(item.metadata.caseID), \(Units.formatBytes(item.size)))\(resume)")

        let outcome = await client.upload(job) { event in
            switch event {
            case let .created(url):
                // Durable before the first PATCH: after a power cut the upload resumes at this URL.
                persistSync { [owner] in try $0.recordUploadURL(id: item.id, url: url, owner: owner) }
            case let .progress(offset):
                let activity = state.withLock { s -> (@Sendable () -> Void)? in
                    s.current?.offset = offset
                    return s.activity
                }
                activity?()
                persistSync { [owner, leaseSeconds] in
                    try $0.recordOffset(id: item.id, offset: offset, owner: owner)
                    try $0.renewLease(id: item.id, owner: owner, leaseSeconds: leaseSeconds)
                }
            }
        }
        let now = Date()
        switch outcome {
        case .completed:
            persistSync { [owner] in try $0.markUploaded(id: item.id, owner: owner) }
            state.withLock { $0.hubProblem = nil; $0.lastError = nil; $0.hubNotBefore = nil }
            logger.info("item \(item.id) uploaded and confirmed by the hub")
            return .uploaded(id: item.id)
        case let .retry(after, reason):
            let at = now.addingTimeInterval(after)
            persistSync { [owner] in try $0.markFailed(id: item.id, error: reason, retryAt: at, owner: owner) }
            state.withLock { $0.lastError = reason; $0.hubProblem = nil; $0.hubNotBefore = at }
            logger.warning("item \(item.id): \(reason); retrying in \(Units.formatDuration(after))")
            return .willRetry(id: item.id, at: at, reason: reason)
        case let .hold(reason):
            persistSync { try $0.hold(id: item.id, reason: reason) }
            state.withLock { $0.lastError = reason }
            logger.error("item \(item.id) held for a technician: \(reason)")
            return .held(id: item.id, reason: reason)
        case let .authFailed(status, reason):
            let at = now.addingTimeInterval(authBackoff)
            persistSync { [owner] in try $0.markFailed(id: item.id, error: reason, retryAt: at, owner: owner) }
            state.withLock { $0.hubProblem = .rejectedToken(status: status); $0.lastError = reason; $0.hubNotBefore = at }
            logger.error("the hub rejected the station's credentials (\(status)): \(reason); next try in \(Units.formatDuration(authBackoff))")
            return .willRetry(id: item.id, at: at, reason: reason)
        case .urlGone:
            // The hub forgot the upload (expired or cleaned up): start a new one.
            persistSync { [owner] in
                try $0.recordUploadURL(id: item.id, url: nil, owner: owner)
                try $0.release(id: item.id, owner: owner)
            }
            logger.warning("item \(item.id): the hub no longer has its upload; creating a new one")
            return .willRetry(id: item.id, at: now, reason: "the hub no longer had the upload")
        case .cancelled:
            persistSync { [owner] in try $0.release(id: item.id, owner: owner) }
            return .stopped
        }
    }

    /// The earliest time a failed item may be retried.
    func nextRetry() async -> Date? {
        let items = try? await spool.perform { try $0.status().pending }
        return items?.filter { $0.state == .failed }.compactMap(\.retryAt).min()
    }

    private func persistSync(_ body: @escaping @Sendable (Spool) throws -> Void) {
        persist.sync {
            do { try body(spool) } catch { logger.error("cannot record upload progress in the queue: \(error)") }
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
    public func pendingCount() async -> Int {
        let status = try? await spool.perform { try $0.status() }
        guard let status else { return -1 }
        return status.pending.filter { $0.state != .held }.count
    }

    /// The daemon's loop: sends whatever is ready, sleeps until a new item
    /// arrives (`wake()`), a retry falls due, or `idleRound` passes; calls
    /// `heartbeat` every round so the watchdog sees the loop alive.
    public func run(idleRound: Duration = .seconds(15), heartbeat: @Sendable @escaping () -> Void) async {
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
        while !Task.isCancelled {
            heartbeat()
            let step = await step()
            guard case let .idle(nextRetry) = step else { continue }
            var wait = idleRound
            if let nextRetry {
                let s = max(0, nextRetry.timeIntervalSinceNow)
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
