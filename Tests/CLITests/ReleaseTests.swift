import Foundation
import Testing

/// `telestation release` through the real binaries: items the hub refused
/// as too large are held with the reason, and after the operator raises the
/// hub's limit and releases them, they upload.
@Suite(.serialized) struct ReleaseTests {
    func items(_ config: String) throws -> [[String: Any]] {
        let s = try CLI.run(["status", "--json", "--config", config])
        let status = try #require(try JSONSerialization.jsonObject(with: Data(s.stdout.utf8)) as? [String: Any])
        return status["items"] as? [[String: Any]] ?? []
    }

    @Test func heldItemsUploadAfterTheFixAndRelease() throws {
        let d = try TempDir()
        let store = d.url.path + "/hub"
        try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
        let pipeline = PipelineTests()
        var hub: HubProcess? = try HubProcess(store: store, extra: ["--max-size", "2000"])
        var config = try pipeline.station(d, hub: hub!.url)
        let a = try pipeline.jpeg(d, config, name: "a.jpg")
        #expect(try CLI.run(["enqueue", a, "--config", config, "--case", "40123456"]).status == 0)

        // Held items do not count as remaining: sync finishes, nothing is sent.
        let first = try CLI.run(["sync", "--deadline", "1m", "--config", config])
        #expect(first.status == 0, "\(first.stdout) \(first.stderr)")
        let held = try items(config)
        #expect(held.count == 2)
        #expect(held.allSatisfy { $0["state"] as? String == "held" && ($0["last_error"] as? String ?? "").contains("Tus-Max-Size") }, "\(held)")
        #expect(try hub!.files().isEmpty)

        let usage = try CLI.run(["release", "--config", config])
        #expect(usage.status == 64)
        #expect(usage.stderr.contains("--all-held"))

        // The operator's fix: the hub takes large files again (on a new port).
        hub = nil
        hub = try HubProcess(store: store)
        config = try pipeline.station(d, hub: hub!.url)
        let released = try CLI.run(["release", "--all-held", "--config", config])
        #expect(released.status == 0, "\(released.stderr)")
        #expect(released.stdout.components(separatedBy: "back in the upload queue").count == 3)
        let sync = try CLI.run(["sync", "--deadline", "1m", "--config", config])
        #expect(sync.status == 0, "\(sync.stdout) \(sync.stderr)")
        #expect(try items(config).isEmpty)
        let stored = try hub!.files()
        #expect(stored.count == 2)
        #expect(try stored.keys.filter { !$0.contains("-preview.") }.map { try sha256Hex(store + "/" + $0) } == [try sha256Hex(a)])
    }
}
