import Basics
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the hub remembers about one upload, kept as JSON beside its bytes.
public struct UploadInfo: Codable, Sendable, Equatable {
    public var id: String
    public var length: Int64
    public var metadata: [String: String]
    public var createdAt: Date
    public var expiresAt: Date
    /// Set once every byte arrived and the checks passed: the stored file's name.
    public var storedAs: String?
    /// Lower-case hex SHA-256 of the stored file, when complete.
    public var sha256: String?
    /// Whether the file matched the `sha256` the station declared.
    public var sha256Verified: Bool?

    enum CodingKeys: String, CodingKey {
        case id, length, metadata, sha256
        case createdAt = "created_at", expiresAt = "expires_at", storedAs = "stored_as"
        case sha256Verified = "sha256_verified"
    }
}

/// Outcome of completing an upload.
public enum CompletionResult: Sendable, Equatable {
    case stored(UploadInfo)
    /// The bytes do not hash to the declared `sha256`; the upload was discarded.
    case checksumMismatch(expected: String, actual: String)
}

/// The hub's disk layout:
/// - `DIR/.incoming/ID.part` and `ID.json` while an upload is in progress;
/// - `DIR/ID-FILENAME` and `DIR/ID-FILENAME.json` once it is complete.
/// The offset of an incoming upload is the size of its `.part` file, which is
/// fsynced after every PATCH, so a hub restart keeps every acknowledged byte.
public final class HubStore: Sendable {
    public let directory: String
    let incoming: String

    public init(directory: String) throws(HubError) {
        self.directory = directory
        self.incoming = (directory as NSString).appendingPathComponent(".incoming")
        do {
            try FileManager.default.createDirectory(atPath: incoming, withIntermediateDirectories: true)
        } catch {
            throw HubError(.startup, "cannot create the store directory \(directory): \(error.localizedDescription)",
                           nextStep: "pass a writable directory with --store")
        }
    }

    func partPath(_ id: String) -> String { (incoming as NSString).appendingPathComponent("\(id).part") }
    func infoPath(_ id: String) -> String { (incoming as NSString).appendingPathComponent("\(id).json") }

    static func isValidID(_ id: String) -> Bool {
        id.count == 32 && id.allSatisfy { $0.isHexDigit && ($0.isNumber || $0.isLowercase) }
    }

    public func create(length: Int64, metadata: [String: String], expiresIn: Double) async throws(HubError) -> UploadInfo {
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        let id = bytes.hex
        let now = Date()
        let info = UploadInfo(id: id, length: length, metadata: metadata, createdAt: now,
                              expiresAt: now.addingTimeInterval(expiresIn))
        let part = partPath(id), infoFile = infoPath(id)
        try await Blocking.run { () throws(HubError) in
            let fd = try Self.call("open", part) { open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) }
            close(fd)
            try Self.writeJSON(info, to: infoFile)
        }
        return info
    }

    /// The upload's info and current offset, nil when unknown.
    public func lookup(_ id: String) async throws(HubError) -> (UploadInfo, Int64)? {
        guard Self.isValidID(id) else { return nil }
        let part = partPath(id), infoFile = infoPath(id)
        return try await Blocking.run { () throws(HubError) -> (UploadInfo, Int64)? in
            guard let data = FileManager.default.contents(atPath: infoFile) else { return nil }
            let info: UploadInfo
            do { info = try Self.decoder.decode(UploadInfo.self, from: data) } catch {
                throw HubError(.storage, "\(infoFile) is not valid upload info: \(error)")
            }
            if info.storedAs != nil { return (info, info.length) }
            var st = stat()
            guard stat(part, &st) == 0 else { return nil }
            return (info, Int64(st.st_size))
        }
    }

    /// Appends `bytes` to the upload's data and makes them durable.
    public func append(_ id: String, _ bytes: [UInt8]) async throws(HubError) {
        let part = partPath(id)
        try await Blocking.run { () throws(HubError) in
            let fd = try Self.call("open", part) { open(part, O_WRONLY | O_APPEND | O_CLOEXEC) }
            defer { close(fd) }
            do throws(SystemCallError) { try Syscall.writeAll(fd, bytes, path: part) } catch { throw HubError.posix(error) }
        }
    }

    /// Flushes the upload's data to disk (`fsync`) so acknowledged offsets survive a power cut.
    public func sync(_ id: String) async throws(HubError) {
        let part = partPath(id)
        try await Blocking.run { () throws(HubError) in
            let fd = try Self.call("open", part) { open(part, O_WRONLY | O_CLOEXEC) }
            defer { close(fd) }
            try Self.call("fsync", part) { fsync(fd) }
        }
    }

    /// Hashes the complete data, checks the declared `sha256` and moves the
    /// file to its final name with its metadata JSON beside it.
    public func complete(_ info: UploadInfo) async throws(HubError) -> CompletionResult {
        let part = partPath(info.id), infoFile = infoPath(info.id)
        let directory = self.directory
        return try await Blocking.run { () throws(HubError) -> CompletionResult in
            let actual = try Self.sha256(of: part)
            let declared = info.metadata["sha256"]?.lowercased()
            if let declared, declared != actual {
                unlink(part)
                unlink(infoFile)
                return .checksumMismatch(expected: declared, actual: actual)
            }
            var done = info
            let name = "\(info.id)-\(Self.safeName(info.metadata["filename"] ?? "upload"))"
            done.storedAs = name
            done.sha256 = actual
            done.sha256Verified = declared != nil
            let final = (directory as NSString).appendingPathComponent(name)
            try Self.call("rename", part) { rename(part, final) }
            try Self.writeJSON(done, to: final + ".json")
            try Self.writeJSON(done, to: infoFile)
            return .stored(done)
        }
    }

    /// Termination: forgets an upload and its bytes.
    public func delete(_ id: String) async throws(HubError) {
        let part = partPath(id), infoFile = infoPath(id)
        try await Blocking.run { () throws(HubError) in
            unlink(part)
            unlink(infoFile)
        }
    }

    /// Removes incomplete uploads whose expiry has passed; returns how many.
    @discardableResult
    public func sweepExpired(now: Date = Date()) async throws(HubError) -> Int {
        let incoming = self.incoming
        return try await Blocking.run { () throws(HubError) -> Int in
            let names = (try? FileManager.default.contentsOfDirectory(atPath: incoming)) ?? []
            var removed = 0
            for name in names where name.hasSuffix(".json") {
                let path = (incoming as NSString).appendingPathComponent(name)
                guard let data = FileManager.default.contents(atPath: path),
                      let info = try? Self.decoder.decode(UploadInfo.self, from: data),
                      info.storedAs == nil, info.expiresAt < now else { continue }
                unlink((incoming as NSString).appendingPathComponent("\(info.id).part"))
                unlink(path)
                removed += 1
            }
            return removed
        }
    }

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }()

    static func writeJSON(_ info: UploadInfo, to path: String) throws(HubError) {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        let tmp = path + ".tmp"
        do {
            try e.encode(info).write(to: URL(fileURLWithPath: tmp))
        } catch {
            throw HubError(.storage, "cannot write \(tmp): \(error.localizedDescription)")
        }
        try call("rename", tmp) { rename(tmp, path) }
    }

    /// `Syscall.call`, with the failure as a `HubError`.
    @discardableResult
    static func call<T: BinaryInteger>(_ function: String, _ path: String, _ body: () -> T) throws(HubError) -> T {
        do { return try Syscall.call(function, path, body) } catch { throw HubError.posix(error) }
    }

    static func sha256(of path: String) throws(HubError) -> String {
        do { return try Digest.sha256(ofFile: path) } catch { throw HubError.posix(error) }
    }

    /// A file name safe to put in the store: no path separators, no leading dot.
    static func safeName(_ s: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        var name = String(s.map { allowed.contains($0) ? $0 : "_" }.prefix(100))
        while name.hasPrefix(".") { name.removeFirst() }
        return name.isEmpty ? "upload" : name
    }
}
