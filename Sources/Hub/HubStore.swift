import Basics
import Crypto
import Foundation
import Sneakernet
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
    /// When the last byte arrived and the file was stored.
    public var completedAt: Date?
    /// For a recompressed upload (metadata `transport`): the length of the
    /// original file rebuilt from the `length` bytes received.
    public var rebuiltLength: Int64?
    /// For an item that came on a USB stick: the bundle it came in.
    public var importedFrom: String?
    /// For an upload the hub already held (by stick or an earlier upload):
    /// the stored upload it is, instead of a second copy.
    public var duplicateOf: String?

    // Filing in the PACS (`--stow-url`), for uploads whose filetype is
    // `application/dicom`. Kept in this record beside the file, so a hub
    // restart resumes where it was; see `PACSForwarder`.

    /// The file's meta header, read when it was stored.
    public var dicomSOPInstanceUID: String?
    public var dicomSOPClassUID: String?
    /// Why the hub will never file this upload (the file is not DICOM Part 10).
    public var rejected: String?
    /// When the PACS confirmed it holds the instance.
    public var filedAt: Date?
    public var pacsAttempts: Int?
    public var pacsLastError: String?
    public var pacsNextTry: Date?

    enum CodingKeys: String, CodingKey {
        case id, length, metadata, sha256, rejected
        case createdAt = "created_at", expiresAt = "expires_at", storedAs = "stored_as"
        case sha256Verified = "sha256_verified", completedAt = "completed_at", rebuiltLength = "rebuilt_length"
        case importedFrom = "imported_from", duplicateOf = "duplicate_of"
        case dicomSOPInstanceUID = "dicom_sop_instance_uid", dicomSOPClassUID = "dicom_sop_class_uid"
        case filedAt = "filed_at", pacsAttempts = "pacs_attempts", pacsLastError = "pacs_last_error"
        case pacsNextTry = "pacs_next_try"
    }

    /// The station declared the file a DICOM object.
    public var isDICOM: Bool { metadata["filetype"]?.lowercased() == "application/dicom" }
}

/// Outcome of completing an upload.
public enum CompletionResult: Sendable, Equatable {
    case stored(UploadInfo)
    /// The bytes do not hash to the declared `sha256`; the upload was discarded.
    case checksumMismatch(expected: String, actual: String)
    /// A recompressed upload whose original could not be rebuilt; discarded.
    case rebuildFailed(String)
    /// The hub already held this item (it came by stick, or by an earlier
    /// upload): the bytes were checked and dropped, and the upload now points
    /// at the stored one (`duplicateOf`), whose record is returned.
    case alreadyHeld(UploadInfo)
}

/// Outcome of filing an item that came on a stick.
public enum ImportResult: Sendable, Equatable {
    case filed(UploadInfo)
    case alreadyHeld(UploadInfo)
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

    /// The name under which the hub knows an item whichever way it came
    /// (upload or stick): its station and the station's name for it
    /// (metadata `item`). Uploads from clients that send no `item` have none.
    static func itemKey(_ metadata: [String: String]) -> String? {
        guard let station = metadata["station"], !station.isEmpty, let item = metadata["item"], !item.isEmpty else { return nil }
        return Digest.sha256Hex(Array("\(station)\n\(item)".utf8))
    }

    func markerPath(_ key: String) -> String { (directory as NSString).appendingPathComponent(".items/\(key)") }

    /// The record of the stored upload an item is held as, if its file is there.
    func held(_ metadata: [String: String]) -> UploadInfo? {
        guard let key = Self.itemKey(metadata),
              let data = FileManager.default.contents(atPath: markerPath(key)) else { return nil }
        let storedAs = String(decoding: data, as: UTF8.self)
        guard FileManager.default.fileExists(atPath: filePath(storedAs: storedAs)),
              let record = FileManager.default.contents(atPath: recordPath(storedAs)) else { return nil }
        return try? Self.decoder.decode(UploadInfo.self, from: record)
    }

    /// The stored upload an item is held as (nil: not held), for a creation request.
    public func heldItem(_ metadata: [String: String]) async -> UploadInfo? {
        await Blocking.run { self.held(metadata) }
    }

    /// Records that an item is stored as `storedAs` (flushed before the file
    /// takes its name, so a crash can leave a marker without a file, which
    /// counts as not held, but never a file without its marker).
    func mark(_ metadata: [String: String], storedAs: String) throws(HubError) {
        guard let key = Self.itemKey(metadata) else { return }
        mkdir((directory as NSString).appendingPathComponent(".items"), 0o755)
        do { try DurableFile.write(Array(storedAs.utf8), to: markerPath(key)) } catch { throw HubError.durable(error) }
    }

    /// Serialises "is it held? store it" between the server and an import
    /// running beside it (`flock` on `DIR/.store.lock`).
    func withStoreLock<T>(_ body: () throws(HubError) -> T) throws(HubError) -> T {
        let path = (directory as NSString).appendingPathComponent(".store.lock")
        let fd = try Self.call("open", path) { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        defer { close(fd) }
        try Self.call("flock", path) { flock(fd, LOCK_EX) }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// Files an item that came on a stick, already decrypted into `temp`
    /// (a file in the store's `.incoming`) and checked against its length and
    /// SHA-256: the same record, the same DICOM check, as an upload.
    public func fileImported(temp: String, metadata: [String: String], length: Int64, sha256: String,
                             bundle: String) async throws(HubError) -> ImportResult {
        let directory = self.directory
        return try await Blocking.run { () throws(HubError) -> ImportResult in
            try self.withStoreLock { () throws(HubError) -> ImportResult in
                if let existing = self.held(metadata) {
                    unlink(temp)
                    return .alreadyHeld(existing)
                }
                let id = Self.newID()
                let name = "\(id)-\(Self.safeName(metadata["filename"] ?? "upload"))"
                let now = Date()
                var done = UploadInfo(id: id, length: length, metadata: metadata, createdAt: now, expiresAt: now)
                done.storedAs = name
                done.sha256 = sha256
                done.sha256Verified = metadata["sha256"]?.lowercased() == sha256
                done.completedAt = now
                done.importedFrom = bundle
                Self.checkDICOM(&done, path: temp)
                try self.mark(metadata, storedAs: name)
                let final = (directory as NSString).appendingPathComponent(name)
                try Self.call("rename", temp) { rename(temp, final) }
                try Self.writeJSON(done, to: final + ".json")
                return .filed(done)
            }
        }
    }

    /// A DICOM upload's meta header, read once: a file that is not DICOM
    /// will never be filed, and its receipt says so instead of "pending".
    static func checkDICOM(_ done: inout UploadInfo, path: String) {
        guard done.isDICOM else { return }
        switch DicomPart10.read(path: path) {
        case let .success(meta):
            done.dicomSOPInstanceUID = meta.sopInstanceUID
            done.dicomSOPClassUID = meta.sopClassUID
        case let .failure(invalid):
            done.rejected = "the upload's filetype is application/dicom but \(invalid)"
        }
    }

    func partPath(_ id: String) -> String { (incoming as NSString).appendingPathComponent("\(id).part") }
    func infoPath(_ id: String) -> String { (incoming as NSString).appendingPathComponent("\(id).json") }

    /// A new upload id: 16 random bytes in lower-case hex.
    static func newID() -> String {
        (0..<16).map { _ in UInt8.random(in: 0...255) }.hex
    }

    static func isValidID(_ id: String) -> Bool {
        id.count == 32 && id.allSatisfy { $0.isHexDigit && ($0.isNumber || $0.isLowercase) }
    }

    public func create(length: Int64, metadata: [String: String], expiresIn: Double) async throws(HubError) -> UploadInfo {
        let id = Self.newID()
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

    /// An upload created for an item the hub already holds: complete from the
    /// start, pointing at the stored one (no bytes are sent or kept twice).
    public func createHeld(length: Int64, metadata: [String: String], held: UploadInfo,
                           expiresIn: Double) async throws(HubError) -> UploadInfo {
        let now = Date()
        var info = UploadInfo(id: Self.newID(), length: length, metadata: metadata, createdAt: now, expiresAt: now.addingTimeInterval(expiresIn))
        info.storedAs = held.storedAs
        info.sha256 = held.sha256
        info.sha256Verified = held.sha256Verified
        info.completedAt = now
        info.duplicateOf = held.id
        let infoFile = infoPath(info.id)
        let done = info
        try await Blocking.run { () throws(HubError) in try Self.writeJSON(done, to: infoFile) }
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
            let name = "\(info.id)-\(Self.safeName(info.metadata["filename"] ?? "upload"))"
            let final = (directory as NSString).appendingPathComponent(name)
            // A recompressed upload becomes the original file first; the
            // checks below then see the file the station declared.
            let recompressed = Rebuild.isRecompressed(info.metadata)
            var stored = part
            var rebuiltLength: Int64?
            let actual: String
            if recompressed {
                switch try Rebuild.run(part: part, metadata: info.metadata, destination: final) {
                case let .refused(reason):
                    unlink(part)
                    unlink(infoFile)
                    return .rebuildFailed(reason)
                case let .rebuilt(sha256, length):
                    // Hashed from the bytes just written: no second read.
                    stored = final
                    rebuiltLength = length
                    actual = sha256
                }
            } else {
                actual = try Self.sha256(of: part)
            }
            let declared = info.metadata["sha256"]?.lowercased()
            if let declared, declared != actual {
                unlink(part)
                unlink(infoFile)
                if recompressed { unlink(final) }
                return .checksumMismatch(expected: declared, actual: actual)
            }
            return try self.withStoreLock { () throws(HubError) -> CompletionResult in
                if let existing = self.held(info.metadata) {
                    // Held already (it came by stick while this upload was on
                    // the wire): one copy only; this upload points at it.
                    unlink(part)
                    if recompressed { unlink(final) }
                    var alias = info
                    alias.storedAs = existing.storedAs
                    alias.sha256 = actual
                    alias.sha256Verified = declared != nil
                    alias.completedAt = Date()
                    alias.duplicateOf = existing.id
                    try Self.writeJSON(alias, to: infoFile)
                    return .alreadyHeld(existing)
                }
                var done = info
                done.storedAs = name
                done.rebuiltLength = rebuiltLength
                done.sha256 = actual
                done.sha256Verified = declared != nil
                done.completedAt = Date()
                Self.checkDICOM(&done, path: stored)
                try self.mark(info.metadata, storedAs: name)
                if recompressed {
                    try Self.call("unlink", part) { unlink(part) }
                } else {
                    try Self.call("rename", part) { rename(part, final) }
                }
                try Self.writeJSON(done, to: final + ".json")
                try Self.writeJSON(done, to: infoFile)
                return .stored(done)
            }
        }
    }

    /// The path of a stored upload's record (its JSON beside the file).
    func recordPath(_ storedAs: String) -> String {
        (directory as NSString).appendingPathComponent(storedAs + ".json")
    }

    /// A stored upload's record, read from beside the file: after completion
    /// it is the authority (the copy in `.incoming` may be older).
    public func record(storedAs: String) async throws(HubError) -> UploadInfo? {
        let path = recordPath(storedAs)
        return try await Blocking.run { () throws(HubError) -> UploadInfo? in
            guard let data = FileManager.default.contents(atPath: path) else { return nil }
            do { return try Self.decoder.decode(UploadInfo.self, from: data) } catch {
                throw HubError(.storage, "\(path) is not valid upload info: \(error)")
            }
        }
    }

    /// Changes a stored upload's record: beside the file first (the
    /// authority), then the copy in `.incoming` when it is still there.
    public func update(storedAs: String, _ change: @escaping @Sendable (inout UploadInfo) -> Void) async throws(HubError) -> UploadInfo {
        let path = recordPath(storedAs)
        let incoming = self.incoming
        return try await Blocking.run { () throws(HubError) -> UploadInfo in
            guard let data = FileManager.default.contents(atPath: path) else {
                throw HubError(.storage, "the record \(path) is gone", nextStep: "do not remove files from the store by hand")
            }
            var info: UploadInfo
            do { info = try Self.decoder.decode(UploadInfo.self, from: data) } catch {
                throw HubError(.storage, "\(path) is not valid upload info: \(error)")
            }
            change(&info)
            try Self.writeJSON(info, to: path)
            let copy = (incoming as NSString).appendingPathComponent("\(info.id).json")
            if FileManager.default.fileExists(atPath: copy) { try Self.writeJSON(info, to: copy) }
            return info
        }
    }

    /// Every stored (complete) upload's record, from the JSON beside each
    /// file. Names are checked against the record so that an uploaded file
    /// that happens to end in `.json` is not taken for one.
    public func records() async throws(HubError) -> [UploadInfo] {
        let directory = self.directory
        return try await Blocking.run { () throws(HubError) -> [UploadInfo] in
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            var out: [UploadInfo] = []
            for name in names where name.hasSuffix(".json") && Self.isValidID(String(name.prefix(32))) {
                let path = (directory as NSString).appendingPathComponent(name)
                guard let data = FileManager.default.contents(atPath: path),
                      let info = try? Self.decoder.decode(UploadInfo.self, from: data),
                      let storedAs = info.storedAs, storedAs + ".json" == name, name.hasPrefix(info.id + "-"),
                      FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(storedAs))
                else { continue }
                out.append(info)
            }
            return out
        }
    }

    /// How many uploads are still arriving.
    public func incomingCount() async -> Int {
        let incoming = self.incoming
        return await Blocking.run { () -> Int in
            ((try? FileManager.default.contentsOfDirectory(atPath: incoming)) ?? []).filter { $0.hasSuffix(".part") }.count
        }
    }

    /// The path of a stored upload's file.
    public func filePath(storedAs: String) -> String { (directory as NSString).appendingPathComponent(storedAs) }

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
