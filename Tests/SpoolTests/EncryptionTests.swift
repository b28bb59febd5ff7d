import Crypto
import Foundation
import GRDB
import Testing
@testable import Spool

#if canImport(Glibc)
import Glibc
#endif

/// At-rest encryption on real files: the format, random access, tampering,
/// keys, migration of a plaintext spool and key destruction on removal.
@Suite struct EncryptionTests {
    static let segment = Int(EncryptedHeader.defaultSegmentSize)

    /// Writes `data` the way the spool does, sealed under `key`, and returns the path.
    func sealed(_ s: Scratch, _ data: Data, key: SpoolKey, uid: UUID = UUID(), kind: ItemKind = .image) throws -> String {
        try FileManager.default.createDirectory(atPath: s.spoolDir, withIntermediateDirectories: true)
        let name = uid.uuidString.lowercased() + (kind == .preview ? ".preview.jpg" : ".jpg")
        let sealer = try SegmentSealer(masterKey: key.key, uid: uid, kind: kind, plaintextLength: Int64(data.count))
        let r = try FileOps.writeFile(.data(data), directory: s.spoolDir, name: name, sealer: sealer, checkpoint: { _ in })
        #expect(r.sha256 == sha256Hex(data) && r.size == Int64(data.count), "hash and size are the plaintext's")
        return s.spoolDir + "/" + name
    }

    func key(_ s: Scratch) throws -> SpoolKey {
        guard case let .encrypted(k) = s.protection else { throw SpoolError(.encryptionKey, "no key") }
        return k
    }

    @Test(arguments: [0, 1, 1000, segment - 1, segment, segment + 1, 2 * segment, 3 * segment + 17, (1 << 20) + 5])
    func roundTripAtEverySizeAndRandomOffsets(size: Int) throws {
        let s = Scratch("roundTrip\(size)")
        defer { s.cleanUp() }
        let k = try key(s)
        let data = bytes(size, seed: UInt8(truncatingIfNeeded: size))
        let path = try sealed(s, data, key: k)
        let raw = try #require(FileManager.default.contents(atPath: path))
        let segments = max(1, (size + Self.segment - 1) / Self.segment)
        #expect(raw.count == EncryptedHeader.size + size + 16 * segments, "header + plaintext + one tag per segment")
        #expect(raw.starts(with: Array("TSENC".utf8)))
        if size >= 64 {
            // No 64-byte run of the plaintext appears in the file.
            let probe = data[(size / 2 - 32)..<(size / 2 + 32)]
            #expect(raw.range(of: probe) == nil, "plaintext visible in the encrypted file")
        }

        let reader = try SpoolFileReader(path: path, kind: .image, expectedSize: Int64(size), protection: s.protection)
        #expect(reader.isEncrypted && reader.size == Int64(size))
        #expect(try reader.readAll() == data)
        #expect(try reader.sha256() == sha256Hex(data))
        var g = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let offset = Int.random(in: 0...size, using: &g)
            let count = Int.random(in: 0...(3 * Self.segment), using: &g)
            let got = try reader.read(at: Int64(offset), count: count)
            #expect(Data(got) == data[offset..<min(size, offset + count)], "read of \(count) at \(offset)")
        }
        // Reads that end exactly on, or start exactly at, a segment boundary.
        for b in stride(from: 0, through: size, by: Self.segment) {
            #expect(Data(try reader.read(at: Int64(b), count: 7)) == data[b..<min(size, b + 7)])
            if b >= 3 { #expect(Data(try reader.read(at: Int64(b - 3), count: 3)) == data[(b - 3)..<b]) }
        }
        #expect(throws: SpoolError.self) { try reader.read(at: Int64(size) + 1, count: 1) }
    }

    @Test func enqueuedFilesAreEncryptedAndReadBackThroughTheSpool() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        let image = bytes(300_000, seed: 5)
        let preview = bytes(5_000, seed: 6)
        let r = try spool.enqueue(imageData: image, preview: preview, metadata: meta())
        for (id, data, kind) in [(r.imageID, image, ItemKind.image), (try #require(r.previewID), preview, .preview)] {
            let item = try #require(try spool.item(id: id))
            let raw = try #require(FileManager.default.contents(atPath: item.filePath))
            let header = try EncryptedHeader.decode(Array(raw.prefix(EncryptedHeader.size)), path: item.filePath)
            #expect(header.kind == kind && header.plaintextLength == Int64(data.count))
            #expect(header.uid == SpoolFileReader.uid(ofFile: item.filePath), "the header names the item's file")
            #expect(raw.range(of: data[1000..<1064]) == nil)
            #expect(try spool.openFile(item).readAll() == data)
        }
        let check = try spool.integrityCheck(verifyHashes: true)
        #expect(check.isHealthy && check.plaintextFiles.isEmpty)
    }

    // MARK: tampering

    @Test func flippedByteTruncationAndReorderedSegmentsAreDetected() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let k = try key(s)
        let data = bytes(3 * Self.segment + 100)
        let path = try sealed(s, data, key: k)
        let original = try #require(FileManager.default.contents(atPath: path))
        func open() throws(SpoolError) -> SpoolFileReader {
            try SpoolFileReader(path: path, kind: .image, expectedSize: Int64(data.count), protection: s.protection)
        }
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch { return (error as? SpoolError).map { "\($0.code) \($0.message)" } ?? "\(error)" }
        }

        // A flipped byte in segment 2: the header opens, that segment fails, the others still read.
        var flipped = original
        flipped[EncryptedHeader.size + 2 * (Self.segment + 16) + 5] ^= 0x01
        try flipped.write(to: URL(fileURLWithPath: path))
        let reader = try open()
        #expect(Data(try reader.read(at: 0, count: 10)) == data[0..<10])
        let m = message { _ = try reader.read(at: Int64(2 * Self.segment), count: 10) }
        #expect(m.hasPrefix("integrity") && m.contains("failed authentication at segment 2"), "\(m)")
        #expect(message { _ = try reader.sha256() }.contains("segment 2"))

        // Truncated by a few bytes, or by whole segments: refused at open.
        try original.prefix(original.count - 5).write(to: URL(fileURLWithPath: path))
        #expect(message { _ = try open() }.contains("truncated"))
        try original.prefix(EncryptedHeader.size + Self.segment + 16).write(to: URL(fileURLWithPath: path))
        #expect(message { _ = try open() }.contains("truncated"))

        // Segments 0 and 1 swapped: same size, each fails where it now stands.
        let a = EncryptedHeader.size, n = Self.segment + 16
        var swapped = original
        swapped.replaceSubrange(a..<(a + n), with: original[(a + n)..<(a + 2 * n)])
        swapped.replaceSubrange((a + n)..<(a + 2 * n), with: original[a..<(a + n)])
        try swapped.write(to: URL(fileURLWithPath: path))
        #expect(message { _ = try open().read(at: 0, count: 1) }.contains("segment 0"))

        // A header field changed (the plaintext length), with the file cut to match: the data key no longer unwraps.
        var shorter = original.prefix(EncryptedHeader.size + 3 * n)  // drop the last segment
        shorter[35] = UInt8(truncatingIfNeeded: 3 * Self.segment)  // low byte of the length
        shorter[34] = UInt8(truncatingIfNeeded: (3 * Self.segment) >> 8)
        shorter[33] = UInt8(truncatingIfNeeded: (3 * Self.segment) >> 16)
        try shorter.write(to: URL(fileURLWithPath: path))
        let m2 = message {
            _ = try SpoolFileReader(path: path, kind: .image, expectedSize: nil, protection: s.protection)
        }
        #expect(m2.contains("cannot be decrypted"), "\(m2)")
    }

    @Test func filesSwappedBetweenItemsAndAWrongKeyAreRefused() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        let a = try spool.enqueue(imageData: bytes(2000, seed: 1), preview: nil, metadata: meta("C-A"))
        let b = try spool.enqueue(imageData: bytes(2000, seed: 2), preview: nil, metadata: meta("C-B"))
        let ia = try #require(try spool.item(id: a.imageID)), ib = try #require(try spool.item(id: b.imageID))
        // Same size, both sealed under the station's key: only the header's uid tells them apart.
        let fm = FileManager.default
        try fm.moveItem(atPath: ia.filePath, toPath: s.root + "/a")
        try fm.moveItem(atPath: ib.filePath, toPath: ia.filePath)
        try fm.moveItem(atPath: s.root + "/a", toPath: ib.filePath)
        for item in [ia, ib] {
            #expect { try spool.openFile(item) } throws: { e in
                let e = e as! SpoolError
                return e.code == .integrity && e.message.contains("another item")
            }
        }
        #expect(try spool.integrityCheck().mismatchedFiles == [ia.id, ib.id])
        try fm.moveItem(atPath: ia.filePath, toPath: s.root + "/a")
        try fm.moveItem(atPath: ib.filePath, toPath: ia.filePath)
        try fm.moveItem(atPath: s.root + "/a", toPath: ib.filePath)

        // Another station's key (or a replaced key file): nothing decrypts.
        writeKey(s.root + "/other.key")
        guard case let .found(other) = SpoolKey.lookup(keyFile: s.root + "/other.key", environment: [:]) else {
            Issue.record("other key unusable"); return
        }
        let wrong = try s.open(protection: .encrypted(other))
        #expect { try wrong.openFile(ia) } throws: { e in
            let e = e as! SpoolError
            return e.code == .integrity && e.message.contains("cannot be decrypted with this station's spool key")
        }
        #expect(try wrong.integrityCheck(verifyHashes: true).mismatchedFiles == [ia.id, ib.id])
        // Without any key: the queue reads, the images do not, and nothing is stored.
        let noKey = SpoolError(.encryptionKey, "no spool key at /nowhere")
        let locked = try s.open(protection: .locked(reason: noKey))
        #expect(try locked.status().pending.count == 2)
        #expect(throws: SpoolError.self) { try locked.openFile(ia) }
        #expect { try locked.enqueue(imageData: bytes(10), preview: nil, metadata: meta()) } throws: { e in
            (e as! SpoolError).code == .encryptionKey
        }
        let check = try locked.integrityCheck(verifyHashes: true)
        #expect(check.isHealthy && check.unverifiedFiles == [ia.id, ib.id], "headers checked, contents left for a process with the key")
    }

    // MARK: keys

    @Test func keyLookupAndTheDecisionWithoutAKey() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        func unusable(_ l: SpoolKey.Lookup) -> String? {
            if case let .unusable(e) = l { return e.description }
            return nil
        }
        if case let .found(k) = SpoolKey.lookup(keyFile: s.keyPath, environment: [:]) { #expect(k.source == s.keyPath) }
        else { Issue.record("the scratch key was not found") }

        // systemd's credential comes first.
        let creds = s.root + "/creds"
        try FileManager.default.createDirectory(atPath: creds, withIntermediateDirectories: true)
        writeKey(creds + "/spool.key")
        if case let .found(k) = SpoolKey.lookup(keyFile: s.keyPath, environment: ["CREDENTIALS_DIRECTORY": creds]) {
            #expect(k.source == creds + "/spool.key")
        } else { Issue.record("credential not used") }

        let open = s.root + "/open.key"
        writeKey(open)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: open)
        #expect(unusable(SpoolKey.lookup(keyFile: open, environment: [:]))?.contains("chmod 600 \(open)") == true)
        let short = s.root + "/short.key"
        FileManager.default.createFile(atPath: short, contents: Data(count: 16), attributes: [.posixPermissions: 0o600])
        #expect(unusable(SpoolKey.lookup(keyFile: short, environment: [:]))?.contains("16 bytes, not 32") == true)

        let missing = SpoolKey.lookup(keyFile: s.root + "/none.key", environment: [:])
        // Storing without a key is refused with the command that creates one…
        #expect { try SpoolProtection.decide(missing, allowPlaintext: false, purpose: .store) } throws: { e in
            let e = e as! SpoolError
            return e.code == .encryptionKey && e.nextStep?.contains("head -c 32 /dev/urandom > \(s.root)/none.key") == true
        }
        // …inspecting works without one…
        if case .locked = try SpoolProtection.decide(missing, allowPlaintext: false, purpose: .inspect) {} else { Issue.record("expected locked") }
        // …plaintext only when explicitly allowed, and never because a key file is broken.
        if case .plaintext = try SpoolProtection.decide(missing, allowPlaintext: true, purpose: .store) {} else { Issue.record("expected plaintext") }
        #expect(throws: SpoolError.self) {
            try SpoolProtection.decide(SpoolKey.lookup(keyFile: short, environment: [:]), allowPlaintext: true, purpose: .store)
        }
    }

    // MARK: key destruction

    /// Retention deletes an uploaded item's file after overwriting its sealed
    /// data key in place: a copy of the file's blocks (here: the same inode,
    /// still open) holds ciphertext no key can open, not even the master key.
    @Test func removalDestroysTheDataKeyInPlace() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open(keepUploaded: 0)
        let image = bytes(200_000, seed: 7)
        let r = try spool.enqueue(imageData: image, preview: nil, metadata: meta())
        let item = try #require(try spool.claimNext(owner: "t", leaseSeconds: 60))
        try spool.markUploaded(id: item.id, owner: "t")
        let fd = open(item.filePath, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        let before = try SpoolFileReader.pread(fd, item.filePath, count: EncryptedHeader.size, at: 0)
        #expect(before[EncryptedHeader.keyRange].contains { $0 != 0 })

        #expect(try spool.runRetention(now: Date().addingTimeInterval(10)).deletedIDs == [r.imageID])
        #expect(!FileManager.default.fileExists(atPath: item.filePath))
        let after = try SpoolFileReader.pread(fd, item.filePath, count: EncryptedHeader.size + 32, at: 0)
        #expect(after[EncryptedHeader.keyRange].allSatisfy { $0 == 0 }, "the sealed data key is overwritten")
        #expect(Array(after[0..<EncryptedHeader.authenticatedSize]) == Array(before[0..<EncryptedHeader.authenticatedSize]))
        // The leftover ciphertext, with the master key at hand, does not open.
        let copy = s.root + "/leftover"
        var rest = [UInt8]()
        var offset: Int64 = 0
        while true {
            let piece = try SpoolFileReader.pread(fd, copy, count: 1 << 16, at: offset)
            if piece.isEmpty { break }
            rest += piece
            offset += Int64(piece.count)
        }
        FileManager.default.createFile(atPath: s.spoolDir + "/" + (item.filePath as NSString).lastPathComponent, contents: Data(rest))
        #expect { try SpoolFileReader(path: item.filePath, kind: .image, expectedSize: nil, protection: s.protection) } throws: { e in
            (e as! SpoolError).message.contains("data key was destroyed")
        }
        // No key material in the queue database either: keys live only in file headers.
        for file in [s.dbPath, s.dbPath + "-wal"] {
            let dbBytes = (try? Data(contentsOf: URL(fileURLWithPath: file))) ?? Data()
            #expect(dbBytes.range(of: Data(before[EncryptedHeader.keyRange])) == nil, "\(file) holds the sealed key")
        }
    }

    // MARK: migration

    @Test func plaintextSpoolIsEncryptedAtOpenWithTheKey() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        var expected: [Int64: String] = [:]
        do {
            let plain = try s.open(protection: .plaintext)
            for i in 0..<4 {
                let data = bytes(50_000 + i * 70_000, seed: UInt8(i))
                let r = try plain.enqueue(imageData: data, preview: bytes(900, seed: UInt8(100 + i)), metadata: meta("C\(i)"))
                expected[r.imageID] = sha256Hex(data)
                expected[try #require(r.previewID)] = sha256Hex(bytes(900, seed: UInt8(100 + i)))
            }
            let up = try #require(try plain.claimNext(owner: "t", leaseSeconds: 60))
            try plain.markUploaded(id: up.id, owner: "t")
            #expect(try plain.integrityCheck().plaintextFiles.count == 8)
        }
        // Opening to inspect changes nothing.
        let inspected = try Spool(directory: s.spoolDir, databasePath: s.dbPath, minFree: 0, keepUploaded: 86400,
                                  protection: s.protection, encryptPlaintext: false, logger: .init(label: "t"), checkpoint: { _ in })
        #expect(inspected.migratedAtOpen.encrypted.isEmpty)
        #expect(try inspected.integrityCheck().plaintextFiles.count == 8)

        let spool = try s.open()
        #expect(Set(spool.migratedAtOpen.encrypted) == Set(expected.keys) && spool.migratedAtOpen.failed.isEmpty)
        for item in try spool.allItems() {
            let raw = try #require(FileManager.default.contents(atPath: item.filePath))
            #expect(EncryptedHeader.isEncrypted(raw), "item \(item.id) still in plaintext")
            #expect(plainSHA(spool, item) == expected[item.id])
        }
        let check = try spool.integrityCheck(verifyHashes: true)
        #expect(check.isHealthy && check.plaintextFiles.isEmpty)
        #expect(!s.files().contains { $0.hasPrefix(".tmp-") })
        #expect(try s.open().migratedAtOpen.encrypted.isEmpty, "a second open has nothing to do")
    }

    @Test func migrationLeavesAFileThatNoLongerMatchesItsRow() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let id: Int64
        do {
            let plain = try s.open(protection: .plaintext)
            id = try plain.enqueue(imageData: bytes(5000), preview: nil, metadata: meta()).imageID
            let path = try #require(try plain.item(id: id)).filePath
            var data = try Data(contentsOf: URL(fileURLWithPath: path))
            data[100] ^= 0xFF
            try data.write(to: URL(fileURLWithPath: path))
        }
        let spool = try s.open()
        #expect(spool.migratedAtOpen.encrypted.isEmpty)
        #expect(spool.migratedAtOpen.failed[id]?.contains("sha256") == true, "a damaged file is not sealed as if it were good")
        #expect(try spool.integrityCheck(verifyHashes: true).mismatchedFiles == [id])
    }
}
