import Basics
import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The system calls of the spool's write path, each through one funnel that
/// retries EINTR and turns failures into `SpoolError`s naming the call.
enum FileOps {
    /// `Syscall.call`, with the failure as a `SpoolError`.
    @discardableResult
    static func call<T: BinaryInteger>(_ function: String, _ path: String, _ body: () -> T) throws(SpoolError) -> T {
        do { return try Syscall.call(function, path, body) } catch { throw SpoolError.system(error) }
    }

    /// Prefix of the files an interrupted write leaves behind; recovery deletes them.
    static let tempPrefix = ".tmp-"

    /// Where the bytes of a new item come from.
    enum Source {
        case data(Data)
        case file(String)
        /// An already open file, read from its current position (not closed here).
        case descriptor(Int32, path: String)
    }

    /// Writes `source` to `directory/name` the crash-safe way: a temporary
    /// file in the same directory, written while hashing, `fsync(2)`ed, then
    /// `rename(2)`d into place. With `sealer` the file is written encrypted
    /// (the hash and size are still those of the plaintext); with
    /// `expectSHA256` a source whose hash differs is refused before the
    /// rename. The directory itself is not synced here so that a caller
    /// writing two files pays for one directory sync (`syncDirectory`). On
    /// any failure the temporary file is removed.
    static func writeFile(_ source: Source, directory: String, name: String, sealer: SegmentSealer? = nil,
                          expectSHA256: String? = nil,
                          checkpoint: (String) -> Void) throws(SpoolError) -> (sha256: String, size: Int64) {
        let tempPath = directory + "/" + tempPrefix + UUID().uuidString
        let finalPath = directory + "/" + name
        let fd = try call("open", tempPath) { open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640) }
        var isOpen = true
        defer { if isOpen { close(fd) } }
        do throws(SpoolError) {
            checkpoint("temp-created")
            var hasher = SHA256()
            var size: Int64 = 0
            var sealer = sealer
            if let header = sealer?.header.encoded {
                try writeAll(fd, header, tempPath)
            }
            // Hashes, encrypts when asked, and writes one slice of plaintext.
            func take(_ slice: UnsafeRawBufferPointer) throws(SpoolError) {
                hasher.update(bufferPointer: slice)
                size += Int64(slice.count)
                if sealer != nil {
                    let sealed = try sealer!.add(slice)
                    try writeAll(fd, sealed, tempPath)
                } else {
                    try writeAll(fd, slice, tempPath)
                }
                checkpoint("chunk-written")
            }
            switch source {
            case let .data(data):
                // `withUnsafeBytes` only rethrows untyped errors, so the failure is carried out as a value.
                let failure = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> SpoolError? in
                    // Hash and write in slices so a kill lands between partial writes too.
                    var offset = 0
                    while offset < raw.count {
                        let slice = UnsafeRawBufferPointer(rebasing: raw[offset..<min(raw.count, offset + chunkSize)])
                        do throws(SpoolError) { try take(slice) } catch { return error }
                        offset += slice.count
                    }
                    return nil
                }
                if let failure { throw failure }
            case let .file(path):
                let src = try call("open", path) { Glibc.open(path, O_RDONLY | O_CLOEXEC) }
                defer { close(src) }
                try copy(from: src, path: path, into: take)
            case let .descriptor(src, path):
                try copy(from: src, path: path, into: take)
            }
            if var s = sealer {
                let last = try s.finish()
                try writeAll(fd, last, tempPath)
            }
            let hex = hasher.finalize().hex
            if let expectSHA256, hex != expectSHA256 {
                throw SpoolError(.integrity, "\(finalPath) no longer matches the sha256 its queue record holds",
                                 nextStep: EncryptedHeader.damagedStep)
            }
            try call("fsync", tempPath) { fsync(fd) }
            checkpoint("temp-synced")
            isOpen = false
            try call("close", tempPath) { close(fd) }
            try call("rename", finalPath) { rename(tempPath, finalPath) }
            checkpoint("renamed")
            return (hex, size)
        } catch {
            try? removeDestroyingKey(tempPath)
            throw error
        }
    }

    private static func copy(from src: Int32, path: String,
                             into take: (UnsafeRawBufferPointer) throws(SpoolError) -> Void) throws(SpoolError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = try call("read", path) { read(src, buffer.baseAddress, chunkSize) }
            if n == 0 { break }
            try take(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
    }

    /// Removes a spool file; an encrypted one first has its sealed data key
    /// overwritten in place (`pwrite(2)`, `fdatasync(2)`), so the blocks the
    /// unlink frees hold nothing decryptable, even with the master key.
    /// A file already gone counts as success.
    static func removeDestroyingKey(_ path: String) throws(SpoolError) {
        let fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
        if fd >= 0 {
            defer { close(fd) }
            let head = try SpoolFileReader.pread(fd, path, count: EncryptedHeader.size, at: 0)
            if EncryptedHeader.isEncrypted(head) && head.count == EncryptedHeader.size {
                let zeros = [UInt8](repeating: 0, count: EncryptedHeader.keyRange.count)
                let n = try call("pwrite", path) {
                    zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(EncryptedHeader.keyRange.lowerBound)) }
                }
                guard n == zeros.count else { throw SpoolError(.fileSystem, "pwrite(\(path)) wrote \(n) of \(zeros.count) bytes") }
                try call("fdatasync", path) { fdatasync(fd) }
            }
        } else if errno != ENOENT {
            throw SpoolError.system("open", path: path, errno: errno)
        }
        try remove(path)
    }

    static let chunkSize = 1 << 20

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], _ path: String) throws(SpoolError) {
        do { try Syscall.writeAll(fd, bytes, path: path) } catch { throw SpoolError.system(error) }
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, _ path: String) throws(SpoolError) {
        do { try Syscall.writeAll(fd, bytes, path: path) } catch { throw SpoolError.system(error) }
    }

    /// `fsync(2)` on the directory, so a rename or unlink in it survives a power cut.
    static func syncDirectory(_ directory: String) throws(SpoolError) {
        do { try Syscall.syncDirectory(directory) } catch { throw SpoolError.system(error) }
    }

    /// Bytes available to an unprivileged writer on the filesystem holding `path` (`statvfs(3)`).
    static func availableBytes(_ path: String) throws(SpoolError) -> Int64 {
        do { return try Syscall.diskSpace(path).available } catch { throw SpoolError.system(error) }
    }

    /// Size of a regular file (`stat(2)`), or nil when it does not exist.
    static func fileSize(_ path: String) throws(SpoolError) -> Int64? {
        var st = stat()
        if stat(path, &st) == -1 {
            let err = errno
            if err == ENOENT { return nil }
            throw SpoolError.system("stat", path: path, errno: err)
        }
        return Int64(st.st_size)
    }

    /// `unlink(2)`; a file already gone counts as success.
    static func remove(_ path: String) throws(SpoolError) {
        if unlink(path) == -1, errno != ENOENT {
            throw SpoolError.system("unlink", path: path, errno: errno)
        }
    }

    /// Names in a directory, without `.` and `..`.
    static func list(_ directory: String) throws(SpoolError) -> [String] {
        guard let dir = opendir(directory) else { throw SpoolError.system("opendir", path: directory, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// SHA-256 of a file, streamed.
    static func sha256(ofFile path: String) throws(SpoolError) -> String {
        do { return try Digest.sha256(ofFile: path) } catch { throw SpoolError.system(error) }
    }

    /// Creates the directory and its parents (`mkdir(2)`), mode 0750.
    static func makeDirectory(_ path: String) throws(SpoolError) {
        var partial = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            partial += "/" + component
            if mkdir(partial, 0o750) == -1, errno != EEXIST {
                throw SpoolError.system("mkdir", path: partial, errno: errno,
                                        code: .fileSystem)
            }
        }
    }
}
