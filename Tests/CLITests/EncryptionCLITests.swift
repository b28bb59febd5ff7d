import Foundation
import Testing

/// At-rest encryption through the real binaries: no key, a bad key, the
/// development opt-out and its migration, a tampered file held rather than
/// sent, and a support bundle without image bytes.
@Suite(.serialized) struct EncryptionCLITests {
    let pipeline = PipelineTests()

    func spoolFiles(_ d: TempDir) throws -> [String] {
        let dir = d.url.path + "/state/spool"
        return try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix(".") }.sorted().map { dir + "/" + $0 }
    }

    func isEncrypted(_ path: String) -> Bool {
        FileManager.default.contents(atPath: path)?.starts(with: Array("TSENC".utf8)) == true
    }

    func statusItems(_ config: String) throws -> [[String: Any]] {
        let s = try CLI.run(["status", "--json", "--config", config])
        #expect(s.status == 0, "\(s.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(s.stdout.utf8)) as? [String: Any])
        return object["items"] as? [[String: Any]] ?? []
    }

    @Test func withoutAUsableKeyNothingIsStoredAndTheFixIsNamed() throws {
        let d = try TempDir()
        let config = try pipeline.station(d, hub: nil, keyed: false)
        let jpeg = try pipeline.jpeg(d, config, name: "a.jpg")  // --output writes no spool file
        let key = d.url.path + "/spool.key"

        let missing = try CLI.run(["enqueue", jpeg, "--config", config, "--case", "40123456"])
        #expect(missing.status == 78, "\(missing.stderr)")
        #expect(missing.stderr.split(separator: "\n").count == 1, "one line: \(missing.stderr)")
        #expect(missing.stderr.contains("no spool key at \(key)") && missing.stderr.contains("head -c 32 /dev/urandom > \(key)"))
        let capture = try CLI.run(["capture", "--config", config, "--case", "40123456", "--site", "face"])
        #expect(capture.status == 78 && capture.stderr.contains("no spool key"), "\(capture.stderr)")
        // Reading the queue needs no key.
        #expect(try statusItems(config).isEmpty)

        FileManager.default.createFile(atPath: key, contents: Data(count: 32), attributes: [.posixPermissions: 0o644])
        let open = try CLI.run(["enqueue", jpeg, "--config", config, "--case", "40123456"])
        #expect(open.status == 78 && open.stderr.contains("chmod 600 \(key)"), "\(open.stderr)")
        try Data(count: 20).write(to: URL(fileURLWithPath: key))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
        let short = try CLI.run(["enqueue", jpeg, "--config", config, "--case", "40123456"])
        #expect(short.status == 78 && short.stderr.contains("20 bytes, not 32"), "\(short.stderr)")
        #expect(try spoolFiles(d).isEmpty, "nothing stored without a usable key")

        let diagnose = try CLI.run(["diagnose", "--only", "storage", "--json", "--config", config])
        #expect(diagnose.status == 2, "a bad key is a FAIL: \(diagnose.stdout)")
        #expect(diagnose.stdout.contains("storage.encryption") && diagnose.stdout.contains("20 bytes, not 32"))
    }

    /// A root-only key, as installed, read by another user: exit 78 and the
    /// way to run the command with the key handed over as systemd does.
    @Test func aKeyThisUserMayNotReadNamesTheWayToRunWithIt() throws {
        let d = try TempDir()
        let config = try pipeline.station(d, hub: nil)
        let jpeg = try pipeline.jpeg(d, config, name: "a.jpg")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: d.url.path)
        // root reads any file, so the command runs as an unprivileged user.
        let r = try CLI.run(["enqueue", jpeg, "--config", config, "--case", "40123456"], asNobody: getuid() == 0)
        #expect(r.status == 78, "\(r.stderr)")
        #expect(r.stderr.contains("cannot read the spool key \(d.url.path)/spool.key")
                && r.stderr.contains("-p LoadCredential=spool.key:\(d.url.path)/spool.key telestation"), "\(r.stderr)")
    }

    /// The development opt-out stores plaintext and diagnose says so; once a
    /// key is in place the next store-opening command encrypts the queue, and
    /// the hub still receives the original bytes.
    @Test func plaintextOptOutThenMigrationThenByteIdenticalDelivery() throws {
        let d = try TempDir()
        try FileManager.default.createDirectory(atPath: d.url.path + "/hub", withIntermediateDirectories: true)
        let hub = try HubProcess(store: d.url.path + "/hub")
        let insecure = try pipeline.station(d, hub: hub.url, extra: "insecure_allow_plaintext = true", keyed: false)
        let a = try pipeline.jpeg(d, insecure, name: "a.jpg")
        let q = try CLI.run(["enqueue", a, "--config", insecure, "--case", "40123456"])
        #expect(q.status == 0, "\(q.stderr)")
        let files = try spoolFiles(d)
        #expect(files.count == 2 && !files.contains(where: isEncrypted), "stored in plaintext")
        let diagnose = try CLI.run(["diagnose", "--only", "storage", "--json", "--config", insecure])
        #expect(diagnose.status == 2 && diagnose.stdout.contains("encryption is OFF"), "\(diagnose.stdout)")

        let config = try pipeline.station(d, hub: hub.url)  // now with a key, no opt-out
        let check = try CLI.run(["diagnose", "--only", "storage", "--json", "--config", config])
        #expect(check.stdout.contains("still stored unencrypted"), "\(check.stdout)")
        #expect(try spoolFiles(d).allSatisfy { !isEncrypted($0) }, "diagnose only looks")

        let sync = try CLI.run(["sync", "--deadline", "2m", "--config", config])
        #expect(sync.status == 0, "\(sync.stdout) \(sync.stderr)")
        #expect(try spoolFiles(d).allSatisfy(isEncrypted), "opening the queue with the key encrypted it")
        let stored = try hub.files().filter { !$0.key.contains("-preview.") }
        #expect(stored.count == 1)
        #expect(stored.values.first == FileManager.default.contents(atPath: a), "the hub has the original bytes")
    }

    @Test func aTamperedFileIsHeldAndNeverSent() throws {
        let d = try TempDir()
        try FileManager.default.createDirectory(atPath: d.url.path + "/hub", withIntermediateDirectories: true)
        let hub = try HubProcess(store: d.url.path + "/hub")
        let config = try pipeline.station(d, hub: hub.url)
        let a = try pipeline.jpeg(d, config, name: "a.jpg")
        #expect(try CLI.run(["enqueue", a, "--config", config, "--case", "40123456"]).status == 0)
        // One bit flipped inside the full image's first sealed segment.
        let image = try #require(try spoolFiles(d).first { !$0.contains(".preview.") })
        var raw = try #require(FileManager.default.contents(atPath: image))
        raw[104 + 500] ^= 0x01
        try raw.write(to: URL(fileURLWithPath: image))

        let sync = try CLI.run(["sync", "--deadline", "1m", "--config", config])
        #expect(sync.status == 0, "held items do not count as remaining: \(sync.stdout) \(sync.stderr)")
        #expect(sync.stdout.contains("held for a technician") && sync.stdout.contains("integrity check")
                && sync.stdout.contains("failed authentication"), "\(sync.stdout)")
        let held = try statusItems(config)
        #expect(held.count == 1 && held.first?["state"] as? String == "held", "\(held)")
        #expect(try hub.files().keys.allSatisfy { $0.contains("-preview.") }, "only the intact preview reached the hub")
    }

    /// The support bundle of a station with queued images holds none of
    /// their bytes, plaintext or encrypted.
    @Test func supportBundleHoldsNoImageBytes() throws {
        let d = try TempDir()
        let config = try pipeline.station(d, hub: nil)
        let images = try (0..<2).map { try pipeline.jpeg(d, config, name: "img\($0).jpg") }
        #expect(try CLI.run(["enqueue"] + images + ["--config", config, "--case", "40123456"]).status == 0)
        let bundle = d.url.path + "/bundle.tar.gz"
        let r = try CLI.run(["diagnose", "--only", "config,storage", "--bundle", bundle, "--config", config])
        #expect(FileManager.default.fileExists(atPath: bundle), "\(r.stderr)")
        let out = d.url.path + "/unpacked"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/bin/tar")
        tar.arguments = ["-xzf", bundle, "-C", out]
        try tar.run()
        tar.waitUntilExit()
        #expect(tar.terminationStatus == 0)
        var contents = Data()
        let walker = FileManager.default.enumerator(atPath: out)
        while let name = walker?.nextObject() as? String {
            contents += FileManager.default.contents(atPath: out + "/" + name) ?? Data()
        }
        #expect(contents.count > 100, "the bundle has its report")
        #expect(contents.range(of: Data([0xFF, 0xD8, 0xFF])) == nil, "a JPEG start marker in the bundle")
        // 64-byte samples across every image and every spool file.
        for path in try images + spoolFiles(d) {
            let data = try #require(FileManager.default.contents(atPath: path))
            for start in stride(from: 200, to: data.count - 64, by: max(64, data.count / 16)) {
                #expect(contents.range(of: data[start..<(start + 64)]) == nil, "bytes of \(path) at \(start) in the bundle")
            }
        }
    }
}
