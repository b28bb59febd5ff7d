import Foundation
import GRDB
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// What encrypting a plaintext spool did.
public struct MigrationReport: Sendable, Equatable {
    /// Items whose plaintext file was replaced by its encrypted form.
    public var encrypted: [Int64] = []
    /// Items left as they were, with the reason (their file no longer matched its row).
    public var failed: [Int64: String] = [:]
}

extension Spool {
    /// Encrypts the file of every item still stored in plaintext (a spool
    /// from before encryption, or written with it switched off). Each file
    /// goes the write path's way: an encrypted temporary file, `fsync(2)`,
    /// `rename(2)` over the plaintext one. The row does not change (its size
    /// and hash are the plaintext's), so a kill at any moment leaves either
    /// the old plaintext file or the complete encrypted one, both readable;
    /// a leftover temporary file is removed by the next recovery pass and
    /// the file encrypted again. A file whose bytes no longer match the
    /// row's sha256 is left untouched and reported.
    static func encryptPlaintextFiles(directory: String, db: DatabasePool, protection: SpoolProtection, logger: Logger,
                                      checkpoint: (String) -> Void) throws(SpoolError) -> MigrationReport {
        guard case let .encrypted(key) = protection else { return MigrationReport() }
        let rows: [Row]
        do {
            rows = try db.read { db in
                try Row.fetchAll(db, sql: "SELECT id, kind, file, sha256, size FROM item WHERE file_deleted_at IS NULL ORDER BY id")
            }
        } catch {
            throw SpoolError.database(error, doing: "listing the files to encrypt")
        }
        var report = MigrationReport()
        // Shared, like an enqueue: another process's recovery must not take our temporary file for debris.
        var lock: SpoolLock?
        defer { lock?.unlock() }
        for row in rows {
            let id: Int64 = row["id"]
            let file: String = row["file"]
            let path = directory + "/" + file
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }  // missing files are recovery's to report
            defer { close(fd) }
            // Decided on the descriptor that is copied, so a file another process
            // encrypted meanwhile is never encrypted twice.
            guard !EncryptedHeader.isEncrypted(try SpoolFileReader.pread(fd, path, count: EncryptedHeader.magic.count, at: 0)) else { continue }
            if lock == nil { lock = try SpoolLock(directory: directory, exclusive: false) }
            do throws(SpoolError) {
                let sealer = try SegmentSealer(masterKey: key.key, uid: SpoolFileReader.uid(ofFile: path) ?? UUID(),
                                               kind: ItemKind(rawValue: row["kind"]) ?? .image, plaintextLength: row["size"])
                _ = try FileOps.writeFile(.descriptor(fd, path: path), directory: directory, name: file, sealer: sealer,
                                          expectSHA256: row["sha256"], checkpoint: checkpoint)
                report.encrypted.append(id)
            } catch {
                report.failed[id] = error.message
                logger.error("could not encrypt the file of item \(id); left as it is: \(error)")
            }
        }
        if !report.encrypted.isEmpty {
            try FileOps.syncDirectory(directory)
            checkpoint("migration-synced")
            logger.notice("encrypted the plaintext image files of \(report.encrypted.count) queued item(s)")
        }
        return report
    }
}
