import Config
import Crypto
import Foundation
import Hub
import Recompression
import Spool
import Station
import Testing
import TestSupport
import Uplink

/// The shipping upload path (`UploadWorker` with `uplink.recompress`) against
/// the real hub, which rebuilds the camera's file, and against aiohttp-tus,
/// a plain tus server that must get the file as it is.
@Suite(.serialized) struct RecompressionUploadTests {
    struct Queued {
        var spool: Spool
        var images: [String: [UInt8]]   // sha256 → bytes, the full images
        var previews: [String: [UInt8]]
    }

    /// Two camera images (1280×720 4:2:2, as a UVC camera's YUYV becomes) with previews.
    static func queue(_ dir: TempDir) throws -> Queued {
        let spool = try Spool(directory: dir.file("spool"), databasePath: dir.file("queue.sqlite"), minFree: 0,
                              protection: .encrypted(SpoolKey(key: SymmetricKey(size: .bits256), source: "test")))
        var images: [String: [UInt8]] = [:], previews: [String: [UInt8]] = [:]
        for i in 0..<2 {
            let jpeg = try CameraJPEG.encode(.yuyv, width: 1280, height: 720, quality: 92, seed: UInt64(7 + i))
            let preview = try CameraJPEG.yuyv422(width: 160, height: 120, quality: 70)
            _ = try spool.enqueue(imageData: Data(jpeg), preview: Data(preview),
                                  metadata: ItemMetadata(caseID: "4000000\(i)", site: "arm_left", note: "", priority: .routine,
                                                         capturedAt: Date(timeIntervalSince1970: 1_800_000_000 + Double(i)),
                                                         filename: "lesion-\(i).jpg"))
            images[sha256Hex(jpeg)] = jpeg
            previews[sha256Hex(preview)] = preview
        }
        return Queued(spool: spool, images: images, previews: previews)
    }

    /// Every stored file and its record, read from the hub's directory.
    static func stored(_ dir: String) throws -> [(bytes: [UInt8], record: UploadInfo)] {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return try FileManager.default.contentsOfDirectory(atPath: dir)
            .filter { !$0.hasPrefix(".") && !$0.hasSuffix(".json") }
            .map { name in
                let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
                let record = try d.decode(UploadInfo.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/" + name + ".json")))
                return (bytes, record)
            }
    }

    @Test func theHubGetsFewerBytesAndStoresTheCamerasFile() async throws {
        let dir = try TempDir()
        let q = try Self.queue(dir)
        let hub = try await HubServer(store: HubStore(directory: dir.file("hub"))).start()
        defer { Task { await hub.stop() } }
        let client = try TusClient(hubURL: "http://127.0.0.1:\(hub.port)/files/", uplink: testUplink())
        let worker = UploadWorker(spool: q.spool, client: client, station: "ps-jxl", recompress: true)
        #expect(await worker.drain(deadline: Date().addingTimeInterval(60)))

        let stored = try Self.stored(dir.file("hub"))
        #expect(stored.count == 4)
        var sent = 0, original = 0
        for (bytes, record) in stored {
            let sha = sha256Hex(bytes)
            if let image = q.images[sha] {
                // The camera's file, bit for bit, rebuilt from fewer bytes.
                #expect(bytes == image)
                #expect(record.metadata["transport"] == "jxl")
                #expect(record.metadata["original_length"] == "\(image.count)")
                #expect(record.rebuiltLength == Int64(image.count))
                #expect(record.length < Int64(image.count) * 97 / 100, "sent \(record.length) for \(image.count)")
                #expect(record.sha256 == sha && record.sha256Verified == true)
                sent += Int(record.length); original += image.count
            } else {
                // Previews are below the size worth the encoder's time.
                #expect(q.previews[sha] == bytes)
                #expect(record.metadata["transport"] == nil)
            }
        }
        #expect(original > 0 && sent < original)
        print("recompressed on the wire: \(original) → \(sent) bytes (\(sent * 100 / max(original, 1)) %)")
    }

    /// With DICOM on, the JPEG inside the object is what gets recompressed,
    /// and the hub stores the object the station made.
    @Test func aDicomObjectIsRebuiltWithItsFragment() async throws {
        let dir = try TempDir()
        let q = try Self.queue(dir)
        let hub = try await HubServer(store: HubStore(directory: dir.file("hub"))).start()
        defer { Task { await hub.stop() } }
        var config = StationConfig()
        config.station.id = "ps-jxl"
        config.dicom.enabled = true
        let client = try TusClient(hubURL: "http://127.0.0.1:\(hub.port)/files/", uplink: testUplink())
        let worker = UploadWorker(spool: q.spool, client: client, station: "ps-jxl",
                                  transform: DicomItem.transform(config: config), recompress: true)
        #expect(await worker.drain(deadline: Date().addingTimeInterval(60)))

        let objects = try Self.stored(dir.file("hub")).filter { $0.record.isDICOM }
        #expect(objects.count == 2)
        for item in try q.spool.allItems() where item.kind == .image {
            let made = try DicomItem.make(item: item, spool: q.spool, config: config)
            let match = objects.first { $0.bytes == made }
            #expect(match != nil, "the hub holds the object the station makes for item \(item.id)")
            #expect(match?.record.metadata["transport"] == "jxl")
            #expect((match?.record.length ?? .max) < Int64(made.count))
            #expect(match?.record.dicomSOPInstanceUID != nil, "the rebuilt object is read as DICOM")
        }
    }

    /// Recompression off: the same hub gets the files as they are.
    @Test func offMeansTheFileAsItIs() async throws {
        let dir = try TempDir()
        let q = try Self.queue(dir)
        let hub = try await HubServer(store: HubStore(directory: dir.file("hub"))).start()
        defer { Task { await hub.stop() } }
        let client = try TusClient(hubURL: "http://127.0.0.1:\(hub.port)/files/", uplink: testUplink())
        let worker = UploadWorker(spool: q.spool, client: client, station: "ps-jxl", recompress: false)
        #expect(await worker.drain(deadline: Date().addingTimeInterval(60)))
        let stored = try Self.stored(dir.file("hub"))
        #expect(stored.count == 4)
        for (bytes, record) in stored {
            #expect(record.metadata["transport"] == nil)
            #expect(record.length == Int64(bytes.count))
        }
    }

    /// A plain tus server does not advertise the transport: nothing changes.
    @Test(.enabled(if: pythonWith(["aiohttp", "aiohttp_tus"]) != nil, "needs aiohttp and aiohttp-tus: `make deps-test` (python3-aiohttp, aiohttp-tus in .build/venv)"))
    func aPlainTusServerGetsTheFilesAsTheyAre() async throws {
        let dir = try TempDir()
        let q = try Self.queue(dir)
        let server = try ChildProcess("/usr/bin/env", ["python3", supportDirectory + "/aiohttp_tus_server.py", dir.file("tus")])
        defer { server.terminate() }
        let client = try TusClient(hubURL: "http://127.0.0.1:\(server.port)/uploads", uplink: testUplink())
        let worker = UploadWorker(spool: q.spool, client: client, station: "ps-jxl", recompress: true)
        #expect(await worker.drain(deadline: Date().addingTimeInterval(60)))
        #expect(client.status.capabilities?.transports.isEmpty == true)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.file("tus")).filter { $0.hasSuffix(".jpg") }
        #expect(files.count == 4)
        for name in files {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("tus/" + name))))
            #expect(q.images[sha256Hex(bytes)] != nil || q.previews[sha256Hex(bytes)] != nil, "\(name) is one of the queued files")
        }
    }
}
