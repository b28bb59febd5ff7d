import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// TCP sockets on 127.0.0.1 for the tests' servers and dead ends.
public enum Loopback {
    /// A bound, listening socket on an ephemeral port; close it with `close(fd)`.
    /// Nothing accepts: a client connects, then waits (a black hole).
    public static func listener(backlog: Int32 = 16) throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, len) == 0 && listen(fd, backlog) == 0 && getsockname(fd, sa, &len) == 0
            }
        }
        guard ok else {
            let e = errno
            close(fd)
            throw POSIXError(.init(rawValue: e) ?? .EIO)
        }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }

    /// A port that was free a moment ago and on which nothing listens now:
    /// connecting to it is refused at once.
    public static func closedPort() throws -> Int {
        let (fd, port) = try listener()
        close(fd)
        return port
    }
}
