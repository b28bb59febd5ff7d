import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The one funnel for system calls that report failure as -1 and `errno`:
/// retries EINTR and throws a `SystemCallError` naming the call and path.
/// The modules turn that into their own `Failure` with the step a person can take.
public enum Syscall {
    @discardableResult
    public static func call<T: BinaryInteger>(_ function: String, _ path: String? = nil,
                                              _ body: () -> T) throws(SystemCallError) -> T {
        while true {
            let r = body()
            if r != -1 { return r }
            let e = Errno(rawValue: Glibc.errno)
            if e == .interrupted { continue }
            throw SystemCallError(function, path: path, errno: e)
        }
    }

    /// For calls that return an errno value directly (0 on success), as
    /// `posix_fallocate` and the pthread functions do.
    public static func result(_ function: String, _ path: String? = nil, _ body: () -> Int32) throws(SystemCallError) {
        while true {
            let r = body()
            if r == 0 { return }
            if r == EINTR { continue }
            throw SystemCallError(function, path: path, errno: Errno(rawValue: r))
        }
    }

    /// `write(2)` until every byte is written.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String? = nil) throws(SystemCallError) {
        var done = 0
        while done < bytes.count {
            done += try call("write", path) { write(fd, bytes.baseAddress! + done, bytes.count - done) }
        }
    }

    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String? = nil) throws(SystemCallError) {
        let failure = bytes.withUnsafeBytes { raw -> SystemCallError? in
            do throws(SystemCallError) { try writeAll(fd, raw, path: path) } catch { return error }
            return nil
        }
        if let failure { throw failure }
    }

    /// Bytes available to an unprivileged writer on the filesystem holding
    /// `path` and its size, from `statvfs(3)`.
    public static func diskSpace(_ path: String) throws(SystemCallError) -> (available: Int64, total: Int64) {
        var st = statvfs()
        try call("statvfs", path) { statvfs(path, &st) }
        return (Int64(st.f_bavail) * Int64(st.f_frsize), Int64(st.f_blocks) * Int64(st.f_frsize))
    }

    /// `fsync(2)` on a directory, so a rename or unlink in it survives a power cut.
    public static func syncDirectory(_ directory: String) throws(SystemCallError) {
        let fd = try call("open", directory) { open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(fd) }
        try call("fsync", directory) { fsync(fd) }
    }
}
