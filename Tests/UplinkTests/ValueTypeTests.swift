import Config
import Foundation
import Testing
@testable import Uplink

@Suite struct BackoffTests {
    @Test func fullJitterWindowDoublesUpToTheCap() {
        var b = Backoff(base: 1, cap: 10)
        #expect(b.nextDelay(random: 0.999) < 1.0 + 1e-9)
        #expect(b.window == 2)
        #expect(b.nextDelay(random: 0.5) == 1)
        #expect(b.nextDelay(random: 0.5) == 2)
        #expect(b.nextDelay(random: 0.5) == 4)
        #expect(b.nextDelay(random: 0.5) == 5, "window capped at 10")
        #expect(b.nextDelay(random: 0) == 0, "full jitter can retry at once")
    }

    @Test func progressResetsTheCounter() {
        var b = Backoff(base: 1, cap: 600)
        b.observe(offset: 100)
        for _ in 0..<5 { _ = b.nextDelay(random: 0.5) }
        #expect(b.window == 32)
        b.observe(offset: 100)
        #expect(b.window == 32, "no progress, no reset")
        b.observe(offset: 200)
        #expect(b.failures == 0)
        #expect(b.window == 1)
    }

    @Test func retryAfterIsALowerBoundWithinTheCap() {
        var b = Backoff(base: 1, cap: 60)
        #expect(b.nextDelay(retryAfter: 30, random: 0.1) == 30)
        #expect(b.nextDelay(retryAfter: 3600, random: 0.1) == 60)
        #expect(b.nextDelay(retryAfter: -1, random: 0.5) == 2)
    }

    @Test func manyStationsSpreadTheirRetries() {
        // After an outage, 200 stations at the same failure count must not come back together.
        var delays: [Double] = []
        for _ in 0..<200 {
            var b = Backoff(base: 1, cap: 600)
            for _ in 0..<6 { _ = b.nextDelay() }
            delays.append(b.nextDelay())
        }
        let within5s = delays.filter { $0 < 5 }.count
        #expect(within5s < 40, "\(within5s) of 200 retried in the first 5 s of a 64 s window")
        #expect(delays.allSatisfy { $0 >= 0 && $0 <= 64 })
    }
}

@Suite struct AdaptiveChunkControllerTests {
    @Test func startsAt64KiBAndGrowsOnFastChunks() {
        var c = AdaptiveChunkController(minChunk: 16 << 10, maxChunk: 8 << 20, targetTime: 10)
        #expect(c.chunkSize == 64 << 10)
        c.chunkSucceeded(bytes: 64 << 10, seconds: 0.5)
        #expect(c.chunkSize == 128 << 10)
        for _ in 0..<20 { c.chunkSucceeded(bytes: c.chunkSize, seconds: 0.1) }
        #expect(c.chunkSize == 8 << 20, "bounded by max_chunk")
    }

    @Test func holdsSteadyNearTheTarget() {
        var c = AdaptiveChunkController(targetTime: 10, initial: 256 << 10)
        c.chunkSucceeded(bytes: 256 << 10, seconds: 5)
        #expect(c.chunkSize == 256 << 10)
    }

    /// Where the hub keeps what arrived, chunks aim at three target times
    /// (30 s here) and grow until they take 80 % of that: a drop costs only
    /// the bytes in flight, and each chunk costs an idle round trip. Where a
    /// drop loses the chunk, one of 6 s (over half the 5 s aimed at) holds.
    @Test func keptPartialChunksGrowCloserToTheAim() {
        var kept = AdaptiveChunkController(minChunk: 16 << 10, maxChunk: 8 << 20, targetTime: 10, initial: 96_000)
        kept.partialChunksKept = true
        kept.chunkSucceeded(bytes: 96_000, seconds: 6)
        #expect(kept.chunkSize == 192_000, "doubled: 6 s is under 80 % of 30 s")
        kept.chunkSucceeded(bytes: 192_000, seconds: 12)
        #expect(kept.chunkSize == 384_000)
        kept.chunkSucceeded(bytes: 384_000, seconds: 24)
        #expect(kept.chunkSize == 384_000, "at 80 % of the aim it holds")
        kept.chunkSucceeded(bytes: 384_000, seconds: 48)
        #expect(kept.chunkSize == 192_000, "slower than the aim: halved, within what 30 s at 8 kB/s carries")
        var lost = AdaptiveChunkController(minChunk: 16 << 10, maxChunk: 8 << 20, targetTime: 10, initial: 96_000)
        lost.chunkSucceeded(bytes: 96_000, seconds: 6)
        #expect(lost.chunkSize == 96_000)
    }

    @Test func slowChunkShrinksToWhatFitsTheTarget() {
        var c = AdaptiveChunkController(minChunk: 16 << 10, maxChunk: 8 << 20, targetTime: 10, initial: 1 << 20)
        // 1 MiB in 40 s = 26 KB/s: half the target is ~131 KB.
        c.chunkSucceeded(bytes: 1 << 20, seconds: 40)
        #expect(c.chunkSize == Int64(Double(1 << 20) / 40 * 5))
    }

    @Test func failureHalvesDownToMinChunk() {
        var c = AdaptiveChunkController(minChunk: 16 << 10, maxChunk: 8 << 20, targetTime: 10)
        c.chunkFailed()
        #expect(c.chunkSize == 32 << 10)
        for _ in 0..<10 { c.chunkFailed() }
        #expect(c.chunkSize == 16 << 10)
        #expect(c.failureSpacing == nil, "failures without progress are not a drop rate")
    }

    @Test func frequentDropsKeepChunksSmallAndRecoveryLiftsTheCap() {
        var c = AdaptiveChunkController(minChunk: 16 << 10, maxChunk: 8 << 20, targetTime: 10, initial: 1 << 20)
        // A connection reset after every ~300 KB.
        for _ in 0..<5 {
            c.chunkSucceeded(bytes: 150_000, seconds: 0.5)
            c.chunkSucceeded(bytes: 150_000, seconds: 0.5)
            c.chunkFailed()
        }
        #expect(c.failureSpacing == 300_000)
        #expect(c.dropCap == 50_000, "a sixth of the bytes between drops")
        #expect(c.chunkSize <= 50_000)
        c.chunkSucceeded(bytes: c.chunkSize, seconds: 0.1)
        c.chunkSucceeded(bytes: c.chunkSize, seconds: 0.1)
        #expect(c.chunkSize == 50_000, "fast chunks do not grow past the drop cap")
        for _ in 0..<40 { c.chunkSucceeded(bytes: c.chunkSize, seconds: 0.1) }
        #expect(c.chunkSize > 1 << 20, "a long run without drops lifts the cap")
    }

    /// With the link measured, the cap is where idle round trips and lost
    /// half-chunks cost least: √(2 · rtt · rate · spacing), within a sixth
    /// and a half of the spacing.
    @Test func theDropCapBalancesRoundTripsAgainstLostChunks() {
        var c = AdaptiveChunkController(minChunk: 16 << 10, maxChunk: 8 << 20, targetTime: 10, initial: 1 << 20)
        for _ in 0..<5 {
            c.chunkSucceeded(bytes: 100_000, seconds: 6)
            c.chunkSucceeded(bytes: 100_000, seconds: 6)
            c.chunkFailed()
        }
        #expect(c.dropCap == 33_333, "a sixth before the link is measured")
        // 128 kbit/s, 600 ms round trips, a reset every 200 kB (the bench's link).
        c.roundTrip = 0.6
        c.rate = 16_000
        #expect(c.dropCap == 61_967, "√(2 · 0.6 · 16000 · 200000)")
        // A LAN: the sixth is the floor.
        c.roundTrip = 0.0001
        c.rate = 10_000_000
        #expect(c.dropCap == 33_333)
        // A long round trip on a fast link: at most half the spacing.
        c.roundTrip = 2
        c.rate = 1_000_000
        #expect(c.dropCap == 100_000)
    }

    @Test func noDropCapWhenTheHubKeepsPartialChunks() {
        var c = AdaptiveChunkController(minChunk: 16 << 10, maxChunk: 8 << 20, targetTime: 10, initial: 1 << 20)
        c.partialChunksKept = true
        c.chunkSucceeded(bytes: 100_000, seconds: 1)
        c.chunkFailed()
        #expect(c.failureSpacing == 100_000)
        #expect(c.dropCap == 8 << 20)
        #expect(c.chunkSize == 1 << 20, "a drop that costs only the bytes in flight does not shrink the chunk")
    }

    @Test func shortTailChunkDoesNotCountAsEvidence() {
        var c = AdaptiveChunkController(targetTime: 10)
        c.chunkSucceeded(bytes: 1000, seconds: 0.01)
        #expect(c.chunkSize == 64 << 10)
    }

    @Test func configuredFromStationConfig() {
        var u = StationConfig().uplink
        u.minChunk = 100_000
        u.maxChunk = 50_000
        u.targetChunkTime = 3
        let c = AdaptiveChunkController(uplink: u)
        #expect(c.minChunk == 100_000)
        #expect(c.maxChunk == 100_000, "a max below the min is raised to it")
        #expect(c.chunkSize == 100_000)
        #expect(c.targetTime == 3)
    }
}

@Suite struct LinkEstimateTests {
    @Test func ewmaFollowsSamples() {
        var e = LinkEstimate(alpha: 0.5)
        #expect(e.throughput == nil)
        e.addThroughput(bytes: 1000, seconds: 1)
        #expect(e.throughput == 1000)
        e.addThroughput(bytes: 3000, seconds: 1)
        #expect(e.throughput == 2000)
        e.addRTT(0.3)
        e.addRTT(0.5)
        #expect(abs(e.rtt! - 0.4) < 1e-9)
        e.addRTT(-1)
        e.addThroughput(bytes: 10, seconds: 0)
        #expect(abs(e.rtt! - 0.4) < 1e-9 && e.throughput == 2000, "nonsense samples are ignored")
        #expect(e.description.contains("16.0 kbit/s"))
    }
}

@Suite struct MetadataAndSourceTests {
    @Test func metadataHeaderCarriesEveryField() {
        let m = UploadMetadata(filename: "img 1.jpg", station: "st-01", caseID: "C-7", site: "left forearm",
                               priority: "urgent", kind: .preview, capturedAt: Date(timeIntervalSince1970: 1_700_000_000),
                               sha256: String(repeating: "ab", count: 32))
        var decoded: [String: String] = [:]
        for pair in m.headerValue.split(separator: ",") {
            let kv = pair.split(separator: " ")
            decoded[String(kv[0])] = String(decoding: Data(base64Encoded: String(kv[1]))!, as: UTF8.self)
        }
        #expect(decoded["filename"] == "img 1.jpg")
        #expect(decoded["filetype"] == "image/jpeg")
        #expect(decoded["case"] == "C-7")
        #expect(decoded["site"] == "left forearm")
        #expect(decoded["kind"] == "preview")
        #expect(decoded["captured_at"] == "2023-11-14T22:13:20Z")
        #expect(decoded.count == 9)
    }

    @Test func fileSourceReadsRangesWithoutLoadingTheFile() throws {
        let dir = try TempDir()
        let path = dir.file("a.bin")
        let bytes = (0..<100_000).map { UInt8($0 % 251) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let s = try FileUploadSource(path: path)
        #expect(s.size == 100_000)
        #expect(try s.read(at: 99_990, count: 100) == Array(bytes[99_990...]))
        #expect(try s.read(at: 5, count: 3) == [5, 6, 7])
        #expect(try s.read(at: 100_000, count: 10) == [])
        #expect(throws: UplinkError.self) { try s.read(at: 100_001, count: 1) }
        let missing = #expect(throws: UplinkError.self) { try FileUploadSource(path: dir.file("nope")) }
        #expect(missing?.message.contains("No such file") == true)
    }
}
