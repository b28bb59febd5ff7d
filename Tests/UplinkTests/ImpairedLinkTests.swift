import Foundation
import Hub
import Testing
@testable import Uplink

/// Uploads through a proxy that imitates a rural uplink (rate limit, 300 ms
/// latency, connection resets every ~200 KB, outages longer than the stall
/// timeout), restarting the uploading side twice. The default run is short;
/// `TELESTATION_LONG_TESTS=1` runs the full 3 × 1 MB at 128 kbit/s (~5 min).
@Suite(.timeLimit(.minutes(10))) struct ImpairedLinkTests {
    struct Plan {
        var imageSize: Int
        var rate: Int
        var outageEvery: Double
        var outageFor: Double
    }

    static let long = ProcessInfo.processInfo.environment["TELESTATION_LONG_TESTS"] == "1"
    static let plan = long
        ? Plan(imageSize: 1_000_000, rate: 16_000, outageEvery: 40, outageFor: 6)
        : Plan(imageSize: 300_000, rate: 32_000, outageEvery: 12, outageFor: 3)

    @Test(.enabled(if: pythonWith(["asyncio"]) != nil, "needs python3"))
    func threeImagesArriveIntactThroughResetsOutagesAndRestarts() async throws {
        let plan = Self.plan
        let dir = try TempDir()
        let store = try HubStore(directory: dir.file("store"))
        let hub = try await HubServer(store: store, token: "t0k").start()
        defer { Task { await hub.stop() } }
        let statsFile = dir.file("proxy.json")
        let proxy = try ChildProcess("/usr/bin/env", [
            "python3", supportDirectory + "/impaired_proxy.py", "--target", "127.0.0.1:\(hub.port)", "--stats", statsFile,
            "--rate", "\(plan.rate)", "--latency", "0.3", "--reset-every", "200000",
            "--outage-every", "\(plan.outageEvery)", "--outage-for", "\(plan.outageFor)",
        ])
        var uplink = testUplink(stall: 2, target: 10)
        uplink.backoffMax = 4
        let hubURL = "http://127.0.0.1:\(proxy.port)/files/"
        func newStation() throws -> TusClient { try TusClient(hubURL: hubURL, token: "t0k", uplink: uplink) }

        let images = (0..<3).map { randomBytes(plan.imageSize, seed: UInt64(100 + $0)) }
        var station = try newStation()
        var restarts: [(acked: Int64, resumedAt: Int64?)] = []
        var urls: [String] = []
        for (i, bytes) in images.enumerated() {
            let meta = metadata(for: bytes, filename: "img-\(i).jpg")
            let state = JobState()
            // Image 0 and 1: the station process "dies" once a third of the file is acknowledged.
            if i < 2 {
                let killAt = Int64(plan.imageSize / 3)
                let killed = Task { [station] in
                    for _ in 0..<500 {
                        let job = UploadJob(source: MemoryUploadSource(bytes), metadata: meta, resumeURL: state.url, acknowledgedOffset: state.offset)
                        let outcome = await station.upload(job) { e in
                            state.record(e)
                            if case let .progress(o) = e, o >= killAt { withUnsafeCurrentTask { $0?.cancel() } }
                        }
                        switch outcome {
                        case .cancelled: return true
                        case .urlGone: state.url = nil
                        case let .retry(after, _): try? await Task.sleep(for: .seconds(min(after, 2)))
                        default: return false
                        }
                    }
                    return false
                }
                #expect(await killed.value, "image \(i) reached the kill point")
                let ackedBeforeRestart = state.offset
                station = try newStation()
                let firstEventAfter = state.events.count
                let (outcome, _) = await deliver(station, MemoryUploadSource(bytes), meta, state: state, maxAttempts: 500)
                guard case .completed = outcome else { Issue.record("image \(i): \(outcome)"); continue }
                let resumed = state.events[firstEventAfter...].compactMap { if case let .progress(o) = $0 { o } else { nil } }.first
                restarts.append((ackedBeforeRestart, resumed))
            } else {
                let (outcome, _) = await deliver(station, MemoryUploadSource(bytes), meta, state: state, maxAttempts: 500)
                guard case .completed = outcome else { Issue.record("image \(i): \(outcome)"); continue }
            }
            #expect(state.events.filter { if case .created = $0 { true } else { false } }.count == 1, "image \(i) was created once")
            urls.append(try #require(state.url))
        }
        proxy.terminate()

        for (i, url) in urls.enumerated() {
            let id = String(url.split(separator: "/").last!)
            #expect(FileManager.default.contents(atPath: dir.file("store/\(id)-img-\(i).jpg")) == Data(images[i]), "image \(i) intact")
        }
        for (n, r) in restarts.enumerated() {
            let resumedAt = try #require(r.resumedAt)
            #expect(resumedAt >= r.acked && r.acked > 0, "restart \(n) resumed at \(resumedAt), not from zero")
        }
        let stats = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: statsFile))) as? [String: Any])
        let upstream = try #require(stats["upstream_bytes"] as? Int)
        let payload = images.count * plan.imageSize
        let resets = stats["resets"] as? Int ?? 0
        print("impaired link: payload \(payload) B, upstream \(upstream) B (+\(String(format: "%.1f", Double(upstream - payload) / Double(payload) * 100))%), resets \(resets), elapsed \(stats["elapsed"] ?? "?") s, \(station.status.link)")
        #expect(resets >= 2, "the proxy did reset connections")
        // The issue's criterion is < 10 % at 128 kbit/s (the long run). The
        // short run's doubled rate doubles the bytes in flight that every
        // reset loses, and its few resets make the figure noisy (7-10 %
        // measured), so it only guards against gross waste such as restarts
        // from zero.
        let limit = Self.long ? 1.10 : 1.15
        #expect(Double(upstream) < Double(payload) * limit, "upstream \(upstream) B for \(payload) B of images")
    }
}
