import Basics
import Capture
import Config
import Foundation
import Imaging
import Logging
import ServiceLifecycle
import Sneakernet
import Spool
import Synchronization
import Uplink

/// The daemon's backend on the real modules: the capture engine on the
/// configured camera, the durable spool, and the upload worker.
public final class LiveBackend: StationBackend {
    public let config: StationConfig
    public let spool: Spool
    public let engine: CaptureEngine
    /// nil when no hub is configured: images stay queued on the station.
    public let worker: UploadWorker?
    let monitor: LoopMonitor
    let logger: Logger
    private let reviews = Mutex<[String: Review]>([:])
    private let previews = PreviewBroadcaster()
    let triggers = TriggerState()
    /// Set once the trigger service started its watchers.
    let triggerWatchers = Mutex<[any TriggerWatcher]>([])
    private let lastCameraError = Mutex<(message: String, at: Date)?>(nil)
    let contexts = CaptureContexts()
    /// The USB stick the daemon sees (see `StickService`).
    let stick = StickState()

    struct Review {
        var still: CapturedStill
        var request: CaptureRequest
        var item: ReviewItem
    }

    /// Stills waiting for Send or Retake longer than this are dropped.
    static let reviewLifetime: Double = 30 * 60
    /// A case holds up to this many stills under review at once.
    static let maxReviews = 12

    public init(config: StationConfig, spool: Spool, engine: CaptureEngine, worker: UploadWorker?, monitor: LoopMonitor,
                logger: Logger = Logger(label: "telestation")) {
        self.config = config
        self.spool = spool
        self.engine = engine
        self.worker = worker
        self.monitor = monitor
        self.logger = logger
    }

    /// The spool ran its recovery pass when it was opened, before the daemon started.
    public func recover() async throws {
        let r = spool.recoveryAtOpen
        if !r.removedTempFiles.isEmpty || !r.missingFiles.isEmpty {
            logger.warning("queue recovered after an interruption: removed \(r.removedTempFiles.count) half-written file(s), \(r.missingFiles.count) item(s) without their file marked failed")
        }
    }

    // MARK: capture and review

    public func capture(_ request: CaptureRequest) async throws -> ReviewItem {
        try await capture(request, trigger: .kiosk)
    }

    func capture(_ request: CaptureRequest, trigger: TriggerKind) async throws -> ReviewItem {
        let still: CapturedStill
        do {
            still = try await engine.captureStill(timeout: config.camera.warmupFrames > 0 ? 30 + Double(config.camera.warmupFrames) : 30)
        } catch {
            let code: StationError.Code = [.deviceMissing, .unplugged].contains(error.code) ? .cameraMissing : .unavailable
            throw StationError(code, "the camera could not take the picture: \(error.message)", nextStep: error.nextStep)
        }
        var warnings: [CaptureWarning] = still.metrics.flags.map {
            switch $0 {
            case .tooDark: .tooDark
            case .overexposed: .tooBright
            case .blurred: .blurry
            }
        }
        if still.warnings.contains(where: { $0.code == .resolution }) { warnings.append(.lowResolution) }
        let id = "r" + UUID().uuidString.prefix(8).lowercased()
        let item = ReviewItem(id: id, request: request, width: still.width, height: still.height, bytes: Int64(still.jpeg.count),
                              warnings: warnings, capturedAt: still.capturedAt, trigger: trigger)
        reviews.withLock { r in
            let cutoff = Date().addingTimeInterval(-Self.reviewLifetime)
            r = r.filter { $0.value.item.capturedAt > cutoff }
            if r.count >= Self.maxReviews, let oldest = r.min(by: { $0.value.item.capturedAt < $1.value.item.capturedAt }) {
                r.removeValue(forKey: oldest.key)
            }
            r[id] = Review(still: still, request: request, item: item)
        }
        return item
    }

    public func image(id: String, kind: ImageKind) async throws -> Data {
        if let review = reviews.withLock({ $0[id] }) {
            return kind == .preview ? review.still.preview : review.still.jpeg
        }
        guard let number = Int64(id) else { throw StationError(.notFound, "no image \(id)") }
        let item = try await spool.perform { spool -> SpoolItem? in
            guard let image = try spool.item(id: number) else { return nil }
            guard kind == .preview else { return image }
            return try spool.allItems().first { $0.parentID == number && $0.kind == .preview } ?? image
        }
        guard let item, item.fileDeletedAt == nil, item.kind != .health else {
            throw StationError(.notFound, "image \(id) is no longer on the station")
        }
        // Decrypted in memory for this response only.
        do {
            return try await spool.perform { try $0.openFile(item).readAll() }
        } catch let error as SpoolError {
            // The details name files; they go to the log, not to the page.
            logger.error("image \(id) cannot be shown: \(error)")
            throw StationError(error.code == .integrity ? .unavailable : .notFound,
                               error.code == .integrity ? "image \(id) failed its integrity check and is held" : "image \(id) is no longer on the station")
        }
    }

    public func accept(id: String) async throws -> QueueItem {
        guard let review = reviews.withLock({ $0.removeValue(forKey: id) }) else {
            throw StationError(.notFound, "no capture \(id) waiting for review", nextStep: "capture again")
        }
        do {
            return try await enqueue(review, details: review.request, place: nil)
        } catch {
            // Keep the still for another try: the staff saw it and may free space.
            reviews.withLock { $0[id] = review }
            throw error
        }
    }

    public func sendCase(_ submission: CaseSubmission) async throws -> SentCase {
        let details = submission.details
        let held = reviews.withLock { r in submission.ids.map { r[$0] } }
        for (id, review) in zip(submission.ids, held) {
            guard let review else {
                throw StationError(.notFound, "capture \(id) is no longer waiting for review (stills are kept \(Int(Self.reviewLifetime / 60)) minutes)",
                                   nextStep: "take that image again, then send the case")
            }
            // One mistyped id must not file another person's photograph in this case.
            guard review.request.caseId == details.caseId else {
                throw StationError(.conflict, "capture \(id) was taken for case \(review.request.caseId), not \(details.caseId)",
                                   nextStep: "drop it from this case or retake it for this patient")
            }
        }
        let caseUID = UUID().uuidString.lowercased()
        var items: [QueueItem] = []
        for (n, (id, review)) in zip(submission.ids, held).enumerated() {
            guard let review, reviews.withLock({ $0.removeValue(forKey: id) }) != nil else {
                throw StationError(.conflict, "capture \(id) was sent or dropped meanwhile; \(items.count) of \(submission.ids.count) images were queued",
                                   nextStep: "check the queue, then send what is left again")
            }
            do {
                items.append(try await enqueue(review, details: details,
                                               place: (caseUID: caseUID, index: n + 1, count: submission.ids.count)))
            } catch let error as StationError {
                reviews.withLock { $0[id] = review }
                throw StationError(error.code, "\(items.count) of \(submission.ids.count) images of the case were queued; the rest wait for review: \(error.message)",
                                   nextStep: error.nextStep)
            }
        }
        logger.info("case \(caseUID) for \(details.caseId): \(items.count) image(s) queued")
        return SentCase(caseUID: caseUID, items: items)
    }

    /// Queues a reviewed still with the case's details (patient, history,
    /// consent, note, priority from `details`; role and site from the still's own request).
    private func enqueue(_ review: Review, details d: CaptureRequest,
                         place: (caseUID: String, index: Int, count: Int)?) async throws -> QueueItem {
        let r = review.request
        let stamp = ISO8601DateFormatter().string(from: review.still.capturedAt).replacingOccurrences(of: ":", with: "")
        var context = contexts.context(forStillFrom: review.still.stream.device, camera: config.camera)
        if let p = d.patient {
            context.patientName = p.dicomName
            context.patientSex = p.sex
            context.patientAge = p.dicomAge
        }
        context.role = r.role?.rawValue
        context.aspect = r.aspect?.rawValue
        context.history = d.history
        context.consent = d.consent
        context.caseUID = place?.caseUID
        context.imageIndex = place?.index
        context.imagesInCase = place?.count
        let metadata = ItemMetadata(caseID: d.caseId, site: r.site, note: d.note, priority: d.priority == .urgent ? .urgent : .routine,
                                    capturedAt: review.still.capturedAt, filename: "\(config.station.id)-\(d.caseId)-\(stamp).jpg",
                                    context: context)
        let result: EnqueueResult
        do {
            result = try await spool.perform { try $0.enqueue(imageData: review.still.jpeg, preview: review.still.preview, metadata: metadata) }
        } catch let error as SpoolError {
            throw StationError(.unavailable, "the image could not be queued: \(error.message)", nextStep: error.nextStep)
        }
        worker?.wake()
        logger.info("queued item \(result.imageID) for case \(d.caseId)\(review.item.trigger.map { $0 == .kiosk ? "" : " (captured by \($0.rawValue))" } ?? "")")
        return QueueItem(id: String(result.imageID), caseId: d.caseId, site: r.site, priority: d.priority, state: .queued,
                         bytesTotal: result.size, bytesSent: 0, createdAt: Date())
    }

    public func retake(id: String) async throws {
        guard reviews.withLock({ $0.removeValue(forKey: id) }) != nil else {
            throw StationError(.notFound, "no capture \(id) waiting for review")
        }
    }

    // MARK: queue and link

    public func queue() async throws -> QueueSnapshot {
        let dayAgo = Date().addingTimeInterval(-86400)
        let items = try await spool.perform { try $0.allItems() }
        let rate = worker?.client.status.link.throughput ?? 0
        let paused = worker?.client.status.paused ?? false
        // Images still owed, then those sent in the last day (or still waiting
        // for their receipt, however long), newest first.
        let recent: (SpoolItem) -> Bool = { $0.awaitingReceipt || ($0.uploadedAt ?? .distantPast) > dayAgo }
        let images = items.filter { $0.kind == .image && ($0.state.isPending || recent($0)) }
        let ordered = images.filter { $0.state.isPending }
            + images.filter { !$0.state.isPending }.sorted { ($0.uploadedAt ?? .distantPast) > ($1.uploadedAt ?? .distantPast) }
        var ahead: Int64 = 0
        var out: [QueueItem] = []
        for item in ordered.prefix(100) {
            let total = item.lifecycle.uploadSize
            let sent = item.state.isPending ? item.ackedOffset : total
            var eta: Double? = nil
            if item.state.isPending && item.state != .held {
                ahead += max(0, total - sent)
                if rate > 0 && !paused { eta = Double(ahead) / rate }
            }
            let state: QueueState = switch item.state {
            case .queued: .queued
            case .uploading: .uploading
            case .failed: .waiting
            case .held: .failed
            case .uploaded: item.awaitingReceipt ? .sent : .uploaded
            case .received: .received
            }
            out.append(QueueItem(id: String(item.id), caseId: item.metadata.caseID, site: item.metadata.site,
                                 priority: item.metadata.priority == .urgent ? .urgent : .routine, state: state,
                                 bytesTotal: total, bytesSent: sent, etaSeconds: eta, createdAt: item.createdAt,
                                 detail: item.lastError, patient: item.metadata.context.flatMap(PatientEntry.init(context:))))
        }
        return QueueSnapshot(items: out)
    }

    public func link() async -> LinkState {
        guard let worker else {
            return LinkState(online: false, rateBytesPerSecond: 0, paused: false, limitBytesPerSecond: 0, hub: .notConfigured, uploading: false)
        }
        let status = worker.client.status
        let hub: LinkState.Hub = worker.hubProblem != nil ? .rejectedToken : (worker.lastError != nil ? .unreachable : .ok)
        return LinkState(online: worker.lastError == nil, rateBytesPerSecond: status.link.throughput ?? 0, paused: status.paused,
                         limitBytesPerSecond: status.maxRate, hub: hub, uploading: worker.current != nil)
    }

    public func setUploads(_ control: UploadControl) async throws {
        guard let client = worker?.client else {
            throw StationError(.unavailable, "uploads are off: no hub is configured", nextStep: "set hub.url in the configuration")
        }
        switch control {
        case .pause: client.pause()
        case .resume: client.resume()
        case let .limit(bytesPerSecond): client.setMaxRate(bytesPerSecond)
        }
        logger.info("uploads: \(control)")
    }

    public func health() async -> StationHealth {
        let camera: StatusLine.Camera = switch engine.phase {
        case .streaming: .ok
        case .idle, .opening: .starting
        case let .down(error): [.deviceMissing, .unplugged].contains(error.code) ? .missing : .failed
        case .stopped: .failed
        }
        let stateDir = config.station.stateDir
        var free: Int64? = nil
        do {
            free = try await Blocking.run { () throws(SystemCallError) in try Syscall.diskSpace(stateDir).available }
        } catch {
            // Shown as unknown free space; the storage check of `diagnose` names the cause.
            logger.warning("cannot read the free space of \(stateDir): \(error)")
        }
        let error = lastCameraError.withLock { $0 }
        let loss = engine.frameLoss
        return StationHealth(camera: camera, diskNearlyFull: free.map { $0 < 2 * config.spool.minFree } ?? false, freeBytes: free,
                             cameraError: error?.message, cameraErrorAt: error?.at,
                             framesDropped: loss.dropped, framesDamaged: loss.damaged, queueError: worker?.queueError)
    }

    public func cameraControls() async throws -> [CameraControl] {
        do {
            return try await engine.controls().compactMap(CameraControl.init)
        } catch {
            throw StationError(control: error)
        }
    }

    public func setCameraControl(name: String, value: Int) async throws -> CameraControl {
        let applied: ControlInfo
        do {
            applied = try await engine.setControl(name, value: Int64(value))
        } catch {
            throw StationError(control: error)
        }
        logger.info("camera control \(name) set to \(applied.value.map(String.init) ?? "?") (asked \(value))")
        guard let control = CameraControl(applied) else {
            throw StationError(.internalFailure, "the camera reported \(name) in a form the station cannot show")
        }
        return control
    }

    public func previewFrames() -> AsyncStream<Data> {
        previews.subscribe()
    }

    // MARK: services

    /// The daemon's background services on this backend. Each loop reports a
    /// round at least every `round`; with a systemd watchdog, keep it below the ping interval.
    public func services(round: Duration = .seconds(10)) -> [ManagedService] {
        var services = [ManagedService(name: "camera") { CaptureService(backend: self, round: min(round, .seconds(2))) }]
        if let worker {
            services.append(ManagedService(name: "upload") { UploadService(worker: worker, monitor: self.monitor, round: round) })
        } else {
            monitor.unregister(.upload)
        }
        if config.trigger.anyButton(cameraDevice: config.camera.device) {
            services.append(ManagedService(name: "triggers") { TriggerService(backend: self) })
        }
        services.append(ManagedService(name: "stick") { StickService(backend: self) })
        services.append(ManagedService(name: "retention") { RetentionService(spool: self.spool, minFree: self.config.spool.minFree, logger: self.logger) })
        if config.health.interval > 0 {
            let reporter = healthReporter()
            services.append(ManagedService(name: "health") {
                HealthService(reporter: reporter, interval: self.config.health.interval,
                              wake: { [worker = self.worker] in worker?.wake() }, logger: self.logger)
            })
        }
        return services
    }

    /// The hub's replies, kept by the upload worker.
    var replyStore: ReplyStore { worker?.replies ?? ReplyStore(directory: config.station.stateDir) }

    public func replies(refresh: Bool) async -> RepliesSnapshot {
        if refresh, let worker { await worker.checkReplies() }
        let store = replyStore
        return RepliesSnapshot(replies: await Blocking.run { store.all() })
    }

    public func markReplyRead(_ id: Int) async throws {
        let store = replyStore
        let found: Bool
        do { found = try await Blocking.run { () throws(SneakernetError) in try store.markRead(id) } } catch {
            throw StationError(.internalFailure, "cannot record that reply \(id) was read: \(error)")
        }
        if !found { throw StationError(.notFound, "no reply \(id)") }
    }

    /// Health reports on this daemon's queue and camera.
    public func healthReporter() -> HealthReporter {
        HealthReporter(config: config, spool: spool) { [engine = self.engine, contexts = self.contexts] in
            switch engine.phase {
            case let .streaming(format):
                return HealthReport.CameraState(state: "ok", model: contexts.identity(of: format.device).model)
            case .idle, .opening:
                return HealthReport.CameraState(state: "starting")
            case let .down(error):
                return HealthReport.CameraState(state: [.deviceMissing, .unplugged].contains(error.code) ? "missing" : "failed")
            case .stopped:
                return HealthReport.CameraState(state: "failed")
            }
        }
    }

    /// Runs the camera and turns its events into heartbeats and live previews.
    struct CaptureService: Service {
        let backend: LiveBackend
        let round: Duration
        func run() async throws {
            let engine = backend.engine
            engine.start()
            try? await cancelWhenGracefulShutdown {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await event in engine.events {
                            switch event {
                            case let .preview(frame): backend.previews.publish(frame.jpeg)
                            case let .failed(error):
                                backend.logger.warning("camera: \(error)")
                                backend.lastCameraError.withLock { $0 = (error.message, Date()) }
                            case .opened: break  // the engine logs the format it got
                            case .still: break
                            }
                        }
                    }
                    // The loop is alive while the engine thread makes rounds — frames,
                    // open attempts, slices of a retry wait — not merely while it exists:
                    // a thread stuck in a driver call stops the count and the pings.
                    group.addTask {
                        var last = engine.rounds
                        while !Task.isCancelled {
                            try? await Task.sleep(for: round)
                            let now = engine.rounds
                            if now != last, engine.phase != .stopped { backend.monitor.beat(.capture) }
                            last = now
                        }
                    }
                    await group.next()
                    group.cancelAll()
                }
            }
            await engine.stop()
        }
    }

    struct UploadService: Service {
        let worker: UploadWorker
        let monitor: LoopMonitor
        let round: Duration
        func run() async throws {
            // Cancellation stops the current chunk; the spool keeps URL and offset for the next start.
            try? await cancelWhenGracefulShutdown {
                await worker.run(idleRound: round) { monitor.beat(.upload) }
            }
        }
    }

    /// Deletes uploaded images after spool.keep_uploaded, or earlier when the disk runs short.
    struct RetentionService: Service {
        let spool: Spool
        let minFree: Int64
        let logger: Logger
        func run() async throws {
            try? await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    do {
                        let report = try await spool.perform { [minFree] spool in
                            let free = try Syscall.diskSpace(spool.directory).available
                            return try spool.runRetention(now: Date(), bytesToFree: max(0, 2 * minFree - free))
                        }
                        if report.deletedIDs.count > 0 { logger.info("retention: deleted \(report.deletedIDs.count) uploaded image file(s)") }
                    } catch {
                        logger.error("retention: \(error)")
                    }
                    try await Task.sleep(for: .seconds(600))
                }
            }
        }
    }
}

/// Hands the newest live frame to every open preview stream.
final class PreviewBroadcaster: Sendable {
    private let subscribers = Mutex<[UUID: AsyncStream<Data>.Continuation]>([:])

    func subscribe() -> AsyncStream<Data> {
        let (stream, continuation) = AsyncStream.makeStream(of: Data.self, bufferingPolicy: .bufferingNewest(1))
        let id = UUID()
        subscribers.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in self?.subscribers.withLock { _ = $0.removeValue(forKey: id) } }
        return stream
    }

    func publish(_ frame: Data) {
        for c in subscribers.withLock({ Array($0.values) }) { c.yield(frame) }
    }
}

extension CameraControl {
    /// A control as the API lists it; nil for the kinds the station does not
    /// set (buttons, strings, 64-bit and write-only controls).
    init?(_ c: ControlInfo) {
        guard ControlRequestCheck.settableTypes.contains(c.type), let value = c.value,
              let v = Int(exactly: value), let lo = Int(exactly: c.minimum), let hi = Int(exactly: c.maximum),
              let step = Int(exactly: c.step), let def = Int(exactly: c.defaultValue) else { return nil }
        let menu = c.menu.compactMap { entry -> MenuEntry? in
            let parts = entry.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let index = Int(parts[0]) else { return nil }
            return MenuEntry(value: index, label: parts[1].trimmingCharacters(in: .whitespaces))
        }
        self.init(name: c.name, value: v, minimum: lo, maximum: hi, step: step, defaultValue: def, label: c.label, type: c.type,
                  menu: menu, inactive: c.flags.contains("inactive"), readOnly: c.flags.contains("read-only"))
    }
}

extension StationError {
    /// A refused or failed camera control, with the HTTP status that fits:
    /// 404 unknown, 409 overridden by an automatic mode, 400 a value or control
    /// the camera refuses, 503 a camera that is away.
    init(control e: CaptureError) {
        let code: StationError.Code = switch e.code {
        case .controlUnknown: .notFound
        case .controlInactive: .conflict
        case .controlReadOnly, .controlOutOfRange, .controlUnsupported, .driverError: .badRequest
        default: .cameraMissing
        }
        self.init(code, e.message, nextStep: e.nextStep)
    }
}

extension PatientEntry {
    /// The patient as stored with an item (`APELLIDOS^Nombres`, sex, `054Y`),
    /// for the kiosk to offer again; nil when the item has no whole patient.
    init?(context c: CaptureContext) {
        guard let name = c.patientName, let sex = c.patientSex, let age = c.patientAge,
              age.hasSuffix("Y"), let years = Int(age.dropLast()) else { return nil }
        let parts = name.split(separator: "^", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        self.init(surnames: String(parts[0]), givenNames: String(parts[1]), sex: sex, age: years)
    }
}
