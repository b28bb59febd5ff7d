import Basics
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where an upload's bytes come from. Reads are random access so that an
/// upload can resume at whatever offset the hub reports.
public protocol UploadSource: Sendable {
    /// Total number of bytes the hub must end up with.
    var size: Int64 { get }
    /// Up to `count` bytes starting at `offset`; fewer only at the end.
    func read(at offset: Int64, count: Int) throws -> [UInt8]
}

/// A file on disk, read piecewise with `pread(2)` so a 50 MB image never sits
/// in memory whole. The size is taken when the source is opened; a file that
/// changes length afterwards is reported as an error rather than uploaded torn.
public struct FileUploadSource: UploadSource {
    public let path: String
    public let size: Int64

    /// Opens nothing yet: `stat(2)`s the file for its size.
    public init(path: String) throws(UplinkError) {
        var st = stat()
        do { try Syscall.call("stat", path) { stat(path, &st) } } catch { throw UplinkError.posix(error) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw UplinkError(.source, "\(path) is not a regular file", nextStep: "enqueue image files only")
        }
        self.path = path
        self.size = Int64(st.st_size)
    }

    /// Calls `open(2)` and `pread(2)`, retrying on EINTR.
    public func read(at offset: Int64, count: Int) throws -> [UInt8] {
        guard offset >= 0, offset <= size, count >= 0 else {
            throw UplinkError(.source, "read of \(count) bytes at \(offset) is outside \(path) (\(size) bytes)")
        }
        let want = Int(min(Int64(count), size - offset))
        if want == 0 { return [] }
        let path = self.path
        let fd: Int32
        do { fd = try Syscall.call("open", path) { open(path, O_RDONLY | O_CLOEXEC) } } catch { throw UplinkError.posix(error) }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: want)
        var done = 0
        while done < want {
            let read = buffer.withUnsafeMutableBytes { raw in
                Result { () throws(SystemCallError) -> Int in
                    try Syscall.call("pread", path) { pread(fd, raw.baseAddress! + done, want - done, off_t(offset) + off_t(done)) }
                }
            }
            let n: Int
            switch read {
            case let .success(count): n = count
            case let .failure(error): throw UplinkError.posix(error)
            }
            if n == 0 {
                throw UplinkError(.source, "\(path) shrank while being uploaded (expected \(size) bytes)",
                                  nextStep: "files in the queue must not be modified; re-enqueue the image")
            }
            done += n
        }
        return buffer
    }
}

/// Bytes already in memory; for small payloads and tests.
public struct MemoryUploadSource: UploadSource {
    public let bytes: [UInt8]
    public var size: Int64 { Int64(bytes.count) }
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public func read(at offset: Int64, count: Int) throws -> [UInt8] {
        guard offset >= 0, offset <= size, count >= 0 else {
            throw UplinkError(.source, "read of \(count) bytes at \(offset) is outside a \(size)-byte buffer")
        }
        let end = Int(min(Int64(count) + offset, size))
        return Array(bytes[Int(offset)..<end])
    }
}
