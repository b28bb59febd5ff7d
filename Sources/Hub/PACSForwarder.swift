import Basics
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import ServiceLifecycle

/// Where and how the hub files DICOM uploads: a DICOMweb root (`--stow-url`).
public struct PACSTarget: Sendable {
    /// The DICOMweb root without a trailing slash, e.g. `http://pacs:8042/dicom-web`.
    public var root: URL
    /// HTTP basic auth.
    public var user: String?
    public var password: String?
    /// Ask QIDO-RS whether the PACS holds an instance before calling it filed.
    public var verify: Bool = true
    public var backoff = FilingBackoff()
    /// Seconds one STOW-RS or QIDO-RS request may take.
    public var timeout: Double = 120
    /// Seconds between looks at the store for uploads filed by another process (an import from a stick).
    public var rescanSeconds: Double = 30

    public init(root: URL, user: String? = nil, password: String? = nil) {
        self.root = root
        self.user = user
        self.password = password
    }

    /// Checks `--stow-url`: http or https, a host, no query.
    public static func parse(_ s: String) -> Result<URL, HubError> {
        var text = s
        while text.hasSuffix("/") { text.removeLast() }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty, url.query == nil else {
            return .failure(HubError(.configuration, "--stow-url \(s) is not an http(s) URL of a DICOMweb root",
                                     nextStep: "pass e.g. http://127.0.0.1:8042/dicom-web (the hub posts to URL/studies)"))
        }
        return .success(url)
    }
}

/// Files every stored DICOM upload in the PACS with STOW-RS, one instance
/// per request, and records the outcome in the upload's record. It retries
/// forever with backoff (`FilingDecision`): a file the PACS has not accepted
/// is never given up, and nothing here deletes a file. On start it resumes
/// every DICOM upload not yet filed.
///
/// Resending after a crash between the PACS's answer and the record is
/// harmless: the SOP Instance UID names the instance, and a PACS stores it once.
public final class PACSForwarder: Service, Sendable {
    public let store: HubStore
    public let target: PACSTarget
    let logger: Logger
    private let session: URLSession

    private struct Pending: Sendable {
        var storedAs: String
        var due: Date
    }

    private struct State: Sendable {
        /// Uploads waiting to be filed, by id.
        var pending: [String: Pending] = [:]
        /// Consecutive PACS-wide failures, and when the PACS is tried again.
        var pacsFailures = 0
        var pacsDue = Date.distantPast
        var lastError: LastError?
    }

    public struct LastError: Sendable, Equatable {
        public var at: Date
        public var upload: String
        public var message: String
        public var nextTry: Date
    }

    private let state = Locked(State())

    public init(store: HubStore, target: PACSTarget, logger: Logger) {
        self.store = store
        self.target = target
        self.logger = logger
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = target.timeout
        configuration.timeoutIntervalForResource = target.timeout
        session = URLSession(configuration: configuration)
    }

    /// The last failure, for `GET /status`.
    public var lastError: LastError? { state.withLock { $0.lastError } }

    /// The failure every upload waits on while the PACS itself is failing
    /// (unreachable, 5xx, credentials), for receipts of uploads not yet tried.
    public var outage: LastError? { state.withLock { $0.pacsFailures > 0 ? $0.lastError : nil } }

    /// Queues a stored upload (the hub calls this when one completes).
    public func enqueue(_ info: UploadInfo) {
        guard info.isDICOM, info.filedAt == nil, info.rejected == nil, let storedAs = info.storedAs else { return }
        state.withLock { $0.pending[info.id] = Pending(storedAs: storedAs, due: Date()) }
    }

    public func run() async throws {
        let resumed = try await resume()
        if resumed > 0 { logger.notice("resuming PACS filing", metadata: ["uploads": "\(resumed)"]) }
        await cancelWhenGracefulShutdown {
            var lastScan = ContinuousClock.now
            while !Task.isCancelled {
                // Items imported from a stick by `telestation-hub import`
                // (another process) are found by looking again now and then.
                if ContinuousClock.now - lastScan > self.rescanInterval {
                    lastScan = ContinuousClock.now
                    if let found = try? await self.resume(), found > 0 {
                        self.logger.notice("found stored DICOM not yet filed (imported from a stick)", metadata: ["uploads": "\(found)"])
                    }
                }
                if let (id, item) = self.next() {
                    await self.attempt(id, item.storedAs)
                } else {
                    try? await Task.sleep(for: .milliseconds(200))
                }
            }
        }
    }

    /// How often stored uploads are looked at again for ones not yet queued.
    var rescanInterval: Duration { .seconds(target.rescanSeconds) }

    /// Queues every stored DICOM upload not yet filed nor already queued; returns how many.
    func resume() async throws -> Int {
        let records = try await store.records()
        let queued = state.withLock { Set($0.pending.keys) }
        var count = 0
        for info in records where info.isDICOM && info.filedAt == nil && info.rejected == nil && !queued.contains(info.id) {
            enqueue(info)
            count += 1
        }
        return count
    }

    /// The upload to try now: the one due longest ago, unless the PACS itself is in backoff.
    private func next() -> (String, Pending)? {
        state.withLock { s -> (String, Pending)? in
            let now = Date()
            guard s.pacsDue <= now else { return nil }
            return s.pending.filter { $0.value.due <= now }.min { $0.value.due < $1.value.due }.map { ($0.key, $0.value) }
        }
    }

    private func attempt(_ id: String, _ storedAs: String) async {
        let info: UploadInfo
        do {
            guard let record = try await store.record(storedAs: storedAs) else {
                _ = state.withLock { $0.pending.removeValue(forKey: id) }
                return
            }
            info = record
        } catch {
            logger.error("cannot read an upload's record; not filing it", metadata: ["id": "\(id)", "error": "\(error)"])
            _ = state.withLock { $0.pending.removeValue(forKey: id) }
            return
        }
        var sopInstanceUID = info.dicomSOPInstanceUID
        if sopInstanceUID == nil && info.rejected == nil {
            // A record from a hub without this check: read the header now.
            let path = store.filePath(storedAs: storedAs)
            let header = await Blocking.run { DicomPart10.read(path: path) }
            _ = try? await store.update(storedAs: storedAs) { record in
                switch header {
                case let .success(meta):
                    record.dicomSOPInstanceUID = meta.sopInstanceUID
                    record.dicomSOPClassUID = meta.sopClassUID
                case let .failure(invalid):
                    record.rejected = "the upload's filetype is application/dicom but \(invalid)"
                }
            }
            if case let .success(meta) = header { sopInstanceUID = meta.sopInstanceUID }
        }
        guard info.filedAt == nil, info.rejected == nil, let sop = sopInstanceUID else {
            _ = state.withLock { $0.pending.removeValue(forKey: id) }
            return
        }
        let verdict = await send(store.filePath(storedAs: storedAs), sopInstanceUID: sop)
        let pacsFailures = state.withLock { $0.pacsFailures }
        let decision = FilingDecision.after(verdict, attempts: info.pacsAttempts ?? 0, pacsFailures: pacsFailures,
                                            backoff: target.backoff)
        let now = Date()
        let nextTry = decision.retryIn.map { now.addingTimeInterval($0) }
        do {
            _ = try await store.update(storedAs: storedAs) { record in
                record.pacsAttempts = decision.attempts
                record.pacsLastError = decision.error
                record.pacsNextTry = nextTry
                if decision.filed { record.filedAt = now }
            }
        } catch {
            // The PACS may hold it, but without the record the receipt cannot
            // say so: try again, and keep the file.
            logger.error("cannot record the PACS filing", metadata: ["id": "\(id)", "error": "\(error)"])
            state.withLock { $0.pending[id]?.due = now.addingTimeInterval(target.backoff.delay(failures: 1)) }
            return
        }
        state.withLock { s in
            if decision.filed {
                s.pending.removeValue(forKey: id)
                s.pacsFailures = 0
                s.pacsDue = .distantPast
            } else if let nextTry {
                s.pending[id]?.due = nextTry
                if decision.pacsWide {
                    s.pacsFailures += 1
                    s.pacsDue = nextTry
                } else {
                    // The PACS answered: it is up, whatever it thought of this file.
                    s.pacsFailures = 0
                }
                s.lastError = LastError(at: now, upload: id, message: decision.error ?? "", nextTry: nextTry)
            }
        }
        if decision.filed {
            var meta: Logger.Metadata = ["id": "\(id)", "sop_instance_uid": "\(sop)", "attempts": "\(decision.attempts)"]
            if case let .stored(warning?) = verdict { meta["warning"] = "\(warning)" }
            logger.info("filed in the PACS", metadata: meta)
        } else if let nextTry {
            logger.warning("the PACS has not filed an upload; will retry", metadata: [
                "id": "\(id)", "reason": "\(decision.error ?? "")", "attempt": "\(decision.attempts)",
                "next_try": "\(HubDate.iso(nextTry))",
            ])
        }
    }

    /// One STOW-RS request for the file, then (with `verify`) one QIDO-RS
    /// request to confirm the PACS holds the instance.
    private func send(_ path: String, sopInstanceUID: String) async -> Stow.Verdict {
        let bytes: [UInt8]
        do {
            bytes = try await Blocking.run { () throws -> [UInt8] in Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
        } catch {
            return .refused("cannot read the stored file \(path): \(error.localizedDescription)")
        }
        let boundary = Stow.boundary(avoiding: bytes)
        let (contentType, body) = Stow.request(instances: [bytes], boundary: boundary)
        var request = URLRequest(url: target.root.appendingPathComponent("studies"))
        request.httpMethod = "POST"
        request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        request.setValue("application/dicom+json", forHTTPHeaderField: "Accept")
        authorize(&request)
        let (status, answer, failure) = await exchange(request, body: Data(body))
        if let failure { return .unavailable("cannot reach the PACS at \(target.root.absoluteString): \(failure)") }
        let verdict = Stow.judge(status: status, body: answer, sopInstanceUID: sopInstanceUID)
        guard case .stored = verdict, target.verify else { return verdict }
        return await confirm(sopInstanceUID, after: verdict)
    }

    /// QIDO-RS: does the PACS list the instance?
    private func confirm(_ sop: String, after stored: Stow.Verdict) async -> Stow.Verdict {
        var components = URLComponents(url: target.root.appendingPathComponent("instances"), resolvingAgainstBaseURL: false)
        components?.queryItems = [URLQueryItem(name: "SOPInstanceUID", value: sop)]
        guard let url = components?.url else { return .refused("cannot make a QIDO-RS URL for \(sop)") }
        var request = URLRequest(url: url)
        request.httpMethod = "GET"
        request.setValue("application/dicom+json", forHTTPHeaderField: "Accept")
        authorize(&request)
        let (status, answer, failure) = await exchange(request, body: nil)
        if let failure { return .unavailable("the PACS accepted the instance but cannot be asked whether it holds it: \(failure)") }
        if Stow.holds(qido: status, body: answer, sopInstanceUID: sop) { return stored }
        if status != 200 && status != 204 {
            return .unavailable("the PACS accepted the instance but its QIDO-RS answered HTTP \(status) (if it has no QIDO-RS, run the hub with --no-stow-verify)")
        }
        return .refused("the PACS answered STOW-RS as if it stored the instance, but QIDO-RS does not find it (a filter in the PACS may have dropped it)")
    }

    private func authorize(_ request: inout URLRequest) {
        guard let user = target.user else { return }
        let token = Data("\(user):\(target.password ?? "")".utf8).base64EncodedString()
        request.setValue("Basic \(token)", forHTTPHeaderField: "Authorization")
    }

    private func exchange(_ request: URLRequest, body: Data?) async -> (Int, [UInt8], String?) {
        var request = request
        request.httpBody = body
        do {
            let (data, response) = try await session.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, Array(data), nil)
        } catch {
            return (0, [], error.localizedDescription)
        }
    }
}

/// ISO 8601 in UTC, as the receipts and the status give times.
public enum HubDate {
    public static func iso(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
