import GRDB

/// The queue's schema, versioned from the first release so stations in the
/// field upgrade in place. Never edit a registered migration; add a new one.
enum Schema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1: items and events") { db in
            try db.execute(sql: """
                CREATE TABLE item (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL CHECK (kind IN ('image', 'preview')),
                    parent_id INTEGER REFERENCES item(id),
                    case_id TEXT NOT NULL,
                    site TEXT NOT NULL,
                    note TEXT NOT NULL,
                    priority TEXT NOT NULL CHECK (priority IN ('urgent', 'routine')),
                    captured_at REAL NOT NULL,
                    filename TEXT NOT NULL,
                    file TEXT NOT NULL UNIQUE,
                    sha256 TEXT NOT NULL,
                    size INTEGER NOT NULL CHECK (size >= 0),
                    state TEXT NOT NULL CHECK (state IN ('queued', 'uploading', 'uploaded', 'failed', 'held')),
                    upload_url TEXT,
                    acked_offset INTEGER NOT NULL DEFAULT 0,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    last_error TEXT,
                    retry_at REAL,
                    lease_owner TEXT,
                    lease_expires REAL,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL,
                    uploaded_at REAL,
                    file_deleted_at REAL
                );
                CREATE INDEX item_state ON item(state);
                CREATE INDEX item_sha256 ON item(sha256);
                CREATE INDEX item_parent ON item(parent_id);
                CREATE TABLE event (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    item_id INTEGER NOT NULL REFERENCES item(id),
                    at REAL NOT NULL,
                    from_state TEXT,
                    to_state TEXT NOT NULL,
                    detail TEXT NOT NULL
                );
                CREATE INDEX event_item ON event(item_id);
                """)
        }
        m.registerMigration("v2: claim order index") { db in
            // Rows of uploaded items stay for their history, so the table only
            // grows. This partial index holds just the pending items, already in
            // upload order, so a claim reads its first match instead of sorting.
            try db.execute(sql: """
                CREATE INDEX item_claim ON item(\(Spool.uploadOrder)) WHERE state <> 'uploaded'
                """)
        }
        m.registerMigration("v3: receipts and capture context") { db in
            // SQLite cannot change a CHECK constraint in place, so the item
            // table is rebuilt (GRDB defers foreign-key checks to the end of
            // the migration). New: the `received` state, a `health` kind (the
            // station's own health reports travel the same durable path), whether an uploaded
            // item waits for the hub's receipt, when it was received, the length
            // of what its upload sends when that is not the file (a DICOM
            // object), and what the station knew at capture time (device,
            // patient) as JSON.
            try db.execute(sql: """
                CREATE TABLE item_v3 (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL CHECK (kind IN ('image', 'preview', 'health')),
                    parent_id INTEGER REFERENCES item(id),
                    case_id TEXT NOT NULL,
                    site TEXT NOT NULL,
                    note TEXT NOT NULL,
                    priority TEXT NOT NULL CHECK (priority IN ('urgent', 'routine')),
                    captured_at REAL NOT NULL,
                    filename TEXT NOT NULL,
                    file TEXT NOT NULL UNIQUE,
                    sha256 TEXT NOT NULL,
                    size INTEGER NOT NULL CHECK (size >= 0),
                    state TEXT NOT NULL CHECK (state IN ('queued', 'uploading', 'uploaded', 'received', 'failed', 'held')),
                    upload_url TEXT,
                    acked_offset INTEGER NOT NULL DEFAULT 0,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    last_error TEXT,
                    retry_at REAL,
                    lease_owner TEXT,
                    lease_expires REAL,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL,
                    uploaded_at REAL,
                    file_deleted_at REAL,
                    awaiting_receipt INTEGER NOT NULL DEFAULT 0,
                    received_at REAL,
                    upload_length INTEGER CHECK (upload_length IS NULL OR upload_length >= 0),
                    context TEXT
                );
                INSERT INTO item_v3 (id, kind, parent_id, case_id, site, note, priority, captured_at, filename, file,
                                     sha256, size, state, upload_url, acked_offset, attempts, last_error, retry_at,
                                     lease_owner, lease_expires, created_at, updated_at, uploaded_at, file_deleted_at)
                    SELECT id, kind, parent_id, case_id, site, note, priority, captured_at, filename, file,
                           sha256, size, state, upload_url, acked_offset, attempts, last_error, retry_at,
                           lease_owner, lease_expires, created_at, updated_at, uploaded_at, file_deleted_at FROM item;
                DROP TABLE item;
                ALTER TABLE item_v3 RENAME TO item;
                CREATE INDEX item_state ON item(state);
                CREATE INDEX item_sha256 ON item(sha256);
                CREATE INDEX item_parent ON item(parent_id);
                CREATE INDEX item_claim ON item(\(Spool.uploadOrder)) WHERE \(Spool.pendingStates)
                """)
        }
        m.registerMigration("v4: health reports after images in upload order") { db in
            // `uploadOrder` now ranks kind 'health' after images; the claim
            // index must carry the same expression to serve the claim query.
            try db.execute(sql: """
                DROP INDEX item_claim;
                CREATE INDEX item_claim ON item(\(Spool.uploadOrder)) WHERE \(Spool.pendingStates)
                """)
        }
        return m
    }
}
