import Spool
import Uplink

/// An item's file as the tus client reads it: the plaintext, decrypted
/// segment by segment in memory as each chunk is sent. A segment that fails
/// authentication ends the upload with `.hold`, so a modified file is never
/// sent as garbage.
struct SpoolUploadSource: UploadSource {
    let file: SpoolFileReader
    var size: Int64 { file.size }

    func read(at offset: Int64, count: Int) throws -> [UInt8] {
        try file.read(at: offset, count: count)
    }
}

extension Spool {
    /// Opens an item's file for upload. A new upload (nothing sent to the
    /// hub yet) first decrypts and hashes the whole file against the row, so
    /// a damaged or swapped file is held before the hub sees any of it; a
    /// resumed one relies on each segment's authentication as it is read.
    func uploadSource(for item: SpoolItem) throws(SpoolError) -> SpoolUploadSource {
        let file = try openFile(item)
        if item.uploadURL == nil {
            let sha = try file.sha256()
            guard sha == item.sha256 else {
                throw SpoolError(.integrity, "the file of item \(item.id) does not match the sha256 recorded when it was queued",
                                 nextStep: "keep the spool for a technician and capture the image again")
            }
        }
        return SpoolUploadSource(file: file)
    }
}
