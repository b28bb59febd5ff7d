import Basics
import Config
import Foundation
import Logging
import Sneakernet
import Spool
import Uplink

/// The keys for bundles on a USB stick, kept in the state directory: the hub's
/// public keys (learnt from its OPTIONS answer the first time the station
/// reaches it, or set in `uplink.hub_keys`) and the station's own signing key.
public struct StickKeys: Sendable {
    public let directory: String
    /// `uplink.hub_keys`: when set, it wins over what the hub said.
    public let configured: String?

    public init(directory: String, configured: String? = nil) {
        self.directory = directory
        self.configured = configured
    }

    var hubKeysPath: String { (directory as NSString).appendingPathComponent("hub-keys") }
    var signingPath: String { (directory as NSString).appendingPathComponent("station-signing.key") }

    /// The hub's keys, or nil when the station never reached a hub that has them.
    public func hubKeys() throws(SneakernetError) -> HubPublicKeys? {
        if let configured {
            return try HubPublicKeys.parse(configured).get()
        }
        guard let data = FileManager.default.contents(atPath: hubKeysPath) else { return nil }
        return try HubPublicKeys.parse(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)).get()
    }

    /// Keeps the keys the hub announced, when they are new.
    public func remember(_ header: String, logger: Logger) {
        guard case let .success(keys) = HubPublicKeys.parse(header) else {
            logger.warning("the hub announced keys that cannot be read; keeping the ones known", metadata: ["value": "\(header.prefix(80))"])
            return
        }
        if let known = try? hubKeys(), known == keys { return }
        do {
            try DurableFile.write(Array((keys.headerValue + "\n").utf8), to: hubKeysPath, mode: 0o644)
            logger.notice("learnt the hub's keys; bundles for a USB stick can be written from now on", metadata: ["fingerprint": "\(keys.fingerprint)"])
        } catch {
            logger.warning("cannot keep the hub's keys: \(error)")
        }
    }

    public func signingKey() throws(SneakernetError) -> StationSigningKey {
        try StationSigningKey.loadOrCreate(path: signingPath)
    }

    var exportedPath: String { (directory as NSString).appendingPathComponent("exported-items") }

    /// Notes the items written to a stick: until their receipts come back,
    /// an upload of one asks the hub first whether it already holds it.
    public func recordExported(_ names: [String]) {
        guard let handle = FileHandle(forWritingAtPath: exportedPath) ?? {
            FileManager.default.createFile(atPath: exportedPath, contents: nil)
            return FileHandle(forWritingAtPath: exportedPath)
        }() else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: Data(names.map { $0 + "\n" }.joined().utf8))
        try? handle.synchronize()
    }

    /// Whether an item was written to a stick (a line of `exported-items`).
    public func wasExported(_ name: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: exportedPath) else { return false }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").contains { $0 == name }
    }
}

extension StickKeys {
    /// A station's own: in its state directory beside the queue's database
    /// (never the spool directory, whose every file is taken for an item),
    /// unless `uplink.hub_keys` names the hub's.
    public init(config: StationConfig) {
        self.init(directory: config.station.stateDir, configured: config.uplink.hubKeys)
    }
}

/// `telestation export DIR`: every item the hub has not confirmed, as one
/// bundle on the stick, in the form it would be uploaded (the DICOM object
/// when DICOM is on), sealed for the hub. Nothing changes in the queue: the
/// items stay owed until receipts come back (by stick or over the link).
public struct StickExport: Sendable {
    public let spool: Spool
    public let station: String
    public let keys: StickKeys
    public let transform: UploadWorker.Transform?

    public init(spool: Spool, station: String, keys: StickKeys, transform: UploadWorker.Transform?) {
        self.spool = spool
        self.station = station
        self.keys = keys
        self.transform = transform
    }

    /// The station's export: its id, its keys, and each item in the form it
    /// is uploaded (the DICOM object when `[dicom]` is on).
    public init(spool: Spool, config: StationConfig) {
        self.init(spool: spool, station: config.station.id, keys: StickKeys(config: config), transform: DicomItem.transform(config: config))
    }

    /// Items the hub has not confirmed and whose files are here: queued,
    /// failing (and due again), being uploaded, or uploaded and waiting for a
    /// receipt. Health reports stay for the link; held items for a technician.
    public static func owed(_ items: [SpoolItem]) -> [SpoolItem] {
        items.filter { item in
            guard item.kind != .health, item.fileDeletedAt == nil else { return false }
            switch item.state {
            case .queued, .uploading: return true
            case .failed: return item.lifecycle.retryAt != nil
            case .uploaded: return item.awaitingReceipt
            case .received, .held: return false
            }
        }
    }

    public func export(to root: String, now: Date = Date(), progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) async throws -> BundleWriter.Written {
        guard let hubKeys = try keys.hubKeys() else {
            throw SneakernetError(.refused, "the station does not know the hub's keys yet, so it cannot seal a bundle for it",
                                  nextStep: "let the station reach the hub once over the link (any upload or `telestation diagnose` teaches it), or set uplink.hub_keys to the value `telestation-hub keys` prints")
        }
        let signing = try keys.signingKey()
        let items = Self.owed(try await spool.perform { try $0.allItems() })
        var sources: [BundleItemSource] = []
        for item in items {
            let prepared: UploadWorker.Prepared? = if let transform, item.kind == .image {
                try await spool.perform { try transform(item, $0) }
            } else { nil }
            let metadata = UploadWorker.metadata(for: item, station: station, prepared: prepared, stationKey: signing.publicKeyBase64)
            if let prepared {
                let bytes = prepared.bytes
                sources.append(BundleItemSource(item: item.itemName, metadata: metadata.pairs, length: Int64(bytes.count),
                                                sha256: metadata.sha256) { o, c in Array(bytes[Int(o)..<Int(o) + c]) })
            } else {
                let file = try await spool.perform { try $0.openFile(item) }
                sources.append(BundleItemSource(item: item.itemName, metadata: metadata.pairs, length: file.size,
                                                sha256: item.sha256) { o, c in try file.read(at: o, count: c) })
            }
        }
        keys.recordExported(sources.map(\.item))
        let writer = BundleWriter(station: station, stationKey: signing, hubKeys: hubKeys)
        let total = sources.count
        let all = sources
        return try await Blocking.run { () throws(SneakernetError) in
            try writer.write(all, root: root, now: now) { progress($0, total) }
        }
    }
}

/// `telestation import-receipts DIR`: reads the receipts the hub wrote into
/// this station's bundles and marks those items received, so nothing the
/// hub holds is sent again.
public struct StickReceiptImport: Sendable {
    public let spool: Spool
    public let station: String
    public let keys: StickKeys

    public init(spool: Spool, station: String, keys: StickKeys) {
        self.spool = spool
        self.station = station
        self.keys = keys
    }

    public init(spool: Spool, config: StationConfig) {
        self.init(spool: spool, station: config.station.id, keys: StickKeys(config: config))
    }

    public struct Report: Sendable, Equatable {
        public var bundles = 0
        /// Bundles of this station the hub has not imported yet.
        public var waiting: [String] = []
        public var marked = 0
        public var alreadyReceived = 0
        /// Items the hub refused; they stay queued.
        public var refused: [String] = []
        /// Bundles whose receipts were not believed.
        public var errors: [String] = []
    }

    public func run(root: String, now: Date = Date()) async throws -> Report {
        guard let hubKeys = try keys.hubKeys() else {
            throw SneakernetError(.refused, "the station does not know the hub's keys, so it cannot check receipts",
                                  nextStep: "let the station reach the hub once over the link, or set uplink.hub_keys")
        }
        var report = Report()
        let items = try await spool.perform { try $0.allItems() }
        var byName: [String: SpoolItem] = [:]
        for item in items { byName[item.itemName] = item }
        for path in StickBundle.list(root: root).complete {
            let name = (path as NSString).lastPathComponent
            let receipts: StickReceipts
            do {
                guard let read = try StickReceipts.read(bundlePath: path, hubKeys: hubKeys) else {
                    if Self.isOurs(path, station: station) { report.waiting.append(name) }
                    continue
                }
                receipts = read
            } catch {
                report.errors.append("\(name): \(error)")
                continue
            }
            guard receipts.station == station else { continue }
            report.bundles += 1
            for entry in receipts.items {
                guard let item = byName[entry.item] else { continue }
                switch entry.status {
                case .refused:
                    report.refused.append("\(entry.item): \(entry.detail)")
                case .filed, .alreadyHeld:
                    if item.state == .received {
                        report.alreadyReceived += 1
                        continue
                    }
                    let detail = "the hub holds it (receipt on USB stick, bundle \(name)): \(entry.detail)"
                    try await spool.perform { try $0.markReceivedElsewhere(id: item.id, detail: detail, now: now) }
                    report.marked += 1
                }
            }
        }
        return report
    }

    static func isOurs(_ path: String, station: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: (path as NSString).appendingPathComponent("manifest.json")),
              let manifest = try? JSONDecoder().decode(StickBundle.Manifest.self, from: data) else { return false }
        return manifest.station == station
    }
}
