import CCurl
import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP exchange for the curl worker.
struct CurlRequest: Sendable {
    enum Method: String, Sendable {
        case options = "OPTIONS", post = "POST", patch = "PATCH", head = "HEAD", delete = "DELETE", get = "GET"
    }
    var method: Method
    var url: String
    /// Full header lines ("Name: value"). May contain the token: never log.
    var headers: [String]
    /// Request body; nil sends none.
    var body: [UInt8]?
}

/// Connection settings shared by every request to one hub.
struct CurlSettings: Sendable {
    var caFile: String?
    var clientCert: String?
    var clientKey: String?
    /// `CURLOPT_PINNEDPUBLICKEY` value (`sha256//…;sha256//…`), from `hub.pin_sha256`.
    var pinnedKeys: String?
    var stallTimeout: Double
    var connectTimeout: Double
    /// Limits on what the hub may send back.
    var maxHeaderBytes = 64 * 1024
    var maxBodyBytes = 64 * 1024
}

struct CurlTimings: Sendable {
    var connect: Double = 0
    var pretransfer: Double = 0
    var starttransfer: Double = 0
    var total: Double = 0
    var uploaded: Int64 = 0
    var newConnections: Int = 0
    /// Seconds from libcurl taking the first body byte to the end or the
    /// failure of the exchange, on the station's clock; nil without a body.
    /// After a refused rewind libcurl's own timings describe the aborted
    /// resend, not the request the drop cut, so failures use this.
    var sending: Double?
}

enum CurlResult: Sendable {
    case response(TusResponse, CurlTimings)
    case failed(UplinkError, CurlTimings, AbortReason?)
}

enum AbortReason: Sendable, Equatable { case paused, rateLowered, cancelled }

/// The flag the transfer callbacks read on the curl thread and async code
/// sets when the waiting task is cancelled.
final class TransferControl: Sendable {
    private let flag = Atomic<Bool>(false)
    func cancel() { flag.store(true, ordering: .releasing) }
    var cancelled: Bool { flag.load(ordering: .acquiring) }
}

/// Per-request state the C callbacks reach through their user pointer. It is
/// created, used and dropped on the worker thread only.
private final class TransferContext {
    let body: [UInt8]
    var readPosition = 0
    var headerLines: [String] = []
    var headerBytes = 0
    var responseBody: [UInt8] = []
    var overflow: String?
    let settings: CurlSettings
    let abortCheck: () -> AbortReason?
    var aborted: AbortReason?
    /// Body bytes handed to libcurl when it asked to rewind the body, i.e.
    /// to resend the request on a new connection; nil when it did not ask.
    var rewindAfter: Int?
    /// When libcurl took the first body byte, and when it asked to rewind.
    var firstRead: ContinuousClock.Instant?
    var rewindAt: ContinuousClock.Instant?

    init(body: [UInt8], settings: CurlSettings, abortCheck: @escaping () -> AbortReason?) {
        self.body = body
        self.settings = settings
        self.abortCheck = abortCheck
    }
}

private func context(_ p: UnsafeMutableRawPointer?) -> TransferContext {
    Unmanaged<TransferContext>.fromOpaque(p!).takeUnretainedValue()
}

private let readCallback: curl_read_callback = { buffer, size, nitems, userdata in
    let ctx = context(userdata)
    if ctx.firstRead == nil { ctx.firstRead = .now }
    let room = size * nitems
    let n = min(room, ctx.body.count - ctx.readPosition)
    if n > 0, let buffer {
        ctx.body.withUnsafeBytes { raw in
            UnsafeMutableRawPointer(buffer).copyMemory(from: raw.baseAddress! + ctx.readPosition, byteCount: n)
        }
        ctx.readPosition += n
    }
    return n
}

/// libcurl rewinds the body when a kept-alive connection dies before the
/// hub answered and it wants to resend the whole request on a new one.
/// Refused: the resend would hide the drop from the tus logic, which must
/// ask the hub what it kept (a hub may have stored part of the chunk, or
/// none of it) before sending more. Without this callback libcurl refuses
/// too, but reports only "rewinding of the data stream failed"; the flag
/// lets the error say what happened.
private let seekCallback: curl_seek_callback = { userdata, _, _ in
    let ctx = context(userdata)
    ctx.rewindAfter = ctx.readPosition
    ctx.rewindAt = .now
    return CURL_SEEKFUNC_CANTSEEK
}

private let headerCallback: curl_write_callback = { buffer, size, nitems, userdata in
    let ctx = context(userdata)
    let n = size * nitems
    ctx.headerBytes += n
    if ctx.headerBytes > ctx.settings.maxHeaderBytes {
        ctx.overflow = "the hub sent more than \(ctx.settings.maxHeaderBytes) bytes of headers"
        return 0
    }
    if let buffer {
        let line = String(decoding: UnsafeRawBufferPointer(start: buffer, count: n), as: UTF8.self)
        ctx.headerLines.append(line)
    }
    return n
}

private let writeCallback: curl_write_callback = { buffer, size, nitems, userdata in
    let ctx = context(userdata)
    let n = size * nitems
    if ctx.responseBody.count + n > ctx.settings.maxBodyBytes {
        ctx.overflow = "the hub sent a response body larger than \(ctx.settings.maxBodyBytes) bytes"
        return 0
    }
    if let buffer { ctx.responseBody.append(contentsOf: UnsafeRawBufferPointer(start: buffer, count: n)) }
    return n
}

private let progressCallback: curl_xferinfo_callback = { clientp, _, _, _, _ in
    let ctx = context(clientp)
    if let reason = ctx.abortCheck() {
        ctx.aborted = reason
        return 1
    }
    return 0
}

private let sockoptCallback: curl_sockopt_callback = { clientp, fd, purpose in
    let ctx = context(clientp)
    if purpose == CURLSOCKTYPE_IPCXN {
        // Without this a dead peer keeps unacknowledged data queued for the
        // kernel's ~15 minutes of retransmissions before the socket errors.
        var ms = UInt32(max(1000, min(Double(UInt32.max), ctx.settings.stallTimeout * 1000)))
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TS_TCP_USER_TIMEOUT, &ms, socklen_t(MemoryLayout<UInt32>.size))
        // An aborted transfer (stall, pause, a lower rate cap) must stop
        // sending at once: closing with a reset discards what is still queued
        // in the kernel. A plain close would let that trickle out behind the
        // station's back, hold the hub's lock on the upload and race the
        // retry, which then resends bytes the hub later receives twice.
        // Connections are only closed once their exchange is over or
        // abandoned, so no acknowledged request is lost by it.
        var noLinger = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &noLinger, socklen_t(MemoryLayout<linger>.size))
    }
    return Int32(TS_CURL_SOCKOPT_OK)
}

/// Owns one libcurl easy handle and a dedicated thread that runs
/// `curl_easy_perform` on it, so blocking transfers never occupy Swift's
/// cooperative pool. Requests run one at a time in submission order; reusing
/// the handle keeps the connection (and TLS session) to the hub alive, which
/// saves whole round trips on a 1 s link.
final class CurlWorker: Sendable {
    private struct Job: Sendable {
        var request: CurlRequest
        var maxRate: Int64
        var control: TransferControl
        var done: @Sendable (CurlResult) -> Void
    }

    /// The easy handle on its way to the worker thread.
    /// `@unchecked Sendable`: it crosses threads once, in `init`, before the
    /// thread starts; from then on only that thread uses it.
    private struct EasyHandle: @unchecked Sendable { let pointer: UnsafeMutableRawPointer }

    private let jobs = Mutex<(queue: [Job], stopping: Bool)>(([], false))
    /// Signalled once per queued job and once by `shutdown`; the thread sleeps on it.
    private let wakeup = DispatchSemaphore(value: 0)
    private let settings: CurlSettings
    private let abortCheck: @Sendable (Int64) -> AbortReason?

    /// - Parameter abortCheck: called about once a second during a transfer
    ///   with the rate limit the transfer started with; a non-nil reason aborts it.
    init(settings: CurlSettings, abortCheck: @escaping @Sendable (Int64) -> AbortReason?) throws(UplinkError) {
        CurlWorker.globalInit
        guard let h = curl_easy_init() else {
            throw UplinkError(.transport, "curl_easy_init failed", nextStep: "the system may be out of memory")
        }
        self.settings = settings
        self.abortCheck = abortCheck
        let handle = EasyHandle(pointer: h)
        let thread = Thread { [self] in self.loop(handle.pointer) }
        thread.name = "uplink-curl"
        thread.start()
    }

    /// `curl_global_init` must run once before any handle exists.
    private static let globalInit: Void = { _ = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    /// Stops the thread after the queued requests; the handle is freed there.
    func shutdown() {
        jobs.withLock { $0.stopping = true }
        wakeup.signal()
    }

    /// Runs `request` with `maxRate` bytes/s (0: unlimited) on the worker thread.
    func perform(_ request: CurlRequest, maxRate: Int64, control: TransferControl) async -> CurlResult {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (cont: CheckedContinuation<CurlResult, Never>) in
                let job = Job(request: request, maxRate: maxRate, control: control) { cont.resume(returning: $0) }
                let queued = jobs.withLock { s -> Bool in
                    guard !s.stopping else { return false }
                    s.queue.append(job)
                    return true
                }
                if queued {
                    wakeup.signal()
                } else {
                    cont.resume(returning: .failed(UplinkError(.transport, "the uplink was shut down"), CurlTimings(), .cancelled))
                }
            }
        } onCancel: {
            control.cancel()
        }
    }

    private func loop(_ handle: UnsafeMutableRawPointer) {
        while true {
            wakeup.wait()
            let next = jobs.withLock { s -> Job? in s.queue.isEmpty ? nil : s.queue.removeFirst() }
            guard let job = next else {
                // A wake-up without a job is the shutdown's, once the queue has drained.
                guard jobs.withLock({ $0.stopping }) else { continue }
                curl_easy_cleanup(handle)
                return
            }
            job.done(run(job.request, maxRate: job.maxRate, control: job.control, on: handle))
        }
    }

    private func check(_ code: CURLcode, _ what: String) throws(UplinkError) {
        guard code == CURLE_OK else {
            throw UplinkError(.configuration, "curl_easy_setopt(\(what)) failed: \(String(cString: curl_easy_strerror(code)))")
        }
    }

    private func run(_ request: CurlRequest, maxRate: Int64, control: TransferControl, on h: UnsafeMutableRawPointer) -> CurlResult {
        if control.cancelled { return .failed(UplinkError(.transport, "cancelled"), CurlTimings(), .cancelled) }
        // Reset options but keep live connections, DNS and TLS session caches.
        curl_easy_reset(h)
        let abortCheck = self.abortCheck
        let ctx = TransferContext(body: request.body ?? [], settings: settings) {
            control.cancelled ? .cancelled : abortCheck(maxRate)
        }
        let ctxPtr = Unmanaged.passUnretained(ctx).toOpaque()
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        var slist: UnsafeMutablePointer<curl_slist>? = nil
        defer { curl_slist_free_all(slist) }

        do throws(UplinkError) {
            try check(ts_curl_setopt_str(h, CURLOPT_URL, request.url), "URL")
            try check(ts_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1), "NOSIGNAL")
            try check(ts_curl_setopt_long(h, CURLOPT_FOLLOWLOCATION, 0), "FOLLOWLOCATION")
            try check(ts_curl_setopt_str(h, CURLOPT_PROTOCOLS_STR, "http,https"), "PROTOCOLS_STR")
            try check(ts_curl_setopt_long(h, CURLOPT_HTTP_VERSION, TS_CURL_HTTP_VERSION_1_1), "HTTP_VERSION")
            try check(ts_curl_setopt_long(h, CURLOPT_SSLVERSION, TS_CURL_SSLVERSION_TLSv1_2), "SSLVERSION")
            try check(ts_curl_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 1), "SSL_VERIFYPEER")
            try check(ts_curl_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 2), "SSL_VERIFYHOST")
            if let ca = settings.caFile { try check(ts_curl_setopt_str(h, CURLOPT_CAINFO, ca), "CAINFO") }
            if let cert = settings.clientCert { try check(ts_curl_setopt_str(h, CURLOPT_SSLCERT, cert), "SSLCERT") }
            if let key = settings.clientKey { try check(ts_curl_setopt_str(h, CURLOPT_SSLKEY, key), "SSLKEY") }
            if let pins = settings.pinnedKeys { try check(ts_curl_setopt_str(h, CURLOPT_PINNEDPUBLICKEY, pins), "PINNEDPUBLICKEY") }
            try check(ts_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, Int(settings.connectTimeout * 1000)), "CONNECTTIMEOUT_MS")
            // Abort when fewer than 1 byte/s moved for stall_timeout seconds.
            try check(ts_curl_setopt_long(h, CURLOPT_LOW_SPEED_LIMIT, 1), "LOW_SPEED_LIMIT")
            try check(ts_curl_setopt_long(h, CURLOPT_LOW_SPEED_TIME, max(1, Int(settings.stallTimeout.rounded(.up)))), "LOW_SPEED_TIME")
            try check(ts_curl_setopt_long(h, CURLOPT_TCP_KEEPALIVE, 1), "TCP_KEEPALIVE")
            if maxRate > 0 {
                try check(ts_curl_setopt_off(h, CURLOPT_MAX_SEND_SPEED_LARGE, curl_off_t(maxRate)), "MAX_SEND_SPEED_LARGE")
            }
            try check(ts_curl_setopt_ptr(h, CURLOPT_ERRORBUFFER, &errorBuffer), "ERRORBUFFER")
            try check(ts_curl_setopt_sockopt(h, sockoptCallback), "SOCKOPTFUNCTION")
            try check(ts_curl_setopt_ptr(h, CURLOPT_SOCKOPTDATA, ctxPtr), "SOCKOPTDATA")
            try check(ts_curl_setopt_write(h, CURLOPT_HEADERFUNCTION, headerCallback), "HEADERFUNCTION")
            try check(ts_curl_setopt_ptr(h, CURLOPT_HEADERDATA, ctxPtr), "HEADERDATA")
            try check(ts_curl_setopt_write(h, CURLOPT_WRITEFUNCTION, writeCallback), "WRITEFUNCTION")
            try check(ts_curl_setopt_ptr(h, CURLOPT_WRITEDATA, ctxPtr), "WRITEDATA")
            try check(ts_curl_setopt_long(h, CURLOPT_NOPROGRESS, 0), "NOPROGRESS")
            try check(ts_curl_setopt_xferinfo(h, progressCallback), "XFERINFOFUNCTION")
            try check(ts_curl_setopt_ptr(h, CURLOPT_XFERINFODATA, ctxPtr), "XFERINFODATA")

            switch request.method {
            case .get:
                try check(ts_curl_setopt_long(h, CURLOPT_HTTPGET, 1), "HTTPGET")
            case .head:
                try check(ts_curl_setopt_long(h, CURLOPT_NOBODY, 1), "NOBODY")
            case .options, .delete:
                try check(ts_curl_setopt_str(h, CURLOPT_CUSTOMREQUEST, request.method.rawValue), "CUSTOMREQUEST")
            case .post, .patch:
                // UPLOAD streams the body through the read callback with a
                // Content-Length; CUSTOMREQUEST turns curl's PUT into the verb.
                try check(ts_curl_setopt_long(h, CURLOPT_UPLOAD, 1), "UPLOAD")
                try check(ts_curl_setopt_off(h, CURLOPT_INFILESIZE_LARGE, curl_off_t(ctx.body.count)), "INFILESIZE_LARGE")
                try check(ts_curl_setopt_read(h, readCallback), "READFUNCTION")
                try check(ts_curl_setopt_ptr(h, CURLOPT_READDATA, ctxPtr), "READDATA")
                try check(ts_curl_setopt_seek(h, seekCallback), "SEEKFUNCTION")
                try check(ts_curl_setopt_ptr(h, CURLOPT_SEEKDATA, ctxPtr), "SEEKDATA")
                try check(ts_curl_setopt_str(h, CURLOPT_CUSTOMREQUEST, request.method.rawValue), "CUSTOMREQUEST")
            }
            // An empty Expect suppresses 100-continue, which costs a round trip.
            for line in request.headers + ["Expect:"] { slist = curl_slist_append(slist, line) }
            try check(ts_curl_setopt_slist(h, CURLOPT_HTTPHEADER, slist), "HTTPHEADER")
        } catch {
            return .failed(error, CurlTimings(), nil)
        }

        let code = withExtendedLifetime(ctx) { curl_easy_perform(h) }
        var timings = readTimings(h)
        if let start = ctx.firstRead {
            let d = (ctx.rewindAt ?? .now) - start
            timings.sending = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }
        if code != CURLE_OK {
            if let reason = ctx.aborted, code == CURLE_ABORTED_BY_CALLBACK {
                return .failed(UplinkError(.transport, "transfer stopped (\(reason))"), timings, reason)
            }
            if let overflow = ctx.overflow {
                return .failed(UplinkError(.protocolViolation, overflow), timings, nil)
            }
            if code == CURLE_SSL_PINNEDPUBKEYNOTMATCH {
                return .failed(UplinkError(.transport, Self.pinMismatch, nextStep: Self.pinMismatchFix), timings, nil)
            }
            let detail = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            if code == CURLE_SEND_FAIL_REWIND, let handedOver = ctx.rewindAfter {
                var t = timings
                // libcurl restarted its counter for the resend it wanted; what
                // it had taken of the body tells how much went out before the drop.
                t.uploaded = max(t.uploaded, Int64(handedOver))
                let error = Self.droppedWhileSending(request, cause: detail, bodyBytes: ctx.body.count, handedOver: handedOver)
                return .failed(error, t, nil)
            }
            var message = "curl_easy_perform: \(String(cString: curl_easy_strerror(code)))"
            if !detail.isEmpty { message += " (\(detail))" }
            let fix: String? = switch code {
            case CURLE_OPERATION_TIMEDOUT: "the link stalled; the upload resumes when it recovers"
            case CURLE_COULDNT_RESOLVE_HOST: "check DNS and hub.url"
            case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE: "check hub.ca_file and the hub's certificate"
            case CURLE_SSL_CERTPROBLEM: "check hub.client_cert and hub.client_key"
            default: nil
            }
            return .failed(UplinkError(.transport, message, nextStep: fix), timings, nil)
        }
        var status = 0
        _ = ts_curl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        let response = TusResponse(status: status, headers: TusResponse.headers(fromLines: ctx.headerLines), body: ctx.responseBody)
        return .response(response, timings)
    }

    /// The error for a connection that died mid-request before any answer.
    /// `cause` is libcurl's first error (e.g. "Recv failure: Connection
    /// reset by peer"), which its error buffer keeps.
    static func droppedWhileSending(_ request: CurlRequest, cause: String, bodyBytes: Int, handedOver: Int) -> UplinkError {
        let why = cause.isEmpty ? "" : " (\(cause))"
        return UplinkError(.transport,
                           "the connection to the hub dropped while the \(request.method.rawValue) was being sent, before any answer\(why); \(min(handedOver, bodyBytes)) of its \(bodyBytes) body bytes had been handed to libcurl",
                           nextStep: "the link cuts connections; the station asks the hub what it kept and sends the rest")
    }

    static let pinMismatch = "hub certificate key does not match hub.pin_sha256: nothing was sent"
    static let pinMismatchFix = "if the hub's operators changed its key, put the new pin in hub.pin_sha256; otherwise something on this network intercepts TLS"

    private func readTimings(_ h: UnsafeMutableRawPointer) -> CurlTimings {
        func micros(_ info: CURLINFO) -> Double {
            var v: curl_off_t = 0
            _ = ts_curl_getinfo_off(h, info, &v)
            return Double(v) / 1_000_000
        }
        var t = CurlTimings()
        t.connect = micros(CURLINFO_CONNECT_TIME_T)
        t.pretransfer = micros(CURLINFO_PRETRANSFER_TIME_T)
        t.starttransfer = micros(CURLINFO_STARTTRANSFER_TIME_T)
        t.total = micros(CURLINFO_TOTAL_TIME_T)
        var up: curl_off_t = 0
        _ = ts_curl_getinfo_off(h, CURLINFO_SIZE_UPLOAD_T, &up)
        t.uploaded = Int64(up)
        var connects = 0
        _ = ts_curl_getinfo_long(h, CURLINFO_NUM_CONNECTS, &connects)
        t.newConnections = connects
        return t
    }
}
