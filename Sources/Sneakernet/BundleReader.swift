import Basics
@preconcurrency import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Opens a bundle at the hub: checks the station's signature, that every
/// file is whole and unchanged, that it was sealed for this hub, then reads
/// each item back, checked against its length and SHA-256.
public struct BundleReader: Sendable {
    public let path: String
    public let manifest: StickBundle.Manifest
    public let items: [StickBundle.Item]
    /// The bundle's secret (the HPKE exporter's output).
    let secretBytes: [UInt8]
    var secret: SymmetricKey { SymmetricKey(data: secretBytes) }

    /// `stationKey` answers the signing key the hub holds for a station, or
    /// the reason it holds none (unknown station, revoked credential).
    public init(path: String, hubKeys: HubKeyPair,
                stationKey: (String) -> Result<String, SneakernetError>) throws(SneakernetError) {
        self.path = path
        let manifestPath = (path as NSString).appendingPathComponent("manifest.json")
        let sigPath = (path as NSString).appendingPathComponent("manifest.sig")
        let bundleName = (path as NSString).lastPathComponent
        guard let manifestBytes = FileManager.default.contents(atPath: manifestPath) else {
            throw SneakernetError(.bundle, "\(bundleName) has no manifest.json: the bundle is incomplete",
                                  nextStep: "export again at the station; this bundle cannot be imported")
        }
        guard let signature = StickBundle.readSignature(sigPath) else {
            throw SneakernetError(.bundle, "\(bundleName) has no readable manifest.sig: the bundle is incomplete or damaged",
                                  nextStep: "export again at the station; this bundle cannot be imported")
        }
        let manifest: StickBundle.Manifest
        do { manifest = try JSONDecoder().decode(StickBundle.Manifest.self, from: manifestBytes) } catch {
            throw SneakernetError(.bundle, "\(bundleName)/manifest.json is not a bundle manifest: \(error)")
        }
        guard manifest.format == StickBundle.format else {
            throw SneakernetError(.bundle, "\(bundleName) is a '\(manifest.format)' bundle; this hub reads '\(StickBundle.format)'",
                                  nextStep: "update the hub's software")
        }
        // Whose is it, and did that station sign it?
        let known: String
        switch stationKey(manifest.station) {
        case let .success(k): known = k
        case let .failure(e): throw e
        }
        guard known == manifest.stationKey,
              let raw = Data(base64Encoded: known), let pub = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else {
            throw SneakernetError(.bundle, "\(bundleName) is signed with a key the hub does not hold for station \(manifest.station)",
                                  nextStep: "if the station was reinstalled, let it reach the hub once over the link (it sends its new key) after its credential is enrolled again")
        }
        guard pub.isValidSignature(signature, for: manifestBytes) else {
            throw SneakernetError(.bundle, "\(bundleName)/manifest.json does not match the station's signature: the bundle was changed after it was written",
                                  nextStep: "do not import it; export again at the station")
        }
        guard manifest.bundle == bundleName else {
            throw SneakernetError(.bundle, "the directory \(bundleName) holds the manifest of bundle \(manifest.bundle): the bundle was renamed or swapped",
                                  nextStep: "do not import it; export again at the station")
        }
        guard manifest.hubKey == hubKeys.publicKeys.fingerprint else {
            throw SneakernetError(.bundle, "\(bundleName) was sealed for the hub key \(manifest.hubKey); this hub's key is \(hubKeys.publicKeys.fingerprint)",
                                  nextStep: "import it at the hub the station uploads to")
        }
        // Every file whole and unchanged before anything is read from it.
        for file in manifest.files {
            let filePath = (path as NSString).appendingPathComponent(file.name)
            guard !file.name.contains(".."), !file.name.hasPrefix("/") else {
                throw SneakernetError(.bundle, "\(bundleName) names a file outside itself (\(file.name))")
            }
            var st = stat()
            guard stat(filePath, &st) == 0 else {
                throw SneakernetError(.bundle, "\(bundleName)/\(file.name) is missing: the bundle is incomplete",
                                      nextStep: "export again at the station; nothing of this bundle was imported")
            }
            guard Int64(st.st_size) == file.length else {
                throw SneakernetError(.bundle, "\(bundleName)/\(file.name) is \(st.st_size) bytes; the manifest says \(file.length): the bundle is incomplete or damaged",
                                      nextStep: "export again at the station; nothing of this bundle was imported")
            }
            let sha: String
            do { sha = try Digest.sha256(ofFile: filePath) } catch {
                throw SneakernetError(.io, "cannot read \(bundleName)/\(file.name): \(error)", cause: error)
            }
            guard sha == file.sha256 else {
                throw SneakernetError(.bundle, "\(bundleName)/\(file.name) does not match its SHA-256 in the signed manifest: damaged or swapped",
                                      nextStep: "do not import it; export again at the station")
            }
        }
        guard let encapsulated = Data(base64Encoded: manifest.encapsulatedKey) else {
            throw SneakernetError(.bundle, "\(bundleName)'s encapsulated key is not base64")
        }
        do {
            let recipient = try HPKE.Recipient(privateKey: hubKeys.hpke, ciphersuite: StickBundle.suite, info: StickBundle.info,
                                               encapsulatedKey: encapsulated)
            secretBytes = try recipient.exportSecret(context: Data(manifest.bundle.utf8), outputByteCount: 32).withUnsafeBytes { Array($0) }
        } catch {
            throw SneakernetError(.bundle, "\(bundleName) cannot be opened with this hub's key: \(error)")
        }
        self.manifest = manifest
        guard manifest.files.contains(where: { $0.name == "contents.enc" }) else {
            throw SneakernetError(.bundle, "\(bundleName) lists no contents.enc")
        }
        var contents: [UInt8] = []
        try Self.open(path: (path as NSString).appendingPathComponent("contents.enc"), name: "contents.enc", secret: SymmetricKey(data: secretBytes)) { contents += $0 }
        do { items = try JSONDecoder().decode(StickBundle.Contents.self, from: Data(contents)).items } catch {
            throw SneakernetError(.bundle, "\(bundleName)'s contents cannot be read: \(error)")
        }
        guard items.count == manifest.items else {
            throw SneakernetError(.bundle, "\(bundleName) lists \(items.count) items; its manifest says \(manifest.items)")
        }
    }

    /// Decrypts one item into `destination` (a new file, flushed) and checks
    /// its length and SHA-256.
    public func extract(_ item: StickBundle.Item, to destination: String) throws(SneakernetError) {
        guard manifest.files.contains(where: { $0.name == item.file }) else {
            throw SneakernetError(.bundle, "item \(item.item) names \(item.file), which the manifest does not list")
        }
        let fd = Glibc.open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DurableFile.io("open", destination, errno) }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(destination) }
        }
        var hasher = SHA256()
        var length: Int64 = 0
        var writeError: SneakernetError?
        try Self.open(path: (path as NSString).appendingPathComponent(item.file), name: item.file, secret: secret) { plain in
            guard writeError == nil else { return }
            hasher.update(data: plain)
            length += Int64(plain.count)
            do { try Syscall.writeAll(fd, plain, path: destination) } catch let error as SystemCallError {
                writeError = SneakernetError(.io, "cannot write \(destination): \(error)", cause: error)
            } catch {
                writeError = SneakernetError(.io, "cannot write \(destination): \(error)")
            }
        }
        if let writeError { throw writeError }
        guard length == item.length, hasher.finalize().hex == item.sha256 else {
            throw SneakernetError(.bundle, "item \(item.item) does not match the length and SHA-256 the station recorded")
        }
        guard fsync(fd) == 0 else { throw DurableFile.io("fsync", destination, errno) }
        ok = true
    }

    /// Opens a sealed file segment by segment, handing each plaintext segment on.
    static func open(path: String, name: String, secret: SymmetricKey,
                     _ body: ([UInt8]) -> Void) throws(SneakernetError) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw SneakernetError(.bundle, "\(name) is missing from the bundle")
        }
        defer { try? handle.close() }
        let key = StickBundle.fileKey(secret, name)
        let sealedSegment = StickBundle.segmentSize + 16
        var index: UInt64 = 0
        var pending: Data? = try readSegment(handle, sealedSegment, name)
        guard pending != nil else { throw SneakernetError(.bundle, "\(name) is empty: the bundle is damaged") }
        while let segment = pending {
            let next = try readSegment(handle, sealedSegment, name)
            let last = next == nil
            guard segment.count >= 16 else { throw SneakernetError(.bundle, "\(name) ends in a piece too short to be sealed") }
            do {
                let box = try ChaChaPoly.SealedBox(nonce: StickBundle.nonce(index, last: last),
                                                   ciphertext: segment.prefix(segment.count - 16), tag: segment.suffix(16))
                body(Array(try ChaChaPoly.open(box, using: key, authenticating: Data(name.utf8))))
            } catch {
                throw SneakernetError(.bundle, "\(name) fails authentication at piece \(index + 1): it was changed, cut short or swapped",
                                      nextStep: "do not import it; export again at the station")
            }
            index += 1
            pending = next
        }
    }

    private static func readSegment(_ handle: FileHandle, _ size: Int, _ name: String) throws(SneakernetError) -> Data? {
        do {
            guard let data = try handle.read(upToCount: size), !data.isEmpty else { return nil }
            return data
        } catch {
            throw SneakernetError(.io, "cannot read \(name): \(error)", nextStep: "check the stick")
        }
    }
}
