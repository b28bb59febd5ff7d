import Foundation
import Hub
#if canImport(Glibc)
import Glibc
#endif

final class TempDir: Sendable {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "hub-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}

struct RawResponse: Sendable {
    var status: Int
    var headers: [String: String]
    var body: String
    subscript(_ name: String) -> String? { headers[name.lowercased()] }
}

struct RawError: Error, CustomStringConvertible { var description: String }

/// One HTTP/1.1 exchange over a plain socket with `Connection: close`. With
/// `truncateBodyAt`, only that many body bytes are sent before the socket is
/// shut down, imitating a link that drops mid-PATCH. Runs on its own thread so
/// blocking socket calls stay off the cooperative pool the hub needs.
func raw(_ port: Int, _ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8] = [],
         truncateBodyAt: Int? = nil) async throws -> RawResponse {
    try await withCheckedThrowingContinuation { (cont: CheckedContinuation<RawResponse, any Error>) in
        let t = Thread {
            cont.resume(with: Result { try rawBlocking(port, method, path, headers, body, truncateBodyAt) })
        }
        t.start()
    }
}

private func rawBlocking(_ port: Int, _ method: String, _ path: String, _ headers: [String: String], _ body: [UInt8],
                         _ truncate: Int?) throws -> RawResponse {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw RawError(description: "socket: \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else { throw RawError(description: "connect: \(errno)") }
    var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    var h = headers
    if method == "POST" || method == "PATCH" { h["Content-Length"] = h["Content-Length"] ?? "\(body.count)" }
    for (k, v) in h { head += "\(k): \(v)\r\n" }
    head += "\r\n"
    let out = Array(head.utf8) + Array(body.prefix(truncate ?? body.count))
    var sent = 0
    while sent < out.count {
        let n = out.withUnsafeBytes { send(fd, $0.baseAddress! + sent, out.count - sent, Int32(MSG_NOSIGNAL)) }
        guard n > 0 else { throw RawError(description: "send: \(errno)") }
        sent += n
    }
    if truncate != nil {
        // The link died: no more bytes will come, and nobody waits for an answer.
        shutdown(fd, Int32(SHUT_WR))
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
    var data = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
        if n <= 0 { break }
        data += buf[0..<n]
        // HEAD has no body to read until close; stop at the end of the headers.
        if method == "HEAD", let text = String(bytes: data, encoding: .utf8), text.contains("\r\n\r\n") { break }
    }
    let text = String(decoding: data, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else {
        return RawResponse(status: 0, headers: [:], body: text)
    }
    let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
    let status = Int(lines[0].split(separator: " ")[1]) ?? 0
    var fields: [String: String] = [:]
    for line in lines.dropFirst() {
        guard let c = line.firstIndex(of: ":") else { continue }
        fields[line[..<c].lowercased()] = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces)
    }
    return RawResponse(status: status, headers: fields, body: String(text[split.upperBound...]))
}

let tus = ["Tus-Resumable": "1.0.0"]

func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }
