import Basics
import Foundation
import Logging
import Sneakernet
#if canImport(Glibc)
import Glibc
#endif

/// `telestation-hub import DIR`: files the items of every bundle on a stick
/// exactly as if they had been uploaded (same SHA-256 check, same record,
/// same DICOM filing by the running hub), skipping what the hub already
/// holds, and writes signed receipts back into each bundle.
public struct StickImport: Sendable {
    public let store: HubStore
    public let registry: StationRegistry
    public let keys: HubKeyPair
    public let logger: Logger

    public init(store: HubStore, keys: HubKeyPair, logger: Logger = Logger(label: "telestation-hub")) {
        self.store = store
        self.registry = StationRegistry(directory: store.directory)
        self.keys = keys
        self.logger = logger
    }

    /// What happened to one bundle.
    public struct Outcome: Sendable, Equatable {
        public var bundle: String
        public var station: String?
        public var filed = 0
        public var alreadyHeld = 0
        public var refusedItems: [String] = []
        /// Why the whole bundle was refused (nothing of it was filed).
        public var refused: String?
        /// Receipts could not be written back (the stick is read-only or was pulled).
        public var receiptsError: String?

        public var line: String {
            if let refused { return "\(bundle): refused — \(refused)" }
            var s = "\(bundle) from station \(station ?? "?"): \(filed) filed, \(alreadyHeld) already held"
            if !refusedItems.isEmpty { s += ", \(refusedItems.count) refused (\(refusedItems.joined(separator: "; ")))" }
            s += receiptsError.map { "; receipts NOT written: \($0)" } ?? "; receipts written to the stick"
            return s
        }
    }

    public struct Report: Sendable, Equatable {
        public var bundles: [Outcome]
        /// `.partial-` bundles: a stick pulled while the station was writing.
        public var unfinished: [String]
    }

    public func run(root: String) async -> Report {
        let (complete, unfinished) = StickBundle.list(root: root)
        var outcomes: [Outcome] = []
        for path in complete {
            outcomes.append(await importBundle(path))
        }
        return Report(bundles: outcomes, unfinished: unfinished.map { ($0 as NSString).lastPathComponent })
    }

    /// The signing key the hub holds for a station, or why there is none.
    func stationKey(_ station: String) -> Result<String, SneakernetError> {
        guard let record = registry.stations()[station] else {
            return .failure(SneakernetError(.refused, "station \(station) is not known at this hub",
                                            nextStep: "enrol it (telestation-hub enroll \(station)) and let it reach the hub once over the link, which tells the hub its key"))
        }
        if let revoked = record.revokedAt {
            return .failure(SneakernetError(.refused, "the credential of station \(station) was revoked on \(HubDate.iso(revoked)); its bundles are refused",
                                            nextStep: "enrol the station again if it is trusted, then export again"))
        }
        guard let key = record.signingKey else {
            return .failure(SneakernetError(.refused, "the hub does not know station \(station)'s signing key yet",
                                            nextStep: "the station tells it with its first upload over the link; until then its bundles cannot be checked"))
        }
        return .success(key)
    }

    func importBundle(_ path: String) async -> Outcome {
        let name = (path as NSString).lastPathComponent
        var outcome = Outcome(bundle: name)
        let reader: BundleReader
        do {
            reader = try BundleReader(path: path, hubKeys: keys, stationKey: stationKey)
        } catch {
            outcome.refused = error.description
            logger.warning("bundle refused", metadata: ["bundle": "\(name)", "reason": "\(error)"])
            return outcome
        }
        let station = reader.manifest.station
        outcome.station = station
        var entries: [StickReceipts.Entry] = []
        for item in reader.items {
            var metadata = item.metadataDictionary
            guard metadata["station"] == station else {
                outcome.refusedItems.append("\(item.item): names station \(metadata["station"] ?? "(none)")")
                entries.append(.init(item: item.item, status: .refused, detail: "the item names another station"))
                continue
            }
            // The name the hub knows the item by whichever way it comes.
            metadata["item"] = item.item
            let temp = (store.directory as NSString).appendingPathComponent(".incoming/import-\(UUID().uuidString.lowercased()).part")
            do {
                try reader.extract(item, to: temp)
                switch try await store.fileImported(temp: temp, metadata: metadata, length: item.length, sha256: item.sha256, bundle: name) {
                case let .filed(info):
                    outcome.filed += 1
                    entries.append(.init(item: item.item, status: .filed, detail: "filed from the stick as \(info.storedAs ?? info.id)", upload: info.id))
                case let .alreadyHeld(info):
                    outcome.alreadyHeld += 1
                    entries.append(.init(item: item.item, status: .alreadyHeld, detail: "the hub already held it", upload: info.id))
                }
            } catch {
                unlink(temp)
                outcome.refusedItems.append("\(item.item): \(error)")
                entries.append(.init(item: item.item, status: .refused, detail: "\(error)"))
            }
        }
        let receipts = StickReceipts(bundle: name, station: station, writtenAt: Date(), hubKey: keys.publicKeys.fingerprint, items: entries)
        do { try receipts.write(into: path, signer: keys.signing) } catch {
            outcome.receiptsError = error.description
        }
        logger.info("bundle imported", metadata: ["bundle": "\(name)", "station": "\(station)", "filed": "\(outcome.filed)",
                                                  "already_held": "\(outcome.alreadyHeld)", "refused": "\(outcome.refusedItems.count)"])
        return outcome
    }
}
