import Basics
import CV4L2
import Foundation

/// An open V4L2 node. Every ioctl goes through `ioctl(_:_:_:)`, which
/// retries EINTR and turns failures into `CaptureError`s that name the
/// request and errno. Used from one thread at a time.
struct V4L2Handle {
    let fd: Int32
    let path: String
    /// Whether calls go through libv4l2 (capture) or straight to the kernel (discovery).
    let viaLibv4l2: Bool

    /// Opens `path` non-blocking. Calls `v4l2_open` or `open(2)`.
    static func open(_ path: String, viaLibv4l2: Bool) throws(CaptureError) -> V4L2Handle {
        do {
            let fd = try Syscall.call(viaLibv4l2 ? "v4l2_open" : "open", path) {
                viaLibv4l2 ? ts_v4l2_open(path, O_RDWR | O_NONBLOCK) : ts_sys_open(path, O_RDWR | O_NONBLOCK)
            }
            return V4L2Handle(fd: fd, path: path, viaLibv4l2: viaLibv4l2)
        } catch {
            let e = error.errno.rawValue
            throw CaptureError.classify(function: error.function, errno: e, device: path,
                                        holder: e == EBUSY ? ProcessHolder.find(device: path) : nil)
        }
    }

    /// Calls `v4l2_close` or `close(2)`.
    func close() {
        if viaLibv4l2 { _ = v4l2_close(fd) } else { _ = Glibc.close(fd) }
    }

    /// Issues one V4L2 request; returns the errno on failure without throwing.
    /// Calls `v4l2_ioctl` or `ioctl(2)`.
    func tryIoctl<T>(_ request: UInt, _ arg: inout T) -> Int32 {
        do {
            try withUnsafeMutablePointer(to: &arg) { p throws(SystemCallError) in
                try Syscall.call("ioctl", path) { viaLibv4l2 ? ts_v4l2_ioctl(fd, request, p) : ts_sys_ioctl(fd, request, p) }
            }
            return 0
        } catch {
            return error.errno.rawValue
        }
    }

    /// As `tryIoctl`, throwing a classified error named after `name` (VIDIOC_...).
    func ioctl<T>(_ name: String, _ request: UInt, _ arg: inout T) throws(CaptureError) {
        let e = tryIoctl(request, &arg)
        guard e != 0 else { return }
        throw CaptureError.classify(function: name, errno: e, device: path,
                                    holder: e == EBUSY ? ProcessHolder.find(device: path) : nil)
    }
}

/// Finds which process holds a device open, by reading `/proc/*/fd` links.
enum ProcessHolder {
    /// "name (pid N)" of the first other process with `device` open, or nil
    /// when none is visible (e.g. it runs as another user without /proc access).
    static func find(device: String, procRoot: String = "/proc") -> String? {
        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: device)).map {
            $0.hasPrefix("/") ? $0 : ((device as NSString).deletingLastPathComponent as NSString).appendingPathComponent($0)
        } ?? device
        let canonical = (target as NSString).standardizingPath
        let me = String(getpid())
        guard let pids = try? FileManager.default.contentsOfDirectory(atPath: procRoot) else { return nil }
        for pid in pids where pid.allSatisfy(\.isNumber) && pid != me {
            let fdDir = "\(procRoot)/\(pid)/fd"
            guard let fds = try? FileManager.default.contentsOfDirectory(atPath: fdDir) else { continue }
            for fd in fds {
                if let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fdDir)/\(fd)"), link == canonical {
                    let comm = (try? String(contentsOfFile: "\(procRoot)/\(pid)/comm", encoding: .utf8))?
                        .trimmingCharacters(in: .whitespacesAndNewlines) ?? "process"
                    return "\(comm) (pid \(pid))"
                }
            }
        }
        return nil
    }
}

/// Reads a fixed-size C char array (imported as a tuple) as a String.
func cString<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { raw in
        let bytes = raw.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }
}
