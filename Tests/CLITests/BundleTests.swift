import Foundation
import Testing
import TestSupport

/// `telestation diagnose --bundle` as a technician runs it: the tarball is
/// listed and read with tar, and the token must appear nowhere in it.
@Suite struct DiagnoseBundleTests {
    func tar(_ args: [String]) throws -> String {
        let r = try ProcessRunner.run("/bin/tar", args)
        #expect(r.status == 0, "tar \(args): \(r.stderr)")
        return r.stdout
    }

    @Test func theBundleHoldsReportConfigQueueDevicesAndLogsButNoSecrets() throws {
        let d = try TempDir()
        let token = "tok-\(UUID().uuidString)"
        let tokenFile = try d.write("token", token + "\n", mode: 0o600)
        // A closed port: the hub checks fail fast, as on a station without uplink.
        let config = try PipelineTests().station(d, hub: "http://127.0.0.1:9/files/")
        try (String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "[hub]\n", with: "[hub]\ntoken_file = \"\(tokenFile)\"\n"))
            .write(toFile: config, atomically: true, encoding: .utf8)
        let jpeg = try PipelineTests().jpeg(d, config, name: "a.jpg")
        let q = try CLI.run(["enqueue", jpeg, "--config", config, "--case", "40123456", "--site", "arm_left", "--note", "lesión en brazo"])
        #expect(q.status == 0, "\(q.stderr)")

        let bundle = d.url.appendingPathComponent("support.tar.gz").path
        let r = try CLI.run(["diagnose", "--config", config, "--only", "config,storage,hub", "--bundle", bundle])
        #expect(r.stderr.contains("support bundle written to \(bundle)"), "\(r.stderr)")

        let listing = try tar(["-tzf", bundle]).split(separator: "\n").map(String.init)
        for name in ["report.txt", "report.json", "station.toml", "queue.json", "devices.json", "journal.txt"] {
            #expect(listing.contains("telestation-diagnosis/\(name)"), "\(name) missing from \(listing)")
        }
        let queue = try JSONSerialization.jsonObject(with: Data(try tar(["-xzOf", bundle, "telestation-diagnosis/queue.json"]).utf8)) as? [String: Any]
        let items = try #require(queue?["items"] as? [[String: Any]])
        // The image and its preview, pending, with sizes but no patient identifiers.
        #expect(items.count == 2)
        #expect(items.allSatisfy { $0["case_id"] as? String == "[redacted]" && ($0["size"] as? Int ?? 0) > 0 })
        #expect(items.contains { $0["note"] as? String == "[redacted]" })
        #expect(try tar(["-xzOf", bundle, "telestation-diagnosis/station.toml"]).contains("token_file = \"\(tokenFile)\""))
        #expect(try tar(["-xzOf", bundle, "telestation-diagnosis/report.txt"]).contains("hub"))

        let everything = try tar(["-xzOf", bundle])
        #expect(!everything.contains(token), "the token is in the bundle")
        #expect(!everything.contains("40123456") && !everything.contains("lesión"), "patient data is in the bundle")
        // No image bytes: no JPEG start-of-image marker anywhere.
        let unpacked = d.url.appendingPathComponent("unpacked").path
        try FileManager.default.createDirectory(atPath: unpacked, withIntermediateDirectories: true)
        _ = try tar(["-xzf", bundle, "-C", unpacked])
        for name in listing where !name.hasSuffix("/") {
            let data = try Data(contentsOf: URL(fileURLWithPath: unpacked + "/" + name))
            #expect(data.range(of: Data([0xFF, 0xD8, 0xFF])) == nil, "\(name) holds JPEG bytes")
        }
    }
}
