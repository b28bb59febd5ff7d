import Foundation
import Testing
import TestSupport

/// A hub process on a free loopback port, stopped with the test.
final class HubProcess: @unchecked Sendable {
    // Set once in init; the process is only signalled in deinit.
    let process = Process()
    let port: Int
    let store: String

    init(store: String, token: String? = nil, extra: [String] = []) throws {
        port = Int.random(in: 20000...40000)
        self.store = store
        process.executableURL = CLI.binDir.appendingPathComponent("telestation-hub")
        process.arguments = ["--listen", "127.0.0.1:\(port)", "--store", store] + (token.map { ["--token-file", $0] } ?? []) + extra
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Ready when it accepts connections.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if Self.accepts(port) { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "hub did not start"])
    }

    static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
    }

    var url: String { "http://127.0.0.1:\(port)/files/" }

    /// Stored uploads: file name → bytes (metadata files left out).
    func files() throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: store) where !name.hasSuffix(".json") && !name.hasPrefix(".") {
            var isDir: ObjCBool = false
            let path = store + "/" + name
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue {
                out[name] = FileManager.default.contents(atPath: path)
            }
        }
        return out
    }

    deinit {
        process.terminate()
        process.waitUntilExit()
    }
}

func sha256Hex(_ path: String) throws -> String {
    String(try ProcessRunner.run("/usr/bin/sha256sum", [path]).stdout.prefix(64))
}

/// The whole path through the real binaries: enqueue and capture into the
/// queue (real SQLite and files), status, and sync to a real hub process.
@Suite(.serialized) struct PipelineTests {
    /// The station's configuration, with a fresh spool key in the directory
    /// unless `keyed` is false, so the whole pipeline runs encrypted.
    func station(_ d: TempDir, hub: String?, extra: String = "", keyed: Bool = true) throws -> String {
        let key = d.url.path + "/spool.key"
        if keyed && !FileManager.default.fileExists(atPath: key) {
            FileManager.default.createFile(atPath: key, contents: Data((0..<32).map { _ in UInt8.random(in: 0...255) }),
                                           attributes: [.posixPermissions: 0o600])
        }
        return try d.write("station.toml", """
            [station]
            id = "ps-test-01"
            state_dir = "\(d.url.path)/state"
            \(hub.map { "[hub]\nurl = \"\($0)\"\n" } ?? "")
            [camera]
            device = "synthetic"
            width = 1280
            height = 720
            warmup_frames = 2
            [spool]
            min_free = "1MiB"
            key_file = "\(key)"
            \(extra)
            """)
    }

    /// A real JPEG made by the station's own capture path.
    func jpeg(_ d: TempDir, _ config: String, name: String) throws -> String {
        let path = d.url.appendingPathComponent(name).path
        let r = try CLI.run(["capture", "--config", config, "--output", path])
        #expect(r.status == 0, "capture --output: \(r.stderr)")
        return path
    }

    @Test func enqueueStatusSyncDeliversByteIdenticalFiles() throws {
        let d = try TempDir()
        try FileManager.default.createDirectory(atPath: d.url.path + "/hub", withIntermediateDirectories: true)
        let hub = try HubProcess(store: d.url.path + "/hub")
        let config = try station(d, hub: hub.url)
        let a = try jpeg(d, config, name: "a.jpg")
        let b = try jpeg(d, config, name: "b.jpg")

        let q = try CLI.run(["enqueue", a, b, "--config", config, "--case", "40123456", "--site", "arm_left", "--priority", "urgent"])
        #expect(q.status == 0, "\(q.stderr)")
        #expect(q.stdout.contains("queued as item 1, preview item 2"))

        let s = try CLI.run(["status", "--json", "--config", config])
        #expect(s.status == 0)
        let status = try #require(try JSONSerialization.jsonObject(with: Data(s.stdout.utf8)) as? [String: Any])
        #expect((status["items"] as? [Any])?.count == 4)  // two images, two previews

        // On the station's disk only ciphertext: no 64-byte run of either JPEG.
        let spoolDir = d.url.path + "/state/spool"
        let onDisk = try FileManager.default.contentsOfDirectory(atPath: spoolDir).filter { !$0.hasPrefix(".") }
        #expect(onDisk.count == 4)
        for name in onDisk {
            let raw = try #require(FileManager.default.contents(atPath: spoolDir + "/" + name))
            #expect(raw.starts(with: Array("TSENC".utf8)), "\(name) is not encrypted")
            for jpeg in [a, b] {
                let plain = try #require(FileManager.default.contents(atPath: jpeg))
                #expect(raw.range(of: plain[(plain.count / 2)..<(plain.count / 2 + 64)]) == nil, "\(name) holds plaintext of \(jpeg)")
            }
        }

        // With the cooperative pool down to one thread: the uploader blocks it
        // nowhere (spool, file reads and hashing run on their own pool), so a
        // lone thread still carries the whole upload.
        let sync = try CLI.run(["sync", "--deadline", "2m", "--config", config], env: ["LIBDISPATCH_COOPERATIVE_POOL_STRICT": "1"])
        #expect(sync.status == 0, "sync: \(sync.stdout) \(sync.stderr)")
        #expect(sync.stdout.contains("all uploaded"))

        let stored = try hub.files()
        #expect(stored.count == 4)
        let wanted = Set([try sha256Hex(a), try sha256Hex(b)])
        let got = Set(try stored.keys.filter { !$0.contains("-preview.") }.map { try sha256Hex(hub.store + "/" + $0) })
        #expect(got == wanted)
        let after = try CLI.run(["status", "--json", "--config", config])
        let afterStatus = try #require(try JSONSerialization.jsonObject(with: Data(after.stdout.utf8)) as? [String: Any])
        #expect((afterStatus["items"] as? [Any])?.isEmpty == true)

        // Once uploaded, a second sync has nothing to do and sends nothing twice.
        let again = try CLI.run(["sync", "--config", config])
        #expect(again.status == 0)
        #expect(try hub.files().count == 4)
    }

    @Test func captureQueuesWithoutTheDaemon() throws {
        let d = try TempDir()
        let config = try station(d, hub: nil)
        let r = try CLI.run(["capture", "--config", config, "--case", "HC-004512", "--site", "face", "--note", "lesión pigmentada"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("queued as item 1 (preview item 2)"))
        #expect(r.stdout.contains("1280x720"))
        let bad = try CLI.run(["capture", "--config", config, "--case", "not a case", "--site", "face"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("is not a case id"))
    }

    @Test func enqueueRefusesWhatIsNotAJPEG() throws {
        let d = try TempDir()
        let config = try station(d, hub: nil)
        let text = try d.write("notes.txt", "not an image")
        let good = try jpeg(d, config, name: "ok.jpg")
        let r = try CLI.run(["enqueue", text, good, "--config", config, "--case", "40123456"])
        #expect(r.status == 65)
        #expect(r.stderr.contains("notes.txt: not queued"))
        #expect(r.stdout.contains("ok.jpg") && r.stdout.contains("queued as item 1"))
        let s = try CLI.run(["status", "--json", "--config", config])
        let status = try #require(try JSONSerialization.jsonObject(with: Data(s.stdout.utf8)) as? [String: Any])
        #expect((status["items"] as? [Any])?.count == 2)  // the JPEG and its preview only
    }

    @Test func syncStopsAtTheDeadlineWhenTheHubIsDown() throws {
        let d = try TempDir()
        let port = Int.random(in: 40001...50000)  // nothing listens there
        let config = try station(d, hub: "http://127.0.0.1:\(port)/files/")
        let a = try jpeg(d, config, name: "a.jpg")
        #expect(try CLI.run(["enqueue", a, "--config", config, "--case", "40123456"]).status == 0)
        let start = Date()
        let r = try CLI.run(["sync", "--deadline", "3s", "--config", config])
        #expect(r.status == 75, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("still pending"))
        #expect(Date().timeIntervalSince(start) < 60)
        let s = try CLI.run(["status", "--config", config])
        #expect(s.stdout.contains("failed") || s.stdout.contains("queued"))
    }
}
