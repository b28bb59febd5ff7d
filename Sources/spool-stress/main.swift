// A separate writer process for the spool's crash, two-process and
// throughput tests: the tests start it, kill it with SIGKILL at chosen or
// random moments, and check what it left behind.
//
//   spool-stress crash --dir D --db P --log L --count N [--kill-at K]
//   spool-stress pair  --dir D --db P --log L --count N --owner NAME
//   spool-stress bench --dir D --db P --count N --size BYTES [--preview BYTES] [--lifecycle]
//   spool-stress migrate --dir D --db P --log L --key K [--kill-at K]
//
// With --key FILE (32 bytes, mode 0600) the spool encrypts its files and, at
// open, encrypts the plaintext files of existing items (`migrate` only
// opens); without it files are stored in plaintext.
//
// Log lines (one write(2) each, so a kill never leaves half a line):
//   enq ID SHA256 PREVIEW_ID   enqueue returned
//   up ID OWNER                markUploaded returned
//   fail ID                    markFailed returned
//   ready                      the spool is open and recovered
//   bad TEXT                   the spool was inconsistent at open
//   done HITS                  finished after HITS kill points
import Foundation
import Logging
import Spool

#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var mode = ""
    var dir = ""
    var db = ""
    var log = ""
    var count = 10
    var killAt = 0
    var owner = "stress-\(getpid())"
    var size = 64 * 1024
    var preview = 0
    var lifecycle = false
    var key = ""

    init(_ args: [String]) {
        var it = args.dropFirst().makeIterator()
        mode = it.next() ?? ""
        while let a = it.next() {
            let v = { () -> String in
                guard let v = it.next() else { fail("\(a) needs a value") }
                return v
            }
            switch a {
            case "--dir": dir = v()
            case "--db": db = v()
            case "--log": log = v()
            case "--count": count = Int(v()) ?? count
            case "--kill-at": killAt = Int(v()) ?? 0
            case "--owner": owner = v()
            case "--size": size = Int(v()) ?? size
            case "--preview": preview = Int(v()) ?? 0
            case "--lifecycle": lifecycle = true
            case "--key": key = v()
            default: fail("unknown argument \(a)")
            }
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("spool-stress: \(message)\n".utf8))
    exit(2)
}

/// Appends whole lines to the log with O_APPEND, so that lines from two
/// processes never interleave and a SIGKILL never leaves half a line.
struct EventLog {
    let fd: Int32
    init(_ path: String) {
        fd = path.isEmpty ? -1 : open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
    }
    func line(_ s: String) {
        guard fd >= 0 else { return }
        let bytes = Array((s + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
}

/// Counts checkpoints and kills the process at the chosen one.
/// Unchecked Sendable: the counter is only touched under the lock.
final class KillSwitch: @unchecked Sendable {
    private let lock = NSLock()
    private var hits = 0
    let at: Int
    init(at: Int) { self.at = at }
    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return hits
    }
    func hit(_ name: String) {
        lock.lock()
        hits += 1
        let now = hits
        lock.unlock()
        if at > 0 && now == at { kill(getpid(), SIGKILL) }
    }
}

func randomData(_ count: Int) -> Data {
    var g = SystemRandomNumberGenerator()
    var d = Data(count: count)
    d.withUnsafeMutableBytes { raw in
        let words = raw.bindMemory(to: UInt64.self)
        for i in words.indices { words[i] = g.next() }
        for i in (words.count * 8)..<raw.count { raw[i] = UInt8.random(in: 0...255, using: &g) }
    }
    return d
}

let options = Options(CommandLine.arguments)
guard !options.dir.isEmpty, !options.db.isEmpty else { fail("--dir and --db are required") }
LoggingSystem.bootstrap { label in
    var h = StreamLogHandler.standardError(label: label)
    h.logLevel = ProcessInfo.processInfo.environment["SPOOL_STRESS_VERBOSE"] != nil ? .debug : .critical
    return h
}
let log = EventLog(options.log)
let killer = KillSwitch(at: options.killAt)

let protection: SpoolProtection
if options.key.isEmpty {
    protection = .plaintext
} else if case let .found(key) = SpoolKey.lookup(keyFile: options.key, environment: [:]) {
    protection = .encrypted(key)
} else {
    fail("--key \(options.key): not a usable 32-byte key file with mode 0600")
}

let spool: Spool
do {
    spool = try Spool(directory: options.dir, databasePath: options.db, minFree: 0, keepUploaded: 86400,
                      protection: protection, logger: Logger(label: "spool"), checkpoint: { killer.hit($0) })
    let check = try spool.integrityCheck()
    if !check.isHealthy { log.line("bad \(check)") }
    log.line("ready")
} catch {
    fail("cannot open the spool: \(error)")
}

func meta(_ i: Int, _ caseID: String) -> ItemMetadata {
    ItemMetadata(caseID: caseID, site: "forearm", note: "stress \(i)", priority: i % 3 == 0 ? .urgent : .routine,
                 capturedAt: Date(), filename: "img\(i).jpg")
}

do {
    switch options.mode {
    case "crash":
        for i in 0..<options.count {
            let data = randomData(Int.random(in: 16_384...(options.size * 2)))
            let preview = i % 2 == 0 ? randomData(4096) : nil
            let r = try spool.enqueue(imageData: data, preview: preview, metadata: meta(i, "C\(i % 5)"))
            log.line("enq \(r.imageID) \(r.sha256) \(r.previewID ?? 0)")
            // State updates, with the same kill points between each step.
            killer.hit("before-claim")
            guard let item = try spool.claimNext(owner: options.owner, leaseSeconds: 1) else { continue }
            killer.hit("claimed")
            try spool.recordUploadURL(id: item.id, url: "http://hub.invalid/files/\(item.id)", owner: options.owner)
            killer.hit("url-recorded")
            try spool.recordOffset(id: item.id, offset: item.size / 2, owner: options.owner)
            killer.hit("offset-recorded")
            if i % 4 == 3 {
                try spool.markFailed(id: item.id, error: "stress failure", retryAt: Date(), owner: options.owner)
                log.line("fail \(item.id)")
            } else {
                try spool.markUploaded(id: item.id, owner: options.owner)
                log.line("up \(item.id) \(options.owner)")
            }
            killer.hit("finished")
        }
    case "pair":
        func uploadOne() throws -> Bool {
            guard let item = try spool.claimNext(owner: options.owner, leaseSeconds: 600) else { return false }
            try spool.recordUploadURL(id: item.id, url: "http://hub.invalid/files/\(item.id)", owner: options.owner)
            try spool.recordOffset(id: item.id, offset: item.size, owner: options.owner)
            try spool.markUploaded(id: item.id, owner: options.owner)
            log.line("up \(item.id) \(options.owner)")
            return true
        }
        for i in 0..<options.count {
            let r = try spool.enqueue(imageData: randomData(Int.random(in: 1024...8192)), preview: nil,
                                      metadata: meta(i, "\(options.owner)-\(i)"))
            log.line("enq \(r.imageID) \(r.sha256) 0")
            if i % 2 == 1 { _ = try uploadOne() }
        }
        while try uploadOne() {}
    case "bench":
        let payload = randomData(options.size)
        let preview = options.preview > 0 ? randomData(options.preview) : nil
        let start = Date()
        for i in 0..<options.count {
            // Vary one word so every item has its own hash, as real captures do.
            var data = payload
            withUnsafeBytes(of: UInt64(i)) { data.replaceSubrange(0..<8, with: $0) }
            _ = try spool.enqueue(imageData: data, preview: preview, metadata: meta(i, "B\(i)"))
        }
        let enqueueSeconds = Date().timeIntervalSince(start)
        var lifecycleSeconds = 0.0
        if options.lifecycle {
            let t = Date()
            while let item = try spool.claimNext(owner: "bench", leaseSeconds: 600) {
                try spool.recordUploadURL(id: item.id, url: "https://hub.example/files/\(UUID().uuidString)", owner: "bench")
                try spool.recordOffset(id: item.id, offset: item.size, owner: "bench")
                try spool.markUploaded(id: item.id, owner: "bench")
            }
            lifecycleSeconds = Date().timeIntervalSince(t)
        }
        try spool.checkpointWAL()
        var dbBytes: Int64 = 0
        for suffix in ["", "-wal"] {
            let attrs = try? FileManager.default.attributesOfItem(atPath: options.db + suffix)
            dbBytes += (attrs?[.size] as? NSNumber)?.int64Value ?? 0
        }
        let mb = Double(options.count * options.size) / 1e6
        print(String(format: "items %d  size %d  preview %d  enqueue %.2f s  %.1f items/s  %.1f MB/s",
                     options.count, options.size, options.preview, enqueueSeconds,
                     Double(options.count) / enqueueSeconds, mb / enqueueSeconds))
        if options.lifecycle {
            print(String(format: "claim+url+offset+uploaded for every item: %.2f s  %.1f items/s",
                         lifecycleSeconds, Double(options.count) / lifecycleSeconds))
        }
        let rows = try spool.allItems().count
        print(String(format: "database bytes after checkpoint: %lld for %d rows (%.0f bytes/row)",
                     dbBytes, rows, Double(dbBytes) / Double(rows)))
    case "migrate":
        // Opening did the work; say what it did.
        print("encrypted \(spool.migratedAtOpen.encrypted.count), failed \(spool.migratedAtOpen.failed.count)")
    default:
        fail("unknown mode \(options.mode); use crash, pair, bench or migrate")
    }
} catch {
    fail("\(error)")
}
log.line("done \(killer.count)")
