import Config
import Crypto
import Foundation
import HTTPTypes
import Hub
import Hummingbird
import ServiceLifecycle
import Testing
@testable import Uplink

/// A directory removed when the value goes away.
final class TempDir: Sendable {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "uplink-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}

func randomBytes(_ n: Int, seed: UInt64 = 1) -> [UInt8] {
    var state = seed &* 6364136223846793005 &+ 1442695040888963407
    return (0..<n).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
}

func sha256Hex(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

func metadata(for bytes: [UInt8], filename: String = "lesion.jpg", kind: UploadMetadata.Kind = .image) -> UploadMetadata {
    UploadMetadata(filename: filename, station: "puesto-07", caseID: "C-2026-0042", site: "antebrazo izquierdo",
                   priority: "urgent", kind: kind, capturedAt: Date(timeIntervalSince1970: 1_790_000_000), sha256: sha256Hex(bytes))
}

/// Fast settings for loopback tests.
func testUplink(stall: Double = 20, minChunk: Int64 = 16 << 10, maxChunk: Int64 = 8 << 20, target: Double = 10) -> StationConfig.Uplink {
    var u = StationConfig().uplink
    u.stallTimeout = stall
    u.minChunk = minChunk
    u.maxChunk = maxChunk
    u.targetChunkTime = target
    u.backoffMax = 5
    return u
}

/// Keeps the job's resume state as a caller (the spool) would.
final class JobState: @unchecked Sendable {
    // @unchecked Sendable: only touched from the single test task that owns it.
    var url: String?
    var offset: Int64 = 0
    var events: [UploadEvent] = []
    func record(_ e: UploadEvent) {
        events.append(e)
        switch e {
        case let .created(u): url = u; offset = 0
        case let .progress(o): offset = o
        }
    }
}

/// The caller's retry loop: call `upload` until it completes or holds, sleeping
/// the advised delays (capped so tests stay short).
func deliver(_ client: TusClient, _ source: any UploadSource, _ meta: UploadMetadata, state: JobState,
             maxAttempts: Int = 200, maxSleep: Double = 2) async -> (UploadOutcome, attempts: Int) {
    var last = UploadOutcome.cancelled
    for attempt in 1...maxAttempts {
        let job = UploadJob(source: source, metadata: meta, resumeURL: state.url, acknowledgedOffset: state.offset)
        last = await client.upload(job) { state.record($0) }
        switch last {
        case .completed, .hold, .authFailed, .cancelled, .recordFailed: return (last, attempt)
        case .urlGone: state.url = nil; state.offset = 0
        case let .retry(after, _): try? await Task.sleep(for: .seconds(min(after, maxSleep)))
        }
    }
    return (last, maxAttempts)
}

/// A child process speaking on stdout; `READY <port>` marks readiness.
final class ChildProcess: @unchecked Sendable {
    // @unchecked Sendable: `process` is only mutated in init and terminate, from one task.
    let process = Process()
    let port: Int

    init(_ executable: String, _ arguments: [String], readyTimeout: Double = 120) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        // Readiness, not a sleep: wait for the child to print its port.
        let handle = pipe.fileHandleForReading
        var buffer = Data()
        let deadline = Date().addingTimeInterval(readyTimeout)
        var found: Int?
        while found == nil && Date() < deadline && process.isRunning {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            let text = String(decoding: buffer, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("READY ") }) {
                found = Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
            }
        }
        guard let found else {
            process.terminate()
            throw UplinkError(.configuration, "\(executable) \(arguments.joined(separator: " ")) did not become ready: \(String(decoding: buffer, as: UTF8.self))")
        }
        port = found
    }

    /// SIGTERM, then waits up to 10 s for the exit (polling: `waitUntilExit`
    /// spins a run loop, which can stall inside an async test).
    func terminate() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(20_000) }
    }

    deinit { terminate() }
}

let supportDirectory: String = {
    // Tests/UplinkTests/Support.swift → Tests/Support
    let here = URL(fileURLWithPath: #filePath)
    return here.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Support").path
}()

/// Python with the packages a test needs, or nil when they are not installed.
func pythonWith(_ modules: [String]) -> String? {
    for candidate in ["/usr/bin/env"] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: candidate)
        p.arguments = ["python3", "-c", "import " + modules.joined(separator: ", ")]
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        guard (try? p.run()) != nil else { continue }
        p.waitUntilExit()
        if p.terminationStatus == 0 { return "/usr/bin/env" }
    }
    return nil
}

// MARK: A scripted tus server for status-code tests

struct RecordedRequest: Sendable {
    var method: String
    var path: String
    var headers: [String: String]
    var bodyCount: Int
}

struct Scripted: Sendable {
    var status: Int
    var headers: [String: String] = [:]
    var body: String = ""
    /// Seconds to wait before answering (a hub that hangs).
    var delay: Double = 0
}

/// A minimal in-memory tus server over real HTTP (Hummingbird on loopback),
/// with a hook that can answer any request instead of it — to make the hub
/// misbehave in exactly one way per test.
final class ScriptedHub: Sendable {
    typealias Fault = @Sendable (_ request: RecordedRequest, _ index: Int) -> Scripted?
    let log = LockedBox<[RecordedRequest]>([])
    let uploads = LockedBox<[String: [UInt8]]>([:])
    let lengths = LockedBox<[String: Int64]>([:])
    let fault: Fault
    let extensions: String
    private let box = LockedBox<(ServiceGroup, Task<Void, any Error>)?>(nil)
    let port: Int

    init(extensions: String = "creation,checksum", fault: @escaping Fault = { _, _ in nil }) async throws {
        self.fault = fault
        self.extensions = extensions
        let (stream, cont) = AsyncStream<Int>.makeStream()
        let holder = LockedBox<ScriptedHub?>(nil)
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            guard let me = holder.value else { return Response(status: .serviceUnavailable) }
            return try await me.respond(request)
        }
        let app = Application(responder: responder, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { cont.yield($0.localAddress?.port ?? 0); cont.finish() })
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: app.logger))
        let task = Task { try await group.run() }
        var it = stream.makeAsyncIterator()
        port = await it.next() ?? 0
        box.value = (group, task)
        holder.value = self
    }

    var url: String { "http://127.0.0.1:\(port)/files/" }
    var requests: [RecordedRequest] { log.value }

    func stop() async {
        guard let (group, task) = box.value else { return }
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }

    private func respond(_ request: Request) async throws -> Response {
        var req = request
        let body = try await req.collectBody(upTo: 64 << 20)
        var headers: [String: String] = [:]
        for f in request.headers { headers[f.name.canonicalName] = f.value }
        let rec = RecordedRequest(method: request.method.rawValue, path: request.uri.path, headers: headers, bodyCount: body.readableBytes)
        let index = log.mutate { $0.append(rec); return $0.count - 1 }
        if let s = fault(rec, index) {
            if s.delay > 0 { try? await Task.sleep(for: .seconds(s.delay)) }
            return make(s)
        }
        let bytes = Array(body.readableBytesView)
        switch rec.method {
        case "OPTIONS":
            return make(Scripted(status: 204, headers: ["Tus-Version": "1.0.0", "Tus-Extension": extensions,
                                                        "Tus-Checksum-Algorithm": "sha1,sha256"]))
        case "POST":
            let id = "u\(index)"
            uploads.mutate { $0[id] = bytes }
            lengths.mutate { $0[id] = Int64(headers["upload-length"] ?? "0") ?? 0 }
            return make(Scripted(status: 201, headers: ["Location": "/files/\(id)", "Upload-Offset": "\(bytes.count)"]))
        case "HEAD":
            let id = String(rec.path.dropFirst("/files/".count))
            guard let have = uploads.value[id] else { return make(Scripted(status: 404)) }
            return make(Scripted(status: 200, headers: ["Upload-Offset": "\(have.count)", "Upload-Length": "\(lengths.value[id] ?? 0)"]))
        case "PATCH":
            let id = String(rec.path.dropFirst("/files/".count))
            guard let have = uploads.value[id] else { return make(Scripted(status: 404)) }
            guard headers["upload-offset"] == "\(have.count)" else { return make(Scripted(status: 409)) }
            let total = uploads.mutate { $0[id]!.append(contentsOf: bytes); return $0[id]!.count }
            return make(Scripted(status: 204, headers: ["Upload-Offset": "\(total)"]))
        default:
            return make(Scripted(status: 405))
        }
    }

    private func make(_ s: Scripted) -> Response {
        var fields = HTTPFields()
        fields[HTTPField.Name("Tus-Resumable")!] = "1.0.0"
        for (k, v) in s.headers { fields[HTTPField.Name(k)!] = v }
        return Response(status: .init(code: s.status), headers: fields, body: .init(byteBuffer: ByteBuffer(string: s.body)))
    }
}

/// `@unchecked Sendable`: `_value` is only reached under `lock`.
final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: T
    init(_ v: T) { _value = v }
    var value: T {
        get { lock.withLock { _value } }
        set { lock.withLock { _value = newValue } }
    }
    func mutate<R>(_ f: (inout T) -> R) -> R { lock.withLock { f(&_value) } }
}
