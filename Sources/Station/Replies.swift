import Basics
import Foundation
import Logging
import Sneakernet
import StationAPI
import Synchronization
import Uplink

/// The hub's replies about this station's cases, kept in the state
/// directory (`replies.json`) with whether staff have read them: fetched
/// by the upload worker when the link is up, shown by the kiosk.
public final class ReplyStore: Sendable {
    public let path: String
    private let lock = Mutex(())

    public init(directory: String) {
        path = (directory as NSString).appendingPathComponent("replies.json")
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }()

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }()

    /// Every reply held, newest first.
    public func all() -> [CaseReplyItem] {
        lock.withLock { _ in read() }.sorted { ($0.at, $0.id) > ($1.at, $1.id) }
    }

    /// The highest reply id held: the next fetch asks for what came after.
    public var lastID: Int { lock.withLock { _ in read().map(\.id).max() ?? 0 } }

    /// Adds replies not held yet; returns how many were new.
    @discardableResult
    public func merge(_ fetched: [HubReply]) throws(SneakernetError) -> Int {
        try lock.withLock { _ throws(SneakernetError) -> Int in
            var held = read()
            let known = Set(held.map(\.id))
            let new = fetched.filter { !known.contains($0.id) }
            guard !new.isEmpty else { return 0 }
            held += new.map { CaseReplyItem(id: $0.id, caseID: $0.caseID, kind: $0.kind, image: $0.image, text: $0.text, at: $0.at, read: false) }
            try write(held)
            return new.count
        }
    }

    /// Marks a reply read; false when there is no such reply.
    public func markRead(_ id: Int) throws(SneakernetError) -> Bool {
        try lock.withLock { _ throws(SneakernetError) -> Bool in
            var held = read()
            guard let i = held.firstIndex(where: { $0.id == id }) else { return false }
            if !held[i].read {
                held[i].read = true
                try write(held)
            }
            return true
        }
    }

    private func read() -> [CaseReplyItem] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return (try? Self.decoder.decode([CaseReplyItem].self, from: data)) ?? []
    }

    private func write(_ replies: [CaseReplyItem]) throws(SneakernetError) {
        let data = (try? Self.encoder.encode(replies)) ?? Data()
        try DurableFile.write(Array(data), to: path, mode: 0o600)
    }
}
