import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The system calls of the spool's write path, each through one funnel that
/// retries EINTR and turns failures into `SpoolError`s naming the call.
enum FileOps {
    /// Runs a call that returns -1 and sets errno on failure, retrying EINTR.
    @discardableResult
    static func call<T: BinaryInteger>(_ function: String, _ path: String, _ body: () -> T) throws(SpoolError) -> T {
        while true {
            let r = body()
            if r != -1 { return r }
            let err = errno
            if err == EINTR { continue }
            throw SpoolError.system(function, path: path, errno: err)
        }
    }

    /// Prefix of the files an interrupted write leaves behind; recovery deletes them.
    static let tempPrefix = ".tmp-"

    /// Where the bytes of a new item come from.
    enum Source {
        case data(Data)
        case file(String)
    }

    /// Writes `source` to `directory/name` the crash-safe way: a temporary
    /// file in the same directory, written while hashing, `fsync(2)`ed, then
    /// `rename(2)`d into place. The directory itself is not synced here so
    /// that a caller writing two files pays for one directory sync
    /// (`syncDirectory`). On any failure the temporary file is removed.
    static func writeFile(_ source: Source, directory: String, name: String,
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
            switch source {
            case let .data(data):
                // `withUnsafeBytes` only rethrows untyped errors, so the failure is carried out as a value.
                let failure = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> SpoolError? in
                    // Hash and write in slices so a kill lands between partial writes too.
                    var offset = 0
                    while offset < raw.count {
                        let slice = UnsafeRawBufferPointer(rebasing: raw[offset..<min(raw.count, offset + chunkSize)])
                        hasher.update(bufferPointer: slice)
                        do throws(SpoolError) { try writeAll(fd, slice, tempPath) } catch { return error }
                        offset += slice.count
                        checkpoint("chunk-written")
                    }
                    return nil
                }
                if let failure { throw failure }
                size = Int64(data.count)
            case let .file(path):
                let src = try call("open", path) { Glibc.open(path, O_RDONLY | O_CLOEXEC) }
                defer { close(src) }
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
                defer { buffer.deallocate() }
                while true {
                    let n = try call("read", path) { read(src, buffer.baseAddress, chunkSize) }
                    if n == 0 { break }
                    let slice = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                    hasher.update(bufferPointer: slice)
                    try writeAll(fd, slice, tempPath)
                    size += Int64(n)
                    checkpoint("chunk-written")
                }
            }
            try call("fsync", tempPath) { fsync(fd) }
            checkpoint("temp-synced")
            isOpen = false
            try call("close", tempPath) { close(fd) }
            try call("rename", finalPath) { rename(tempPath, finalPath) }
            checkpoint("renamed")
            let hex = hasher.finalize().map { String(format: "%02x", $0) }.joined()
            return (hex, size)
        } catch {
            unlink(tempPath)
            throw error
        }
    }

    static let chunkSize = 1 << 20

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, _ path: String) throws(SpoolError) {
        var done = 0
        while done < bytes.count {
            let n = try call("write", path) { write(fd, bytes.baseAddress! + done, bytes.count - done) }
            done += n
        }
    }

    /// `fsync(2)` on the directory, so a rename or unlink in it survives a power cut.
    static func syncDirectory(_ directory: String) throws(SpoolError) {
        let fd = try call("open", directory) { open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(fd) }
        try call("fsync", directory) { fsync(fd) }
    }

    /// Bytes available to an unprivileged writer on the filesystem holding `path` (`statvfs(3)`).
    static func availableBytes(_ path: String) throws(SpoolError) -> Int64 {
        var st = statvfs()
        try call("statvfs", path) { statvfs(path, &st) }
        return Int64(st.f_bavail) * Int64(st.f_frsize)
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
        let fd = try call("open", path) { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        var hasher = SHA256()
        while true {
            let n = try call("read", path) { read(fd, buffer.baseAddress, chunkSize) }
            if n == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
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
