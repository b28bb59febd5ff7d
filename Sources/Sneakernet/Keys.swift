import Basics
@preconcurrency import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What went wrong carrying items on a stick, for the person holding it.
public enum SneakernetErrorCode: String, FailureCode {
    /// A key file or a key header that cannot be read.
    case key
    /// The bundle is incomplete, damaged, tampered with or not for this hub.
    case bundle
    /// The stick or a file on it cannot be read or written.
    case io
    /// No bundle, nothing to do, or a station the hub does not know.
    case refused
}

public typealias SneakernetError = Failure<SneakernetErrorCode>

/// The hub's two public keys, as stations learn them from its OPTIONS answer
/// (`Telestation-Hub-Keys: hpke=BASE64, sign=BASE64`) or from the
/// `uplink.hub_keys` setting: an X25519 key that bundles on a stick are
/// sealed for (HPKE), and an Ed25519 key that signs the receipts the hub
/// writes back onto the stick.
public struct HubPublicKeys: Sendable, Equatable {
    public static let headerName = "Telestation-Hub-Keys"

    public var hpke: Curve25519.KeyAgreement.PublicKey
    public var signing: Curve25519.Signing.PublicKey

    public init(hpke: Curve25519.KeyAgreement.PublicKey, signing: Curve25519.Signing.PublicKey) {
        self.hpke = hpke
        self.signing = signing
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.hpke.rawRepresentation == b.hpke.rawRepresentation && a.signing.rawRepresentation == b.signing.rawRepresentation
    }

    /// The header's (and the setting's) value.
    public var headerValue: String {
        "hpke=\(hpke.rawRepresentation.base64EncodedString()), sign=\(signing.rawRepresentation.base64EncodedString())"
    }

    /// A short name for the pair, printed on both sides so a person can see
    /// that a bundle was sealed for this hub: the first 16 hex digits of the
    /// SHA-256 of both keys.
    public var fingerprint: String {
        String(Digest.sha256Hex(Array(hpke.rawRepresentation) + Array(signing.rawRepresentation)).prefix(16))
    }

    public static func parse(_ value: String) -> Result<HubPublicKeys, SneakernetError> {
        var fields: [String: String] = [:]
        for part in value.split(separator: ",") {
            let kv = part.trimmingCharacters(in: .whitespaces)
            guard let eq = kv.firstIndex(of: "=") else { continue }
            fields[String(kv[..<eq]).lowercased()] = String(kv[kv.index(after: eq)...])
        }
        guard let h = fields["hpke"].flatMap({ Data(base64Encoded: $0) }),
              let s = fields["sign"].flatMap({ Data(base64Encoded: $0) }),
              let hpke = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: h),
              let signing = try? Curve25519.Signing.PublicKey(rawRepresentation: s) else {
            return .failure(SneakernetError(.key, "the hub keys '\(value.prefix(120))' are not 'hpke=BASE64, sign=BASE64' with 32-byte keys",
                                            nextStep: "copy the value of the hub's Telestation-Hub-Keys header (telestation-hub keys --store DIR prints it)"))
        }
        return .success(HubPublicKeys(hpke: hpke, signing: signing))
    }
}

/// The hub's private keys, in one file (`DIR/.hub/keys.json`, mode 0600),
/// made the first time the hub needs them.
public struct HubKeyPair: Sendable {
    public let hpke: Curve25519.KeyAgreement.PrivateKey
    public let signing: Curve25519.Signing.PrivateKey

    public var publicKeys: HubPublicKeys { HubPublicKeys(hpke: hpke.publicKey, signing: signing.publicKey) }

    public init(hpke: Curve25519.KeyAgreement.PrivateKey = .init(), signing: Curve25519.Signing.PrivateKey = .init()) {
        self.hpke = hpke
        self.signing = signing
    }

    struct Stored: Codable {
        var hpke: String
        var sign: String
    }

    /// Reads the key file, or makes the keys and writes it (durably, 0600) when there is none.
    public static func loadOrCreate(path: String) throws(SneakernetError) -> HubKeyPair {
        if let data = FileManager.default.contents(atPath: path) {
            guard let stored = try? JSONDecoder().decode(Stored.self, from: data),
                  let h = Data(base64Encoded: stored.hpke), let s = Data(base64Encoded: stored.sign),
                  let hpke = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: h),
                  let signing = try? Curve25519.Signing.PrivateKey(rawRepresentation: s) else {
                throw SneakernetError(.key, "\(path) is not a hub key file",
                                      nextStep: "restore it from the hub's backup; a new key makes every bundle already on a stick unreadable")
            }
            return HubKeyPair(hpke: hpke, signing: signing)
        }
        let pair = HubKeyPair()
        let stored = Stored(hpke: pair.hpke.rawRepresentation.base64EncodedString(),
                            sign: pair.signing.rawRepresentation.base64EncodedString())
        let data = (try? JSONEncoder().encode(stored)) ?? Data()
        try DurableFile.writeNew(Array(data), to: path, mode: 0o600)
        return pair
    }
}

/// The station's signing key (`SPOOL/station-signing.key`, mode 0600): signs
/// the manifest of every bundle it writes. The hub learns the public half from
/// the station's uploads (metadata `station_key`) and checks bundles against it.
public struct StationSigningKey: Sendable {
    public let key: Curve25519.Signing.PrivateKey

    public init(key: Curve25519.Signing.PrivateKey = .init()) { self.key = key }

    /// The public key as the metadata and the manifest carry it.
    public var publicKeyBase64: String { key.publicKey.rawRepresentation.base64EncodedString() }

    public static func loadOrCreate(path: String) throws(SneakernetError) -> StationSigningKey {
        if let data = FileManager.default.contents(atPath: path) {
            guard data.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: data) else {
                throw SneakernetError(.key, "\(path) is not a station signing key (32 bytes)",
                                      nextStep: "remove it: the station makes a new one, and the hub learns it from the next upload")
            }
            return StationSigningKey(key: key)
        }
        let fresh = StationSigningKey()
        try DurableFile.writeNew(Array(fresh.key.rawRepresentation), to: path, mode: 0o600)
        return fresh
    }

    /// Loads the key without making one (nil when there is none).
    public static func load(path: String) throws(SneakernetError) -> StationSigningKey? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try loadOrCreate(path: path)
    }
}

/// Small whole-file writes that survive a power cut or a pulled stick:
/// written to a temporary name, flushed, renamed, directory flushed.
public enum DurableFile {
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws(SneakernetError) {
        let tmp = path + ".tmp"
        try writeNew(bytes, to: tmp, mode: mode, replace: true, syncDirectory: false)
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw io("rename", path, e)
        }
        syncDirectory(of: path)
    }

    /// Writes a file that must not exist yet (or replaces it with `replace`), flushed.
    public static func writeNew(_ bytes: [UInt8], to path: String, mode: mode_t, replace: Bool = false,
                                syncDirectory sync: Bool = true) throws(SneakernetError) {
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (replace ? O_TRUNC : O_EXCL)
        let fd = open(path, flags, mode)
        guard fd >= 0 else { throw io("open", path, errno) }
        defer { close(fd) }
        do { try Syscall.writeAll(fd, bytes, path: path) } catch {
            throw SneakernetError(.io, "cannot write \(path): \(error)", nextStep: "check the disk or stick has space and is writable", cause: error)
        }
        guard fsync(fd) == 0 else { throw io("fsync", path, errno) }
        if sync { syncDirectory(of: path) }
    }

    /// Flushes a directory entry; on filesystems that cannot (some vfat
    /// mounts answer EINVAL) the data was already flushed with the file.
    public static func syncDirectory(of path: String) {
        try? Syscall.syncDirectory((path as NSString).deletingLastPathComponent)
    }

    static func io(_ function: String, _ path: String, _ code: Int32) -> SneakernetError {
        SneakernetError(.io, "\(function)(\(path)) failed: \(String(cString: strerror(code)))",
                        nextStep: "check that the stick is still plugged in, writable and not full",
                        function: function, errno: code, path: path)
    }
}
