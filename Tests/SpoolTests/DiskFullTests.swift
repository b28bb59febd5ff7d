import Foundation
import Testing
import Logging
@testable import Spool

#if canImport(Glibc)
import Glibc
#endif

/// A real small filesystem: a 4 MiB tmpfs mounted by the test. Without root
/// it is skipped, which `make test` reports (and fails unless allowed); as
/// root a mount that fails is a failure, not a reason to test less.
@Suite(.serialized) struct DiskFullTests {

    /// Fills the filesystem once, the first time the write path passes the
    /// disk guard: another program taking the space between check and write.
    /// Unchecked Sendable: `armed` is only read and written under the lock.
    final class Filler: @unchecked Sendable {
        let path: String
        private let lock = NSLock()
        private var armed = false
        init(path: String) { self.path = path }
        func arm() { lock.withLock { armed = true } }
        func hit(_ point: String) {
            guard point == "space-checked", lock.withLock({ let a = armed; armed = false; return a }) else { return }
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            let block = [UInt8](repeating: 0xAB, count: 4096)
            while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
            close(fd)
        }
    }

    @Test(.enabled(if: getuid() == 0, "mounting a tmpfs needs root (CAP_SYS_ADMIN)"))
    func refusalThenENOSPCMidWriteLeaveTheQueueIntact() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let mountPoint = s.root + "/small"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mounted = try run("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mountPoint])
        try #require(mounted.status == 0, "mounting a 4 MiB tmpfs on \(mountPoint) failed: \(mounted.stderr)")
        defer { _ = try? run("/bin/umount", ["-l", mountPoint]) }
        let dir = mountPoint + "/spool"
        let db = mountPoint + "/queue.sqlite"
        let filler = Filler(path: mountPoint + "/filler")
        let quiet = { () -> Logger in var l = Logger(label: "t"); l.logLevel = .critical; return l }()
        let spool = try Spool(directory: dir, databasePath: db, minFree: 1 << 20, keepUploaded: 86400,
                              protection: s.protection, logger: quiet, checkpoint: { filler.hit($0) })
        let kept = bytes(500_000, seed: 3)
        let first = try spool.enqueue(imageData: kept, preview: bytes(9000), metadata: meta("C-1"))

        // 1. The guard: 3 MiB on a 4 MiB disk would leave less than min_free.
        let before = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect {
            try spool.enqueue(imageData: bytes(3 << 20, seed: 4), preview: nil, metadata: meta("C-2"))
        } throws: { e in
            let e = e as! SpoolError
            print("refusal: \(e)")
            return e.code == .insufficientSpace && e.message.contains("spool.min_free") && e.message.contains("not queued")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == before, "nothing written")

        // 2. ENOSPC mid-write: the guard passed, then the disk filled up.
        filler.arm()
        #expect {
            try spool.enqueue(imageData: bytes(600_000, seed: 5), preview: nil, metadata: meta("C-3"))
        } throws: { e in
            let e = e as! SpoolError
            print("mid-write: \(e)")
            return e.code == .diskFull && e.errno == ENOSPC && e.function != nil && e.message.contains("No space left")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == before, "no half file left")
        let firstPreview = try #require(first.previewID)
        #expect(try spool.allItems().map(\.id) == [first.imageID, firstPreview])
        #expect(try spool.integrityCheck(verifyHashes: true).isHealthy)

        // Space comes back: the queue works and still holds the first image intact.
        try FileManager.default.removeItem(atPath: filler.path)
        let next = try spool.enqueue(imageData: bytes(600_000, seed: 5), preview: nil, metadata: meta("C-3"))
        #expect(!next.alreadyQueued)
        let reopened = try Spool(directory: dir, databasePath: db, minFree: 1 << 20, keepUploaded: 86400,
                             protection: s.protection, logger: quiet)
        #expect(reopened.recoveryAtOpen.isClean)
        let firstItem = try #require(try reopened.item(id: first.imageID))
        #expect(plainSHA(reopened, firstItem) == sha256Hex(kept))
        #expect(try reopened.integrityCheck(verifyHashes: true).isHealthy)
    }
}
