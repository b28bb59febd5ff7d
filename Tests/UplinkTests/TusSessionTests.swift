import Foundation
import Testing
@testable import Uplink

// The upload session's rules, one transition per test, without I/O: each
// test feeds events and checks the actions and reports that come back.

private let hubURL = "https://hub.example.org/files/"
private let uploadURL = hubURL + "abc"
private let plain = TusCapabilities(extensions: ["creation"])
private let checksummed = TusCapabilities(extensions: ["creation", "checksum"], checksumAlgorithms: ["sha256"])
private let withUpload = TusCapabilities(extensions: ["creation", "creation-with-upload"])
private let reset = UplinkError(.transport, "curl_easy_perform: Failure when receiving data from the peer (Connection reset by peer)")

/// A quick exchange, and one that carried `n` body bytes.
private let quick = TusSession.Transfer(bytesSent: 0, seconds: 0.1, firstByte: 0.05)
private func sent(_ n: Int64, seconds: Double = 0.1) -> TusSession.Transfer {
    TusSession.Transfer(bytesSent: n, seconds: seconds, firstByte: 0)
}
/// A chunk cut after `n` bytes and a second on the way: many round trips of 0.05 s.
private func cut(_ n: Int64) -> TusSession.Transfer { sent(n, seconds: 1) }

private func hub(_ caps: TusCapabilities? = plain, chunk: Int64 = 64 << 10) -> TusHubState {
    TusHubState(chunk: AdaptiveChunkController(minChunk: 16 << 10, maxChunk: 8 << 20, targetTime: 10, initial: chunk),
                backoff: Backoff(base: 1, cap: 600))
        .with { $0.capabilities = caps }
}

/// A session with jitter fixed at the middle of the window.
private func session(size: Int64 = 200_000, url: String? = nil, acked: Int64 = 0, hub h: TusHubState = hub()) -> TusSession {
    TusSession(size: size, resumeURL: url, acknowledgedOffset: acked, hub: h, jitter: { 0.5 })
}

/// A session whose upload exists and whose offset is known to be `at`.
private func sending(size: Int64 = 200_000, at offset: Int64 = 0, hub h: TusHubState = hub()) -> TusSession {
    var s = session(size: size, url: uploadURL, acked: offset, hub: h)
    #expect(s.next() == .head)
    _ = s.receive(.answered(.offset(offset), quick))
    _ = s.takeReports()
    return s
}

extension TusHubState {
    fileprivate func with(_ change: (inout TusHubState) -> Void) -> TusHubState {
        var copy = self
        change(&copy)
        return copy
    }
}

@Suite struct TusSessionTests {
    // MARK: Capabilities

    @Test func asksOptionsOnceAndRemembersTheAnswer() {
        var s = session(hub: hub(nil))
        #expect(s.next() == .options)
        #expect(s.receive(.capabilities(plain, quick)) == .create(bodyCount: 0, checksum: nil))
        #expect(s.hub.capabilities == plain)
        #expect(s.hub.link.rtt == 0.05)
        var later = session(hub: s.hub)
        #expect(later.next() == .create(bodyCount: 0, checksum: nil), "the next upload does not ask again")
    }

    @Test func optionsAnswersThatEndTheCall() {
        func ending(_ response: TusResponse) -> UploadOutcome? {
            var s = session(hub: hub(nil))
            _ = s.next()
            guard case let .finish(outcome) = s.receive(TusSession.optionsEvent(response, quick, hubURL: hubURL)) else { return nil }
            return outcome
        }
        guard case let .authFailed(401, reason) = ending(TusResponse(status: 401)) else { Issue.record("401 not an auth failure"); return }
        #expect(reason.contains("hub.token_file"))
        #expect(ending(TusResponse(status: 503, headers: ["Retry-After": "7"])) == .retry(after: 7, reason: "the hub answered 503"))
        guard case let .hold(version) = ending(TusResponse(status: 204, headers: ["Tus-Version": "0.2.2", "Tus-Extension": "creation"])) else {
            Issue.record("a server without tus 1.0.0 did not hold"); return
        }
        #expect(version.contains("1.0.0"))
        guard case let .retry(_, maxSize) = ending(TusResponse(status: 204, headers: ["Tus-Version": "1.0.0", "Tus-Extension": "creation", "Tus-Max-Size": "lots"])) else {
            Issue.record("a broken Tus-Max-Size did not retry"); return
        }
        #expect(maxSize.contains("Tus-Max-Size"))
    }

    @Test func interruptedOptions() {
        var cancelled = session(hub: hub(nil))
        _ = cancelled.next()
        #expect(cancelled.receive(.interrupted(.cancelled)) == .finish(.cancelled))
        var paused = session(hub: hub(nil))
        _ = paused.next()
        #expect(paused.receive(.interrupted(.paused)) == .finish(.retry(after: 0.5, reason: "transfer stopped (paused)")))
    }

    @Test func tusMaxSizeHoldsBeforeCreating() {
        let small = hub(TusCapabilities(extensions: ["creation"], maxSize: 1000))
        var big = session(size: 1001, hub: small)
        guard case let .finish(.hold(reason)) = big.next() else { Issue.record("not held"); return }
        #expect(reason.contains("Tus-Max-Size"))
        var fits = session(size: 1000, hub: small)
        #expect(fits.next() == .create(bodyCount: 0, checksum: nil))
    }

    // MARK: Creation

    @Test func theCreatingPostCarriesAtMostMinChunkAndNeverTheLastByte() {
        var tiny = session(size: 10_000, hub: hub(withUpload))
        #expect(tiny.next() == .create(bodyCount: 9_999, checksum: nil))
        var large = session(size: 200_000, hub: hub(withUpload))
        #expect(large.next() == .create(bodyCount: 16 << 10, checksum: nil))
        var oneByte = session(size: 1, hub: hub(withUpload))
        #expect(oneByte.next() == .create(bodyCount: 0, checksum: nil))
        let both = TusCapabilities(extensions: ["creation", "creation-with-upload", "checksum"], checksumAlgorithms: ["sha1"])
        var sums = session(size: 200_000, hub: hub(both))
        #expect(sums.next() == .create(bodyCount: 16 << 10, checksum: "sha1"))
        var without = session(size: 200_000)
        #expect(without.next() == .create(bodyCount: 0, checksum: nil), "no body unless the hub offers creation-with-upload")
    }

    @Test func creationReportsTheURLBeforeAnyProgress() {
        var s = session(size: 200_000, hub: hub(withUpload))
        _ = s.next()
        let next = s.receive(.answered(.created(url: uploadURL, offset: 16 << 10), sent(16 << 10)))
        #expect(s.takeReports() == [.event(.created(url: uploadURL)), .event(.progress(offset: 16 << 10))])
        #expect(next == .patch(offset: 16 << 10, count: 64 << 10, checksum: nil))
        var empty = session()
        _ = empty.next()
        _ = empty.receive(.answered(.created(url: uploadURL, offset: 0), quick))
        #expect(empty.takeReports() == [.event(.created(url: uploadURL))], "no progress to report for an empty POST")
    }

    @Test func aCutCreatingPostEndsTheCall() {
        var s = session(hub: hub(withUpload))
        _ = s.next()
        #expect(s.receive(.failed(reset, sent(1000))) == .finish(.retry(after: 0.5, reason: reset.description)))
        #expect(s.hub.backoff.failures == 1)
    }

    // MARK: Chunks

    @Test func acknowledgedChunksAdvanceAndTheLastCompletes() {
        var h = hub()
        _ = h.backoff.nextDelay(random: 0.5)
        var s = session(size: 100_000, hub: h)
        _ = s.next()
        #expect(s.receive(.answered(.created(url: uploadURL, offset: 0), quick)) == .patch(offset: 0, count: 64 << 10, checksum: nil))
        let second = s.receive(.answered(.offset(64 << 10), sent(64 << 10)))
        #expect(second == .patch(offset: 64 << 10, count: 100_000 - (64 << 10), checksum: nil), "the chunk grew, the tail is what is left")
        #expect(s.receive(.answered(.offset(100_000), sent(34_464))) == .finish(.completed(url: uploadURL)))
        #expect(s.takeReports().suffix(2) == [.event(.progress(offset: 64 << 10)), .event(.progress(offset: 100_000))])
        #expect(s.hub.backoff.failures == 0 && s.hub.backoff.bestOffset == -1, "a completed upload forgets the backoff")
        #expect(s.hub.link.throughput != nil)
    }

    @Test func aResumedUploadAsksTheHubsOffsetFirst() {
        var s = session(url: uploadURL, acked: 50_000)
        #expect(s.next() == .head)
        #expect(s.receive(.answered(.offset(50_000), quick)) == .patch(offset: 50_000, count: 64 << 10, checksum: nil))
        #expect(s.takeReports() == [.event(.progress(offset: 50_000))])
        var done = session(size: 1000, url: uploadURL, acked: 1000)
        _ = done.next()
        #expect(done.receive(.answered(.offset(1000), quick)) == .finish(.completed(url: uploadURL)), "complete at acked >= size, no PATCH")
    }

    @Test func headReportingFewerBytesThanAcknowledgedResendsFromTheHubsOffset() {
        var s = session(url: uploadURL, acked: 50_000)
        _ = s.next()
        #expect(s.receive(.answered(.offset(20_000), quick)) == .patch(offset: 20_000, count: 64 << 10, checksum: nil))
        #expect(s.takeReports() == [.notice(.hubLostBytes(acknowledged: 50_000, hub: 20_000)), .event(.progress(offset: 20_000))])
        #expect(s.acked == 20_000)
    }

    @Test func moreThanThreeConflictsOrMismatchesEndInARetry() {
        var s = sending()
        for n in 1...3 {
            #expect(s.receive(.answered(.conflict, quick)) == .head, "conflict \(n): ask for the hub's offset")
            #expect(s.receive(.answered(.offset(0), quick)) == .patch(offset: 0, count: 64 << 10, checksum: nil))
        }
        guard case let .finish(.retry(_, reason)) = s.receive(.answered(.conflict, quick)) else { Issue.record("a fourth conflict went on"); return }
        #expect(reason.contains("kept rejecting"))

        var m = sending(hub: hub(checksummed))
        for _ in 1...3 {
            #expect(m.receive(.answered(.checksumMismatch, quick)) == .patch(offset: 0, count: 64 << 10, checksum: "sha256"), "the damaged chunk again")
        }
        guard case .finish(.retry) = m.receive(.answered(.checksumMismatch, quick)) else { Issue.record("a fourth mismatch went on"); return }
    }

    @Test func anAcknowledgedChunkClearsTheRecoveries() {
        var s = sending()
        for _ in 1...3 {
            _ = s.receive(.answered(.conflict, quick))
            _ = s.receive(.answered(.offset(0), quick))
        }
        _ = s.receive(.answered(.offset(1000), sent(1000)))
        #expect(s.recoveries == 0)
        for _ in 1...3 {
            #expect(s.receive(.answered(.conflict, quick)) == .head)
            _ = s.receive(.answered(.offset(1000), quick))
        }
    }

    // MARK: Drops

    @Test func aDropAfterProgressAsksTheOffsetAtOnceAndOnlyAFailureWithoutProgressWaits() {
        var s = sending()
        _ = s.receive(.answered(.offset(64 << 10), sent(64 << 10)))
        #expect(s.receive(.failed(reset, sent(0))) == .head, "progress since the last drop: ask at once")
        #expect(s.takeReports().contains(.notice(.askingForOffset(reason: reset.description))))
        #expect(s.hub.backoff.failures == 0)
        #expect(s.receive(.answered(.offset(64 << 10), quick)) == .patch(offset: 64 << 10, count: 128 << 10, checksum: nil))
        #expect(s.receive(.failed(reset, sent(0))) == .finish(.retry(after: 0.5, reason: reset.description)), "no progress: the backoff")
        #expect(s.hub.backoff.failures == 1)
    }

    @Test func theHubKeepingPartOfACutChunkIsProgress() {
        var s = sending()
        _ = s.receive(.answered(.offset(1000), sent(1000)))
        #expect(s.receive(.failed(reset, sent(30_000))) == .head)
        #expect(s.receive(.answered(.offset(21_000), quick)) == .patch(offset: 21_000, count: 64 << 10, checksum: nil))
        #expect(s.receive(.failed(reset, sent(30_000))) == .head, "the kept bytes were progress: at once again")
    }

    @Test func eachCallMayRetryOneDropAtOnce() {
        var s = sending()
        #expect(s.receive(.failed(reset, sent(0))) == .head)
        _ = s.receive(.answered(.offset(0), quick))
        guard case .finish(.retry) = s.receive(.failed(reset, sent(0))) else { Issue.record("a second drop without progress did not wait"); return }
    }

    @Test func aCutChecksummedChunkEndsChecksumsForGood() {
        var s = sending(hub: hub(checksummed))
        _ = s.receive(.answered(.offset(1000), sent(1000)))
        _ = s.takeReports()
        let before = s.hub.chunk.chunkSize
        #expect(s.receive(.failed(reset, sent(20_000))) == .head)
        #expect(s.takeReports().first == .notice(.checksumsDropped))
        let after = s.hub.chunk.chunkSize
        #expect(after < before, "the chunk was lost whole")
        #expect(s.receive(.answered(.offset(1000), quick)) == .patch(offset: 1000, count: after, checksum: nil))
        #expect(s.hub.chunk.partialChunksKept)
        #expect(s.hub.cutPatches == .unknown, "a checksummed chunk is discarded by every hub; that says nothing about this one")
        var later = sending(hub: s.hub)
        guard case .patch(_, _, nil) = later.next() else { Issue.record("checksums came back"); return }
        #expect(!later.takeReports().contains(.notice(.checksumsDropped)))
    }

    /// A hub that gives receipts checks each whole file's sha256 before it
    /// accepts it: chunks go to it without checksums from the start, so a
    /// chunk cut by a drop is kept in part rather than thrown away.
    @Test func aHubThatChecksWholeFilesGetsNoChunkChecksums() {
        var receipts = checksummed
        receipts.receipts = true
        var s = sending(hub: hub(receipts))
        guard case .patch(_, _, nil) = s.next() else { Issue.record("a chunk checksum to a hub that checks whole files"); return }
        #expect(s.hub.chunk.partialChunksKept)
        var plainTus = sending(hub: hub(checksummed))
        guard case .patch(_, _, "sha256") = plainTus.next() else { Issue.record("no checksum to a hub that checks only chunks"); return }
        #expect(!plainTus.hub.chunk.partialChunksKept)
    }

    @Test func aRefusedChunkKeepsChecksums() {
        var s = sending(hub: hub(checksummed))
        guard case .finish(.retry) = s.receive(.answered(.retry(retryAfter: nil, "the hub answered 503"), quick)) else { Issue.record("503 not retried"); return }
        #expect(s.hub.chunkChecksums, "the hub answered: nothing was cut")
    }

    @Test func interruptedRequestsAskAgain() {
        var s = sending()
        #expect(s.receive(.interrupted(.paused)) == .head, "the hub may have kept part of the chunk")
        #expect(s.receive(.interrupted(.rateLowered)) == .head)
        #expect(s.receive(.interrupted(.cancelled)) == .finish(.cancelled))
        var create = session()
        _ = create.next()
        #expect(create.receive(.interrupted(.paused)) == .create(bodyCount: 0, checksum: nil))
    }

    @Test(arguments: [
        (TusVerdict.gone, UploadOutcome.urlGone),
        (.hold("the hub refused the request (400)"), .hold(reason: "the hub refused the request (400)")),
        (.authFailed(403, "refused"), .authFailed(status: 403, reason: "refused")),
        (.retry(retryAfter: 30, "the hub answered 429"), .retry(after: 30, reason: "the hub answered 429")),
        (.retry(retryAfter: nil, "the hub answered 500"), .retry(after: 0.5, reason: "the hub answered 500")),
        (.violation("no Upload-Offset"), .retry(after: 0.5, reason: "protocol violation: no Upload-Offset")),
    ])
    func verdictsThatEndTheCall(verdict: TusVerdict, outcome: UploadOutcome) {
        var s = sending()
        #expect(s.receive(.answered(verdict, quick)) == .finish(outcome))
        #expect(s.next() == .finish(outcome), "a finished session stays finished")
    }

    @Test func anUnreadableFileHolds() {
        var s = sending()
        #expect(s.receive(.sourceFailed("source: pread(/x) failed")) == .finish(.hold(reason: "source: pread(/x) failed")))
    }

    // MARK: Hubs that throw away a cut PATCH

    @Test func aHubThatDiscardsCutChunksMakesThemShrinkUntilTheyGetThrough() {
        // The chunk grew on a fast link; a 400 kB image goes as one chunk and the link resets every 150 kB.
        var s = sending(size: 400_000, hub: hub(chunk: 1 << 20))
        #expect(s.next() == .patch(offset: 0, count: 400_000, checksum: nil))
        #expect(s.receive(.failed(reset, cut(150_000))) == .head)
        #expect(s.receive(.answered(.offset(0), quick)) == .patch(offset: 0, count: 200_000, checksum: nil), "half the cut chunk")
        #expect(s.takeReports().contains(.notice(.cutChunkDiscarded(offset: 0, sent: 150_000, seconds: 1, nextChunk: 200_000))))
        #expect(s.hub.cutPatches == .discarded)
        #expect(!s.hub.chunk.partialChunksKept)
        // Known to discard: the smaller chunk goes at once, from the same offset, without a HEAD.
        #expect(s.receive(.failed(reset, cut(150_000))) == .patch(offset: 0, count: 100_000, checksum: nil), "a smaller chunk is worth trying at once")
        #expect(s.hub.backoff.failures == 0, "no backoff while the chunk shrinks")
        // It gets through, and the chunk grows again.
        #expect(s.receive(.answered(.offset(100_000), sent(100_000))) == .patch(offset: 100_000, count: 200_000, checksum: nil))
        // The next upload to this hub starts from what was learnt.
        var next = sending(size: 400_000, hub: s.hub)
        guard case let .patch(_, count, _) = next.next() else { Issue.record("no PATCH"); return }
        #expect(count == 200_000)
    }

    @Test func aHubThatKeepsPartialChunksDoesNotPay() {
        var s = sending(size: 400_000, hub: hub(chunk: 1 << 20))
        _ = s.next()
        #expect(s.receive(.failed(reset, cut(150_000))) == .head)
        #expect(s.receive(.answered(.offset(120_000), quick)) == .patch(offset: 120_000, count: 280_000, checksum: nil))
        #expect(s.hub.chunk.chunkSize == 1 << 20, "no shrink when the offset moved")
        #expect(s.hub.cutPatches == .kept)
        #expect(!s.takeReports().contains { if case .notice(.cutChunkDiscarded) = $0 { true } else { false } })
    }

    @Test func aDropBeforeAnyByteWasSentSaysNothingAboutTheHub() {
        var s = sending(size: 400_000, hub: hub(chunk: 1 << 20))
        _ = s.next()
        _ = s.receive(.failed(reset, sent(0)))
        #expect(s.receive(.answered(.offset(0), quick)) == .patch(offset: 0, count: 400_000, checksum: nil))
        #expect(s.hub.cutPatches == .unknown)
    }

    @Test func aCutWithinTwoRoundTripsOfItsStartSaysNothingAboutTheHub() {
        // HEAD answers in 0.05 s here: a chunk cut after 0.09 s may have been all in flight.
        var s = sending(size: 400_000, hub: hub(chunk: 1 << 20))
        _ = s.next()
        _ = s.receive(.failed(reset, sent(150_000, seconds: 0.09)))
        #expect(s.receive(.answered(.offset(0), quick)) == .patch(offset: 0, count: 400_000, checksum: nil))
        #expect(s.hub.cutPatches == .unknown)
        #expect(s.hub.chunk.chunkSize == 1 << 20)
    }

    @Test func aHubSeenToKeepBytesWithdrawsAnEarlierDiscardVerdict() {
        // E.g. a drop before any byte reached the hub looked like a discard.
        var s = sending(size: 400_000, hub: hub(chunk: 1 << 20).with { $0.cutPatches = .discarded })
        _ = s.receive(.answered(.offset(1000), sent(1000)))
        guard case .patch(offset: 1000, _, nil) = s.receive(.failed(reset, cut(50_000))) else {
            Issue.record("the cut chunk did not go again from its offset"); return
        }
        // The hub kept part of it, so it refuses the chunk at the old offset and is asked.
        #expect(s.receive(.answered(.conflict, quick)) == .head)
        _ = s.receive(.answered(.offset(30_000), quick))
        #expect(s.hub.cutPatches == .kept)
        #expect(s.takeReports().contains(.notice(.cutChunkKept(offset: 1000, hub: 30_000))))
        #expect(s.hub.chunk.partialChunksKept, "cut chunks count as kept again")
    }

    @Test func atMinChunkADiscardingHubWaitsForTheBackoff() {
        var s = sending(size: 400_000, hub: hub(chunk: 16 << 10).with { $0.cutPatches = .discarded })
        #expect(s.receive(.failed(reset, cut(10_000))) == .patch(offset: 0, count: 16 << 10, checksum: nil))
        guard case .finish(.retry) = s.receive(.failed(reset, cut(10_000))) else { Issue.record("a chunk that cannot shrink was retried at once"); return }
    }

    @Test func aDropToAHubKnownToDiscardIsResentWithoutAskingForTheOffset() {
        var s = sending(size: 400_000, hub: hub(chunk: 100_000).with { $0.cutPatches = .discarded })
        guard case let .patch(100_000, cutCount, nil) = s.receive(.answered(.offset(100_000), sent(100_000))) else {
            Issue.record("no second chunk"); return
        }
        _ = s.takeReports()
        guard case let .patch(100_000, count, nil) = s.receive(.failed(reset, cut(40_000))) else {
            Issue.record("the cut chunk did not go again from its offset at once"); return
        }
        #expect(count < cutCount, "the cut chunk counts as lost: the next one is smaller")
        #expect(s.takeReports().contains(.notice(.resendingCutChunk(offset: 100_000, nextChunk: count, reason: reset.description))))
        // It gets through from the old offset: the hub had indeed thrown the cut bytes away.
        guard case .patch(offset: 100_000 + count, _, nil) = s.receive(.answered(.offset(100_000 + count), sent(count))) else {
            Issue.record("the upload did not go on after the resent chunk"); return
        }
        #expect(s.hub.cutPatches == .discarded)
    }

    @Test func aHubStillBusyWithTheCutChunkIsAskedForItsOffset() {
        // The resent chunk reaches the hub before it has seen the drop: it
        // answers 423 for the PATCH still in progress, and keeps those bytes.
        var s = sending(size: 400_000, hub: hub(chunk: 100_000).with { $0.cutPatches = .discarded })
        guard case .patch(offset: 0, _, nil) = s.receive(.failed(reset, cut(60_000))) else { Issue.record("no resend"); return }
        #expect(s.receive(.answered(.retry(retryAfter: nil, "the hub answered 423"), quick)) == .head, "asked, not given up")
        guard case .patch(offset: 55_000, _, nil) = s.receive(.answered(.offset(55_000), quick)) else {
            Issue.record("the upload did not go on from the hub's offset"); return
        }
        #expect(s.hub.cutPatches == .kept)
        // Without a resend in between, the same answer ends the call as before.
        guard case .finish(.retry) = s.receive(.answered(.retry(retryAfter: nil, "the hub answered 423"), quick)) else {
            Issue.record("a 423 to an asked-for PATCH did not end the call"); return
        }
    }

    @Test func aChunkStoredWholeDespiteTheDropIsFoundThroughTheConflict() {
        // The hub stored the whole chunk; only its answer was lost in the drop.
        var s = sending(size: 400_000, hub: hub(chunk: 100_000).with { $0.cutPatches = .discarded })
        #expect(s.receive(.failed(reset, cut(100_000))) != .head)
        #expect(s.receive(.answered(.conflict, quick)) == .head)
        guard case .patch(offset: 100_000, _, nil) = s.receive(.answered(.offset(100_000), quick)) else {
            Issue.record("the upload did not go on from the hub's offset"); return
        }
        #expect(s.hub.cutPatches == .kept, "the hub had the bytes after all")
        guard case .head = s.receive(.failed(reset, cut(50_000))) else {
            Issue.record("after the hub showed it kept bytes, a drop was not followed by a HEAD"); return
        }
    }
}
