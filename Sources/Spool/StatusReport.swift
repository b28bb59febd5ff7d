import Config
import Foundation

/// Renders `SpoolStatus` and item histories for people and for scripts.
/// The JSON field names are an interface: scripts on stations rely on them.
public enum StatusReport {
    public struct JSONStatus: Codable, Equatable, Sendable {
        public var counts: [String: Int]
        public var bytes_pending: Int64
        public var oldest_pending_age_s: Double?
        /// Uploaded items the hub has not yet confirmed filing (counted in `counts.uploaded`).
        public var awaiting_receipt: Int
        /// Health reports for the hub not yet sent (not in `counts` or `items`).
        public var health_pending: Int?
        public var items: [JSONItem]
    }

    public struct JSONItem: Codable, Equatable, Sendable {
        public var id: Int64
        public var kind: String
        public var parent_id: Int64?
        public var case_id: String
        public var site: String
        public var note: String
        public var priority: String
        public var state: String
        public var filename: String
        public var size: Int64
        public var acked_offset: Int64
        public var progress: Double
        public var attempts: Int
        public var last_error: String?
        public var retry_at: String?
        public var upload_url: String?
        public var captured_at: String
        public var queued_at: String
    }

    public static func json(_ status: SpoolStatus) -> JSONStatus {
        let iso = ISO8601DateFormatter()
        return JSONStatus(
            counts: Dictionary(uniqueKeysWithValues: ItemState.allCases.map { ($0.rawValue, status.counts[$0] ?? 0) }),
            bytes_pending: status.bytesPending,
            oldest_pending_age_s: status.oldestPendingAge.map { ($0 * 10).rounded() / 10 },
            awaiting_receipt: status.awaitingReceipt,
            health_pending: status.healthPending,
            items: status.pending.map { item in
                JSONItem(id: item.id, kind: item.kind.rawValue, parent_id: item.parentID, case_id: item.metadata.caseID,
                         site: item.metadata.site, note: item.metadata.note, priority: item.metadata.priority.rawValue,
                         state: item.state.rawValue, filename: item.metadata.filename, size: item.size,
                         acked_offset: item.ackedOffset, progress: (item.progress * 1000).rounded() / 1000,
                         attempts: item.attempts, last_error: item.lastError, retry_at: item.retryAt.map(iso.string),
                         upload_url: item.uploadURL, captured_at: iso.string(from: item.metadata.capturedAt),
                         queued_at: iso.string(from: item.createdAt))
            })
    }

    public static func jsonData(_ status: SpoolStatus) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(json(status))
    }

    public static func text(_ status: SpoolStatus) -> String {
        let order: [ItemState] = [.queued, .uploading, .failed, .held, .uploaded, .received]
        var out = order.map { "\($0.rawValue) \(status.counts[$0] ?? 0)" }.joined(separator: " · ") + "\n"
        let uploaded = status.counts[.uploaded] ?? 0
        if uploaded > 0 {
            let noReceipt = uploaded - status.awaitingReceipt
            var parts: [String] = []
            if status.awaitingReceipt > 0 { parts.append("\(status.awaitingReceipt) sent, waiting for the hub's receipt") }
            if noReceipt > 0 { parts.append("\(noReceipt) sent, no receipt (the hub gives none)") }
            out += parts.joined(separator: "; ") + "\n"
        }
        if status.healthPending > 0 {
            out += "\(status.healthPending) health report(s) for the hub waiting, sent after the images\n"
        }
        if status.pending.isEmpty {
            out += status.awaitingReceipt > 0
                ? "nothing to send: every image has reached the hub; \(status.awaitingReceipt) not yet confirmed filed\n"
                : "nothing pending: every image has reached the hub\n"
            return out
        }
        out += "pending \(Units.formatBytes(status.bytesPending))"
        if let age = status.oldestPendingAge { out += ", oldest waiting \(Units.formatDuration(age))" }
        out += "\n"
        var rows = [["ID", "STATE", "PRIORITY", "KIND", "CASE", "SITE", "PROGRESS", "TRIES", "LAST ERROR"]]
        for item in status.pending {
            let progress = "\(Units.formatBytes(item.ackedOffset))/\(Units.formatBytes(item.lifecycle.uploadSize)) "
                + String(format: "%.0f%%", item.progress * 100)
            var error = item.lastError ?? ""
            if item.state == .failed, let retry = item.retryAt {
                error += " (retry in \(Units.formatDuration(max(0, retry.timeIntervalSinceNow))))"
            }
            rows.append(["\(item.id)", item.state.rawValue, item.metadata.priority.rawValue, item.kind.rawValue,
                         item.metadata.caseID.isEmpty ? "?" : item.metadata.caseID, item.metadata.site, progress,
                         "\(item.attempts)", error])
        }
        out += table(rows)
        return out
    }

    public static func history(_ item: SpoolItem, _ events: [ItemHistoryEvent]) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm:ss"
        f.locale = Locale(identifier: "en_US_POSIX")
        var out = "item \(item.id): \(item.kind.rawValue) \(item.metadata.filename), case \(item.metadata.caseID.isEmpty ? "unknown" : item.metadata.caseID)"
        if !item.metadata.site.isEmpty { out += ", site \(item.metadata.site)" }
        out += ", \(item.metadata.priority.rawValue)\n"
        out += "state \(item.state.rawValue), \(Units.formatBytes(item.ackedOffset)) of \(Units.formatBytes(item.lifecycle.uploadSize)) acknowledged, \(item.attempts) attempt(s)"
        if let length = item.lifecycle.uploadLength { out += " (the upload sends a \(Units.formatBytes(length)) object made from the \(Units.formatBytes(item.size)) image)" }
        out += "\n"
        out += "sha256 \(item.sha256)\nfile \(item.filePath)\(item.fileDeletedAt != nil ? " (deleted by retention)" : "")\n"
        if let url = item.uploadURL { out += "upload \(url)\n" }
        if let error = item.lastError { out += "last error: \(error)\n" }
        out += "history:\n"
        for e in events {
            let change = e.from.map { $0 == e.to ? $0.rawValue : "\($0.rawValue) → \(e.to.rawValue)" } ?? e.to.rawValue
            out += "  \(f.string(from: e.at))  \(change)  \(e.detail)\n"
        }
        return out
    }

    private static func table(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { c, cell in
                c == row.count - 1 ? cell : cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n") + "\n"
    }
}
