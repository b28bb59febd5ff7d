import Basics
import Config
import Foundation
import Hummingbird
import Logging
import Synchronization

/// The control API and kiosk page, served on `kiosk.listen`.
///
/// JSON over HTTP under `/api/v1/`:
/// - `GET  /api/v1/status` — status line, health, link and queue summary
/// - `POST /api/v1/captures` `{case_id, site, note?, priority?, role?, aspect?, patient?, history?, consent?}` → 201 review item
/// - `GET  /api/v1/captures/{id}/image` and `/preview` — JPEG
/// - `POST /api/v1/captures/{id}/accept` → queue item; `POST …/retake` → 204 (also drops one image of a case)
/// - `POST /api/v1/case/check` `{case_id, patient?, …}` → the case as the station would store it (DNI check character,
///   patient fields), or the error naming what to correct — the kiosk asks before the echo "¿Es la paciente …?"
/// - `POST /api/v1/cases` `{ids: [review ids], case: {case_id, patient?, history?, consent?, note?, priority?}}` →
///   201 `{case_uid, items}`: the stills under review sent as one case (409 if one was taken for another case id)
/// - `GET  /api/v1/queue`, `GET /api/v1/queue/{id}/thumbnail`
/// - `GET  /api/v1/link`; `POST /api/v1/uploads` `{action: pause|resume|limit, rate?}`
/// - `GET  /api/v1/camera/controls`; `PUT /api/v1/camera/controls/{name}` `{value: int|bool}` → the
///   control as the camera applied it (404 unknown, 409 overridden by its Auto, 400 refused, 503 no camera)
/// - `GET  /api/v1/preview.mjpeg` (multipart/x-mixed-replace) and `/api/v1/preview.jpg`
/// - `PUT  /api/v1/case` `{case_id, site, note?, priority?}` — the case button captures go to; `DELETE` closes it
/// Errors are `{"error": {"code", "message", "fix"}}` with a matching HTTP status.
public struct ControlAPI: Sendable {
    public let backend: any StationBackend
    public let language: StationConfig.Language
    public let validator: CaptureRequestValidator
    public let shutdown: ShutdownSignal
    /// Live preview streams at once; each costs a JPEG stream of bandwidth and CPU on a small board.
    public let maxPreviewStreams: Int
    private let previewStreams = Locked(0)
    private let logger: Logger
    /// When set, every request must carry it (see `KioskAccess`).
    public let accessToken: String?

    public init(backend: any StationBackend, language: StationConfig.Language = .es,
                caseIds: CaseIdPolicy = .peru, shutdown: ShutdownSignal = ShutdownSignal(),
                maxPreviewStreams: Int = 4, accessToken: String? = nil, logger: Logger = Logger(label: "telestation.control")) {
        self.accessToken = accessToken
        self.backend = backend
        self.language = language
        self.validator = CaptureRequestValidator(caseIds: caseIds)
        self.shutdown = shutdown
        self.maxPreviewStreams = maxPreviewStreams
        self.logger = logger
    }

    static let mjpegBoundary = "telestationframe"

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        let api = self
        if let accessToken { router.add(middleware: KioskAccess(token: accessToken)) }

        router.get("/") { _, _ in
            api.html(KioskPage.render(language: api.language, caseFormats: api.validator.caseIds.formats))
        }
        router.get("/api/v1/status") { _, _ in
            await api.json(StatusReport(backend: api.backend))
        }
        router.post("/api/v1/captures") { request, _ in
            try await api.handle(request) {
                let body = try await api.body(request)
                let captureRequest = try api.validator.validate(json: body)
                let item = try await api.backend.capture(captureRequest)
                return api.json(item, status: .created)
            }
        }
        router.get("/api/v1/captures/:id/image") { request, context in
            try await api.handle(request) { try await api.jpeg(api.backend.image(id: context.parameters.require("id"), kind: .full)) }
        }
        router.get("/api/v1/captures/:id/preview") { request, context in
            try await api.handle(request) { try await api.jpeg(api.backend.image(id: context.parameters.require("id"), kind: .preview)) }
        }
        router.post("/api/v1/captures/:id/accept") { request, context in
            try await api.handle(request) {
                api.json(try await api.backend.accept(id: context.parameters.require("id")))
            }
        }
        router.post("/api/v1/captures/:id/retake") { request, context in
            try await api.handle(request) {
                try await api.backend.retake(id: context.parameters.require("id"))
                return Response(status: .noContent)
            }
        }
        router.post("/api/v1/case/check") { request, _ in
            try await api.handle(request) {
                let checked = try api.validator.validate(object: CaptureRequestValidator.object(try await api.body(request)), requireSite: false)
                return api.json(checked)
            }
        }
        router.post("/api/v1/cases") { request, _ in
            try await api.handle(request) {
                let submission = try api.validator.validateCase(json: try await api.body(request))
                return api.json(try await api.backend.sendCase(submission), status: .created)
            }
        }
        router.put("/api/v1/case") { request, _ in
            try await api.handle(request) {
                let open = try api.validator.validate(json: try await api.body(request))
                await api.backend.setOpenCase(open)
                return api.json(await api.backend.triggerStatus())
            }
        }
        router.delete("/api/v1/case") { request, _ in
            try await api.handle(request) {
                await api.backend.setOpenCase(nil)
                return Response(status: .noContent)
            }
        }
        router.get("/api/v1/queue") { request, _ in
            try await api.handle(request) { api.json(try await api.backend.queue()) }
        }
        router.get("/api/v1/queue/:id/thumbnail") { request, context in
            try await api.handle(request) { try await api.jpeg(api.backend.image(id: context.parameters.require("id"), kind: .preview)) }
        }
        router.get("/api/v1/link") { _, _ in
            api.json(await api.backend.link())
        }
        router.post("/api/v1/uploads") { request, _ in
            try await api.handle(request) {
                let control = try CaptureRequestValidator.uploadControl(json: try await api.body(request))
                try await api.backend.setUploads(control)
                return api.json(await api.backend.link())
            }
        }
        router.get("/api/v1/replies") { request, _ in
            api.json(await api.backend.replies(refresh: request.uri.queryParameters.get("refresh") == "1"))
        }
        router.post("/api/v1/replies/:id/read") { request, context in
            try await api.handle(request) {
                guard let id = Int(try context.parameters.require("id")) else { throw StationError(.badRequest, "a reply id is a number") }
                try await api.backend.markReplyRead(id)
                return api.json(await api.backend.replies(refresh: false))
            }
        }
        router.get("/api/v1/stick") { _, _ in
            api.json(await api.backend.stickStatus())
        }
        router.post("/api/v1/stick/export") { request, _ in
            try await api.handle(request) {
                let op = try await api.backend.exportToStick()
                return api.json(op, status: op.ok ? .ok : .internalServerError)
            }
        }
        router.get("/api/v1/camera/controls") { request, _ in
            try await api.handle(request) { api.json(try await api.backend.cameraControls()) }
        }
        router.put("/api/v1/camera/controls/:name") { request, context in
            try await api.handle(request) {
                let (name, value) = try CaptureRequestValidator.cameraControl(name: try context.parameters.require("name"),
                                                                             json: try await api.body(request))
                let controls = try await api.backend.cameraControls()
                guard let control = controls.first(where: { $0.name == name }) else {
                    throw StationError(.notFound, "the camera has no control \"\(name)\"",
                                       nextStep: "see GET /api/v1/camera/controls for the ones it has")
                }
                guard value >= control.minimum, value <= control.maximum else {
                    throw StationError(.badRequest, "\(name) must be between \(control.minimum) and \(control.maximum), not \(value)")
                }
                return api.json(try await api.backend.setCameraControl(name: name, value: value))
            }
        }
        router.get("/api/v1/preview.jpg") { request, _ in
            try await api.handle(request) {
                // A missing camera sends no frames at all: give up after a few seconds.
                let backend = api.backend
                let first = await withTaskGroup(of: Data?.self) { group in
                    group.addTask {
                        var frames = backend.previewFrames().makeAsyncIterator()
                        return await frames.next()
                    }
                    group.addTask {
                        try? await Task.sleep(for: .seconds(5))
                        return nil
                    }
                    let frame = await group.next() ?? nil
                    group.cancelAll()
                    return frame
                }
                guard let frame = first else {
                    throw StationError(.cameraMissing, "no preview frame: the camera is not delivering images",
                                       nextStep: "check the camera cable; the station retries on its own")
                }
                return api.jpeg(frame, cache: false)
            }
        }
        router.get("/api/v1/preview.mjpeg") { request, _ in
            try await api.handle(request) { try api.mjpegStream() }
        }
        return router
    }

    // MARK: - Responses

    func mjpegStream() throws(StationError) -> Response {
        let admitted = previewStreams.withLock { n -> Bool in
            guard n < maxPreviewStreams else { return false }
            n += 1
            return true
        }
        guard admitted else {
            throw StationError(.unavailable, "too many live previews are open (\(maxPreviewStreams))",
                               nextStep: "close other kiosk windows or browser tabs")
        }
        let backend = self.backend
        let shutdown = self.shutdown
        let counter = previewStreams
        var headers = HTTPFields()
        headers[.contentType] = "multipart/x-mixed-replace; boundary=\(Self.mjpegBoundary)"
        headers[.cacheControl] = "no-store"
        let body = ResponseBody { writer in
            defer { counter.withLock { $0 -= 1 } }
            // The preview ends when the client goes away (a write fails) or
            // the daemon shuts down, whichever comes first. Only the newest
            // frame is kept: a slow client skips frames rather than lagging.
            let (frames, relay) = AsyncStream.makeStream(of: Data.self, bufferingPolicy: .bufferingNewest(1))
            let pump = Task {
                for await frame in backend.previewFrames() { relay.yield(frame) }
                relay.finish()
            }
            let stopper = Task {
                await shutdown.wait()
                relay.finish()
            }
            defer {
                pump.cancel()
                stopper.cancel()
            }
            for await frame in frames {
                var part = ByteBuffer()
                part.writeString("--\(Self.mjpegBoundary)\r\nContent-Type: image/jpeg\r\nContent-Length: \(frame.count)\r\n\r\n")
                part.writeBytes(frame)
                part.writeString("\r\n")
                try await writer.write(part)
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    func handle(_ request: Request, _ body: () async throws -> Response) async throws -> Response {
        do {
            if request.method != .get && request.method != .head {
                try checkOrigin(request)
            }
            return try await body()
        } catch let error as StationError {
            if error.code == .internalFailure || error.code == .system {
                logger.error("\(request.method) \(request.uri.path): \(error)")
            }
            return errorResponse(error)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            logger.error("\(request.method) \(request.uri.path): \(error)")
            return errorResponse(StationError(.internalFailure, "the station could not complete the request: \(error)",
                                              nextStep: "try again; if it persists run `telestation diagnose`"))
        }
    }

    /// A page on another site open in the same browser must not be able to
    /// capture or change settings: state-changing requests that carry an
    /// `Origin` must come from this very host and port.
    func checkOrigin(_ request: Request) throws(StationError) {
        guard let origin = request.headers[.origin] else { return }
        let host = request.head.authority ?? ""
        guard let url = URL(string: origin), let originHost = url.host else {
            throw StationError(.forbidden, "requests from origin \(origin) are not accepted")
        }
        let originAuthority = url.port.map { "\(originHost):\($0)" } ?? originHost
        guard originAuthority == host || "\(originAuthority):80" == host || originAuthority == "\(host):80" else {
            throw StationError(.forbidden, "requests from origin \(origin) are not accepted",
                               nextStep: "use the kiosk page served by the station itself")
        }
    }

    /// The request body, refused past `CaptureRequestValidator.maxBodyBytes`.
    func body(_ request: Request) async throws -> Data {
        do {
            return Data(buffer: try await request.body.collect(upTo: CaptureRequestValidator.maxBodyBytes))
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            // NIO's NIOTooManyBytesError, which Hummingbird answers as 413.
            throw StationError(.payloadTooLarge, "the request body is larger than \(CaptureRequestValidator.maxBodyBytes) bytes",
                               nextStep: "send only the documented fields")
        }
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.dateEncodingStrategy = .iso8601
        return e
    }()

    func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? Self.encoder.encode(value)) ?? Data("{}".utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    func jpeg(_ data: Data, cache: Bool = true) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "image/jpeg"
        headers[.cacheControl] = cache ? "private, max-age=3600" : "no-store"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    func html(_ text: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        // Everything the page needs is inline or same-origin.
        headers[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' blob:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors 'none'"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    struct ErrorBody: Encodable {
        struct Inner: Encodable { var code: String; var message: String; var fix: String? }
        var error: Inner
    }

    func errorResponse(_ error: StationError) -> Response {
        let status: HTTPResponse.Status = switch error.code {
        case .badRequest, .invalidCaseId, .dniCheckMismatch: .badRequest
        case .notFound: .notFound
        case .conflict: .conflict
        case .payloadTooLarge: .contentTooLarge
        case .forbidden: .forbidden
        case .unavailable, .cameraMissing: .serviceUnavailable
        case .system, .notifySocket, .internalFailure: .internalServerError
        }
        return json(ErrorBody(error: .init(code: error.code.rawValue, message: error.message, fix: error.nextStep)), status: status)
    }
}

/// `GET /api/v1/status`: everything the kiosk header and `telestation status` show.
struct StatusReport: Encodable {
    var status: String
    var problems: [String]
    var health: StationHealth
    var link: LinkState
    var pendingCount: Int
    var pendingBytes: Int64
    var triggers: TriggerStatus

    init(backend: any StationBackend) async {
        let line = await backend.statusLine()
        status = line.render()
        problems = line.problems
        health = await backend.health()
        link = await backend.link()
        pendingCount = line.pendingCount
        pendingBytes = line.pendingBytes
        triggers = await backend.triggerStatus()
    }

    enum CodingKeys: String, CodingKey {
        case status, problems, health, link, pendingCount = "pending_count", pendingBytes = "pending_bytes", triggers
    }
}
