import Crypto
import Foundation
import Hub
import Sneakernet
import Testing

/// Each station is itself at the hub, over real HTTP: its own token, refused
/// when it names another station or touches another's upload, refused once
/// revoked; and one copy of an item whichever way it arrives (upload, stick,
/// or both), with the stick's bundles checked against the key the station
/// told the hub with its uploads.
@Suite struct StationCredentialTests {
    static let tus = ["Tus-Resumable": "1.0.0"]

    static func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }
    static func hex(_ b: [UInt8]) -> String { SHA256.hash(data: b).map { String(format: "%02x", $0) }.joined() }

    static func metadata(station: String, item: String, bytes: [UInt8], key: String? = nil) -> String {
        var pairs = ["filename \(b64("\(item).jpg"))", "station \(b64(station))", "item \(b64(item))", "sha256 \(b64(hex(bytes)))"]
        if let key { pairs.append("station_key \(b64(key))") }
        return pairs.joined(separator: ",")
    }

    func headers(_ token: String?, _ more: [String: String] = [:]) -> [String: String] {
        var h = Self.tus.merging(more) { $1 }
        if let token { h["Authorization"] = "Bearer \(token)" }
        return h
    }

    /// POST with the whole file inside (creation-with-upload).
    func upload(_ hub: RunningHub, token: String?, station: String, item: String, bytes: [UInt8], key: String? = nil) async throws -> RawResponse {
        try await raw(hub.port, "POST", "/files/", headers: headers(token, [
            "Upload-Length": "\(bytes.count)", "Upload-Metadata": Self.metadata(station: station, item: item, bytes: bytes, key: key),
            "Content-Type": "application/offset+octet-stream",
        ]), body: bytes)
    }

    func storedCount(_ dir: TempDir) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") && $0.count > 40 }.count
    }

    @Test func eachStationActsOnlyAsItself() async throws {
        let dir = try TempDir()
        let store = try HubStore(directory: dir.path)
        let registry = StationRegistry(directory: dir.path)
        let tokenA = try registry.enroll("ps-a"), tokenB = try registry.enroll("ps-b")
        let hub = try await HubServer(store: store).start()
        defer { Task { await hub.stop() } }
        let bytes = Array("an image of ps-a".utf8)

        // Its own token, its own name: stored.
        let ok = try await upload(hub, token: tokenA, station: "ps-a", item: "a1", bytes: bytes)
        #expect(ok.status == 201, "\(ok.body)")
        #expect(ok["upload-offset"] == "\(bytes.count)")
        // ps-b's token naming ps-a: refused, and said why.
        let spoof = try await upload(hub, token: tokenB, station: "ps-a", item: "a2", bytes: bytes + [1])
        #expect(spoof.status == 403)
        #expect(spoof.body.contains("impersonation: this credential belongs to station ps-b"))
        #expect(spoof["telestation-refusal"] == "impersonation")
        // ps-b asking ps-a's upload or its receipt: as if it did not exist.
        let location = try #require(ok["location"])
        #expect(try await raw(hub.port, "HEAD", location, headers: headers(tokenB)).status == 404)
        #expect(try await raw(hub.port, "GET", location + "/receipt", headers: headers(tokenB)).status == 404)
        #expect(try await raw(hub.port, "HEAD", location, headers: headers(tokenA)).status == 200)
        #expect(try await raw(hub.port, "GET", location + "/receipt", headers: headers(tokenA)).status == 200)
        // No token, or a made-up one: 401.
        #expect(try await upload(hub, token: nil, station: "ps-a", item: "a3", bytes: bytes).status == 401)
        #expect(try await upload(hub, token: "ts1.made-up", station: "ps-a", item: "a3", bytes: bytes).status == 401)
        #expect(try storedCount(dir) == 1)

        // Revoked while the hub runs: refused at once with the reason.
        try registry.revoke("ps-a")
        let revoked = try await upload(hub, token: tokenA, station: "ps-a", item: "a4", bytes: bytes + [2])
        #expect(revoked.status == 403)
        #expect(revoked.body.contains("revoked: the hub's operators revoked the credential of station ps-a"))
        #expect(revoked["telestation-refusal"] == "revoked")
        #expect(try await raw(hub.port, "GET", location + "/receipt", headers: headers(tokenA)).status == 403)
        // Enrolled again: a new token works, the old one does not.
        let tokenA2 = try registry.enroll("ps-a")
        #expect(try await upload(hub, token: tokenA, station: "ps-a", item: "a5", bytes: bytes + [3]).status == 401)
        #expect(try await upload(hub, token: tokenA2, station: "ps-a", item: "a5", bytes: bytes + [3]).status == 201)
        // Only hashes of tokens are on disk.
        let onDisk = try String(contentsOfFile: registry.path, encoding: .utf8)
        #expect(!onDisk.contains(tokenA2) && !onDisk.contains(tokenB))
    }

    @Test func theHubLearnsAStationsKeyFromItsOwnUploadsOnly() async throws {
        let dir = try TempDir()
        let store = try HubStore(directory: dir.path)
        let registry = StationRegistry(directory: dir.path)
        let tokenA = try registry.enroll("ps-a"), tokenB = try registry.enroll("ps-b")
        let hub = try await HubServer(store: store).start()
        defer { Task { await hub.stop() } }
        let keyA = StationSigningKey().publicKeyBase64, other = StationSigningKey().publicKeyBase64
        // ps-b cannot plant a key for ps-a (its upload is refused anyway).
        _ = try await upload(hub, token: tokenB, station: "ps-a", item: "x", bytes: [1], key: other)
        #expect(registry.stations()["ps-a"]?.signingKey == nil)
        #expect(try await upload(hub, token: tokenA, station: "ps-a", item: "y", bytes: [2], key: keyA).status == 201)
        #expect(registry.stations()["ps-a"]?.signingKey == keyA)
        // A later, different key does not replace it (a station with a new key is enrolled again).
        _ = try await upload(hub, token: tokenA, station: "ps-a", item: "z", bytes: [3], key: other)
        #expect(registry.stations()["ps-a"]?.signingKey == keyA)
    }

    @Test func anItemIsKeptOnceWhicheverWayItComes() async throws {
        let dir = try TempDir()
        let store = try HubStore(directory: dir.path)
        let station = StationSigningKey()
        let registry = StationRegistry(directory: dir.path)
        let token = try registry.enroll("ps-a")
        let server = HubServer(store: store)
        let hubKeys = try #require(server.keys)
        let hub = try await server.start()
        defer { Task { await hub.stop() } }
        // The OPTIONS answer tells stations the hub's keys.
        let options = try await raw(hub.port, "OPTIONS", "/files/", headers: Self.tus)
        #expect(try HubPublicKeys.parse(try #require(options["telestation-hub-keys"])).get() == hubKeys.publicKeys)

        let one = Array("first image".utf8), two = Array("second image, not yet sent".utf8)
        // Uploaded over the link (which also tells the hub the station's key).
        #expect(try await upload(hub, token: token, station: "ps-a", item: "i1", bytes: one, key: station.publicKeyBase64).status == 201)
        // Both on a stick.
        let stick = dir.path + "-stick"
        try FileManager.default.createDirectory(atPath: stick, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: stick) }
        func source(_ item: String, _ bytes: [UInt8]) -> BundleItemSource {
            BundleItemSource(item: item, metadata: [("filename", "\(item).jpg"), ("station", "ps-a"), ("sha256", Self.hex(bytes))],
                             length: Int64(bytes.count), sha256: Self.hex(bytes)) { o, c in Array(bytes[Int(o)..<Int(o) + c]) }
        }
        let written = try BundleWriter(station: "ps-a", stationKey: station, hubKeys: hubKeys.publicKeys)
            .write([source("i1", one), source("i2", two)], root: stick)
        let importer = StickImport(store: store, keys: hubKeys)
        let first = await importer.run(root: stick)
        #expect(first.bundles.map(\.filed) == [1])
        #expect(first.bundles.map(\.alreadyHeld) == [1])
        #expect(try storedCount(dir) == 2)
        // The same stick again: nothing new.
        let again = await importer.run(root: stick)
        #expect(again.bundles.map(\.alreadyHeld) == [2])
        #expect(try storedCount(dir) == 2)
        let receipts = try #require(try StickReceipts.read(bundlePath: written.path, hubKeys: hubKeys.publicKeys))
        #expect(Set(receipts.items.map(\.item)) == ["i1", "i2"])
        // The link returns before the receipts do: the creation is answered
        // "held", complete without a byte, and its receipt is the stored one's.
        let create = try await raw(hub.port, "POST", "/files/", headers: headers(token, [
            "Upload-Length": "\(two.count)", "Upload-Metadata": Self.metadata(station: "ps-a", item: "i2", bytes: two)]))
        #expect(create.status == 201)
        #expect(create["telestation-held"] != nil)
        let location = try #require(create["location"])
        #expect(try await raw(hub.port, "HEAD", location, headers: headers(token))["upload-offset"] == "\(two.count)")
        let receipt = try await raw(hub.port, "GET", location + "/receipt", headers: headers(token))
        #expect(receipt.status == 200, "\(receipt.body)")
        #expect(try storedCount(dir) == 2)
    }

    @Test func bundlesFromUnknownOrRevokedStationsAreRefused() async throws {
        let dir = try TempDir()
        let store = try HubStore(directory: dir.path)
        let keys = HubKeyPair()
        let registry = StationRegistry(directory: dir.path)
        let station = StationSigningKey()
        let stick = dir.path + "-stick"
        try FileManager.default.createDirectory(atPath: stick, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: stick) }
        let bytes: [UInt8] = [1, 2, 3]
        _ = try BundleWriter(station: "ps-x", stationKey: station, hubKeys: keys.publicKeys).write(
            [BundleItemSource(item: "i", metadata: [("station", "ps-x")], length: 3, sha256: Self.hex(bytes)) { _, _ in bytes }], root: stick)
        let importer = StickImport(store: store, keys: keys)
        #expect(await importer.run(root: stick).bundles.first?.refused?.contains("station ps-x is not known at this hub") == true)
        _ = try registry.enroll("ps-x")
        #expect(await importer.run(root: stick).bundles.first?.refused?.contains("does not know station ps-x's signing key yet") == true)
        #expect(registry.learnSigningKey(station.publicKeyBase64, station: "ps-x", identity: .station("ps-x")))
        try registry.revoke("ps-x")
        #expect(await importer.run(root: stick).bundles.first?.refused?.contains("was revoked") == true)
        #expect(try storedCount(dir) == 0)
    }
}
