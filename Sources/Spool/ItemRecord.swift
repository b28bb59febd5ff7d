import Foundation
import GRDB

/// The `item` table's lifecycle columns and `ItemLifecycle`: the one place
/// they map, both ways. Every state change goes `apply` → `store`.
extension ItemLifecycle: FetchableRecord {
    public init(row: Row) {
        let date: (String) -> Date? = { key in (row[key] as Double?).map { Date(timeIntervalSince1970: $0) } }
        self.init(state: ItemState(rawValue: row["state"]) ?? .failed, size: row["size"],
                  uploadURL: row["upload_url"], ackedOffset: row["acked_offset"], attempts: row["attempts"],
                  lastError: row["last_error"], retryAt: date("retry_at"), leaseOwner: row["lease_owner"],
                  leaseExpires: date("lease_expires"), awaitingReceipt: (row["awaiting_receipt"] as Int?) == 1,
                  uploadLength: row["upload_length"])
    }

    /// Writes the lifecycle to item `id` and, when the transition is one the
    /// history keeps, its event. `uploadedAt` and `receivedAt` are the
    /// item's upload and receipt times (seconds).
    func store(_ db: Database, id: Int64, outcome: Outcome, now: Double, uploadedAt: Double?,
               receivedAt: Double?) throws {
        try db.execute(sql: """
            UPDATE item SET state = ?, upload_url = ?, acked_offset = ?, attempts = ?, last_error = ?, retry_at = ?,
                            lease_owner = ?, lease_expires = ?, updated_at = ?, uploaded_at = ?,
                            awaiting_receipt = ?, received_at = ?, upload_length = ?
            WHERE id = ?
            """, arguments: [state.rawValue, uploadURL, ackedOffset, attempts, lastError,
                             retryAt?.timeIntervalSince1970, leaseOwner, leaseExpires?.timeIntervalSince1970,
                             now, uploadedAt, awaitingReceipt ? 1 : 0, receivedAt, uploadLength, id])
        if outcome.recordsEvent {
            try Self.recordEvent(db, id: id, at: now, from: outcome.from, to: outcome.to, detail: outcome.detail)
        }
    }

    /// A line of the item's history (`from` nil: the item was created).
    static func recordEvent(_ db: Database, id: Int64, at: Double, from: ItemState?, to: ItemState, detail: String) throws {
        try db.execute(sql: "INSERT INTO event (item_id, at, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?)",
                       arguments: [id, at, from?.rawValue, to.rawValue, detail])
    }
}
