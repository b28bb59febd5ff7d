import Crypto
import Foundation
import Logging
import TestSupport
@testable import Spool

/// A scratch directory under /tmp holding one spool, removed by `cleanUp`.
struct Scratch {
    let root: String
    var spoolDir: String { root + "/spool" }
    var dbPath: String { root + "/queue.sqlite" }
    /// A fresh random 32-byte spool key, mode 0600: every scratch spool is encrypted unless a test says otherwise.
    var keyPath: String { root + "/spool.key" }

    init(_ name: String = #function) {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        root = NSTemporaryDirectory() + "spooltest-\(safe)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        writeKey(keyPath)
    }

    var protection: SpoolProtection {
        guard case let .found(key) = SpoolKey.lookup(keyFile: keyPath, environment: [:]) else { fatalError("scratch key unusable") }
        return .encrypted(key)
    }

    func open(minFree: Int64 = 0, keepUploaded: Double = 7 * 86400, protection: SpoolProtection? = nil,
              checkpoint: @escaping @Sendable (String) -> Void = { _ in }) throws -> Spool {
        var logger = Logger(label: "spool-test")
        logger.logLevel = .critical
        return try Spool(directory: spoolDir, databasePath: dbPath, minFree: minFree, keepUploaded: keepUploaded,
                         protection: protection ?? self.protection, logger: logger, checkpoint: checkpoint)
    }

    func files() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: spoolDir)) ?? []).filter { $0 != ".lock" }.sorted()
    }

    func cleanUp() { try? FileManager.default.removeItem(atPath: root) }
}

func bytes(_ count: Int, seed: UInt8 = 1) -> Data {
    Data((0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &* 17) })
}

func sha256Hex(_ data: Data) -> String {
    SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}

func sha256Hex(file: String) -> String? {
    FileManager.default.contents(atPath: file).map(sha256Hex)
}

/// SHA-256 of an item's plaintext, read (and decrypted) through the spool.
func plainSHA(_ spool: Spool, _ item: SpoolItem) -> String? {
    try? spool.openFile(item).sha256()
}

/// 32 random bytes, mode 0600.
func writeKey(_ path: String) {
    let key = (0..<32).map { _ in UInt8.random(in: 0...255) }
    FileManager.default.createFile(atPath: path, contents: Data(key), attributes: [.posixPermissions: 0o600])
}

func meta(_ caseID: String = "C-1", priority: Priority = .routine, at: Double = 1_800_000_000,
          filename: String = "lesion.jpg") -> ItemMetadata {
    ItemMetadata(caseID: caseID, site: "left forearm", note: "raised, 6 mm", priority: priority,
                 capturedAt: Date(timeIntervalSince1970: at), filename: filename)
}

/// Path of an executable built next to the test bundle.
func builtExecutable(_ name: String) -> String {
    let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = (me as NSString).deletingLastPathComponent
    // The test binary may sit inside a .xctest bundle directory.
    while !dir.isEmpty, dir != "/" {
        let candidate = dir + "/" + name
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = (dir as NSString).deletingLastPathComponent
    }
    return name
}

/// Runs a process to completion, returning its exit status and output.
@discardableResult
func run(_ path: String, _ args: [String], environment: [String: String]? = nil) throws
    -> (status: Int32, stdout: String, stderr: String) {
    let r = try ProcessRunner.run(path, args, environment: environment)
    return (r.status, r.stdout, r.stderr)
}
