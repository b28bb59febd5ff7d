import Basics
@preconcurrency import Crypto
import Foundation

/// What the hub's import writes back into a bundle (`receipts.json`, signed
/// in `receipts.sig` with the hub's Ed25519 key): for each item, whether the
/// hub now holds it. The station reads it (`telestation import-receipts`)
/// and stops sending what the hub holds. Item names and states only: no
/// patient data in the clear.
public struct StickReceipts: Codable, Sendable, Equatable {
    public static let format = "telestation-receipts 1"

    public enum Status: String, Codable, Sendable {
        /// Filed by this import.
        case filed
        /// The hub already held it (an earlier import, or the link).
        case alreadyHeld = "already_held"
        /// Not filed; the station keeps it and sends it again.
        case refused
    }

    public struct Entry: Codable, Sendable, Equatable {
        public var item: String
        public var status: Status
        public var detail: String
        /// The hub's upload id for the stored file (receipts over the link use it too).
        public var upload: String?

        public init(item: String, status: Status, detail: String, upload: String? = nil) {
            self.item = item
            self.status = status
            self.detail = detail
            self.upload = upload
        }
    }

    public var format: String = Self.format
    public var bundle: String
    public var station: String
    public var writtenAt: String
    public var hubKey: String
    public var items: [Entry]

    enum CodingKeys: String, CodingKey {
        case format, bundle, station, items
        case writtenAt = "written_at", hubKey = "hub_key"
    }

    public init(bundle: String, station: String, writtenAt: Date, hubKey: String, items: [Entry]) {
        self.bundle = bundle
        self.station = station
        self.writtenAt = StickBundle.isoNow(writtenAt)
        self.hubKey = hubKey
        self.items = items
    }

    /// Writes `receipts.json` and its signature into the bundle, each durably.
    public func write(into bundlePath: String, signer: Curve25519.Signing.PrivateKey) throws(SneakernetError) {
        let bytes = (try? StickBundle.encoder.encode(self)) ?? Data()
        let signature: Data
        do { signature = try signer.signature(for: bytes) } catch { throw SneakernetError(.key, "cannot sign the receipts: \(error)") }
        // The signature first: a receipts.json without its matching
        // signature is refused by the station, never believed.
        try DurableFile.write(Array(signature.base64EncodedString().utf8), to: (bundlePath as NSString).appendingPathComponent("receipts.sig"))
        try DurableFile.write(Array(bytes), to: (bundlePath as NSString).appendingPathComponent("receipts.json"))
    }

    /// Reads and checks the receipts in a bundle; nil when the hub has not written any yet.
    public static func read(bundlePath: String, hubKeys: HubPublicKeys) throws(SneakernetError) -> StickReceipts? {
        let name = (bundlePath as NSString).lastPathComponent
        guard let bytes = FileManager.default.contents(atPath: (bundlePath as NSString).appendingPathComponent("receipts.json")) else {
            return nil
        }
        guard let signature = StickBundle.readSignature((bundlePath as NSString).appendingPathComponent("receipts.sig")) else {
            throw SneakernetError(.bundle, "\(name)/receipts.json has no readable signature",
                                  nextStep: "import the bundle at the hub again; it rewrites the receipts")
        }
        guard hubKeys.signing.isValidSignature(signature, for: bytes) else {
            throw SneakernetError(.bundle, "\(name)/receipts.json is not signed by this station's hub (key \(hubKeys.fingerprint)): not believed",
                                  nextStep: "import the bundle at the station's own hub; the items stay queued")
        }
        let receipts: StickReceipts
        do { receipts = try JSONDecoder().decode(StickReceipts.self, from: bytes) } catch {
            throw SneakernetError(.bundle, "\(name)/receipts.json cannot be read: \(error)")
        }
        guard receipts.format == format, receipts.bundle == name else {
            throw SneakernetError(.bundle, "\(name)/receipts.json belongs to bundle \(receipts.bundle): swapped", nextStep: "import the bundle at the hub again")
        }
        return receipts
    }
}
