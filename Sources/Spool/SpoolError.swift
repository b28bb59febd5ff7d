import Basics
import Foundation
import GRDB

public enum SpoolErrorCode: String, FailureCode {
    /// Accepting the item would leave less than `spool.min_free` on the disk.
    case insufficientSpace
    /// The disk filled up while the file was being written (ENOSPC/EDQUOT).
    case diskFull
    /// A file could not be read, written, synced or renamed.
    case fileSystem
    /// SQLite refused or failed a statement.
    case database
    /// No item with the given id.
    case notFound
    /// The requested state change is not allowed from the item's current state.
    case invalidTransition
    /// The caller's lease on an item has expired and another claimant may hold it.
    case leaseLost
    /// The caller passed something unusable (an empty file, a bad offset).
    case invalidInput
    /// The spool key is missing, unreadable, too open or of the wrong size.
    case encryptionKey
    /// A spooled file failed its checks: modified, truncated, swapped with
    /// another item's, or sealed under another key.
    case integrity
}

/// Every failure the spool reports: what went wrong, in words a station
/// operator can read, and where one exists, what to do about it.
public typealias SpoolError = Failure<SpoolErrorCode>

extension Failure where Code == SpoolErrorCode {
    static func system(_ e: SystemCallError, code: Code? = nil) -> SpoolError {
        system(e.function, path: e.path ?? "", errno: e.errno.rawValue, code: code)
    }

    /// A failed system call: names the function, the path and the errno text.
    static func system(_ function: String, path: String, errno err: Int32, code: Code? = nil) -> SpoolError {
        let isFull = err == ENOSPC || err == EDQUOT
        let text = String(cString: strerror(err))
        return SpoolError(
            code ?? (isFull ? .diskFull : .fileSystem),
            "\(function)(\(path)) failed: \(text)",
            nextStep: isFull
                ? "free space on the station's disk (delete old files or run retention) and try again; the queue is intact"
                : nil,
            function: function, errno: err)
    }

    static func database(_ error: any Error, doing what: String) -> SpoolError {
        if let e = error as? SpoolError { return e }
        if let e = error as? DatabaseError, e.resultCode == .SQLITE_FULL {
            return SpoolError(.diskFull, "the disk is full: the queue database could not grow while \(what)",
                              nextStep: "free space on the station's disk and try again; the queue is intact")
        }
        return SpoolError(.database, "queue database error while \(what): \(error)",
                          nextStep: "run `telestation diagnose`; if the database is damaged, keep the spool directory for a technician")
    }
}
