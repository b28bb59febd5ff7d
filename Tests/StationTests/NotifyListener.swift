import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A stand-in for systemd's notify socket: a real AF_UNIX datagram socket
/// whose datagrams a dedicated thread records, with their arrival times.
/// Point `$NOTIFY_SOCKET` of a process (or a `SystemdNotifier`) at `address`.
final class NotifyListener: Sendable {
    struct Message: Sendable {
        var text: String
        var at: ContinuousClock.Instant
        var fields: [String] { text.split(separator: "\n").map(String.init) }
    }

    /// What goes into `$NOTIFY_SOCKET`: a path, or `@name` for an abstract socket.
    let address: String
    private let fd: Int32
    private let messages = Mutex<[Message]>([])
    private let stopped = Mutex(false)
    private let finished = DispatchSemaphore(value: 0)

    init(abstract: Bool = false) throws {
        let name = "telestation-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let path = abstract ? "@" + name : NSTemporaryDirectory() + name + ".sock"
        address = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno)!) }
        var sa = sockaddr_un()
        sa.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &sa.sun_path) { $0.copyBytes(from: bytes) }
        let len = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + (abstract ? 0 : 1))
        let rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard rc == 0 else { let e = errno; Glibc.close(fd); throw POSIXError(.init(rawValue: e)!) }
        let thread = Thread { [self] in self.receive() }
        thread.start()
    }

    private func receive() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !stopped.withLock({ $0 }) {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 {
                let text = String(decoding: buffer[0..<n], as: UTF8.self)
                messages.withLock { $0.append(Message(text: text, at: .now)) }
            }
        }
        finished.signal()
    }

    var all: [Message] { messages.withLock { $0 } }

    /// Every field received so far, in order.
    var fields: [String] { all.flatMap(\.fields) }

    func count(_ field: String) -> Int { fields.filter { $0 == field }.count }

    /// Polls until `condition` holds or `timeout` passes; returns whether it held.
    func wait(timeout: Duration = .seconds(60), until condition: ([Message]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(all) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition(all)
    }

    func close() {
        stopped.withLock { $0 = true }
        finished.wait()
        Glibc.close(fd)
        if !address.hasPrefix("@") { unlink(address) }
    }
}
