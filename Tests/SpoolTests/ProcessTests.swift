import Foundation
import Testing
@testable import Spool

#if canImport(Glibc)
import Glibc
#endif

/// What the `spool-stress` writer logged (see its header for the format).
struct StressLog {
    var enqueued: [(id: Int64, sha: String, preview: Int64)] = []
    var uploaded: [(id: Int64, owner: String)] = []
    var bad: [String] = []
    var done: [Int] = []

    init(path: String) {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", maxSplits: 3).map(String.init)
            switch f.first {
            case "enq" where f.count == 4: enqueued.append((Int64(f[1])!, f[2], Int64(f[3])!))
            case "up" where f.count == 3: uploaded.append((Int64(f[1])!, f[2]))
            case "bad": bad.append(String(line))
            case "done" where f.count == 2: done.append(Int(f[1])!)
            default: break
            }
        }
    }
}

func stressExecutable() throws -> String {
    let path = builtExecutable("spool-stress")
    try #require(FileManager.default.isExecutableFile(atPath: path),
                 "spool-stress is not built; run `swift build --build-tests` first")
    return path
}

/// The spool in a separate process that is killed with SIGKILL at many
/// points, then reopened. `SPOOL_CRASH_ROUNDS` raises the number of random
/// kills for a longer soak.
@Suite(.serialized) struct CrashTests {
    @Test func sigkillAnywhereLosesNothingAndLeavesNoDebris() throws {
        let exe = try stressExecutable()
        let s = Scratch()
        defer { s.cleanUp() }
        let log = s.root + "/events.log"
        let common = ["--dir", s.spoolDir, "--db", s.dbPath, "--log", log, "--size", "48000", "--key", s.keyPath]

        // A clean run counts the checkpoints of the write path and the state updates.
        let clean = try run(exe, ["crash", "--count", "12"] + common)
        #expect(clean.status == 0, "\(clean.stderr)")
        let points = try #require(StressLog(path: log).done.last)
        #expect(points >= 150, "expected many checkpoints in 12 enqueues with updates, got \(points)")

        var kills = 0
        // 1. Deterministic: one run per checkpoint, killed exactly there.
        for k in 1...points {
            let r = try run(exe, ["crash", "--count", "12", "--kill-at", "\(k)"] + common)
            if r.status == SIGKILL { kills += 1 } else {
                Issue.record("run killed at checkpoint \(k) ended with \(r.status): \(r.stderr)")
            }
        }
        // 2. Random: killed from outside after a random delay, so kills also land
        //    inside SQLite commits, fsyncs and the recovery pass at open.
        let rounds = Int(ProcessInfo.processInfo.environment["SPOOL_CRASH_ROUNDS"] ?? "") ?? 60
        for _ in 0..<rounds {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = ["crash", "--count", "40"] + common
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(UInt32.random(in: 30_000...400_000))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            if p.terminationReason == .uncaughtSignal { kills += 1 }
        }
        #expect(kills >= 200, "only \(kills) runs were killed")

        let spool = try s.open()
        let events = StressLog(path: log)
        #expect(events.bad.isEmpty, "\(events.bad.count) restarts found the spool inconsistent, first: \(events.bad.first?.prefix(400) ?? "")")
        #expect(events.enqueued.count > 200)
        let items = try spool.allItems()
        let bySHA = Dictionary(grouping: items, by: \.sha256)
        for e in events.enqueued {
            let item = try #require(try spool.item(id: e.id), "item \(e.id) whose enqueue returned is gone")
            #expect(item.sha256 == e.sha)
            #expect(bySHA[e.sha]?.count == 1, "item \(e.id) is stored more than once")
            #expect(plainSHA(spool, item) == e.sha, "file of item \(e.id) does not match its hash")
            if e.preview != 0 {
                #expect(try spool.item(id: e.preview)?.parentID == e.id)
            }
        }
        for u in events.uploaded {
            #expect(try spool.item(id: u.id)?.state == .uploaded, "item \(u.id) was marked uploaded and lost it")
        }
        let check = try spool.integrityCheck(verifyHashes: true)
        #expect(check.isHealthy, "\(String(describing: check).prefix(600))")
        #expect(!s.files().contains { $0.hasPrefix(".tmp-") })
        print("crash test: \(kills) kills (\(points) exact checkpoints), \(events.enqueued.count) confirmed enqueues, "
              + "\(items.count) rows, \(spool.recoveryAtOpen)")
    }
}

/// Starts one `spool-stress pair` process per owner on the same spool, all at
/// once, and returns each one's exit status and standard error.
func runPairs(_ exe: String, owners: [String], count: Int, scratch s: Scratch, log: String) throws -> [(Int32, String)] {
    let procs = try owners.map { owner -> (Process, Pipe) in
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["pair", "--count", "\(count)", "--owner", owner, "--dir", s.spoolDir, "--db", s.dbPath,
                       "--log", log, "--key", s.keyPath]
        let err = Pipe()
        p.standardError = err
        try p.run()
        return (p, err)
    }
    return procs.map { p, err in
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, message)
    }
}

/// The daemon and `telestation sync` at once: two processes enqueue and
/// upload 1,000 items together.
@Suite(.serialized) struct TwoProcessTests {
    /// Several processes opening a brand-new queue at the same moment (the
    /// daemon's first start racing an `enqueue`): every one opens it and
    /// works. Without the open lock, some failed with "table item already
    /// exists", "UNIQUE constraint failed: grdb_migrations" or "database is
    /// locked" (12 of 36 processes on this machine).
    @Test func simultaneousFirstOpensOfANewQueueAllSucceed() throws {
        let exe = try stressExecutable()
        for round in 0..<6 {
            let s = Scratch()
            defer { s.cleanUp() }
            let log = s.root + "/events.log"
            for (status, message) in try runPairs(exe, owners: (0..<6).map { "p\($0)" }, count: 3, scratch: s, log: log) {
                #expect(status == 0, "round \(round): \(message)")
            }
            let events = StressLog(path: log)
            #expect(events.enqueued.count == 18 && Set(events.uploaded.map(\.id)).count == 18, "round \(round)")
            #expect(try s.open().integrityCheck(verifyHashes: true).isHealthy)
        }
    }

    @Test func twoWritersLoseNothingAndUploadNothingTwice() throws {
        let exe = try stressExecutable()
        let s = Scratch()
        defer { s.cleanUp() }
        let log = s.root + "/events.log"
        // Create the database first so both start from a migrated schema
        // (concurrent first opens are covered by the crash test's restarts).
        _ = try s.open()
        for (status, message) in try runPairs(exe, owners: ["daemon", "sync"], count: 500, scratch: s, log: log) {
            #expect(status == 0, "\(message)")
        }
        let events = StressLog(path: log)
        #expect(events.enqueued.count == 1000)
        #expect(Set(events.enqueued.map(\.id)).count == 1000)
        #expect(events.uploaded.count == 1000, "every item uploaded exactly once")
        #expect(Set(events.uploaded.map(\.id)) == Set(events.enqueued.map(\.id)))
        #expect(Set(events.uploaded.map(\.owner)) == ["daemon", "sync"], "both processes took part")

        let spool = try s.open()
        let items = try spool.allItems()
        #expect(items.count == 1000)
        #expect(items.allSatisfy { $0.state == .uploaded && $0.attempts == 1 && $0.ackedOffset == $0.size })
        let owner = Dictionary(uniqueKeysWithValues: events.uploaded.map { ($0.id, $0.owner) })
        for item in items {
            let history = try spool.history(id: item.id)
            #expect(history.map(\.to) == [.queued, .uploading, .uploading, .uploaded], "item \(item.id)")
            #expect(history[1].detail == "claimed by \(owner[item.id] ?? "?")")
        }
        #expect(try spool.integrityCheck(verifyHashes: true).isHealthy)
    }
}

/// Encrypting a plaintext spool at open, killed with SIGKILL at every
/// checkpoint of the migration: after each kill every item's file is either
/// the old plaintext or the complete encrypted one, and the next open
/// finishes the job.
@Suite(.serialized) struct MigrationCrashTests {
    @Test func sigkillDuringMigrationLeavesEitherTheOldOrTheNewFile() throws {
        let exe = try stressExecutable()
        let s = Scratch()
        defer { s.cleanUp() }
        let pristine = s.root + "/pristine"
        let log = s.root + "/events.log"
        let fm = FileManager.default
        // A spool from before encryption: no --key.
        let fill = try run(exe, ["crash", "--count", "8", "--size", "40000", "--dir", pristine + "/spool",
                                 "--db", pristine + "/queue.sqlite", "--log", log])
        #expect(fill.status == 0, "\(fill.stderr)")
        func restore() throws {
            for name in ["spool", "queue.sqlite", "queue.sqlite-wal", "queue.sqlite-shm"] {
                try? fm.removeItem(atPath: s.root + "/" + name)
                if fm.fileExists(atPath: pristine + "/" + name) { try fm.copyItem(atPath: pristine + "/" + name, toPath: s.root + "/" + name) }
            }
        }
        let migrate = ["migrate", "--dir", s.spoolDir, "--db", s.dbPath, "--log", log, "--key", s.keyPath]

        try restore()
        let clean = try run(exe, migrate)
        #expect(clean.status == 0 && clean.stdout.contains("failed 0"), "\(clean.stdout) \(clean.stderr)")
        let points = try #require(StressLog(path: log).done.last)
        #expect(points >= 40, "expected checkpoints for every file, got \(points)")

        var kills = 0, plaintextLeft = 0, encryptedSeen = 0
        for k in 1...points {
            try restore()
            let r = try run(exe, migrate + ["--kill-at", "\(k)"])
            if r.status == SIGKILL { kills += 1 } else { Issue.record("migration killed at \(k) ended with \(r.status): \(r.stderr)") }
            // What a restart finds, before it migrates anything: recovery only.
            let after = try s.open(protection: .plaintext)
            for item in try after.allItems() where item.fileDeletedAt == nil {
                let file = try SpoolFileReader(path: item.filePath, kind: item.kind, expectedSize: item.size, protection: s.protection)
                if file.isEncrypted { encryptedSeen += 1 } else { plaintextLeft += 1 }
                #expect(try file.sha256() == item.sha256, "kill at \(k): item \(item.id) is damaged")
            }
            #expect(!s.files().contains { $0.hasPrefix(".tmp-") }, "kill at \(k): recovery left a temporary file")
            // The next open with the key completes the migration.
            let done = try s.open()
            let check = try done.integrityCheck(verifyHashes: true)
            #expect(check.isHealthy && check.plaintextFiles.isEmpty, "kill at \(k): \(check)")
        }
        #expect(kills == points)
        #expect(plaintextLeft > 0 && encryptedSeen > 0, "kills landed both before and after renames")
        print("migration crash test: \(kills) kills; files found plaintext \(plaintextLeft) times, encrypted \(encryptedSeen) times")
    }
}
