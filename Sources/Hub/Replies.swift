import Basics
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A short answer about a case, from the hub back to the station that sent
/// it: the case was received, image N needs a retake, or the
/// dermatologist's note. Stations fetch theirs with `GET /replies?since=ID`
/// (see `TusResponder`), so the health post learns what happened to a case.
public struct CaseReply: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case received, retake, note
    }

    public var id: Int
    public var station: String
    public var caseID: String
    public var kind: Kind
    /// For `retake`: which image of the case (1-based, in the order they were sent).
    public var image: Int?
    public var text: String
    public var at: Date

    enum CodingKeys: String, CodingKey {
        case id, station, kind, image, text, at
        case caseID = "case"
    }

    public static let maxText = 2000

    /// Checks what an operator or a specialist's system posted.
    public static func validate(station: String, caseID: String, kind: String, image: Int?, text: String) -> Result<Kind, HubError> {
        guard StationRegistry.isValidStationID(station) else {
            return .failure(HubError(.configuration, "station '\(station.prefix(70))' is not a station id"))
        }
        guard !caseID.isEmpty, caseID.count <= 64 else {
            return .failure(HubError(.configuration, "case must be the case id the station sent (1 to 64 characters)"))
        }
        guard let k = Kind(rawValue: kind) else {
            return .failure(HubError(.configuration, "kind must be one of \(Kind.allCases.map(\.rawValue).joined(separator: ", ")), not '\(kind.prefix(40))'"))
        }
        if k == .retake, (image ?? 0) < 1 {
            return .failure(HubError(.configuration, "a retake names the image to take again: image 1, 2, …"))
        }
        guard text.count <= maxText, k != .note || !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            return .failure(HubError(.configuration, k == .note ? "a note needs its text" : "the text is longer than \(maxText) characters"))
        }
        return .success(k)
    }
}

/// Every reply the hub holds, one JSON line each in `DIR/.hub/replies.jsonl`,
/// appended under a lock (the server and `telestation-hub reply` both write).
public final class ReplyBook: Sendable {
    public let path: String
    let lockPath: String

    public init(directory: String) {
        let dir = (directory as NSString).appendingPathComponent(".hub")
        mkdir(dir, 0o700)
        path = (dir as NSString).appendingPathComponent("replies.jsonl")
        lockPath = (dir as NSString).appendingPathComponent("replies.lock")
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }()

    public func post(station: String, caseID: String, kind: CaseReply.Kind, image: Int?, text: String,
                     now: Date = Date()) throws(HubError) -> CaseReply {
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw HubError(.storage, "cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        flock(fd, LOCK_EX)
        defer { flock(fd, LOCK_UN) }
        let id = (all().map(\.id).max() ?? 0) + 1
        let reply = CaseReply(id: id, station: station, caseID: caseID, kind: kind, image: kind == .retake ? image : nil,
                              text: text, at: now)
        var line = (try? Self.encoder.encode(reply)) ?? Data()
        line.append(0x0A)
        let out = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard out >= 0 else { throw HubError(.storage, "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(out) }
        do { try Syscall.writeAll(out, Array(line), path: path) } catch { throw HubError.posix(error) }
        fsync(out)
        return reply
    }

    /// Every reply, oldest first; a damaged line is skipped.
    public func all() -> [CaseReply] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return data.split(separator: 0x0A).compactMap { try? Self.decoder.decode(CaseReply.self, from: Data($0)) }
    }

    /// A station's replies after `since` (an id it already has), oldest first.
    public func replies(station: String, since: Int) -> [CaseReply] {
        all().filter { $0.station == station && $0.id > since }
    }
}
