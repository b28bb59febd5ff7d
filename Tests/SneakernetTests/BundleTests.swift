@preconcurrency import Crypto
import Foundation
import Sneakernet
import Testing

/// Bundles written to and read from real files: what goes in comes out byte
/// for byte, and every way a stick can be damaged or tampered with is
/// refused with a message that names it, before anything is imported.
@Suite struct BundleTests {
    let root: String
    let hub = HubKeyPair()
    let station = StationSigningKey()

    init() throws {
        root = NSTemporaryDirectory() + "bundle-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    /// Bytes that do not compress or repeat (xorshift), the same for a seed.
    static func random(_ count: Int, seed: UInt64) -> [UInt8] {
        var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return UInt8(truncatingIfNeeded: x >> 24)
        }
    }

    static func source(_ name: String, _ bytes: [UInt8]) -> BundleItemSource {
        BundleItemSource(item: name, metadata: [("filename", "\(name).jpg"), ("station", "posta-1"), ("case", "DNI-12345678")],
                         length: Int64(bytes.count), sha256: SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()) { o, c in
            Array(bytes[Int(o)..<Int(o) + c])
        }
    }

    /// Three items: one larger than a sealed segment (1 MiB), one empty, one small.
    let payloads: [(String, [UInt8])] = [("a", Self.random(2_500_000, seed: 1)), ("b", []), ("c", Self.random(4_000, seed: 3))]

    func write(_ items: [(String, [UInt8])]? = nil, for keys: HubPublicKeys? = nil) throws -> BundleWriter.Written {
        let writer = BundleWriter(station: "posta-1", stationKey: station, hubKeys: keys ?? hub.publicKeys)
        return try writer.write((items ?? payloads).map { Self.source($0.0, $0.1) }, root: root)
    }

    func open(_ path: String, hubKeys: HubKeyPair? = nil, stationKey: String? = nil) throws -> BundleReader {
        try BundleReader(path: path, hubKeys: hubKeys ?? hub) { _ in .success(stationKey ?? station.publicKeyBase64) }
    }

    func expectRefused(_ path: String, hubKeys: HubKeyPair? = nil, stationKey: String? = nil, mentioning: String) {
        do {
            let reader = try open(path, hubKeys: hubKeys, stationKey: stationKey)
            // A bundle that opens must still fail when an item is read back.
            for item in reader.items { try reader.extract(item, to: root + "/out-\(UUID().uuidString)") }
            Issue.record("the bundle was accepted; expected a refusal mentioning '\(mentioning)'")
        } catch {
            #expect("\(error)".contains(mentioning), "refused, but with: \(error)")
        }
    }

    @Test func itemsComeBackByteForByte() throws {
        let written = try write()
        #expect(written.items == 3)
        #expect(written.itemBytes == 2_504_000)
        #expect(!written.path.contains(StickBundle.partialPrefix))
        #expect(StickBundle.list(root: root).complete == [written.path])
        let reader = try open(written.path)
        #expect(reader.manifest.station == "posta-1")
        #expect(reader.items.map(\.item) == ["a", "b", "c"])
        for (item, (_, bytes)) in zip(reader.items, payloads) {
            let out = root + "/\(item.item).out"
            try reader.extract(item, to: out)
            #expect(FileManager.default.contents(atPath: out) == Data(bytes))
            #expect(item.metadataDictionary["case"] == "DNI-12345678")
        }
    }

    @Test func nothingOnTheStickIsReadableWithoutTheHubsKey() throws {
        // The case id (here a DNI) and the image bytes appear nowhere in the clear.
        let marker = Array("DNI-12345678".utf8)
        let plain: [UInt8] = Array(repeating: 0x41, count: 50_000)
        let written = try write([("x", plain)])
        let files = FileManager.default.enumerator(atPath: written.path)!.compactMap { $0 as? String }
        for name in files {
            let bytes = Array(FileManager.default.contents(atPath: written.path + "/" + name) ?? Data())
            #expect(!bytes.contains(subsequence: marker), "\(name) holds the case id in the clear")
            #expect(!bytes.contains(subsequence: Array(repeating: 0x41, count: 64)), "\(name) holds image bytes in the clear")
        }
    }

    @Test func aFlippedByteIsRefused() throws {
        let written = try write()
        let path = written.path + "/items/0001.enc"
        var bytes = Array(FileManager.default.contents(atPath: path)!)
        bytes[1_200_000] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        expectRefused(written.path, mentioning: "does not match its SHA-256 in the signed manifest")
    }

    @Test func aFlippedByteWithAnEditedManifestFailsTheSignature() throws {
        let written = try write()
        let path = written.path + "/manifest.json"
        let text = String(decoding: FileManager.default.contents(atPath: path)!, as: UTF8.self)
        try text.replacingOccurrences(of: "\"items\" : 3", with: "\"items\" : 2").write(toFile: path, atomically: false, encoding: .utf8)
        expectRefused(written.path, mentioning: "does not match the station's signature")
    }

    @Test func swappedItemFilesAreRefusedEvenWithAMatchingManifest() throws {
        // Swap the two files and their manifest entries' hashes, re-signed by
        // the station itself: the files still open only under their own names.
        let written = try write([("a", Self.random(5_000, seed: 1)), ("b", Self.random(5_000, seed: 2))])
        let fm = FileManager.default
        try fm.moveItem(atPath: written.path + "/items/0001.enc", toPath: written.path + "/items/tmp")
        try fm.moveItem(atPath: written.path + "/items/0002.enc", toPath: written.path + "/items/0001.enc")
        try fm.moveItem(atPath: written.path + "/items/tmp", toPath: written.path + "/items/0002.enc")
        expectRefused(written.path, mentioning: "does not match its SHA-256")
        // Now also fix the manifest's hashes and sign it with the station's key.
        let manifestPath = written.path + "/manifest.json"
        var manifest = try JSONDecoder().decode(StickBundle.Manifest.self, from: fm.contents(atPath: manifestPath)!)
        let i1 = manifest.files.firstIndex { $0.name == "items/0001.enc" }!, i2 = manifest.files.firstIndex { $0.name == "items/0002.enc" }!
        (manifest.files[i1].sha256, manifest.files[i2].sha256) = (manifest.files[i2].sha256, manifest.files[i1].sha256)
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        let bytes = try e.encode(manifest)
        try bytes.write(to: URL(fileURLWithPath: manifestPath))
        try Data(station.key.signature(for: bytes).base64EncodedString().utf8).write(to: URL(fileURLWithPath: written.path + "/manifest.sig"))
        expectRefused(written.path, mentioning: "fails authentication")
    }

    @Test func aBundleForAnotherHubIsRefused() throws {
        let other = HubKeyPair()
        let written = try write(for: other.publicKeys)
        expectRefused(written.path, mentioning: "was sealed for the hub key \(other.publicKeys.fingerprint)")
    }

    @Test func anotherStationsKeyIsRefused() throws {
        let written = try write()
        expectRefused(written.path, stationKey: StationSigningKey().publicKeyBase64, mentioning: "signed with a key the hub does not hold")
    }

    @Test func aHalfWrittenBundleIsRefusedOrSkipped() throws {
        let written = try write()
        // A stick pulled before the rename: the bundle is still .partial-, listed as unfinished.
        let partial = root + "/telestation/" + StickBundle.partialPrefix + "posta-1-20261201-000000-abcdef"
        try FileManager.default.copyItem(atPath: written.path, toPath: partial)
        #expect(StickBundle.list(root: root).unfinished == [partial])
        #expect(StickBundle.list(root: root).complete == [written.path])
        // A file cut short on the stick (the medium lost its tail).
        let path = written.path + "/items/0001.enc"
        let bytes = FileManager.default.contents(atPath: path)!
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path))
        expectRefused(written.path, mentioning: "the bundle is incomplete or damaged")
        // A file missing altogether.
        try FileManager.default.removeItem(atPath: path)
        expectRefused(written.path, mentioning: "is missing: the bundle is incomplete")
        // No signature.
        try FileManager.default.removeItem(atPath: written.path + "/manifest.sig")
        expectRefused(written.path, mentioning: "has no readable manifest.sig")
    }

    @Test func receiptsAreBelievedOnlyFromTheHub() throws {
        let written = try write()
        #expect(try StickReceipts.read(bundlePath: written.path, hubKeys: hub.publicKeys) == nil)
        let name = (written.path as NSString).lastPathComponent
        let receipts = StickReceipts(bundle: name, station: "posta-1", writtenAt: Date(), hubKey: hub.publicKeys.fingerprint,
                                     items: [.init(item: "a", status: .filed, detail: "stored"), .init(item: "b", status: .alreadyHeld, detail: "by link")])
        try receipts.write(into: written.path, signer: hub.signing)
        #expect(try StickReceipts.read(bundlePath: written.path, hubKeys: hub.publicKeys) == receipts)
        // Signed by someone else: refused.
        try receipts.write(into: written.path, signer: Curve25519.Signing.PrivateKey())
        #expect(throws: SneakernetError.self) { try StickReceipts.read(bundlePath: written.path, hubKeys: hub.publicKeys) }
    }

    @Test func hubKeysTravelAsAHeader() throws {
        let keys = hub.publicKeys
        let parsed = try HubPublicKeys.parse(keys.headerValue).get()
        #expect(parsed == keys)
        #expect(parsed.fingerprint.count == 16)
        #expect(throws: SneakernetError.self) { try HubPublicKeys.parse("hpke=AAAA, sign=BBBB").get() }
    }

    @Test func keyFilesPersist() throws {
        let path = root + "/hub-keys.json"
        let first = try HubKeyPair.loadOrCreate(path: path)
        let again = try HubKeyPair.loadOrCreate(path: path)
        #expect(first.publicKeys == again.publicKeys)
        var st = stat()
        stat(path, &st)
        #expect(st.st_mode & 0o777 == 0o600)
        let stationPath = root + "/station.key"
        #expect(try StationSigningKey.load(path: stationPath) == nil)
        let s1 = try StationSigningKey.loadOrCreate(path: stationPath)
        #expect(try StationSigningKey.load(path: stationPath)?.publicKeyBase64 == s1.publicKeyBase64)
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence: [UInt8]) -> Bool {
        guard subsequence.count <= count else { return false }
        return (0...(count - subsequence.count)).contains { i in self[i..<i + subsequence.count].elementsEqual(subsequence) }
    }
}
