import Basics
import Crypto
import Foundation
import Sneakernet
#if canImport(Glibc)
import Glibc
#endif

/// The stations the hub knows, each with its own credential
/// (`DIR/.hub/stations.json`): a bearer token of which only the SHA-256 is kept,
/// when it was enrolled or revoked, and the station's signing key (learnt
/// from its first upload, checked on every bundle it sends by stick).
///
/// Operators change it with `telestation-hub enroll|revoke` while the hub
/// runs; the server reads the file again when it changes.
public struct StationRecord: Codable, Sendable, Equatable {
    public var tokenSHA256: String?
    public var enrolledAt: Date?
    public var revokedAt: Date?
    /// Base64 Ed25519 public key, learnt from the station's uploads (`station_key`).
    public var signingKey: String?
    public var signingKeySeenAt: Date?

    enum CodingKeys: String, CodingKey {
        case tokenSHA256 = "token_sha256", enrolledAt = "enrolled_at", revokedAt = "revoked_at"
        case signingKey = "signing_key", signingKeySeenAt = "signing_key_seen_at"
    }
}

/// Who sent a request.
public enum HubIdentity: Sendable, Equatable {
    /// No credentials are configured: anyone may upload (a test or closed network).
    case open
    /// The shared token of `--token-file`: any station (the older set-up).
    case shared
    /// A station's own credential.
    case station(String)
}

public final class StationRegistry: Sendable {
    public let path: String
    let lockPath: String
    private struct Cache { var mtime: timespec?; var stations: [String: StationRecord] = [:] }
    private let cache = Locked(Cache())

    public init(directory: String) {
        let dir = (directory as NSString).appendingPathComponent(".hub")
        mkdir(dir, 0o700)
        path = (dir as NSString).appendingPathComponent("stations.json")
        lockPath = (dir as NSString).appendingPathComponent("stations.lock")
    }

    /// The stations, read again when the file changed.
    public func stations() -> [String: StationRecord] {
        var st = stat()
        let exists = stat(path, &st) == 0
        return cache.withLock { c in
            if !exists { c = Cache(); return [:] }
            if let m = c.mtime, m.tv_sec == st.st_mtim.tv_sec, m.tv_nsec == st.st_mtim.tv_nsec { return c.stations }
            c.mtime = st.st_mtim
            c.stations = (try? Self.read(path)) ?? c.stations
            return c.stations
        }
    }

    /// Whether any station has its own credential (then unknown tokens are refused).
    public var hasCredentials: Bool { stations().values.contains { $0.tokenSHA256 != nil } }

    public enum Authentication: Sendable, Equatable {
        case station(String)
        case revoked(String, Date)
        case unknown
    }

    /// Which station a bearer token belongs to.
    public func authenticate(token: String) -> Authentication {
        let hash = Digest.sha256Hex(Array(token.utf8))
        for (id, record) in stations() {
            guard let wanted = record.tokenSHA256, Digest.constantTimeEquals(wanted, hash) else { continue }
            if let revoked = record.revokedAt { return .revoked(id, revoked) }
            return .station(id)
        }
        return .unknown
    }

    /// Enrols a station (or enrols it again, replacing its token and
    /// forgetting its signing key and any revocation); returns the new token,
    /// which is kept nowhere else.
    public func enroll(_ id: String, now: Date = Date()) throws(HubError) -> String {
        guard Self.isValidStationID(id) else {
            throw HubError(.configuration, "'\(id)' is not a station id (letters, digits, '-', '_' and '.', at most 64)",
                           nextStep: "use the station.id of the station's configuration")
        }
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        let token = "ts1." + Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        try modify { stations in
            stations[id] = StationRecord(tokenSHA256: Digest.sha256Hex(Array(token.utf8)), enrolledAt: now)
        }
        return token
    }

    /// Revokes a station's credential: it is refused from now on (uploads,
    /// receipts, health reports and its bundles on a stick).
    public func revoke(_ id: String, now: Date = Date()) throws(HubError) {
        var known = true
        try modify { stations in
            guard stations[id] != nil else { known = false; return }
            stations[id]?.revokedAt = now
        }
        if !known {
            throw HubError(.configuration, "no station '\(id)' is enrolled at this hub", nextStep: "telestation-hub stations --store DIR lists them")
        }
    }

    /// Learns a station's signing key from an upload it made with its own
    /// credential (or, on a hub without credentials, from the first upload
    /// naming it). A known key is never replaced here: a station with a new
    /// key is enrolled again. Returns whether the key is the one on record.
    @discardableResult
    public func learnSigningKey(_ key: String, station: String, identity: HubIdentity, now: Date = Date()) -> Bool {
        guard let raw = Data(base64Encoded: key), raw.count == 32, Self.isValidStationID(station) else { return false }
        if let known = stations()[station]?.signingKey { return known == key }
        switch identity {
        case let .station(id) where id == station: break
        case .open, .shared:
            // Without credentials the hub cannot tell stations apart; the first key wins.
            if stations()[station]?.tokenSHA256 != nil { return false }
        default: return false
        }
        var result = false
        try? modify { stations in
            var record = stations[station] ?? StationRecord()
            if record.signingKey == nil {
                record.signingKey = key
                record.signingKeySeenAt = now
                stations[station] = record
            }
            result = record.signingKey == key
        }
        return result
    }

    static func isValidStationID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 64 && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    /// Read, change and write the file under an exclusive lock, so the
    /// server and an operator's command do not lose each other's changes.
    private func modify(_ change: (inout [String: StationRecord]) -> Void) throws(HubError) {
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw HubError(.storage, "cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        flock(fd, LOCK_EX)
        defer { flock(fd, LOCK_UN) }
        var stations = (try? Self.read(path)) ?? [:]
        change(&stations)
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = (try? e.encode(["stations": stations])) ?? Data()
        do { try DurableFile.write(Array(data), to: path, mode: 0o600) } catch { throw HubError.durable(error) }
        cache.withLock { $0 = Cache() }
    }

    static func read(_ path: String) throws -> [String: StationRecord] {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return try d.decode([String: [String: StationRecord]].self, from: data)["stations"] ?? [:]
    }
}
