import Basics
@preconcurrency import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A bundle: the items a station could not send, carried on a stick.
///
/// On the stick, under `telestation/`:
///
///     STATION-YYYYMMDD-HHMMSS-XXXXXX/
///       manifest.json   station, time, counts, the HPKE encapsulated key, and
///                       each file's length and SHA-256 (in the clear: no patient data)
///       manifest.sig    the station's Ed25519 signature of manifest.json
///       contents.enc    each item's upload metadata, length and SHA-256 (sealed)
///       items/0001.enc  each item's bytes (sealed)
///       receipts.json   written by the hub's import, signed by the hub
///       receipts.sig
///
/// The sealing key comes from HPKE (RFC 9180, DHKEM(X25519, HKDF-SHA256),
/// HKDF-SHA256, ChaCha20-Poly1305) to the hub's public key: only the hub's
/// private key opens a bundle. Each file is sealed in segments of
/// `segmentSize` bytes with ChaCha20-Poly1305 under a key derived for that
/// file name; a segment's nonce is its number and whether it is the last, so
/// a file cut short, reordered or swapped for another fails to open.
///
/// A bundle is written into `.partial-NAME/` and renamed to `NAME/` only
/// after every file and the signed manifest are flushed to the stick, so a
/// stick pulled mid-write holds either a complete bundle or a `.partial-`
/// directory the importer names and skips; a bundle whose files do not match
/// the signed manifest (a damaged stick) is refused as a whole.
public enum StickBundle {
    public static let directoryName = "telestation"
    public static let partialPrefix = ".partial-"
    public static let format = "telestation-bundle 1"
    public static let segmentSize = 1 << 20
    static let info = Data("telestation bundle v1".utf8)
    static var suite: HPKE.Ciphersuite { .Curve25519_SHA256_ChachaPoly }

    /// One file in the bundle, as the signed manifest lists it.
    public struct FileEntry: Codable, Sendable, Equatable {
        public var name: String
        public var length: Int64
        public var sha256: String
    }

    /// The signed, readable part.
    public struct Manifest: Codable, Sendable, Equatable {
        public var format: String
        public var bundle: String
        public var station: String
        public var stationKey: String
        public var createdAt: String
        public var hubKey: String
        public var encapsulatedKey: String
        public var items: Int
        /// Bytes of the items themselves (before sealing).
        public var itemBytes: Int64
        public var files: [FileEntry]

        enum CodingKeys: String, CodingKey {
            case format, bundle, station, items, files
            case stationKey = "station_key", createdAt = "created_at", hubKey = "hub_key"
            case encapsulatedKey = "encapsulated_key", itemBytes = "item_bytes"
        }
    }

    /// One item, as the sealed contents list it.
    public struct Item: Codable, Sendable, Equatable {
        /// The station's name for the item (unique on that station).
        public var item: String
        public var file: String
        public var length: Int64
        public var sha256: String
        /// The tus `Upload-Metadata` the upload would have carried, in order.
        public var metadata: [[String]]

        public var metadataDictionary: [String: String] {
            var d: [String: String] = [:]
            for pair in metadata where pair.count == 2 { d[pair[0]] = pair[1] }
            return d
        }
    }

    struct Contents: Codable {
        var items: [Item]
    }

    /// A detached signature file (`manifest.sig`, `receipts.sig`): one line
    /// of base64. nil when it is missing or not base64.
    static func readSignature(_ path: String) -> Data? {
        guard let text = FileManager.default.contents(atPath: path) else { return nil }
        return Data(base64Encoded: String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Derives the key of one file of the bundle from the bundle's secret.
    static func fileKey(_ secret: SymmetricKey, _ name: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: secret, info: Data("file \(name)".utf8), outputByteCount: 32)
    }

    static func nonce(_ index: UInt64, last: Bool) -> ChaChaPoly.Nonce {
        var bytes = [UInt8](repeating: 0, count: 12)
        for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: index >> (56 - 8 * UInt64(i))) }
        bytes[8] = last ? 1 : 0
        return try! ChaChaPoly.Nonce(data: bytes)
    }

    static func isoNow(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }()

    /// The bundles on a stick (`ROOT/telestation/*`): complete ones, and the
    /// names of unfinished ones (`.partial-*`).
    public static func list(root: String) -> (complete: [String], unfinished: [String]) {
        let dir = (root as NSString).appendingPathComponent(directoryName)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
        var complete: [String] = [], unfinished: [String] = []
        for name in names {
            var isDir: ObjCBool = false
            let path = (dir as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else { continue }
            if name.hasPrefix(partialPrefix) { unfinished.append(path) } else if !name.hasPrefix(".") { complete.append(path) }
        }
        return (complete, unfinished)
    }
}

/// What a station puts in a bundle: one item, read in pieces.
public struct BundleItemSource: Sendable {
    public var item: String
    public var metadata: [(String, String)]
    public var length: Int64
    public var sha256: String
    /// Reads `count` bytes at `offset` of the item as it would be uploaded.
    public var read: @Sendable (_ offset: Int64, _ count: Int) throws -> [UInt8]

    public init(item: String, metadata: [(String, String)], length: Int64, sha256: String,
                read: @escaping @Sendable (Int64, Int) throws -> [UInt8]) {
        self.item = item
        self.metadata = metadata
        self.length = length
        self.sha256 = sha256
        self.read = read
    }
}

/// Writes a bundle onto a stick.
public struct BundleWriter: Sendable {
    public let station: String
    public let stationKey: StationSigningKey
    public let hubKeys: HubPublicKeys

    public init(station: String, stationKey: StationSigningKey, hubKeys: HubPublicKeys) {
        self.station = station
        self.stationKey = stationKey
        self.hubKeys = hubKeys
    }

    public struct Written: Sendable, Equatable {
        public var path: String
        public var items: Int
        public var itemBytes: Int64
        /// Bytes written to the stick (sealed files and the manifest).
        public var bundleBytes: Int64
    }

    /// Writes `items` under `ROOT/telestation/`. `progress` is called after each item.
    public func write(_ items: [BundleItemSource], root: String, now: Date = Date(),
                      progress: (Int) -> Void = { _ in }) throws(SneakernetError) -> Written {
        guard !items.isEmpty else {
            throw SneakernetError(.refused, "nothing to export: every item has reached the hub")
        }
        let top = (root as NSString).appendingPathComponent(StickBundle.directoryName)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw SneakernetError(.io, "\(root) is not a directory", nextStep: "give the directory where the stick is mounted (e.g. /media/usb)")
        }
        try makeDirectory(top)
        let stamp: String = {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "UTC")
            f.dateFormat = "yyyyMMdd-HHmmss"
            return f.string(from: now)
        }()
        var random = [UInt8](repeating: 0, count: 3)
        for i in random.indices { random[i] = UInt8.random(in: 0...255) }
        let safeStation = String(station.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }.prefix(40))
        let name = "\(safeStation)-\(stamp)-\(random.hex)"
        let partial = (top as NSString).appendingPathComponent(StickBundle.partialPrefix + name)
        let final = (top as NSString).appendingPathComponent(name)
        try makeDirectory(partial)
        try makeDirectory((partial as NSString).appendingPathComponent("items"))

        let sender: HPKE.Sender
        let secret: SymmetricKey
        do {
            sender = try HPKE.Sender(recipientKey: hubKeys.hpke, ciphersuite: StickBundle.suite, info: StickBundle.info)
            secret = try sender.exportSecret(context: Data(name.utf8), outputByteCount: 32)
        } catch {
            throw SneakernetError(.key, "cannot seal for the hub's key: \(error)")
        }
        var files: [StickBundle.FileEntry] = []
        var listed: [StickBundle.Item] = []
        var total: Int64 = 0
        var written: Int64 = 0
        for (index, source) in items.enumerated() {
            let fileName = String(format: "items/%04d.enc", index + 1)
            let entry = try sealFile(fileName, in: partial, secret: secret, length: source.length) { offset, count throws(SneakernetError) in
                do { return try source.read(offset, count) } catch {
                    throw SneakernetError(.io, "cannot read item \(source.item): \(error)",
                                          nextStep: "run `telestation status`; an item whose file is damaged is held for a technician")
                }
            }
            files.append(entry)
            written += entry.length
            listed.append(StickBundle.Item(item: source.item, file: fileName, length: source.length, sha256: source.sha256,
                                      metadata: source.metadata.map { [$0.0, $0.1] }))
            total += source.length
            progress(index + 1)
        }
        let contents = (try? StickBundle.encoder.encode(StickBundle.Contents(items: listed))) ?? Data()
        let contentsEntry = try sealFile("contents.enc", in: partial, secret: secret, length: Int64(contents.count)) { offset, count in
            Array(contents[Int(offset)..<Int(offset) + count])
        }
        files.insert(contentsEntry, at: 0)
        written += contentsEntry.length
        let manifest = StickBundle.Manifest(
            format: StickBundle.format, bundle: name, station: station, stationKey: stationKey.publicKeyBase64,
            createdAt: StickBundle.isoNow(now), hubKey: hubKeys.fingerprint,
            encapsulatedKey: sender.encapsulatedKey.base64EncodedString(), items: items.count, itemBytes: total, files: files)
        let manifestBytes = (try? StickBundle.encoder.encode(manifest)) ?? Data()
        let signature: Data
        do { signature = try stationKey.key.signature(for: manifestBytes) } catch {
            throw SneakernetError(.key, "cannot sign the manifest: \(error)")
        }
        try DurableFile.writeNew(Array(manifestBytes), to: (partial as NSString).appendingPathComponent("manifest.json"), mode: 0o644)
        try DurableFile.writeNew(Array(signature.base64EncodedString().utf8), to: (partial as NSString).appendingPathComponent("manifest.sig"), mode: 0o644)
        try? Syscall.syncDirectory((partial as NSString).appendingPathComponent("items"))
        try? Syscall.syncDirectory(partial)
        guard rename(partial, final) == 0 else { throw DurableFile.io("rename", final, errno) }
        try? Syscall.syncDirectory(top)
        return Written(path: final, items: items.count, itemBytes: total, bundleBytes: written + Int64(manifestBytes.count))
    }

    private func makeDirectory(_ path: String) throws(SneakernetError) {
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw DurableFile.io("mkdir", path, errno) }
    }

    /// Seals `length` bytes, read piece by piece, into `dir/name`; flushed.
    private func sealFile(_ name: String, in dir: String, secret: SymmetricKey, length: Int64,
                          read: (Int64, Int) throws(SneakernetError) -> [UInt8]) throws(SneakernetError) -> StickBundle.FileEntry {
        let path = (dir as NSString).appendingPathComponent(name)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DurableFile.io("open", path, errno) }
        defer { close(fd) }
        let key = StickBundle.fileKey(secret, name)
        var hasher = SHA256()
        var offset: Int64 = 0
        var index: UInt64 = 0
        var written: Int64 = 0
        repeat {
            let count = Int(min(Int64(StickBundle.segmentSize), length - offset))
            let plain = try read(offset, count)
            guard plain.count == count else {
                throw SneakernetError(.io, "an item gave \(plain.count) bytes where \(count) were expected at offset \(offset)")
            }
            offset += Int64(count)
            let last = offset >= length
            let box: ChaChaPoly.SealedBox
            do {
                box = try ChaChaPoly.seal(plain, using: key, nonce: StickBundle.nonce(index, last: last), authenticating: Data(name.utf8))
            } catch { throw SneakernetError(.key, "cannot seal \(name): \(error)") }
            let out = Array(box.ciphertext) + Array(box.tag)
            do { try Syscall.writeAll(fd, out, path: path) } catch {
                throw SneakernetError(.io, "cannot write \(path): \(error)", nextStep: "check that the stick is still plugged in and not full", cause: error)
            }
            hasher.update(data: out)
            written += Int64(out.count)
            index += 1
        } while offset < length
        guard fsync(fd) == 0 else { throw DurableFile.io("fsync", path, errno) }
        return StickBundle.FileEntry(name: name, length: written, sha256: hasher.finalize().hex)
    }
}
