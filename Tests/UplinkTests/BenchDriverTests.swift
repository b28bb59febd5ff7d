import Foundation
import Testing
@testable import Uplink

/// The station side of `bench/uplink/run.py`: uploads the files the bench
/// names to the hub URL it names, in order, with the caller's retry loop.
/// Runs only when the bench sets TELESTATION_BENCH_URL.
@Suite struct BenchDriverTests {
    static let env = ProcessInfo.processInfo.environment

    @Test(.enabled(if: env["TELESTATION_BENCH_URL"] != nil, "run by bench/uplink/run.py"), .timeLimit(.minutes(30)))
    func uploadTheBenchFiles() async throws {
        let url = try #require(Self.env["TELESTATION_BENCH_URL"])
        let files = (Self.env["TELESTATION_BENCH_FILES"] ?? "").split(separator: ":").map(String.init)
        var uplink = testUplink(stall: Double(Self.env["TELESTATION_BENCH_STALL"] ?? "10") ?? 10)
        uplink.backoffMax = 30
        let client = try TusClient(hubURL: url, uplink: uplink)
        for path in files {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            let name = (path as NSString).lastPathComponent
            let meta = metadata(for: bytes, filename: name, kind: name.contains("preview") ? .preview : .image)
            let (outcome, _) = await deliver(client, try FileUploadSource(path: path), meta, state: JobState(), maxAttempts: 10_000, maxSleep: 30)
            guard case .completed = outcome else { Issue.record("\(name): \(outcome)"); return }
        }
        print("bench station link: \(client.status.link), final chunk \(client.status.chunkSize) B")
    }
}
