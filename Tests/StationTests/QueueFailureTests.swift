import Basics
import Config
import Crypto
import Foundation
import Hub
import Spool
import Testing
import TestSupport
import Uplink
@testable import Station

/// The outcome → queue mapping, one row per outcome.
@Suite struct UploadPlanTests {
    @Test func everyOutcomeHasItsCommandStepAndReport() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let later = now.addingTimeInterval(42)
        typealias W = UploadWorker
        let table: [(UploadOutcome, W.Plan)] = [
            (.completed(url: "u"), W.Plan(command: .markUploaded(awaitingReceipt: false), step: .uploaded(id: 7), change: .delivered)),
            (.retry(after: 42, reason: "503"),
             W.Plan(command: .markFailed(error: "503", retryAt: later), step: .willRetry(id: 7, at: later, reason: "503"),
                    change: .hubFailure("503", notBefore: later, problem: nil))),
            (.hold(reason: "too big"), W.Plan(command: .hold(reason: "too big"), step: .held(id: 7, reason: "too big"), change: .error("too big"))),
            (.authFailed(status: 401, reason: "token"),
             W.Plan(command: .markFailed(error: "token", retryAt: now.addingTimeInterval(600)),
                    step: .willRetry(id: 7, at: now.addingTimeInterval(600), reason: "token"),
                    change: .hubFailure("token", notBefore: now.addingTimeInterval(600), problem: .rejectedToken(status: 401)))),
            (.urlGone, W.Plan(command: .restart, step: .willRetry(id: 7, at: now, reason: "the hub no longer had the upload"))),
            (.recordFailed(reason: "EROFS"),
             W.Plan(command: .markFailed(error: "EROFS", retryAt: now.addingTimeInterval(30)),
                    step: .willRetry(id: 7, at: now.addingTimeInterval(30), reason: "EROFS"), change: .error("EROFS"))),
            (.cancelled, W.Plan(command: .release, step: .stopped)),
        ]
        for (outcome, expected) in table {
            #expect(W.plan(for: outcome, item: 7, now: now, authBackoff: 600) == expected, "\(outcome)")
        }
        // A hub that gives receipts: the item waits for one.
        #expect(W.plan(for: .completed(url: "u"), item: 7, now: now, authBackoff: 600, receipts: true)
                == W.Plan(command: .markUploaded(awaitingReceipt: true), step: .uploaded(id: 7), change: .delivered))
    }

    /// The receipt → queue mapping: filed is received, lost is sent again,
    /// refused is held; pending and no answer change nothing.
    @Test func everyReceiptHasItsCommand() {
        typealias W = UploadWorker
        let table: [(Uplink.Receipt, W.ReceiptCommand?)] = [
            (.filed(where: "pacs", detail: "filed in the PACS"), .received(detail: "filed in the PACS")),
            (.unknownUpload, .resend(reason: "the hub no longer knows the upload after its last byte; sending the image again")),
            (.rejected(detail: "not DICOM"), .hold(reason: "the hub refused to file the image: not DICOM")),
            (.pending(detail: "PACS down"), nil),
            (.unavailable(reason: "timeout"), nil),
        ]
        for (receipt, expected) in table {
            #expect(W.plan(for: receipt) == expected, "\(receipt)")
        }
    }
}

/// The queue's file system fails in the middle of an upload, as an SD card
/// does: ext4 hits an error and turns read-only (`errors=remount-ro`, forced
/// through the kernel's `trigger_fs_error`). The upload URL cannot be
/// recorded, so the upload must stop at once; after the card is checked and
/// mounted again every image reaches the hub exactly once.
@Suite(.serialized, .timeLimit(.minutes(4))) struct QueueFailureTests {
    static let root = getuid() == 0

    func sh(_ argv: [String]) throws -> ProcessResult { try ProcessRunner.env(argv) }

    @Test(.enabled(if: root, "mounts an ext4 image on a loop device and triggers a file system error: needs root"))
    func aQueueThatTurnsReadOnlyMidUploadLosesNothingAndSendsNothingTwice() async throws {
        let dir = NSTemporaryDirectory() + "telestation-rofs-\(UUID().uuidString)"
        let image = dir + "/sd.img", mnt = dir + "/mnt", hubDir = dir + "/hub"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: hubDir, withIntermediateDirectories: true)
        defer {
            _ = try? sh(["umount", "-l", mnt])
            try? FileManager.default.removeItem(atPath: dir)
        }
        #expect(try sh(["truncate", "-s", "64M", image]).status == 0)
        #expect(try sh(["mkfs.ext4", "-q", "-F", image]).status == 0)
        let mounted = try sh(["mount", "-o", "loop,errors=remount-ro", image, mnt])
        try #require(mounted.status == 0, "mount: \(mounted.stderr)")
        let device = try sh(["findmnt", "-n", "-o", "SOURCE", mnt]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let trigger = "/sys/fs/ext4/\((device as NSString).lastPathComponent)/trigger_fs_error"
        try #require(FileManager.default.fileExists(atPath: trigger), "no \(trigger) for \(device)")

        let key = SpoolKey(key: SymmetricKey(size: .bits256), source: "test")
        func openSpool() throws -> Spool {
            try Spool(directory: mnt + "/spool", databasePath: mnt + "/queue.sqlite", minFree: 0, protection: .encrypted(key))
        }
        let hub = try await HubServer(store: HubStore(directory: hubDir)).start()
        defer { Task { await hub.stop() } }
        let url = "http://127.0.0.1:\(hub.port)/files/"
        var images: [String: Data] = [:]

        do {
            let spool = try openSpool()
            for i in 0..<3 {
                let bytes = Data((0..<60_000).map { _ in UInt8.random(in: 0...255) })
                _ = try spool.enqueue(imageData: bytes, preview: nil,
                                          metadata: ItemMetadata(caseID: "4000000\(i)", site: "other", note: "", priority: .routine,
                                                                 capturedAt: Date(timeIntervalSince1970: 1_800_000_000 + Double(i)),
                                                                 filename: "x\(i).jpg"))
                images[SHA256.hash(data: bytes).hex] = bytes
            }
            // Slow enough that the creating POST (min_chunk, 16 KiB) is still on
            // its way when the card fails.
            let client = try TusClient(hubURL: url)
            client.setMaxRate(8 * 1024)
            let worker = UploadWorker(spool: spool, client: client, station: "ps-rofs", leaseSeconds: 2)
            let step = Task { await worker.step() }
            let deadline = ContinuousClock.now + .seconds(20)
            while try spool.status().pending.allSatisfy({ $0.state != .uploading }), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            try "1".write(toFile: trigger, atomically: false, encoding: .utf8)
            let result = await step.value
            guard case let .willRetry(_, _, reason) = result else {
                Issue.record("the upload went on with a queue that cannot record it: \(result)")
                return
            }
            #expect(reason.contains("record"), "\(reason)")
            #expect(worker.queueError != nil, "the failure is shown")
            #expect(await worker.pendingCount() != 0)
        }

        // The technician's fix: unmount, check, mount again; the station restarts.
        let unmounted = try sh(["umount", mnt])
        if unmounted.status != 0 { _ = try sh(["umount", "-l", mnt]) }
        let fsck = try sh(["e2fsck", "-f", "-y", image])
        #expect(fsck.status <= 1, "e2fsck: \(fsck.stdout) \(fsck.stderr)")
        try #require(try sh(["mount", "-o", "loop,errors=remount-ro", image, mnt]).status == 0)

        let spool = try openSpool()
        let worker = UploadWorker(spool: spool, client: try TusClient(hubURL: url), station: "ps-rofs", leaseSeconds: 2)
        #expect(await worker.drain(deadline: Date().addingTimeInterval(60)), "everything delivered after the fix")
        #expect(try spool.allItems().allSatisfy { $0.state == .uploaded })

        // On the hub: each image exactly once, byte for byte; the cut-off upload never completed.
        let stored = try FileManager.default.contentsOfDirectory(atPath: hubDir).filter { !$0.hasPrefix(".") && !$0.hasSuffix(".json") }
        var seen: [String: Int] = [:]
        for name in stored {
            let data = try Data(contentsOf: URL(fileURLWithPath: hubDir + "/" + name))
            seen[SHA256.hash(data: data).hex, default: 0] += 1
        }
        #expect(seen.count == images.count, "every image on the hub: \(seen)")
        #expect(seen.values.allSatisfy { $0 == 1 }, "none twice: \(seen)")
        #expect(Set(seen.keys) == Set(images.keys))
    }
}
