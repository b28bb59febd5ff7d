import Basics
import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Format 1 of an encrypted spool file: a 104-byte header, then the image
/// in segments of `segmentSize` plaintext bytes, each sealed with AES-256-GCM
/// under the file's own random data key.
///
/// ```
///   0  "TSENC"  magic            28  plaintext length (BE64)
///   5  version (1)               36  nonce prefix (8 random bytes)
///   6  kind (1 image, 2 preview, 44  wrap nonce (12)
///           3 health report)
///   7  reserved (0)              56  data key sealed by the master key (32)
///   8  item uid (16)             88  its tag (16)
///  24  segment size (BE32)      104  segment 0: ciphertext + 16-byte tag, …
/// ```
///
/// Bytes 0..<44 are the authenticated header: they are the associated data
/// of the data key's seal and, with the segment index and a final-segment
/// flag, of every segment. A changed header, a segment moved, dropped or
/// appended, or a file renamed to another item's name all fail to open.
/// Segment i's nonce is the nonce prefix followed by i (BE32); the data key
/// is used for one file only, so nonces never repeat under a key.
/// Overwriting bytes 44..<104 destroys the data key: what remains of the
/// file cannot be decrypted, with the master key or without it.
extension ItemKind {
    /// The kind's byte in an encrypted file's header.
    var headerByte: UInt8 {
        switch self {
        case .image: 1
        case .preview: 2
        case .health: 3
        }
    }

    init?(headerByte: UInt8) {
        guard let kind = Self.allCases.first(where: { $0.headerByte == headerByte }) else { return nil }
        self = kind
    }
}

struct EncryptedHeader: Sendable, Equatable {
    static let magic: [UInt8] = Array("TSENC".utf8)
    static let version: UInt8 = 1
    static let size = 104
    static let authenticatedSize = 44
    static let keyRange = 44..<104
    static let tagSize = 16
    static let defaultSegmentSize: UInt32 = 64 * 1024

    var kind: ItemKind
    var uid: UUID
    var segmentSize: UInt32
    var plaintextLength: Int64
    var noncePrefix: [UInt8]
    /// Wrap nonce, sealed data key and tag (60 bytes); all zeros once destroyed.
    var wrappedKey: [UInt8]

    var segmentCount: Int64 {
        max(1, (plaintextLength + Int64(segmentSize) - 1) / Int64(segmentSize))
    }

    /// Size of the whole file on disk.
    var fileSize: Int64 { Int64(Self.size) + plaintextLength + segmentCount * Int64(Self.tagSize) }

    var authenticated: [UInt8] {
        var out = Self.magic
        out.append(Self.version)
        out.append(kind.headerByte)
        out.append(0)
        out += withUnsafeBytes(of: uid.uuid) { Array($0) }
        out += withUnsafeBytes(of: segmentSize.bigEndian) { Array($0) }
        out += withUnsafeBytes(of: UInt64(plaintextLength).bigEndian) { Array($0) }
        out += noncePrefix
        return out
    }

    var encoded: [UInt8] { authenticated + wrappedKey }

    static func isEncrypted(_ prefix: some Collection<UInt8>) -> Bool {
        prefix.count >= magic.count && Array(prefix.prefix(magic.count)) == magic
    }

    /// Parses a header; `path` names the file in messages.
    static func decode(_ b: [UInt8], path: String) throws(SpoolError) -> EncryptedHeader {
        guard b.count >= size, isEncrypted(b) else {
            throw SpoolError(.integrity, "\(path) is truncated: its encryption header is incomplete",
                             nextStep: Self.damagedStep)
        }
        guard b[5] == version else {
            throw SpoolError(.integrity, "\(path) is in encrypted format \(b[5]), which this version cannot read",
                             nextStep: "update telestation to the version that wrote it")
        }
        guard let kind = ItemKind(headerByte: b[6]) else {
            throw SpoolError(.integrity, "\(path) has an unknown item kind in its header", nextStep: Self.damagedStep)
        }
        func be(_ range: Range<Int>) -> UInt64 { b[range].reduce(0) { $0 << 8 | UInt64($1) } }
        let uid = UUID(uuid: (b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15],
                              b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23]))
        let segment = UInt32(be(24..<28))
        let length = be(28..<36)
        guard segment >= 1024, length < UInt64(Int64.max / 2), length / UInt64(segment) < UInt64(UInt32.max) else {
            throw SpoolError(.integrity, "\(path) has an impossible segment size or length in its header",
                             nextStep: Self.damagedStep)
        }
        return EncryptedHeader(kind: kind, uid: uid, segmentSize: segment,
                               plaintextLength: Int64(length), noncePrefix: Array(b[36..<44]),
                               wrappedKey: Array(b[44..<104]))
    }

    static let damagedStep = "the file was damaged or modified on the card; the item stays held — keep the spool for a technician and capture the image again"

    /// Associated data of segment `index`.
    func segmentAAD(_ index: Int64) -> [UInt8] {
        authenticated + withUnsafeBytes(of: UInt32(index).bigEndian) { Array($0) } + [index == segmentCount - 1 ? 1 : 0]
    }

    func segmentNonce(_ index: Int64) throws -> AES.GCM.Nonce {
        try AES.GCM.Nonce(data: noncePrefix + withUnsafeBytes(of: UInt32(index).bigEndian) { Array($0) })
    }

    /// Plaintext bytes in segment `index`.
    func plainCount(_ index: Int64) -> Int {
        Int(min(Int64(segmentSize), plaintextLength - index * Int64(segmentSize)))
    }

    func segmentOffset(_ index: Int64) -> Int64 {
        Int64(Self.size) + index * (Int64(segmentSize) + Int64(Self.tagSize))
    }
}

/// Encrypts one file's plaintext as it streams in: `add` returns the sealed
/// segments completed so far, `finish` the last one.
struct SegmentSealer {
    let header: EncryptedHeader
    private let dataKey: SymmetricKey
    private var buffer: [UInt8] = []
    private var index: Int64 = 0
    private var received: Int64 = 0

    init(masterKey: SymmetricKey, uid: UUID, kind: ItemKind, plaintextLength: Int64,
         segmentSize: UInt32 = EncryptedHeader.defaultSegmentSize) throws(SpoolError) {
        var prefix = [UInt8](repeating: 0, count: 8)
        var g = SystemRandomNumberGenerator()
        for i in prefix.indices { prefix[i] = UInt8.random(in: 0...255, using: &g) }
        var h = EncryptedHeader(kind: kind, uid: uid, segmentSize: segmentSize, plaintextLength: plaintextLength,
                                noncePrefix: prefix, wrappedKey: [])
        let dataKey = SymmetricKey(size: .bits256)
        do {
            let sealed = try AES.GCM.seal(dataKey.withUnsafeBytes { Array($0) }, using: masterKey,
                                          authenticating: h.authenticated)
            h.wrappedKey = Array(sealed.nonce) + Array(sealed.ciphertext) + Array(sealed.tag)
        } catch {
            throw SpoolError(.fileSystem, "cannot seal the file's data key: \(error)")
        }
        header = h
        self.dataKey = dataKey
        buffer.reserveCapacity(Int(segmentSize))
    }

    /// Takes plaintext; returns the bytes to write now.
    mutating func add(_ bytes: UnsafeRawBufferPointer) throws(SpoolError) -> [UInt8] {
        received += Int64(bytes.count)
        guard received <= header.plaintextLength else { throw lengthChanged() }
        var out: [UInt8] = []
        var rest = bytes[...]
        let s = Int(header.segmentSize)
        while !rest.isEmpty {
            let take = min(s - buffer.count, rest.count)
            buffer += rest.prefix(take)
            rest = rest.dropFirst(take)
            // The final segment waits for `finish`, which knows it is final.
            if buffer.count == s && index < header.segmentCount - 1 {
                out += try seal()
            }
        }
        return out
    }

    mutating func finish() throws(SpoolError) -> [UInt8] {
        guard received == header.plaintextLength, index == header.segmentCount - 1 else { throw lengthChanged() }
        return try seal()
    }

    private mutating func seal() throws(SpoolError) -> [UInt8] {
        do {
            let box = try AES.GCM.seal(buffer, using: dataKey, nonce: try header.segmentNonce(index),
                                       authenticating: header.segmentAAD(index))
            index += 1
            buffer.removeAll(keepingCapacity: true)
            return Array(box.ciphertext) + Array(box.tag)
        } catch {
            throw SpoolError(.fileSystem, "cannot encrypt segment \(index): \(error)")
        }
    }

    private func lengthChanged() -> SpoolError {
        SpoolError(.invalidInput, "the image changed size while it was being stored (expected \(header.plaintextLength) bytes, got \(received))",
                   nextStep: "wait until whatever writes it has finished, then enqueue it again")
    }
}

/// The plaintext of one spooled file, readable at any offset: an encrypted
/// file is decrypted segment by segment in memory, never written out; a
/// file from before encryption (or stored with `spool.insecure_allow_plaintext`)
/// is read as it is. Holds the file open, so a concurrent rename (migration)
/// or unlink (retention) does not change what this reader sees.
public final class SpoolFileReader: Sendable {
    public let path: String
    /// Plaintext bytes.
    public let size: Int64
    public let isEncrypted: Bool
    private let fd: Int32
    private let header: EncryptedHeader?
    // Bytes rather than a SymmetricKey, which is not Sendable.
    private let dataKey: [UInt8]?

    /// Opens `path` and checks an encrypted file's header against what the
    /// queue row says (uid from the file name, kind, size) and the file's length.
    init(path: String, kind: ItemKind, expectedSize: Int64?, protection: SpoolProtection) throws(SpoolError) {
        let fd = try FileOps.call("open", path) { open(path, O_RDONLY | O_CLOEXEC) }
        do throws(SpoolError) {
            var st = stat()
            try FileOps.call("fstat", path) { fstat(fd, &st) }
            let onDisk = Int64(st.st_size)
            let head = try Self.pread(fd, path, count: EncryptedHeader.size, at: 0)
            self.path = path
            self.fd = fd
            guard EncryptedHeader.isEncrypted(head) else {
                if let expectedSize, onDisk != expectedSize {
                    throw SpoolError(.integrity, "\(path) is \(onDisk) bytes, the queue recorded \(expectedSize)",
                                     nextStep: EncryptedHeader.damagedStep)
                }
                size = onDisk
                isEncrypted = false
                header = nil
                dataKey = nil
                return
            }
            let h = try EncryptedHeader.decode(head, path: path)
            if let uid = Self.uid(ofFile: path), uid != h.uid {
                throw SpoolError(.integrity, "\(path) holds the encrypted image of another item (uid \(h.uid.uuidString.lowercased())): files were swapped or copied",
                                 nextStep: EncryptedHeader.damagedStep)
            }
            guard h.kind == kind else {
                throw SpoolError(.integrity, "\(path) holds an encrypted \(h.kind.rawValue), but its item is a \(kind.rawValue)",
                                 nextStep: EncryptedHeader.damagedStep)
            }
            if let expectedSize, h.plaintextLength != expectedSize {
                throw SpoolError(.integrity, "\(path) says it holds \(h.plaintextLength) bytes, the queue recorded \(expectedSize)",
                                 nextStep: EncryptedHeader.damagedStep)
            }
            guard onDisk == h.fileSize else {
                throw SpoolError(.integrity, "\(path) is \(onDisk) bytes, an encrypted file of \(h.plaintextLength) bytes has \(h.fileSize): it was \(onDisk < h.fileSize ? "truncated" : "extended")",
                                 nextStep: EncryptedHeader.damagedStep)
            }
            guard h.wrappedKey.contains(where: { $0 != 0 }) else {
                throw SpoolError(.integrity, "\(path): its data key was destroyed (the image was deleted after upload)")
            }
            guard case let .encrypted(master) = protection else {
                var why = "spool encryption is off and there is no key"
                var next = "give this station its spool key back (spool.key_file)"
                if case let .locked(reason) = protection {
                    why = reason.message
                    next = reason.nextStep ?? next
                }
                throw SpoolError(.encryptionKey, "\(path) is encrypted and this process has no spool key: \(why)", nextStep: next)
            }
            let w = h.wrappedKey
            do {
                let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: w[0..<12]), ciphertext: w[12..<44], tag: w[44..<60])
                dataKey = Array(try AES.GCM.open(box, using: master.key, authenticating: h.authenticated))
            } catch {
                throw SpoolError(.integrity, "\(path) cannot be decrypted with this station's spool key (\(master.source)): the key is not the one that wrote it, or the file's header was modified",
                                 nextStep: "put back the spool key the station had when the image was queued; otherwise " + EncryptedHeader.damagedStep)
            }
            size = h.plaintextLength
            isEncrypted = true
            header = h
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    /// The item uid in a spool file name (`<uuid>.jpg`, `<uuid>.preview.jpg`).
    static func uid(ofFile path: String) -> UUID? {
        let name = (path as NSString).lastPathComponent
        guard name.count >= 36 else { return nil }
        return UUID(uuidString: String(name.prefix(36)))
    }

    /// Up to `count` plaintext bytes from `offset`; fewer only at the end.
    public func read(at offset: Int64, count: Int) throws(SpoolError) -> [UInt8] {
        guard offset >= 0, offset <= size, count >= 0 else {
            throw SpoolError(.invalidInput, "read of \(count) bytes at \(offset) is outside \(path) (\(size) bytes)")
        }
        let want = Int(min(Int64(count), size - offset))
        if want == 0 { return [] }
        guard let header, let dataKey else {
            let bytes = try Self.pread(fd, path, count: want, at: offset)
            guard bytes.count == want else {
                throw SpoolError(.integrity, "\(path) shrank while being read (expected \(size) bytes)",
                                 nextStep: EncryptedHeader.damagedStep)
            }
            return bytes
        }
        let s = Int64(header.segmentSize)
        var out: [UInt8] = []
        out.reserveCapacity(want)
        let key = SymmetricKey(data: dataKey)
        var index = offset / s
        while out.count < want {
            let plain = try segment(index, header, key)
            let start = index == offset / s ? Int(offset - index * s) : 0
            let take = min(plain.count - start, want - out.count)
            out += plain[start..<(start + take)]
            index += 1
        }
        return out
    }

    private func segment(_ index: Int64, _ h: EncryptedHeader, _ key: SymmetricKey) throws(SpoolError) -> [UInt8] {
        let count = h.plainCount(index)
        let raw = try Self.pread(fd, path, count: count + EncryptedHeader.tagSize, at: h.segmentOffset(index))
        guard raw.count == count + EncryptedHeader.tagSize else {
            throw SpoolError(.integrity, "\(path) is truncated at segment \(index)", nextStep: EncryptedHeader.damagedStep)
        }
        do {
            let box = try AES.GCM.SealedBox(nonce: h.segmentNonce(index), ciphertext: raw[0..<count], tag: raw[count...])
            return Array(try AES.GCM.open(box, using: key, authenticating: h.segmentAAD(index)))
        } catch {
            throw SpoolError(.integrity, "\(path) failed authentication at segment \(index) (bytes \(index * Int64(h.segmentSize))…): it was modified on disk",
                             nextStep: EncryptedHeader.damagedStep)
        }
    }

    /// Every plaintext byte through `body`, in pieces, authenticating each.
    func forEachPiece(_ body: ([UInt8]) throws(SpoolError) -> Void) throws(SpoolError) {
        let piece = Int(header?.segmentSize ?? EncryptedHeader.defaultSegmentSize) * 16
        var offset: Int64 = 0
        repeat {
            let bytes = try read(at: offset, count: piece)
            try body(bytes)
            offset += Int64(bytes.count)
        } while offset < size
    }

    /// Lower-case hex SHA-256 of the plaintext.
    public func sha256() throws(SpoolError) -> String {
        var hasher = SHA256()
        try forEachPiece { hasher.update(data: $0) }
        return hasher.finalize().hex
    }

    /// The whole plaintext, for small files (previews, thumbnails).
    public func readAll() throws(SpoolError) -> Data {
        Data(try read(at: 0, count: Int(size)))
    }

    static func pread(_ fd: Int32, _ path: String, count: Int, at offset: Int64) throws(SpoolError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = try FileOps.call("pread", path) {
                buffer.withUnsafeMutableBytes { raw in
                    Glibc.pread(fd, raw.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                }
            }
            if n == 0 { break }
            done += n
        }
        if done < count { buffer.removeLast(count - done) }
        return buffer
    }
}
